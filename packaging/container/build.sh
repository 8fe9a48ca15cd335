#!/usr/bin/env bash
# Builds the container image (packaging/container/Containerfile) with podman from a staged
# context: the static release binary, the build machine's CA bundle (TLS to Vultr and Postgres
# from a scratch image) and an empty /data folder (0700) and /tmp (1777). The binary must be
# statically linked (packaging/build-release.sh makes it): scratch has no libc to load.
# Inputs (environment): VULTR_MCP_BIN, the binary (default
# $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/vultr-inference-mcp, CARGO_TARGET_DIR
# defaulting to ./target); IMAGE, the tag (default localhost/vultr-inference-mcp:VERSION, the
# version from Cargo.toml); CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt); PLATFORM,
# e.g. linux/arm64 for another architecture's binary (default: this machine's). Prints the
# image tag on stdout as its last line; podman's build log goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="${VULTR_MCP_BIN:-$target_dir/x86_64-unknown-linux-gnu/release/vultr-inference-mcp}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
version="$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
image="${IMAGE:-localhost/vultr-inference-mcp:$version}"
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"

die() { echo "container/build.sh: $*" >&2; exit 1; }
command -v podman >/dev/null || die "podman is not installed (Debian: apt-get install podman)"
[[ -n "$version" ]] || die "no version found in $root/Cargo.toml"
[[ -x "$bin" ]] || die "no binary at $bin: build it with packaging/build-release.sh, or set VULTR_MCP_BIN"
[[ -s "$ca_bundle" ]] || die "no CA bundle at $ca_bundle (Debian: apt-get install ca-certificates), or set CA_BUNDLE"
if command -v file >/dev/null && ! file -L "$bin" | grep -Eq 'static(ally|-pie) linked'; then
    die "$bin is dynamically linked; a scratch image needs a static one (packaging/build-release.sh)"
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
install -d -m 0755 "$context/rootfs/etc/ssl/certs" "$context/owned"
install -m 0755 "$bin" "$context/rootfs/vultr-inference-mcp"
install -m 0644 "$ca_bundle" "$context/rootfs/etc/ssl/certs/ca-certificates.crt"
install -d -m 1777 "$context/rootfs/tmp"
install -d -m 0700 "$context/owned/data"

platform_args=()
[[ -n "${PLATFORM:-}" ]] && platform_args=(--platform "$PLATFORM")
timeout 600 podman build --format docker "${platform_args[@]}" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -f "$root/packaging/container/Containerfile" -t "$image" "$context" >&2
echo "$image"
