#!/usr/bin/env bash
# Interop test: the official MCP Python SDK (pinned in requirements.txt) drives the
# vultr-inference-mcp binary over stdio against the tests' fake Vultr (tests/support/fake_vultr/,
# run as a process by examples/fake_vultr.rs).
#
#   bash interop/python/run.sh [extra pytest args]
#
# Environment:
#   VULTR_MCP_BIN       server binary to test (default: `cargo build`, then
#                       ${CARGO_TARGET_DIR:-target}/debug/vultr-inference-mcp)
#   FAKE_VULTR_BIN      fake Vultr binary (default: `cargo build --example fake_vultr`, then
#                       ${CARGO_TARGET_DIR:-target}/debug/examples/fake_vultr)
#   CARGO_TARGET_DIR    respected when building
#   PYTHON              interpreter for the virtual environment (default: python3, >= 3.10)
#   INTEROP_VENV        where the virtual environment lives
#                       (default: ${CARGO_TARGET_DIR:-target}/interop-venv; never committed)
#
# Needs Python 3.10+ with venv/pip and PyPI; everything else runs on 127.0.0.1.
# Ends with pytest's summary line ("N passed ...") and exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in
  /*) ;;
  *) target_dir="$root/$target_dir" ;;
esac

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "interop: $python is older than 3.10 (the mcp SDK needs 3.10+); set PYTHON" >&2
  exit 1
fi

# 1. The virtual environment, rebuilt when requirements.txt or the interpreter changes.
venv="${INTEROP_VENV:-$target_dir/interop-venv}"
stamp="$venv/.requirements.sha256"
want="$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read() + sys.version.encode()).hexdigest())' "$here/requirements.txt")"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "interop: creating virtual environment in $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv"; then
    echo "interop: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

# 2. The server binary and the fake Vultr, built in one cargo run when both are needed.
build=()
if [[ -n "${VULTR_MCP_BIN:-}" ]]; then
  bin="$VULTR_MCP_BIN"
else
  build+=(--bin vultr-inference-mcp)
  bin="$target_dir/debug/vultr-inference-mcp"
fi
if [[ -n "${FAKE_VULTR_BIN:-}" ]]; then
  fake="$FAKE_VULTR_BIN"
else
  build+=(--example fake_vultr)
  fake="$target_dir/debug/examples/fake_vultr"
fi
if (( ${#build[@]} )); then
  echo "interop: cargo build ${build[*]}" >&2
  cargo build --quiet "${build[@]}"
fi
for built in "$bin" "$fake"; do
  if [[ ! -x "$built" ]]; then
    echo "interop: binary not found or not executable: $built" >&2
    exit 1
  fi
done
export VULTR_MCP_BIN="$bin" FAKE_VULTR_BIN="$fake"

# 3. The tests. Bounded so a hang fails the run instead of eating CI's time.
echo "interop: mcp $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'), server $bin" >&2
cd "$here"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the work tree
bound=()
if command -v timeout > /dev/null; then
  bound=(timeout --kill-after=10 600)
fi
exec ${bound[@]+"${bound[@]}"} "$venv/bin/python" -m pytest \
  -p no:cacheprovider -c "$here/pytest.ini" --rootdir "$here" "$@" "$here/test_interop.py" "$here/test_confirm.py"
