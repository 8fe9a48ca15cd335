# shellcheck shell=bash
# Sourced by registry.sh and kubernetes.sh: sets $manifests_python to a Python in a virtual
# environment holding requirements-manifests.txt, (re)made when that file or the interpreter
# changes. Inputs: PYTHON (default python3, 3.11+ for tomllib), MANIFESTS_VENV (default
# ${CARGO_TARGET_DIR:-target}/manifests-venv). Needs PyPI only when the environment is made.
manifests_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifests_root="$(cd "$manifests_here/../.." && pwd)"
manifests_venv="${MANIFESTS_VENV:-${CARGO_TARGET_DIR:-$manifests_root/target}/manifests-venv}"
manifests_python="$manifests_venv/bin/python"
manifests_stamp="$manifests_venv/.requirements.sha256"
manifests_want="$("${PYTHON:-python3}" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read() + sys.version.encode()).hexdigest())' "$manifests_here/requirements-manifests.txt")"
if [[ ! -x "$manifests_python" || ! -f "$manifests_stamp" || "$(cat "$manifests_stamp")" != "$manifests_want" ]]; then
    echo "manifests: creating virtual environment in $manifests_venv" >&2
    rm -rf "$manifests_venv"
    mkdir -p "$(dirname "$manifests_venv")"
    "${PYTHON:-python3}" -m venv "$manifests_venv" \
        || { echo "manifests: '${PYTHON:-python3} -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
    timeout 300 "$manifests_python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$manifests_here/requirements-manifests.txt"
    echo "$manifests_want" >"$manifests_stamp"
fi
