#!/usr/bin/env bash
# Builds local stand-ins for the registry base images from this machine's own binaries, FROM scratch, so
# every image of deploy/docker-compose.yml builds where no container registry can be reached:
#
#   kstyles/node-base:local        the host's node + the libraries ldd names + the loader, and npm
#                                  (same paths as node:24-slim: /usr/local/bin/node, /usr/local/lib/node_modules/npm)
#   kstyles/nats-base:local        Debian's /usr/sbin/nats-server (+ busybox wget for the healthcheck, as in nats:*-alpine)
#   kstyles/prometheus-base:local  Debian's prometheus and promtool (same paths as prom/prometheus: /bin/prometheus)
#
# It also writes deploy/.env naming these bases (NODE_BASE=..., read by compose), so that afterwards
#   docker compose -f deploy/docker-compose.yml up -d --build
# builds everything without a registry (KSTYLES_WRITE_ENV=0 skips that). Grafana has no Debian package:
# it stays behind the compose profile "grafana" and needs the registry.
#
# Missing host packages (nats-server, prometheus, busybox-static) are installed with apt-get when run as root.
# Exit codes: 0 built all; 1 a build failed; 3 a prerequisite is missing here (no engine, packages that
# cannot be installed): the message says which.
set -euo pipefail

say() { printf 'offline-bases: %s\n' "$*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
missing() {
  say "CANNOT RUN: $*"
  exit 3
}

command -v docker >/dev/null || missing "no docker client on PATH (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || missing "the Docker engine does not answer (docker info failed): start dockerd first"

need_apt=()
[ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || need_apt+=(prometheus)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${need_apt[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null; } ||
      missing "apt-get could not install ${need_apt[*]}"
  else
    missing "missing ${need_apt[*]}: install them (Debian/Ubuntu: sudo apt-get install -y ${need_apt[*]})"
  fi
fi

NODE_BIN="$(readlink -f "$(command -v node)")"
NPM_DIR=""
for candidate in /usr/lib/node_modules/npm /usr/local/lib/node_modules/npm "$(dirname "$NODE_BIN")/../lib/node_modules/npm"; do
  if [ -f "$candidate/bin/npm-cli.js" ]; then
    NPM_DIR="$(readlink -f "$candidate")"
    break
  fi
done
[ -n "$NPM_DIR" ] || missing "npm's package folder (…/node_modules/npm) not found next to $NODE_BIN"

work="$(mktemp -d /tmp/kstyles-bases.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Copies a binary and every library ldd names (and the loader) into a root filesystem, keeping paths.
copy_with_libs() {
  local root="$1" bin="$2" dest="$3"
  install -D -m 0755 "$bin" "$root$dest"
  ldd "$bin" | awk '/=> \// { print $3 } /^[ \t]*\/lib/ { print $1 }' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# /etc/passwd and /etc/group with root, nobody and the node user (uid 1000, as in the official node image),
# a sticky /tmp: what a FROM scratch image needs for a non-root user and temporary files.
skeleton() {
  local root="$1"
  mkdir -p "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"$root/etc/group"
  mkdir -p "$root/home/node"
}

# Builds an image from a context folder holding rootfs/ (and whatever else the Dockerfile text copies).
build_base() {
  local tag="$1" context="$2" dockerfile="$3"
  printf '%s' "$dockerfile" >"$context/Dockerfile"
  if ! DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$context" \
    >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    die "docker build of $tag failed (output above)"
  fi
  say "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"
}

# node + npm
node_root="$work/node/rootfs"
skeleton "$node_root"
copy_with_libs "$node_root" "$NODE_BIN" /usr/local/bin/node
mkdir -p "$node_root/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$node_root/usr/local/lib/node_modules/npm"
# The host's CA bundle, so `npm ci` at build time trusts what the host trusts (a TLS-inspecting proxy's
# CA included); node reads it through NODE_EXTRA_CA_CERTS like on the host.
ca_env=""
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$node_root/etc/ssl/certs/ca-certificates.crt"
  ca_env=" NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"
fi
build_base kstyles/node-base:local "$work/node" "FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_VERSION=$(node -p process.versions.node)$ca_env
CMD [\"/usr/local/bin/node\"]
"

# nats-server (+ busybox wget at the path nats:*-alpine has it, for the compose healthcheck)
nats_root="$work/nats/rootfs"
skeleton "$nats_root"
copy_with_libs "$nats_root" /usr/sbin/nats-server /usr/local/bin/nats-server
install -D -m 0755 /bin/busybox "$nats_root/bin/busybox"
mkdir -p "$nats_root/usr/bin" && ln -s /bin/busybox "$nats_root/usr/bin/wget"
build_base kstyles/nats-base:local "$work/nats" "FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
ENTRYPOINT [\"/usr/local/bin/nats-server\"]
"

# prometheus + promtool (promtool doubles as the healthcheck client: no shell, no wget needed)
prom_root="$work/prometheus/rootfs"
skeleton "$prom_root"
copy_with_libs "$prom_root" /usr/bin/prometheus /bin/prometheus
copy_with_libs "$prom_root" /usr/bin/promtool /bin/promtool
mkdir -p "$prom_root/etc/prometheus" "$work/prometheus/storage"
# COPY resets ownership to root: the storage folder, created by its own COPY, belongs to nobody (as in
# prom/prometheus), so an empty named volume mounted there is writable.
build_base kstyles/prometheus-base:local "$work/prometheus" "FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 storage /prometheus
ENV PATH=/bin
USER 65534:65534
ENTRYPOINT [\"/bin/prometheus\"]
"

# Compose reads deploy/.env (the project directory's), so plain `docker compose -f deploy/docker-compose.yml
# up -d --build` now builds on these bases. Delete deploy/.env to build on the official images again.
env_file="$(cd "$(dirname "$0")" && pwd)/.env"
if [ "${KSTYLES_WRITE_ENV:-1}" = 1 ]; then
  # Lines of others (the NATS keys of deploy/nats/nats-keys.ts) stay.
  others="$(grep -v -e '^NODE_BASE=' -e '^NATS_BASE=' -e '^PROMETHEUS_BASE=' -e '^# Written by deploy/offline-bases.sh' "$env_file" 2>/dev/null || true)"
  {
    if [ -n "$others" ]; then echo "$others"; fi
    echo "# Written by deploy/offline-bases.sh: build the images on the local base images (no registry)."
    echo "NODE_BASE=kstyles/node-base:local"
    echo "NATS_BASE=kstyles/nats-base:local"
    echo "PROMETHEUS_BASE=kstyles/prometheus-base:local"
  } >"$env_file"
  say "wrote $env_file (compose now builds on the local bases; delete it to use the official images)"
fi

cat >&2 <<EOF
offline-bases: done. Build and start the stack on these bases (legacy builder: works with every docker client):
  npm run build:unikernel
  DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 docker compose -f deploy/docker-compose.yml up -d --build
  (or docker-compose -f deploy/docker-compose.yml up -d --build with compose v1.29)
EOF
