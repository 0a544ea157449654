#!/usr/bin/env bash
# Lint, type-check and run the whole test suite (real servers on loopback).
# Run after 'bash scripts/setup.sh --test'. Exits non-zero on any failure,
# including a run in which no test executed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check vigie tests benchmarks
ruff format --check vigie tests benchmarks
echo "== mypy"
mypy vigie
if command -v hadolint >/dev/null 2>&1 && [ -f Dockerfile ]; then
  echo "== hadolint"
  hadolint Dockerfile
fi
echo "== pytest"
set +e
python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest ran no test: failing" >&2
  exit 1
fi
exit "$status"
