#!/usr/bin/env bash
# CI entry of the container tier (called from .ci/run). Gets a Docker engine if it can, builds the local
# base images, runs `npm run test:containers`, and stops whatever it started.
#
#   1. docker.io and docker-compose from apt-get when missing (root with apt only);
#   2. dockerd --storage-driver=vfs in the background when no engine answers (stale /var/run/docker.pid
#      removed first; log in $KSTYLES_DOCKERD_LOG, default /tmp/kstyles-dockerd.log);
#   3. deploy/offline-bases.sh (base images from the host's binaries: no registry needed);
#   4. npm run test:containers, with a per-file timeout fit for the vfs driver.
#
# Exit status: the test run's. When no engine can be had (no apt, dockerd cannot start here, ...), it
# prints "SKIPPED: <reason>" and exits 0 on a developer's machine; with KSTYLES_REQUIRE_CONTAINERS=1 (set
# by .ci/run) it prints the same reason and exits 1: in CI a tier that did not run has not passed.
set -uo pipefail
cd "$(dirname "$0")/.."

DOCKERD_LOG="${KSTYLES_DOCKERD_LOG:-/tmp/kstyles-dockerd.log}"
TEST_TIMEOUT_MS="${KSTYLES_CONTAINER_TEST_TIMEOUT_MS:-1500000}"
# Legacy builds work with both docker clients found on the project's machines (28.x without buildx, 20.10).
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

say() { printf 'ci-docker: %s\n' "$*" >&2; }
skip() {
  if [ "${KSTYLES_REQUIRE_CONTAINERS:-}" = 1 ]; then
    printf '\n*** FAILED: the container tier is required here (KSTYLES_REQUIRE_CONTAINERS=1) but cannot run: %s ***\n\n' "$*" >&2
    exit 1
  fi
  printf '\n*** SKIPPED: container tier: %s ***\n\n' "$*" >&2
  exit 0
}

started_dockerd=""
cleanup() {
  if [ -n "$started_dockerd" ] && kill -0 "$started_dockerd" 2>/dev/null; then
    say "stopping the dockerd this script started (pid $started_dockerd)"
    kill -TERM "$started_dockerd" 2>/dev/null
    for _ in $(seq 1 40); do
      kill -0 "$started_dockerd" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$started_dockerd" 2>/dev/null && kill -KILL "$started_dockerd" 2>/dev/null
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    return 1
  fi
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}" || skip "missing ${missing[*]} and apt-get could not install them (not root, no apt, or no package mirror)"
fi
command -v docker >/dev/null || skip "no docker client on PATH after installing docker.io"

if docker info >/dev/null 2>&1; then
  say "using the Docker engine that is already running"
else
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
    say "removing stale /var/run/docker.pid"
    rm -f /var/run/docker.pid
  fi
  [ "$(id -u)" = 0 ] || skip "no Docker engine answers and starting dockerd needs root"
  say "starting dockerd --storage-driver=vfs (log: $DOCKERD_LOG)"
  dockerd --storage-driver=vfs >"$DOCKERD_LOG" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2>/dev/null || break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    reason="$(grep -iE 'level=(error|fatal)|failed' "$DOCKERD_LOG" | tail -n 1)"
    skip "dockerd could not start here: ${reason:-no answer within 60 s} (full log: $DOCKERD_LOG)"
  fi
  say "dockerd is up (pid $started_dockerd)"
fi

# Leftovers of an interrupted earlier run (projects kstyles-ct-<pid> whose test process is gone).
for project in $(docker ps -a --format '{{.Label "com.docker.compose.project"}}' | grep '^kstyles-ct-' | sort -u); do
  pid="${project#kstyles-ct-}"
  if ! kill -0 "$pid" 2>/dev/null; then
    say "removing the stale compose project $project"
    docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null
    docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm >/dev/null
    docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm >/dev/null
  fi
done

bash deploy/offline-bases.sh
status=$?
if [ "$status" = 3 ]; then
  skip "the local base images need packages this machine cannot install (see offline-bases output above)"
elif [ "$status" != 0 ]; then
  say "deploy/offline-bases.sh failed (exit $status)"
  exit "$status"
fi

started=$(date +%s)
npm run test:containers -- "--test-timeout=$TEST_TIMEOUT_MS"
status=$?
say "container tier finished in $(($(date +%s) - started)) s with exit status $status"
exit "$status"
