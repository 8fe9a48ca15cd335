#!/usr/bin/env bash
# Package interop step "mcpb": the MCP Bundle. Installs the pinned @anthropic-ai/mcpb CLI
# (`npm ci` here, package-lock.json), checks packaging/mcpb/ (`mcpb validate` of manifest.json,
# its tools are the core toolset's, icon.png is what make_icon.py makes), packs the bundle with
# packaging/mcpb/pack.sh (as the release does), unpacks it with `mcpb unpack` (file modes kept,
# as a desktop client installs it), computes the client's config entry with the library's own
# getMcpConfigForManifest (mcpb-config.mjs: ${__dirname}, ${user_config.*}, defaults) given only
# the API key a user would type, and drives that command with drive.py against the fake (only
# the two base URLs are redirected to the fake; the key reaches the server through the
# manifest's env, which list_subscriptions proves).
# Run through run.sh, which sets PACKAGES_WORK, PACKAGES_PYTHON, PACKAGE_VERSION,
# VULTR_MCP_RELEASE_BIN, FAKE_VULTR_BIN and RELEASE_TARGET. Uses the machine's node and npm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${PACKAGES_WORK:?run through interop/packages/run.sh}"
say() { echo "packages/mcpb: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }
command -v npm > /dev/null || die "npm not found: install Node.js 18+ with npm"
work="$PACKAGES_WORK"
fake_pid=""
hold=""
cleanup() {
  [[ -z "$hold" ]] || exec {hold}>&-
  [[ -z "$fake_pid" ]] || kill "$fake_pid" 2> /dev/null || true
}
trap cleanup EXIT

# 1. The pinned CLI, installed once per package-lock.json.
t=$SECONDS
stamp="$here/node_modules/.packages-lock.sha256"
lock_sum="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" || ! -x "$here/node_modules/.bin/mcpb" ]]; then
  (cd "$here" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
  echo "$lock_sum" > "$stamp"
fi
mcpb="$here/node_modules/.bin/mcpb"
say "mcpb $("$mcpb" --version) ready ($((SECONDS - t)) s)"

# 2. The committed bundle sources.
t=$SECONDS
"$mcpb" validate "$root/packaging/mcpb/manifest.json" > "$work/validate.log" 2>&1 \
  || { cat "$work/validate.log" >&2; die "mcpb validate rejects packaging/mcpb/manifest.json"; }
grep -q "Manifest schema validation passes" "$work/validate.log" || { cat "$work/validate.log" >&2; die "mcpb validate said no pass"; }
"$PACKAGES_PYTHON" - "$root" "$PACKAGE_VERSION" <<'PY' || die "packaging/mcpb/manifest.json disagrees with the server"
import json, sys
from pathlib import Path
root, version = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((root / "packaging/mcpb/manifest.json").read_text())
assert manifest["version"] == version, f"manifest version {manifest['version']}, Cargo.toml {version}"
snap = (root / "tests/tools/snapshots/tools__toolsets__toolset_core.snap").read_text().split("---", 2)[2]
core = sorted(tool["name"] for tool in json.loads(snap))
listed = sorted(tool["name"] for tool in manifest["tools"])
assert listed == core, f"manifest tools {listed}, the core toolset lists {core}"
key = manifest["user_config"]["vultr_api_key"]
assert key["sensitive"] is True and key["required"] is True, "the API key must be sensitive and required"
env = manifest["server"]["mcp_config"]["env"]
assert env["VULTR_API_KEY"] == "${user_config.vultr_api_key}", env
for name, option in manifest["user_config"].items():
    assert option.get("required") or "default" in option, f"optional {name} needs a default, or clients pass '${{user_config.{name}}}' verbatim"
PY
python3 "$root/packaging/mcpb/make_icon.py" "$work/icon.png"
# Same header and pixels (the compressed bytes may differ with the machine's zlib build).
python3 - "$work/icon.png" "$root/packaging/mcpb/icon.png" <<'PY' || die "packaging/mcpb/icon.png is not what make_icon.py makes: run it"
import struct, sys, zlib
def image(path):
    data, at, header, pixels = open(path, "rb").read(), 8, b"", b""
    while at < len(data):
        size, = struct.unpack_from(">I", data, at)
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + size]
        header, pixels = (body, pixels) if kind == b"IHDR" else (header, pixels + body if kind == b"IDAT" else pixels)
        at += 12 + size
    return header, zlib.decompress(pixels)
sys.exit(0 if image(sys.argv[1]) == image(sys.argv[2]) else 1)
PY
say "manifest valid, tools = core toolset, icon reproducible ($((SECONDS - t)) s)"

# 3. Pack, then unpack as a client installs it.
t=$SECONDS
bundle="$(MCPB="$mcpb" bash "$root/packaging/mcpb/pack.sh" "$RELEASE_TARGET" "$VULTR_MCP_RELEASE_BIN" "$work/out" 2> "$work/pack.log")" \
  || { cat "$work/pack.log" >&2; die "pack.sh failed"; }
[[ "$(basename "$bundle")" == "vultr-inference-mcp-$PACKAGE_VERSION-linux-x64.mcpb" ]] || die "unexpected bundle $bundle"
"$mcpb" unpack "$bundle" "$work/installed" > "$work/unpack.log" 2>&1 || { cat "$work/unpack.log" >&2; die "mcpb unpack failed"; }
[[ -x "$work/installed/server/vultr-inference-mcp" ]] || die "the unpacked server/vultr-inference-mcp is missing or not executable"
cmp -s "$work/installed/server/vultr-inference-mcp" "$VULTR_MCP_RELEASE_BIN" || die "the bundled binary is not the release binary"
[[ "$(node -p 'JSON.stringify(require(process.argv[1]).compatibility.platforms)' "$work/installed/manifest.json")" == '["linux"]' ]] \
  || die "the linux bundle's compatibility.platforms is not [\"linux\"]"
say "packed $(basename "$bundle") ($(stat -c %s "$bundle") bytes) and unpacked ($((SECONDS - t)) s)"

# 4. The fake, then the client's config entry from the user's key, then an MCP client.
mkfifo -m 0600 "$work/fake.stdin"
timeout 300 "$PACKAGES_PYTHON" "$here/drive.py" fake < "$work/fake.stdin" > "$work/fake.json" &
fake_pid=$!
exec {hold}> "$work/fake.stdin"
for _ in $(seq 100); do [[ -s "$work/fake.json" ]] && break; sleep 0.1; done
[[ -s "$work/fake.json" ]] || die "the fake printed nothing within 10 s"
(umask 077 && "$PACKAGES_PYTHON" -c 'import json, sys; print(json.dumps({"vultr_api_key": json.load(open(sys.argv[1]))["account_key"]}))' \
  "$work/fake.json" > "$work/user_config.json")
(umask 077 && node "$here/mcpb-config.mjs" "$work/installed" "$work/user_config.json" > "$work/launch.json") \
  || die "no client config from the unpacked bundle"
read -r account_url inference_url < <("$PACKAGES_PYTHON" -c 'import json, sys; f = json.load(open(sys.argv[1])); print(f["account_base_url"], f["inference_base_url"])' "$work/fake.json")
timeout 120 "$PACKAGES_PYTHON" "$here/drive.py" stdio --label "mcpb (unpacked bundle)" --no-fake \
  --fake-json "$work/fake.json" --launch-json "$work/launch.json" \
  --env "VULTR_API_BASE_URL=$account_url" --env "VULTR_INFERENCE_BASE_URL=$inference_url"
