#!/usr/bin/env bash
# Validates server.json (the MCP registry entry) against the registry schema vendored in
# packaging/registry/, and checks that Cargo.toml, server.json, the npm packages, the bundle
# manifest, pyproject.toml, the container label and the README's mcp-name line agree on the
# version and the name (interop/packages/registry.py says exactly what). Offline once the
# pinned jsonschema is installed (manifests-venv.sh). Arguments go to registry.py; by default
# --require-all (every packaging file present), unless REGISTRY_ALLOW_ABSENT=1.
# Ends with "N passed, N failed"; exits 1 on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=interop/packages/manifests-venv.sh
source "$here/manifests-venv.sh"
extra=(--require-all)
[[ "${REGISTRY_ALLOW_ABSENT:-0}" == 1 ]] && extra=()
timeout 120 "$manifests_python" "$here/registry.py" "${extra[@]}" "$@"
