#!/usr/bin/env bash
# The container image, checked the way this machine allows (podman builds from scratch but
# cannot start containers): builds the image with packaging/container/build.sh, checks its
# configuration with `podman image inspect` (user, entrypoint, port, volume, environment,
# labels, healthcheck), takes the binary and the file tree back out of the image, checks the
# binary is the very file that went in (sha256) and is statically linked, then drives THAT
# binary as the image would run it: HTTP mode with a tokens file against the tests' fake Vultr,
# `/healthz` answers 200, `/mcp` refuses a request without a token (401), the `healthcheck`
# subcommand exits 0 while it listens and 1 once nothing does, and an MCP client completes
# initialize and list_models with the token; then the same over stdio with VULTR_MCP_HTTP
# empty, the form server.json gives stdio clients of the image. The image is removed at the end.
# A step of interop/packages/run.sh, which sets its inputs (environment): VULTR_MCP_RELEASE_BIN,
# the static release binary (default
# $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/vultr-inference-mcp); FAKE_VULTR_BIN
# (default $CARGO_TARGET_DIR/debug/examples/fake_vultr); PACKAGES_PYTHON, a Python with
# interop/packages/requirements.txt for drive.py (default python3); PACKAGES_WORK, a private
# scratch folder (default: a temporary one). Ends with "N passed, 0 failed".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="${VULTR_MCP_RELEASE_BIN:-$target_dir/x86_64-unknown-linux-gnu/release/vultr-inference-mcp}"
fake_bin="${FAKE_VULTR_BIN:-$target_dir/debug/examples/fake_vultr}"
drive_python="${PACKAGES_PYTHON:-python3}"
image="localhost/vultr-inference-mcp-ci:$$"

passed=0
say() { echo "[container] $*" >&2; }
ok() { passed=$((passed + 1)); say "ok: $*"; }
fail() { say "FAIL: $*"; [[ -s "${tmp:-/nonexistent}/server.log" ]] && sed 's/^/[server] /' "$tmp/server.log" >&2; echo "$passed passed, 1 failed"; exit 1; }

[[ -x "$bin" ]] || fail "no binary at $bin (packaging/build-release.sh builds it; or set VULTR_MCP_RELEASE_BIN)"
[[ -x "$fake_bin" ]] || fail "no fake Vultr at $fake_bin (cargo build --example fake_vultr; or set FAKE_VULTR_BIN)"

tmp="$(mktemp -d "${PACKAGES_WORK:-${TMPDIR:-/tmp}}/container.XXXXXX")"
chmod 700 "$tmp"
pids=()
cid=""
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n "$cid" ]]; then podman rm -f "$cid" >/dev/null 2>&1 || true; fi
    podman rmi -f "$image" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# 1. Build.
say "building $image"
IMAGE="$image" VULTR_MCP_BIN="$bin" timeout 600 bash "$root/packaging/container/build.sh" \
    >"$tmp/build.out" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; fail "build.sh failed"; }
ok "image built ($(tail -n1 "$tmp/build.out"))"

# 2. Its configuration.
timeout 60 podman image inspect "$image" >"$tmp/inspect.json"
version="$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
python3 - "$tmp/inspect.json" "$root/server.json" "$version" <<'PY' || fail "image configuration (above)"
import json, sys
image = json.load(open(sys.argv[1]))[0]
name = json.load(open(sys.argv[2]))["name"]
version = sys.argv[3]
config = image["Config"]
env = dict(e.split("=", 1) for e in config.get("Env") or [])
labels = config.get("Labels") or {}
# podman puts the healthcheck beside Config (docker inside it); OCI images have none.
health = image.get("Healthcheck") or config.get("Healthcheck") or {}
checks = [
    ("user is 65532:65532", config.get("User") == "65532:65532"),
    ("entrypoint is the binary", config.get("Entrypoint") == ["/vultr-inference-mcp"]),
    ("no command (HTTP mode comes from the environment)", not config.get("Cmd")),
    ("port 8080/tcp exposed", "8080/tcp" in (config.get("ExposedPorts") or {})),
    ("/data is a volume", "/data" in (config.get("Volumes") or {})),
    ("HTTP on 0.0.0.0:8080", env.get("VULTR_MCP_HTTP") == "0.0.0.0:8080"),
    ("store in /data", env.get("VULTR_MCP_CONVERSATIONS", "").startswith("/data/")),
    ("SSL_CERT_FILE set", env.get("SSL_CERT_FILE") == "/etc/ssl/certs/ca-certificates.crt"),
    (f"label io.modelcontextprotocol.server.name = {name}",
     labels.get("io.modelcontextprotocol.server.name") == name),
    (f"label org.opencontainers.image.version = {version}",
     labels.get("org.opencontainers.image.version") == version),
    ("labels source and licenses", bool(labels.get("org.opencontainers.image.source"))
     and bool(labels.get("org.opencontainers.image.licenses"))),
    ("a Docker-format image (OCI drops HEALTHCHECK)", "docker" in image.get("ManifestType", "")),
    ("healthcheck runs `healthcheck`",
     health.get("Test") == ["CMD", "/vultr-inference-mcp", "healthcheck"]),
]
bad = [what for what, good in checks if not good]
for what in bad:
    print(f"[container] image config: not {what}", file=sys.stderr)
