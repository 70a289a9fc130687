#!/usr/bin/env bash
# Lint: ruff check, ruff format --check and mypy, as configured in pyproject.toml.
# Runs all three and fails if any fails. The venv comes from scripts/test.sh.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
[ -x .venv/bin/python ] || { echo "no .venv yet: run scripts/test.sh once, it creates it" >&2; exit 1; }
rc=0
run() {
  printf '\n==> %s\n' "$*"
  "$@" || rc=1
}
run .venv/bin/ruff check .
run .venv/bin/ruff format --check .
run .venv/bin/mypy
exit "$rc"
