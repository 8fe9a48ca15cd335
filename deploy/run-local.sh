#!/usr/bin/env bash
# Two vultr-inference-mcp replicas on one Postgres behind nginx, all on loopback: what a
# multi-replica deployment looks like, on one Debian machine. Ctrl-C stops everything.
#
# Usage: VULTR_API_KEY=... bash deploy/run-local.sh
#   MCP_PORT=8790            where nginx listens (clients use http://127.0.0.1:8790/mcp)
#   REPLICA_PORTS="8791 8792" the replicas' ports
#   VULTR_MCP_BIN=path       the binary (default: cargo build --release)
#   VULTR_MCP_AUTH_TOKENS    a tokens file; without it the replicas serve loopback as `local`
# Needs: postgresql and nginx (apt-get install -y postgresql nginx).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MCP_PORT="${MCP_PORT:-8790}"
REPLICA_PORTS="${REPLICA_PORTS:-8791 8792}"
say() { printf '[deploy] %s\n' "$*"; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL not found: apt-get install -y postgresql"
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || die "nginx not found: apt-get install -y nginx"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [[ -z "${VULTR_MCP_BIN:-}" ]]; then
  (cd "$ROOT" && cargo build --release --locked --quiet)
  VULTR_MCP_BIN="$ROOT/target/release/vultr-inference-mcp"
fi

RUN="$(mktemp -d "${TMPDIR:-/tmp}/vultr-mcp-deploy.XXXXXX")"
chmod 0755 "$RUN"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Postgres refuses to run as root: run it as the postgres user when we are root.
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$RUN/pg"
[[ "$(id -u)" == 0 ]] && chown postgres "$RUN/pg"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PG_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
(umask 077; printf '%s\n' "$PG_PASSWORD" > "$RUN/pg.pw")
[[ "$(id -u)" == 0 ]] && chown postgres "$RUN/pg.pw"
as_pg "$PG_BIN/initdb" -D "$RUN/pg" -U mcp --pwfile="$RUN/pg.pw" -A scram-sha-256 >/dev/null
rm -f "$RUN/pg.pw"
as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg" -l "$RUN/pg/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN/pg" start >/dev/null
say "postgres on 127.0.0.1:$PG_PORT"
export VULTR_MCP_CONVERSATIONS="postgres://mcp:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
export VULTR_MCP_PUBLIC_URL="http://127.0.0.1:$MCP_PORT/mcp"

REPLICAS=""
for port in $REPLICA_PORTS; do
  VULTR_MCP_HTTP="127.0.0.1:$port" "$VULTR_MCP_BIN" 2>"$RUN/replica-$port.log" &
  PIDS+=("$!")
  REPLICAS+="        server 127.0.0.1:$port;"$'\n'
done
for port in $REPLICA_PORTS; do
  for _ in $(seq 1 100); do grep -q '^listening on' "$RUN/replica-$port.log" && break; sleep 0.1; done
  grep -q '^listening on' "$RUN/replica-$port.log" || die "replica $port did not start: $(cat "$RUN/replica-$port.log")"
  say "replica on 127.0.0.1:$port"
done

python3 - "$ROOT/deploy/nginx.conf" "$RUN/nginx.conf" "127.0.0.1:$MCP_PORT" "$RUN" "$REPLICAS" <<'PY'
import sys
src, dst, listen, run, replicas = sys.argv[1:]
text = open(src).read().replace("@LISTEN@", listen).replace("@RUNDIR@", run).replace("@REPLICAS@", replicas.rstrip("\n"))
open(dst, "w").write(text)
PY
"$NGINX" -c "$RUN/nginx.conf" -p "$RUN" &
PIDS+=("$!")
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$MCP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$MCP_PORT/healthz" >/dev/null || die "nginx did not start: $(cat "$RUN/nginx-error.log" 2>/dev/null)"
say "ready: clients use http://127.0.0.1:$MCP_PORT/mcp (Ctrl-C stops all)"
wait -n "${PIDS[@]}"