if bad:
    print(json.dumps({"Config": config, "Healthcheck": health}, indent=1), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
ok "image configuration: user, entrypoint, port, volume, environment, labels, healthcheck"

# 3. The binary and the file tree, taken back out of the image.
cid="$(timeout 60 podman create "$image")"
timeout 60 podman cp "$cid:/vultr-inference-mcp" "$tmp/vultr-inference-mcp"
timeout 60 podman cp "$cid:/etc/ssl/certs/ca-certificates.crt" "$tmp/ca-certificates.crt"
timeout 60 podman export "$cid" | tar -tvf - >"$tmp/tree.txt"
podman rm -f "$cid" >/dev/null 2>&1 || true
cid=""
[[ "$(sha256sum <"$tmp/vultr-inference-mcp")" == "$(sha256sum <"$bin")" ]] \
    || fail "the binary in the image differs from $bin"
ok "binary in the image is $bin (sha256 $(sha256sum <"$bin" | cut -c1-12)…)"
# No program interpreter (PT_INTERP) in the ELF program headers: nothing to load it with.
python3 - "$tmp/vultr-inference-mcp" <<'PY' || fail "not statically linked: it names a program interpreter"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF file"
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
sys.exit(1 if 3 in types else 0)  # PT_INTERP = 3
PY
# ldd says "statically linked" (static-pie) or "not a dynamic executable"; never a library.
ldd "$tmp/vultr-inference-mcp" >"$tmp/ldd.txt" 2>&1 || true
if ! grep -Eq 'statically linked|not a dynamic executable' "$tmp/ldd.txt" || grep -Eq '=>|ld-linux' "$tmp/ldd.txt"; then
    fail "ldd finds dynamic dependencies: $(cat "$tmp/ldd.txt")"
fi
ok "statically linked (no program interpreter, and ldd agrees)"
grep -Eq '^drwx------ 65532/65532 .* data/$' "$tmp/tree.txt" || fail "/data is not 0700 and owned by 65532: $(grep ' data/$' "$tmp/tree.txt")"
grep -Eq '^drwxrwxrwt .* tmp/$' "$tmp/tree.txt" || fail "/tmp is not 1777"
grep -Eq ' etc/ssl/certs/ca-certificates.crt$' "$tmp/tree.txt" || fail "no CA bundle in the image"
certs="$(grep -c 'BEGIN CERTIFICATE' "$tmp/ca-certificates.crt" || true)"
(( certs >= 50 )) || fail "the image's CA bundle holds $certs certificates"
ok "file tree: /data 0700 owned by 65532, /tmp 1777, CA bundle ($certs certificates)"
ex="$tmp/vultr-inference-mcp"

# 4. The fake Vultr, and the extracted binary serving HTTP with a tokens file, as in the image,
# with the image's CA bundle as SSL_CERT_FILE: the HTTP client loads its roots when it is built.
mkfifo "$tmp/fake.in"
"$fake_bin" <"$tmp/fake.in" >"$tmp/fake.json" 2>"$tmp/fake.log" &
pids+=($!)
exec 3>"$tmp/fake.in" # the fake exits when this closes
for _ in $(seq 100); do [[ -s "$tmp/fake.json" ]] && break; sleep 0.1; done
[[ -s "$tmp/fake.json" ]] || fail "the fake Vultr did not start: $(cat "$tmp/fake.log")"
fake() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])' "$tmp/fake.json" "$1"; }

(umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/token")
(umask 077; "$ex" hash-token ci <"$tmp/token" >"$tmp/tokens") || fail "hash-token failed"
grep -Eq '^ci [0-9a-f]{64}$' "$tmp/tokens" || fail "hash-token printed no tokens-file line"
install -d -m 700 "$tmp/data"
: >"$tmp/server.log"
env -i PATH=/usr/bin:/bin HOME="$tmp/data" RUST_LOG=info \
    VULTR_API_KEY="$(fake account_key)" \
    VULTR_API_BASE_URL="$(fake account_base_url)" \
    VULTR_INFERENCE_BASE_URL="$(fake inference_base_url)" \
    VULTR_MCP_HTTP=127.0.0.1:0 \
    VULTR_MCP_AUTH_TOKENS="$tmp/tokens" \
    VULTR_MCP_CONVERSATIONS="$tmp/data/conversations.sqlite3" \
    SSL_CERT_FILE="$tmp/ca-certificates.crt" \
    "$ex" 2>"$tmp/server.log" </dev/null &
server=$!
pids+=("$server")
url=""
for _ in $(seq 100); do
    url="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$tmp/server.log" | head -n1)"
    [[ -n "$url" ]] && break
    kill -0 "$server" 2>/dev/null || fail "the server exited"
    sleep 0.1
done
[[ -n "$url" ]] || fail "the server did not say where it listens"
base="${url%/mcp}"
ok "server listening at $url"

[[ "$(curl -sS -m 10 -o "$tmp/healthz" -w '%{http_code}' "$base/healthz")" == 200 ]] || fail "/healthz did not answer 200"
ok "/healthz answers 200 ($(head -c 20 "$tmp/healthz"))"
code="$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' --data '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' "$url")"
[[ "$code" == 401 ]] || fail "/mcp without a token answered $code, not 401"
ok "/mcp without a token: 401"

timeout 20 "$ex" healthcheck --url "$base/healthz" || fail "healthcheck --url exited $? while the server answers"
port="${base##*:}"
env -i PATH=/usr/bin:/bin VULTR_MCP_HTTP="0.0.0.0:$port" timeout 20 "$ex" healthcheck \
    || fail "healthcheck with VULTR_MCP_HTTP=0.0.0.0:$port (as in the image) exited $?"
ok "healthcheck exits 0 while the server answers (--url, and the port from VULTR_MCP_HTTP)"

# 5. An MCP client through the token: initialize and list_models.
timeout 120 "$drive_python" "$root/interop/packages/drive.py" http "$url" --token @"$tmp/token" \
    --fake-json "$tmp/fake.json" --label "container image binary" \
    || fail "drive.py over HTTP with the token"
ok "MCP client: initialize and list_models over HTTP with the token"

# 6. The registry entry's form for stdio clients (`docker run -i --rm -e VULTR_MCP_HTTP= IMAGE`):
# an empty address means stdio, as every empty setting means unset.
timeout 120 "$drive_python" "$root/interop/packages/drive.py" stdio --env VULTR_MCP_HTTP= \
    --env SSL_CERT_FILE="$tmp/ca-certificates.crt" --label "container image binary, stdio" \
    -- "$ex" || fail "drive.py over stdio with VULTR_MCP_HTTP empty (server.json's oci entry)"
ok "MCP client over stdio with VULTR_MCP_HTTP= (the registry's oci entry)"

# 7. Nothing listening: healthcheck says so.
kill -TERM "$server"
wait "$server" 2>/dev/null || true
set +e
timeout 20 "$ex" healthcheck --url "$base/healthz" 2>/dev/null
status=$?
set -e
[[ "$status" == 1 ]] || fail "healthcheck exited $status with nothing listening, not 1"
ok "healthcheck exits 1 once nothing listens"

echo "$passed passed, 0 failed"
