#!/usr/bin/env bash
# Packs the MCP Bundle (.mcpb) of one release target: stages manifest.json (its
# compatibility.platforms narrowed to the target's OS), icon.png and the binary as
# server/vultr-inference-mcp[.exe], checks that the manifest's version is Cargo.toml's, runs the
# official CLI's `mcpb pack` (which validates the manifest first), and prints the bundle's path on stdout.
#
#   bash packaging/mcpb/pack.sh TARGET BINARY OUT_DIR
#     TARGET   Rust target triple (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu,
#              x86_64-apple-darwin, aarch64-apple-darwin, x86_64-pc-windows-msvc)
#     BINARY   the release binary built for TARGET
#     OUT_DIR  where vultr-inference-mcp-VERSION-OS-CPU.mcpb is written (staging beside it)
#   MCPB       the mcpb CLI [default: interop/packages/node_modules/.bin/mcpb, from
#              `npm ci` in interop/packages, which pins @anthropic-ai/mcpb]
# Used by interop/packages/mcpb.sh and by the release workflow.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
die() { echo "mcpb pack: $*" >&2; exit 1; }

(( $# == 3 )) || die "usage: bash packaging/mcpb/pack.sh TARGET BINARY OUT_DIR"
target="$1" binary="$2" out="$3"
mcpb="${MCPB:-$root/interop/packages/node_modules/.bin/mcpb}"
[[ -x "$mcpb" ]] || die "no mcpb CLI at $mcpb: run 'npm ci' in interop/packages or set MCPB"
[[ -f "$binary" ]] || die "binary not found: $binary"

case "$target" in
  x86_64-unknown-linux-gnu) os=linux cpu=x64 ;;
  aarch64-unknown-linux-gnu) os=linux cpu=arm64 ;;
  x86_64-apple-darwin) os=darwin cpu=x64 ;;
  aarch64-apple-darwin) os=darwin cpu=arm64 ;;
  x86_64-pc-windows-msvc) os=win32 cpu=x64 ;;
  *) die "unknown target $target" ;;
esac
exe=vultr-inference-mcp
[[ "$os" == win32 ]] && exe=vultr-inference-mcp.exe

version="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
[[ -n "$version" ]] || die "no [package] version in Cargo.toml"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$out/mcpb-$os-$cpu"
rm -rf "$stage"
mkdir -p "$stage/server"
cp "$here/icon.png" "$stage/icon.png"
cp "$binary" "$stage/server/$exe"
chmod 0755 "$stage/server/$exe"
# The staged manifest: this target's platform only; the version must already be Cargo's.
node - "$here/manifest.json" "$stage/manifest.json" "$os" "$version" <<'JS'
const fs = require("node:fs");
const [source, staged, os, version] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(source, "utf8"));
if (manifest.version !== version) {
  console.error(`mcpb pack: packaging/mcpb/manifest.json has version ${manifest.version}, Cargo.toml ${version}`);
  process.exit(1);
}
if (!manifest.compatibility.platforms.includes(os)) {
  console.error(`mcpb pack: manifest.json's compatibility.platforms lacks ${os}`);
  process.exit(1);
}
manifest.compatibility.platforms = [os];
if (os === "win32") {
  // The Windows bundle ships the .exe: its entry point must name it.
  manifest.server.entry_point = "server/vultr-inference-mcp.exe";
}
fs.writeFileSync(staged, JSON.stringify(manifest, null, 2) + "\n");
JS

bundle="$out/vultr-inference-mcp-$version-$os-$cpu.mcpb"
rm -f "$bundle"
"$mcpb" pack "$stage" "$bundle" >&2
[[ -s "$bundle" ]] || die "mcpb pack wrote no $bundle"
echo "$bundle"
