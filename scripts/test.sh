#!/usr/bin/env bash
# The test command. It installs what is missing, starts Docker and a private Redis, builds the
# test base image, then runs pytest; extra arguments go to pytest:
#   scripts/test.sh                              # everything
#   scripts/test.sh tests/unit -k rig -x         # a selection
# Safe to rerun on a dirty machine, and works where Docker already runs (a laptop). It never
# stops Docker: a dockerd it had to start keeps running for the next run.
# Exported to pytest: BOTRUNNER_TEST_REDIS_URL, BOTRUNNER_TEST_BASE_IMAGE. Set either beforehand
# to use your own Redis or base image instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BASE_IMAGE="${BOTRUNNER_TEST_BASE_IMAGE:-botrunner-test/python:bookworm}"
STATE="$PWD/.test-state"  # git-ignored: locks and logs of this checkout
DOCKERD_LOG=/var/tmp/botrunner-dockerd.log
mkdir -p "$STATE"
SECONDS=0

step() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
docker_answers() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }

# Several checkouts and engineers share one machine: serialise the steps that touch shared state.
lock() {  # lock FILE: hold an exclusive lock on FILE until unlock
  command -v flock >/dev/null || return 0
  { exec 9>>"$1"; } 2>/dev/null || return 0  # e.g. another user's lock file: go on unlocked
  flock 9
}
unlock() { exec 9>&-; }

find_python() {
  local py
  for py in ${PYTHON:-} python3.11 python3 python3.12 python3.13 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[1-9]*/bin/python3; do
    if command -v "$py" >/dev/null \
      && "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"
      return
    fi
  done
  die "no Python >= 3.11 with venv and ensurepip found (set PYTHON=/path/to/python3.11)"
}

