#!/usr/bin/env bash
# The dashboard's browser test (tests/browser): installs Debian's chromium and chromium-driver
# when missing (as root, with apt; the test drives these system binaries and downloads
# nothing), then runs that test in the test venv. Extra arguments go to pytest.
#   scripts/browser-test.sh                 install if needed, then run tests/browser
#   scripts/browser-test.sh --install-only  install if needed (what .ci/run calls)
# The install never fails the caller: without apt or root the browser test skips, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
install_browser() {
    if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "browser-test.sh: no chromium/chromedriver, and no apt-get as root to install" \
            "them: the browser test will skip" >&2
        return 0
    fi
    echo "browser-test.sh: installing chromium and chromium-driver with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver; } >/tmp/blpopq-browser-apt.log 2>&1 || {
        echo "browser-test.sh: apt-get failed (see /tmp/blpopq-browser-apt.log):" \
            "the browser test will skip" >&2
    }
}
install_browser
if [ "${1:-}" = "--install-only" ]; then
    exit 0
fi
. scripts/_venv.sh test
exec "$venv/bin/pytest" -q tests/browser "$@"
