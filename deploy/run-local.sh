#!/usr/bin/env bash
# Two vultr-inference-mcp replicas on one Postgres behind nginx, all on loopback: what a
# multi-replica deployment looks like, on one Debian machine. Ctrl-C stops everything.
#
# Usage: VULTR_API_KEY=... bash deploy/run-local.sh
#   MCP_PORT=8790             where nginx listens (clients use http://127.0.0.1:8790/mcp)
#   REPLICA_PORTS="8791 8792" the replicas' ports
#   PG_PORT                   Postgres's port (default: a free one)
#   VULTR_MCP_BIN=path        a prebuilt binary (default: cargo build --release, into
#                             $CARGO_TARGET_DIR or target/)
#   VULTR_MCP_AUTH_TOKENS     a tokens file; without it the replicas serve loopback as `local`
#   any other VULTR_* variable is passed to the replicas.
# A replica that exits is started again a second later; meanwhile nginx sends its requests to
# the others. Each start prints the replica's pid.
# Needs: postgresql, nginx and curl (apt-get install -y postgresql nginx curl).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MCP_PORT="${MCP_PORT:-8790}"
REPLICA_PORTS="${REPLICA_PORTS:-8791 8792}"
say() { printf '[deploy] %s\n' "$*"; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }
# Root installs packages itself; anyone else through sudo, when there is one.
as_root_hint() { if [[ "$(id -u)" == 0 ]] || ! command -v sudo >/dev/null; then echo "$*"; else echo "sudo $*"; fi; }

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [[ ! -x "$PG_BIN/initdb" ]] && command -v initdb >/dev/null; then
  PG_BIN="$(dirname "$(command -v initdb)")"
fi
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL not found: $(as_root_hint apt-get install -y postgresql)"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[[ -x "$NGINX" ]] || die "nginx not found: $(as_root_hint apt-get install -y nginx)"
command -v curl >/dev/null || die "curl not found: $(as_root_hint apt-get install -y curl)"

if [[ -z "${VULTR_MCP_BIN:-}" ]]; then
  TARGET_DIR="${CARGO_TARGET_DIR:-target}"
  # cargo reads a relative CARGO_TARGET_DIR from where it runs: the repository root here.
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
  say "building the release binary into $TARGET_DIR (set VULTR_MCP_BIN to use a prebuilt one)"
  (cd "$ROOT" && cargo build --release --locked --quiet --bin vultr-inference-mcp)
  VULTR_MCP_BIN="$TARGET_DIR/release/vultr-inference-mcp"
fi
[[ -x "$VULTR_MCP_BIN" ]] || die "VULTR_MCP_BIN=$VULTR_MCP_BIN is not an executable file"

RUN="$(mktemp -d "${TMPDIR:-/tmp}/vultr-mcp-deploy.XXXXXX")"
chmod 0755 "$RUN"
SUPERVISORS=()
NGINX_PID=""
# Postgres refuses to run as root: run it as the postgres user when we are root.
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${SUPERVISORS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SUPERVISORS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "$NGINX_PID" ]]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$RUN"
  say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nothing listens on yet (bash's /dev/tcp: connecting fails on a free port).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  die "no free port found for Postgres: set PG_PORT"
}

mkdir -p "$RUN/pg"
[[ "$(id -u)" == 0 ]] && chown postgres "$RUN/pg"
PG_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
(umask 077; printf '%s\n' "$PG_PASSWORD" > "$RUN/pg.pw")
[[ "$(id -u)" == 0 ]] && chown postgres "$RUN/pg.pw"
as_pg "$PG_BIN/initdb" -D "$RUN/pg" -U mcp --pwfile="$RUN/pg.pw" -A scram-sha-256 >/dev/null
rm -f "$RUN/pg.pw"
# A free port may be taken by another program before Postgres binds it: then try another
# (three times), unless PG_PORT names the one to use.
for attempt in 1 2 3; do
  port="${PG_PORT:-$(free_port)}"
  if as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg" -l "$RUN/pg/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $RUN/pg" start >/dev/null; then
    PG_PORT="$port"
    break
  fi
  [[ -n "${PG_PORT:-}" || "$attempt" == 3 ]] && { tail -n 5 "$RUN/pg/log" >&2; die "Postgres did not start"; }
done
say "postgres on 127.0.0.1:$PG_PORT: pid $(head -n1 "$RUN/pg/postmaster.pid")"
export VULTR_MCP_CONVERSATIONS="postgres://mcp:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
export VULTR_MCP_PUBLIC_URL="http://127.0.0.1:$MCP_PORT/mcp"

# Runs the replica on `port` and starts it again whenever it exits, until this is stopped.
supervise() {
  local port="$1" pid=""
  trap '[[ -n "$pid" ]] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; exit 0' TERM
  while true; do
    VULTR_MCP_HTTP="127.0.0.1:$port" "$VULTR_MCP_BIN" 2>>"$RUN/replica-$port.log" </dev/null &
    pid=$!
    echo "$pid" >"$RUN/replica-$port.pid"
    say "replica 127.0.0.1:$port: pid $pid"
    local status=0
    wait "$pid" || status=$?
    say "replica 127.0.0.1:$port (pid $pid) exited with status $status; starting it again in 1 s, the other replicas serve meanwhile"
    sleep 1
  done
}

REPLICAS=""
for port in $REPLICA_PORTS; do
  supervise "$port" &
  SUPERVISORS+=("$!")
  REPLICAS+="        server 127.0.0.1:$port;"$'\n'
done
for port in $REPLICA_PORTS; do
  for _ in $(seq 1 100); do grep -q '^listening on' "$RUN/replica-$port.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^listening on' "$RUN/replica-$port.log" 2>/dev/null \
    || die "replica $port did not start: $(cat "$RUN/replica-$port.log" 2>/dev/null)"
done

conf="$(<"$ROOT/deploy/nginx.conf")"
conf="${conf//@LISTEN@/127.0.0.1:$MCP_PORT}"
conf="${conf//@RUNDIR@/$RUN}"
conf="${conf//@REPLICAS@/${REPLICAS%$'\n'}}"
printf '%s\n' "$conf" >"$RUN/nginx.conf"
"$NGINX" -c "$RUN/nginx.conf" -p "$RUN" -e "$RUN/nginx-error.log" &
NGINX_PID=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$MCP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$MCP_PORT/healthz" >/dev/null \
  || die "nginx did not start: $(cat "$RUN/nginx-error.log" 2>/dev/null)"
say "nginx on 127.0.0.1:$MCP_PORT: pid $NGINX_PID"
say "logs in $RUN"
say "ready: clients use http://127.0.0.1:$MCP_PORT/mcp (Ctrl-C stops all)"
status=0
wait "$NGINX_PID" || status=$?
NGINX_PID=""
die "nginx exited with status $status: $(tail -n 5 "$RUN/nginx-error.log" 2>/dev/null)"
