#!/usr/bin/env bash
# Builds the release binary every package ships: on Linux x86_64 and aarch64 a static glibc
# binary (`-C target-feature=+crt-static`, with `--target` so build scripts and proc macros stay
# dynamic), elsewhere the platform's usual release build. Prints the binary's path on stdout.
#
# Usage: bash packaging/build-release.sh [TARGET]
#   TARGET            a Rust target triple [default: this machine's]
#   CARGO_TARGET_DIR  where cargo builds [default: target]
# The same command builds the wheel (maturin reuses the binary when the flags match) and runs in
# .github/workflows/release.yml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="${1:-$(rustc -vV | sed -n 's/^host: //p')}"
case "$target" in
  *-linux-gnu) export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" ;;
esac
cargo build --release --locked --target "$target" --bin vultr-inference-mcp >&2
bin="${CARGO_TARGET_DIR:-target}/$target/release/vultr-inference-mcp"
[[ "$target" == *windows* ]] && bin="$bin.exe"
[[ -x "$bin" ]] || { echo "build-release: $bin was not built" >&2; exit 1; }
echo "$bin"
