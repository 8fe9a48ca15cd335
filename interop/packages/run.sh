#!/usr/bin/env bash
# Package interop: builds each package a user installs in one line from the static release
# binary, installs it the way a user would, and drives the installed server with an MCP client
# (drive.py, the official MCP Python SDK) against the tests' fake Vultr: `initialize`,
# `list_models`, `list_subscriptions`. The steps, each its own script:
#   wheel.sh  the PyPI wheel (maturin), pip-installed into a fresh venv;
#   npm.sh    the npm launcher + linux-x64 platform package, packed and installed from tarballs;
#   mcpb.sh   the MCP Bundle, validated, packed, unpacked and configured as a desktop client does;
#   container.sh  the container image (podman, FROM scratch): its configuration, and the binary
#             taken back out of it serving HTTP with a token;
#   registry.sh   server.json against the registry schema; one version and one name everywhere;
#   kubernetes.sh deploy/kubernetes against the Kubernetes schemas, and its policy.
#
#   bash interop/packages/run.sh [STEP...]      (default: every step, in the order above)
#
# Environment:
#   VULTR_MCP_RELEASE_BIN  the static release binary (default: bash packaging/build-release.sh,
#                          x86_64-unknown-linux-gnu, under CARGO_TARGET_DIR)
#   FAKE_VULTR_BIN         the fake Vultr (default: cargo build --example fake_vultr, then
#                          ${CARGO_TARGET_DIR:-target}/debug/examples/fake_vultr)
#   CARGO_TARGET_DIR       respected when building; the wheel is built in the same target dir
#                          and with the same flags as the release binary, so maturin reuses it
#   PYTHON                 interpreter for the virtual environments (default: python3, >= 3.11)
#   PACKAGES_VENV          the tools' venv (maturin + MCP SDK, requirements.txt; default:
#                          ${CARGO_TARGET_DIR:-target}/packages-venv, rebuilt when pins change)
# Needs Python 3.11+ (tomllib) with venv/pip, Node.js with npm, and PyPI/npm registries for the pinned
# tools only; our own packages are never fetched. Prints one line per step with its time and
# exits non-zero on the first failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
say() { echo "packages: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in
  /*) ;;
  *) target_dir="$root/$target_dir" ;;
esac
export CARGO_TARGET_DIR="$target_dir"
export RELEASE_TARGET=x86_64-unknown-linux-gnu
[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] || die "these steps package for $RELEASE_TARGET; this is $(uname -s)/$(uname -m)"

steps=("$@")
(( ${#steps[@]} )) || steps=(wheel npm mcpb container registry kubernetes)
for step in "${steps[@]}"; do
  [[ -f "$here/$step.sh" ]] || die "no step '$step' (no $here/$step.sh)"
done

# Every version must be Cargo.toml's; the steps check their package against this one.
PACKAGE_VERSION="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
[[ -n "$PACKAGE_VERSION" ]] || die "no [package] version in Cargo.toml"
export PACKAGE_VERSION

started=$SECONDS
# 1. The tools' virtual environment (maturin, the MCP SDK), rebuilt when the pins change.
python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "$python is older than 3.11 (the registry and kubernetes steps read TOML with tomllib); set PYTHON"
venv="${PACKAGES_VENV:-$target_dir/packages-venv}"
stamp="$venv/.requirements.sha256"
want="$(cat "$here/requirements.txt" "$here/../python/requirements.txt" | "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read() + sys.version.encode()).hexdigest())')"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "creating virtual environment in $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" || die "'$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
  timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
export PACKAGES_PYTHON="$venv/bin/python" PYTHON="$python"
say "venv ready ($((SECONDS - started)) s)"

# 2. The release binary and the fake.
t=$SECONDS
if [[ -z "${VULTR_MCP_RELEASE_BIN:-}" ]]; then
  if [[ -f packaging/build-release.sh ]]; then
    VULTR_MCP_RELEASE_BIN="$(timeout 3600 bash packaging/build-release.sh "$RELEASE_TARGET")"
  else
    RUSTFLAGS="-C target-feature=+crt-static" timeout 3600 \
      cargo build --release --locked --target "$RELEASE_TARGET" --bin vultr-inference-mcp
    VULTR_MCP_RELEASE_BIN="$target_dir/$RELEASE_TARGET/release/vultr-inference-mcp"
  fi
fi
if [[ -z "${FAKE_VULTR_BIN:-}" ]]; then
  timeout 1800 cargo build --quiet --example fake_vultr
  FAKE_VULTR_BIN="$target_dir/debug/examples/fake_vultr"
fi
for built in "$VULTR_MCP_RELEASE_BIN" "$FAKE_VULTR_BIN"; do
  [[ -x "$built" ]] || die "binary not found or not executable: $built"
done
export VULTR_MCP_RELEASE_BIN FAKE_VULTR_BIN
"$VULTR_MCP_RELEASE_BIN" --version | grep -qF "$PACKAGE_VERSION" \
  || die "$VULTR_MCP_RELEASE_BIN --version does not say $PACKAGE_VERSION"
say "release binary $VULTR_MCP_RELEASE_BIN ($(stat -c %s "$VULTR_MCP_RELEASE_BIN") bytes), fake $FAKE_VULTR_BIN ($((SECONDS - t)) s)"

# 3. The steps, each in its own private scratch folder (0700, removed on exit).
scratch="$(mktemp -d "${TMPDIR:-/tmp}/packages-interop.XXXXXX")"
chmod 0700 "$scratch"
trap 'rm -rf "$scratch"' EXIT
for step in "${steps[@]}"; do
  t=$SECONDS
  mkdir -m 0700 "$scratch/$step"
  PACKAGES_WORK="$scratch/$step" bash "$here/$step.sh" || die "$step failed (after $((SECONDS - t)) s)"
  say "$step ok ($((SECONDS - t)) s)"
done
say "all ok: ${steps[*]} ($((SECONDS - started)) s)"