REDIS_DIR=""
SWARM_CREATED=""
SWARM_LOCK=/var/tmp/botrunner-swarm.lock
# shellcheck disable=SC2317  # called by the trap below
leave_swarm() {
  # Only a swarm this run made, and only when no other run holds the shared lock (other checkouts
  # on this engine may be running the swarm tests): they leave it as it is.
  [ -n "$SWARM_CREATED" ] && [ "${BOTRUNNER_TEST_KEEP_SWARM:-0}" != 1 ] || return 0
  exec 8>&- 2>/dev/null || true
  if command -v flock >/dev/null && ! flock -n -x "$SWARM_LOCK" true 2>/dev/null; then
    echo "scripts/test.sh: another run uses the swarm; leaving it up" >&2
    return 0
  fi
  docker swarm leave --force >/dev/null 2>&1 || true
  # `swarm leave` leaves docker_gwbridge behind.
  docker network rm docker_gwbridge >/dev/null 2>&1 || true
  echo "left the one-node swarm this run made"
}
# shellcheck disable=SC2317  # called by the trap below
cleanup() {
  local pid
  leave_swarm
  if [ -n "$REDIS_DIR" ] && [ -f "$REDIS_DIR/redis.pid" ]; then
    pid=$(cat "$REDIS_DIR/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [ -z "$REDIS_DIR" ] || rm -rf "$REDIS_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "1/6 system packages"
missing=()
{ command -v dockerd && command -v docker; } >/dev/null || docker_answers || missing+=(docker.io)
[ -n "${BOTRUNNER_TEST_REDIS_URL:-}" ] || command -v redis-server >/dev/null || missing+=(redis-server)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v git >/dev/null || missing+=(git)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v docker-registry >/dev/null || missing+=(docker-registry)  # the swarm tests' loopback registry
# The Mini App's browser tests drive Debian's Chromium through Playwright (pinned in the test
# extras to a version that drives it); Playwright's own browser download is not used.
[ -x "${BOTRUNNER_TEST_CHROMIUM:-/usr/lib/chromium/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  echo "all present"
elif is_root && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]} (log: $STATE/apt.log)"
  export DEBIAN_FRONTEND=noninteractive
  {
    apt-get -o DPkg::Lock::Timeout=300 update \
      && apt-get -o DPkg::Lock::Timeout=300 install -y "${missing[@]}"
  } >"$STATE/apt.log" 2>&1 || { tail -n 40 "$STATE/apt.log" >&2; die "apt-get failed"; }
else
  echo "missing and not installed (needs root and apt-get): ${missing[*]}" >&2
  echo "the steps below fail if they need one of them" >&2
fi

step "2/6 Python venv (.venv)"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
lock "$STATE/venv.lock"
if [ "$(cat .venv/.botrunner-installed 2>/dev/null)" = "$want" ] && .venv/bin/python -c '' 2>/dev/null; then
  echo "up to date ($(.venv/bin/python -V))"
else
  if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$(find_python)
    echo "creating .venv with $py ($("$py" -V))"
    rm -rf .venv
    "$py" -m venv .venv
  fi
  echo "pip install -e '.[test]' (log: $STATE/pip.log)"
  .venv/bin/python -m pip install --disable-pip-version-check -e '.[test]' >"$STATE/pip.log" 2>&1 \
    || { tail -n 40 "$STATE/pip.log" >&2; die "pip install failed"; }
  echo "$want" >.venv/.botrunner-installed
fi
unlock
PY="$PWD/.venv/bin/python"

step "3/6 Docker engine"
if ! docker_answers; then
  if ! is_root || ! command -v dockerd >/dev/null; then
    die "Docker does not answer and this script cannot start it (it needs root and dockerd): start Docker, then rerun"
  fi
  lock /var/tmp/botrunner-dockerd.lock
  if ! docker_answers; then
    echo "starting dockerd in the background (log: $DOCKERD_LOG)"
    # Detached and with no inherited descriptors, so it outlives this script without holding its output.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    deadline=$((SECONDS + 30))
    until docker_answers; do
      [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$DOCKERD_LOG" >&2; die "dockerd did not answer within 30 s"; }
      sleep 0.5
    done
  fi
  unlock
fi
echo "Docker $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

# The swarm backend's tests need a swarm manager: a one-node swarm on loopback. Initialising one
# does not disturb plain containers. Every run holds a shared lock on it while it runs.
if command -v flock >/dev/null; then
  { exec 8>>"$SWARM_LOCK"; } 2>/dev/null && flock -s 8 || true
fi
lock /var/tmp/botrunner-swarm-init.lock
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
    die "this engine is a swarm worker; the swarm tests need a manager (docker swarm leave, or run on a manager)"
  fi
  docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null \
    || die "docker swarm init failed"
  SWARM_CREATED=1
  echo "made this engine a one-node swarm (left again at the end)"
else
  echo "swarm manager: yes"
fi
unlock

step "4/6 Redis"
if [ -n "${BOTRUNNER_TEST_REDIS_URL:-}" ]; then
  echo "using the given BOTRUNNER_TEST_REDIS_URL=$BOTRUNNER_TEST_REDIS_URL"
else
  command -v redis-server >/dev/null || die "redis-server is missing (apt-get install -y redis-server)"
  REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/botrunner-redis.XXXXXX")
  # The same helper the fixtures use when pytest runs without this script; stopped by cleanup().
  url=$("$PY" -m tests.fixtures.services redis "$REDIS_DIR") || die "could not start redis-server"
  export BOTRUNNER_TEST_REDIS_URL="$url"
  echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -c3-) at $BOTRUNNER_TEST_REDIS_URL (stopped on exit)"
fi

step "5/6 base image $BASE_IMAGE"
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  lock /var/tmp/botrunner-base-image.lock
  # Someone may be running the build by hand: wait for it (up to 10 min) rather than debootstrap twice.
  deadline=$((SECONDS + 600))
  while [ "$SECONDS" -lt "$deadline" ] && command -v pgrep >/dev/null \
    && pgrep -f 'build-base-image\.sh' >/dev/null && ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; do
    echo "waiting for a build-base-image.sh that is already running"
    sleep 5
  done
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    is_root || die "the base image $BASE_IMAGE is missing and building it needs root: sudo scripts/build-base-image.sh"
    scripts/build-base-image.sh "$BASE_IMAGE"
  fi
  unlock
fi
export BOTRUNNER_TEST_BASE_IMAGE="$BASE_IMAGE"
echo "present"

step "6/6 pytest $*"
set +e
if [ $# -eq 0 ]; then
  # Everything, then, on its own at the end, the test that restarts dockerd: nothing else may be
  # running on the engine while it does.
  "$PY" -m pytest -m "not dockerd_restart"
  rc=$?
  step "pytest -m dockerd_restart (restarts the Docker daemon)"
  "$PY" -m pytest -m dockerd_restart
  rc2=$?
  [ "$rc" -ne 0 ] || rc=$rc2
else
  "$PY" -m pytest "$@"
  rc=$?
fi
set -e
[ "$rc" -ne 5 ] || echo "pytest collected no tests: that is a failure" >&2
step "finished: pytest exit code $rc"
exit "$rc"
