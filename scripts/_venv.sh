# Sourced by demo.sh and test.sh (from the repository's root): make the venv the first time,
# then install the project with the extra named in $1. Leaves its path in $venv.
# Needs only python3 with its venv module (Debian/Ubuntu: apt-get install python3-venv).
venv=${BLPOPQ_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "$0: could not create a venv; on Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$venv/bin/python" -m pip install --quiet -e ".[$1]"
