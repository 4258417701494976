# Prometheus with the kernel-styles scrape configuration. Build context: deploy/.
# PROMETHEUS_BASE: the official image, or kstyles/prometheus-base:local from deploy/offline-bases.sh
# (Debian's prometheus and promtool at the official image's paths). promtool is the healthcheck client.
ARG PROMETHEUS_BASE=prom/prometheus:v2.55.1
FROM ${PROMETHEUS_BASE}
COPY prometheus/prometheus.yml /etc/prometheus/prometheus.yml
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=2d", "--web.enable-lifecycle"]
