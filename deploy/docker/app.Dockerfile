# The Node.js styles and tools in one image: monolith, microkernel (supervisor + gateway, fs and driver
# servers), corpus, the load generator and the lab console (lab/: `kstyles console`). `docker run IMAGE <command> --help` lists a command's flags.
#
# Build context: the repository root. NODE_BASE defaults to the official image; where no registry can be
# reached, deploy/offline-bases.sh makes kstyles/node-base:local from the host's node (same paths).
#
# Dependencies: `npm ci --omit=dev` at build time, from package-lock.json, so the image gets exactly the
# locked production dependencies for its own platform, not the host's node_modules with its dev tools.
# The npm registry is the one thing the build needs besides the base (it is reachable from `docker build`
# on the project's machines, where container registries are not). RUN is in exec form: the local base
# has no shell. Few steps on purpose: with the vfs storage driver every step copies the whole image.
ARG NODE_BASE=node:24-slim

FROM ${NODE_BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN ["/usr/local/bin/node", "/usr/local/lib/node_modules/npm/bin/npm-cli.js", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", "--cache=/tmp/npm-cache"]
COPY tsconfig.json ./
COPY bin ./bin
COPY cli ./cli
COPY services ./services
COPY monolith ./monolith
COPY load ./load
COPY lab ./lab
# The microkernel's servers bundled once, here, into the read-only image (KSTYLES_SERVER_BUNDLES below):
# bundled at start they would be code in the writable /tmp (services/microkernel/server-bundles.ts).
RUN ["/usr/local/bin/node", "--import", "tsx", "services/microkernel/server-bundles.ts", "/app/dist/servers"]
# The mount point of the corpus volume, owned by the runtime user: an empty named volume takes it over,
# so the one-shot corpus job can write there without root.
RUN ["/usr/local/bin/node", "-e", "require('node:fs').mkdirSync('/data/corpus', { recursive: true })"]

FROM ${NODE_BASE}
COPY --from=build /app /app
COPY --from=build --chown=1000:1000 /data /data
# tsx compiles the TypeScript at start and caches it under TMPDIR: with read_only, mount a tmpfs there.
# KSTYLES_IMAGE: the request parsers count this image's files on /metrics (kstyles_security_image_*).
ENV NODE_ENV=production TMPDIR=/tmp KSTYLES_IMAGE=kstyles/app KSTYLES_SERVER_BUNDLES=/app/dist/servers
# glibc keeps freed buffers for the next request instead of faulting fresh pages in (services/contract/malloc-env.ts).
ENV MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728 MALLOC_TOP_PAD_=16777216
WORKDIR /app
# uid 1000 is "node" in both the official image and the local base.
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/node", "bin/kstyles.js"]
CMD ["--help"]
