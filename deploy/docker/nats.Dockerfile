# NATS, the microkernel's IPC, with the per-server users and permissions of deploy/nats/nats.conf
# (generated from services/microkernel/nats-config.ts; nkey public keys come from the environment at start).
# Build context: deploy/. NATS_BASE: the official alpine image (its busybox wget serves the healthcheck),
# or kstyles/nats-base:local from deploy/offline-bases.sh (Debian's nats-server, same paths).
ARG NATS_BASE=nats:2.10-alpine
FROM ${NATS_BASE}
COPY nats/nats.conf /etc/nats/kstyles.conf
# Go's collector target, as `kstyles microkernel` and the lab run nats-server (NATS_GOGC in
# services/microkernel/nats-config.ts, where the measurement is): at Go's default 100 the collector costs
# nats-server about as much CPU as moving the bytes of a large file.
ENV GOGC=400
# Freed memory goes back to the kernel lazily, so reused buffers are not faulted in again (NATS_GODEBUG).
ENV GODEBUG=madvdontneed=0
USER 65534:65534
EXPOSE 4222 8222
ENTRYPOINT ["/usr/local/bin/nats-server"]
CMD ["-c", "/etc/nats/kstyles.conf"]
