#!/usr/bin/env bash
# Package interop step "npm": stages the launcher (packaging/npm/vultr-inference-mcp/) and the
# linux-x64 platform package with the release binary (packaging/npm/stage.mjs, as the release
# does), `npm pack`s both, installs both tarballs into an empty folder offline (npm's cache in
# the scratch folder, so nothing of ours comes from a registry), then: `npx vultr-inference-mcp
# --version`; drive.py drives `npx vultr-inference-mcp` over stdio against the fake; SIGTERM to
# the launcher reaches the server (same exit status as the bare binary, no orphan); without
# the platform package the launcher fails with the actionable message, and
# VULTR_INFERENCE_MCP_BINARY still runs a binary of one's own.
# Run through run.sh, which sets PACKAGES_WORK, PACKAGES_PYTHON, PACKAGE_VERSION,
# VULTR_MCP_RELEASE_BIN, FAKE_VULTR_BIN and RELEASE_TARGET. Uses the machine's node and npm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${PACKAGES_WORK:?run through interop/packages/run.sh}"
say() { echo "packages/npm: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }
command -v npm > /dev/null || die "npm not found: install Node.js 18+ with npm"
work="$PACKAGES_WORK"
platform_pkg=vultr-inference-mcp-linux-x64
export npm_config_cache="$work/npm-cache" npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
pids=()
cleanup() { for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2> /dev/null || true; done; }
trap cleanup EXIT

# 1. Stage and pack both packages.
t=$SECONDS
mapfile -t staged < <(node "$root/packaging/npm/stage.mjs" --target "$RELEASE_TARGET" \
  --binary "$VULTR_MCP_RELEASE_BIN" --out "$work/stage" --launcher)
(( ${#staged[@]} == 2 )) || die "stage.mjs staged ${#staged[@]} packages, expected 2"
mkdir -p "$work/tarballs"
tarballs=()
for dir in "${staged[@]}"; do
  file="$(cd "$dir" && timeout 300 npm pack --silent --pack-destination "$work/tarballs" | tail -1)"
  tarballs+=("$work/tarballs/$file")
done
launcher_tgz="$work/tarballs/vultr-inference-mcp-$PACKAGE_VERSION.tgz"
platform_tgz="$work/tarballs/$platform_pkg-$PACKAGE_VERSION.tgz"
[[ -f "$launcher_tgz" && -f "$platform_tgz" ]] || die "npm pack made ${tarballs[*]}, not the expected names"
# Exactly the files we mean to ship, the binary executable.
[[ "$(tar tzf "$launcher_tgz" | sort | tr '\n' ' ')" == "package/README.md package/bin/vultr-inference-mcp.js package/package.json " ]] \
  || die "launcher tarball holds: $(tar tzf "$launcher_tgz" | tr '\n' ' ')"
[[ "$(tar tzf "$platform_tgz" | sort | tr '\n' ' ')" == "package/README.md package/bin/vultr-inference-mcp package/package.json " ]] \
  || die "platform tarball holds: $(tar tzf "$platform_tgz" | tr '\n' ' ')"
tar tvzf "$platform_tgz" package/bin/vultr-inference-mcp | grep -q '^-rwxr-xr-x' \
  || die "the binary in $platform_tgz is not executable"
say "staged and packed $((SECONDS - t)) s: $(basename "$launcher_tgz") $(stat -c %s "$launcher_tgz") bytes, $(basename "$platform_tgz") $(stat -c %s "$platform_tgz") bytes"

# 2. Install both tarballs into an empty folder, offline: no registry fetch of our packages
#    (the other platforms' optional dependencies are skipped, as on a user's machine).
t=$SECONDS
app="$work/app"
mkdir -p "$app"
echo '{"name": "packages-interop-app", "private": true}' > "$app/package.json"
(cd "$app" && timeout 300 npm install --offline --no-audit --no-fund --loglevel=error "$launcher_tgz" "$platform_tgz" > "$work/npm-install.log" 2>&1) \
  || { cat "$work/npm-install.log" >&2; die "npm install of the tarballs failed"; }
[[ -x "$app/node_modules/.bin/vultr-inference-mcp" && -x "$app/node_modules/$platform_pkg/bin/vultr-inference-mcp" ]] \
  || die "npm install did not install the launcher's bin and the platform binary"
version_line="$(cd "$app" && timeout 60 npx --offline --no -- vultr-inference-mcp --version)"
[[ "$version_line" == *"$PACKAGE_VERSION"* ]] || die "'npx vultr-inference-mcp --version' says '$version_line'"
say "npm install (offline) $((SECONDS - t)) s; npx vultr-inference-mcp --version: $version_line"

# 3. An MCP client drives `npx vultr-inference-mcp`.
timeout 120 "$PACKAGES_PYTHON" "$here/drive.py" stdio --label "npm (npx)" --cwd "$app" \
  --env "npm_config_cache=$npm_config_cache" --env npm_config_offline=true \
  --env npm_config_update_notifier=false -- npx --no -- vultr-inference-mcp

# 4. SIGTERM to the launcher reaches the server: the same exit status as the bare binary's,
#    and no server left behind.
sigterm_status() { # COMMAND...: writes its exit status after SIGTERM to $work/status, the server's pid to $work/child
  local pid child="" status=0 hold
  rm -f "$work/stdin"
  mkfifo -m 0600 "$work/stdin"
  "$@" < "$work/stdin" > /dev/null 2> "$work/sigterm.log" &
  pid=$!
  pids+=("$pid")
  exec {hold}> "$work/stdin" # stdin stays open: the server waits for messages
  for _ in $(seq 100); do
    child="$(pgrep -n -P "$pid" -f vultr-inference-mcp || true)"
    [[ -n "$child" ]] && break
    [[ "$1" == node ]] || break # the bare binary is the server itself
    sleep 0.1
  done
  if [[ -z "$child" ]]; then
    [[ "$1" != node ]] || die "the launcher started no server within 10 s"
    child="$pid"
  fi
  sleep 0.5 # let it finish starting
  kill -TERM "$pid"
  timeout 10 tail --pid="$pid" -f /dev/null || die "still running 10 s after SIGTERM: $*"
  wait "$pid" || status=$?
  exec {hold}>&-
  echo "$status" > "$work/status"
  echo "$child" > "$work/child"
}
sigterm_status "$VULTR_MCP_RELEASE_BIN"
direct="$(cat "$work/status")"
(cd "$app" && sigterm_status node node_modules/vultr-inference-mcp/bin/vultr-inference-mcp.js)
launched="$(cat "$work/status")" server_pid="$(cat "$work/child")"
[[ "$launched" == "$direct" ]] || die "after SIGTERM the launcher exited $launched, the bare binary $direct"
for _ in $(seq 50); do kill -0 "$server_pid" 2> /dev/null || break; sleep 0.1; done
! kill -0 "$server_pid" 2> /dev/null || die "the server (pid $server_pid) outlived its launcher"
say "SIGTERM: launcher and bare binary both exit $direct, server gone"

# 5. Without the platform package: the actionable error; the override still works.
rm -rf "$app/node_modules/$platform_pkg"
status=0
(cd "$app" && timeout 60 npx --offline --no -- vultr-inference-mcp --version) > /dev/null 2> "$work/missing.log" || status=$?
(( status == 1 )) || die "without $platform_pkg the launcher exited $status, expected 1"
for needle in "linux-x64" "$platform_pkg is missing" "npm install $platform_pkg@$PACKAGE_VERSION" "VULTR_INFERENCE_MCP_BINARY"; do
  grep -qF -- "$needle" "$work/missing.log" || { cat "$work/missing.log" >&2; die "the launcher's error lacks '$needle'"; }
done
override="$(cd "$app" && VULTR_INFERENCE_MCP_BINARY="$VULTR_MCP_RELEASE_BIN" timeout 60 npx --offline --no -- vultr-inference-mcp --version)"
[[ "$override" == *"$PACKAGE_VERSION"* ]] || die "VULTR_INFERENCE_MCP_BINARY did not run the binary: '$override'"
say "without $platform_pkg: exit 1 with the fix spelled out; VULTR_INFERENCE_MCP_BINARY runs a binary of one's own"
