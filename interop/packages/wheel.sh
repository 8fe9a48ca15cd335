#!/usr/bin/env bash
# Package interop step "wheel": builds the PyPI wheel with maturin (pyproject.toml,
# `bindings = "bin"`) for x86_64-unknown-linux-gnu with the release binary's flags in the same
# target dir, so maturin reuses that binary instead of compiling again; checks the wheel (name,
# tags, version, size, the binary inside is the release binary); pip-installs it into a fresh
# venv with no index; checks `vultr-inference-mcp --version`; drives the installed command
# with drive.py over stdio against the fake.
# Run through run.sh, which sets PACKAGES_WORK, PACKAGES_PYTHON, PYTHON, PACKAGE_VERSION,
# VULTR_MCP_RELEASE_BIN, FAKE_VULTR_BIN, CARGO_TARGET_DIR and RELEASE_TARGET.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${PACKAGES_WORK:?run through interop/packages/run.sh}"
say() { echo "packages/wheel: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }
work="$PACKAGES_WORK"
tools="$(dirname "$PACKAGES_PYTHON")"

# 1. maturin build, with the release build's target and RUSTFLAGS (cargo then finds it fresh).
t=$SECONDS
cd "$root"
RUSTFLAGS="-C target-feature=+crt-static" timeout 3600 "$tools/maturin" build --release --locked \
  --target "$RELEASE_TARGET" --out "$work/dist" 2> "$work/maturin.log" \
  || { tail -40 "$work/maturin.log" >&2; die "maturin build failed"; }
compiled="$(grep -c 'Compiling vultr-inference-mcp' "$work/maturin.log" || true)"
say "maturin build $((SECONDS - t)) s ($([[ "$compiled" == 0 ]] && echo "reused the release binary" || echo "compiled the crate again"))"
same_binary=0
[[ "$VULTR_MCP_RELEASE_BIN" -ef "$CARGO_TARGET_DIR/$RELEASE_TARGET/release/vultr-inference-mcp" ]] && same_binary=1
# Built by build-release.sh in this target dir: maturin must find it fresh (same flags), else the
# wheel would ship a binary other than the one every other package ships.
(( same_binary == 0 || compiled == 0 )) \
  || die "maturin compiled vultr-inference-mcp again: its cargo flags differ from packaging/build-release.sh's"
shopt -s nullglob
wheels=("$work"/dist/*.whl)
(( ${#wheels[@]} == 1 )) || die "expected one wheel in $work/dist, found ${#wheels[@]}"
wheel="${wheels[0]}"

# 2. What is in it: name and tags, version, the one script, and that it is the release binary.
"$PACKAGES_PYTHON" - "$wheel" "$PACKAGE_VERSION" "$VULTR_MCP_RELEASE_BIN" "$same_binary" <<'PY' >&2 || die "the wheel is not what it should be"
import hashlib, re, sys, zipfile
from pathlib import Path

wheel, version, release_bin, same_binary = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
name = Path(wheel).name
# vultr_inference_mcp-VERSION-py3-none-manylinux_X_Y_x86_64[.manylinux...].whl: one binary, any Python.
match = re.fullmatch(rf"vultr_inference_mcp-{re.escape(version)}-py3-none-(\S+)\.whl", name)
assert match, f"unexpected wheel name {name}"
platforms = match.group(1).split(".")
# PyPI refuses a plain linux_x86_64 tag: every tag must be a manylinux one.
assert platforms and all(p.endswith("_x86_64") and p.startswith("manylinux") for p in platforms), f"unexpected platform tags {platforms}"
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    meta = z.read(f"vultr_inference_mcp-{version}.dist-info/METADATA").decode()
    script = f"vultr_inference_mcp-{version}.data/scripts/vultr-inference-mcp"
    assert script in names, f"no {script} in {names}"
    binary = z.read(script)
    mode = (z.getinfo(script).external_attr >> 16) & 0o777
assert f"\nVersion: {version}\n" in meta, "METADATA does not carry the Cargo version"
assert "Name: vultr-inference-mcp" in meta
assert mode & 0o111, f"the script is not executable in the wheel (mode {oct(mode)})"
extra = [n for n in names if not n.startswith(f"vultr_inference_mcp-{version}.")]
assert not extra, f"unexpected files in the wheel: {extra}"
digest = hashlib.sha256(binary).hexdigest()
release = hashlib.sha256(Path(release_bin).read_bytes()).hexdigest()
if same_binary:
    assert digest == release, "the wheel's binary differs from the release binary"
size = Path(wheel).stat().st_size
print(f"packages/wheel: {name}: {size / 1e6:.1f} MB, tags py3-none-{'.'.join(platforms)}, "
      f"binary {len(binary) / 1e6:.1f} MB{' = the release binary' if digest == release else ''}")
PY

# 3. Installed as a user would, into a fresh venv, from the file only (no index).
t=$SECONDS
"$PYTHON" -m venv "$work/venv"
timeout 300 "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --no-index "$wheel"
installed="$work/venv/bin/vultr-inference-mcp"
[[ -x "$installed" ]] || die "pip install gave no $installed"
version_line="$(timeout 10 "$installed" --version)"
[[ "$version_line" == *"$PACKAGE_VERSION"* ]] || die "'vultr-inference-mcp --version' says '$version_line'"
say "pip install into a fresh venv $((SECONDS - t)) s; --version: $version_line"

# 4. An MCP client drives the installed command.
timeout 120 "$PACKAGES_PYTHON" "$here/drive.py" stdio --label "wheel (pip)" -- "$installed"
