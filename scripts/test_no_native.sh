#!/usr/bin/env bash
# Second pass of the suite on a build WITHOUT the native kernel (BLPOPQ_NO_NATIVE=1): the unit
# tests, the daemon tests on the hashlib kernel and one end-to-end run. The build happens in a
# copy of the tree, because an editable install of this one leaves blpopq/_kernel*.so beside
# the sources, where any build would import it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
# Tracked and new files, not ignored ones (no .so, no venv, no caches).
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$copy"
cd "$copy"
export BLPOPQ_NO_NATIVE=1
export BLPOPQ_VENV="$copy/.venv"
. scripts/_venv.sh test
if "$venv/bin/python" -c "import blpopq._kernel" 2>/dev/null; then
    echo "test_no_native.sh: blpopq._kernel was built despite BLPOPQ_NO_NATIVE=1" >&2
    exit 1
fi
status=0
"$venv/bin/pytest" "$@" tests/unit tests/integration/test_kernel_daemon.py \
    "tests/integration/test_cli.py::test_every_request_gets_exactly_one_correct_result" \
    "tests/integration/test_cli.py::test_run_embeds_redis_and_prints_one_row_per_request" \
    || status=$?
exit "$status"
