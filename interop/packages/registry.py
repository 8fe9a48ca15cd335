"""Checks the MCP registry entry (server.json) and that every package states one version.

1. server.json validates against the registry's schema vendored in
   packaging/registry/server.schema.json (checked unchanged by its sha256), and names it.
2. One version everywhere: Cargo.toml's; server.json's own and each package's (the OCI tag,
   each bundle's download URL); packaging/npm/*/package.json (each package, and the launcher's
   optionalDependencies on the platform packages); packaging/mcpb/manifest.json; pyproject.toml
   (its version dynamic, so maturin takes Cargo's, or equal to it).
3. One name everywhere: server.json's name is the container image's
   io.modelcontextprotocol.server.name label, the npm launcher's `mcpName`, and the README's
   `mcp-name:` line (the line PyPI shows, which the registry reads to verify the wheel).
4. Every environment variable named is a setting the server reads (src/setting.rs), and the
   ones holding keys, tokens or URLs with passwords are marked isSecret.

    python registry.py [--require-all] [--release BUNDLE_DIR]

--require-all: the npm packages, the bundle manifest, pyproject.toml and the README line must
exist (as in a full tree); without it an absent one is reported and skipped. --release: each
bundle's fileSha256 must be that of the file of its name in BUNDLE_DIR (the release workflow
fills them in; in the repository they are 64 zeros). Prints one line per check; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "packaging/registry/server.schema.json"
# The sha256 of the vendored 2025-12-11 schema, the registry's current one (the published file
# less two example lines: packaging/registry/README.md); a newer one is a deliberate change.
SCHEMA_SHA256 = "4339f7ce3ecdb0d0fec99836a3077fb67e8d03962ddd383bd802cecc8ca8c926"
PLACEHOLDER_SHA256 = "0" * 64
# The release's bundles, one per target (packaging/mcpb/pack.sh names them <os>-<cpu>).
BUNDLE_PLATFORMS = ("linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "win32-x64")

failures: list[str] = []
passes = 0


def check(good: bool, what: str) -> None:
    """Records one check's outcome and prints it."""
    global passes
    print(f"registry: {'ok' if good else 'FAIL'}: {what}")
    if good:
        passes += 1
    else:
        failures.append(what)


def skipped(what: str, require_all: bool) -> None:
    """An optional file is absent: a failure with --require-all, else a note."""
    if require_all:
        check(False, f"{what} (required with --require-all)")
    else:
        print(f"registry: absent, skipped: {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require-all", action="store_true")
    parser.add_argument("--release", metavar="BUNDLE_DIR", type=Path)
    args = parser.parse_args()

    schema_bytes = SCHEMA.read_bytes()
    check(hashlib.sha256(schema_bytes).hexdigest() == SCHEMA_SHA256,
          f"{SCHEMA.relative_to(ROOT)} is the 2025-12-11 schema (sha256 pinned)")
    schema = json.loads(schema_bytes)
    server = json.loads((ROOT / "server.json").read_text())
    check(server.get("$schema") == schema["$id"], f"server.json's $schema is {schema['$id']}")
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(server), key=lambda e: list(e.absolute_path))
    for error in errors:
        print(f"registry:   at /{'/'.join(map(str, error.absolute_path))}: {error.message}")
    check(not errors, "server.json validates against the schema")

    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]
    version = cargo["version"]
    name = server.get("name", "")
    print(f"registry: Cargo.toml version {version}; registry name {name}")
    check(server.get("version") == version, f"server.json version {server.get('version')}")

    packages = {p["registryType"]: p for p in server.get("packages", [])}
    check(set(packages) == {"pypi", "npm", "oci", "mcpb"} and len(server["packages"]) == 3 + len(BUNDLE_PLATFORMS),
          f"server.json lists the pypi, npm and oci packages and {len(BUNDLE_PLATFORMS)} bundles")
    for kind in ("pypi", "npm"):
        if kind in packages:
            check(packages[kind].get("version") == version,
                  f"server.json {kind} package version {packages[kind].get('version')}")
            check(packages[kind].get("identifier") == cargo["name"],
                  f"server.json {kind} package is {cargo['name']}")
    if "oci" in packages:
        check(packages["oci"].get("identifier", "").endswith(f":{version}"),
              f"server.json oci image tag {packages['oci'].get('identifier')}")
    bundles = [p for p in server.get("packages", []) if p["registryType"] == "mcpb"]
    urls = [bundle.get("identifier", "") for bundle in bundles]
    suffixes = sorted(url.rsplit(f"/v{version}/vultr-inference-mcp-{version}-", 1)[-1] for url in urls)
    check(suffixes == sorted(f"{platform}.mcpb" for platform in BUNDLE_PLATFORMS),
          f"server.json has one bundle per platform, at /v{version}/vultr-inference-mcp-{version}-<os>-<cpu>.mcpb")
    check(all(bundle.get("version", version) == version for bundle in bundles), "mcpb package versions")
    for bundle in bundles:
        file_name = bundle.get("identifier", "").rsplit("/", 1)[-1]
        if args.release:
            path = args.release / file_name
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "(no file)"
            check(bundle.get("fileSha256") == digest, f"{file_name}: fileSha256 is the sha256 of {path}")
        else:
            check(bundle.get("fileSha256") == PLACEHOLDER_SHA256,
                  f"{file_name}: fileSha256 is the placeholder the release fills in")

    check_npm(version, name, args.require_all)
    manifest = ROOT / "packaging/mcpb/manifest.json"
    if manifest.exists():
        found = json.loads(manifest.read_text()).get("version")
        check(found == version, f"packaging/mcpb/manifest.json version {found}")
    else:
        skipped("packaging/mcpb/manifest.json", args.require_all)
    pyproject = ROOT / "pyproject.toml"
    if pyproject.exists():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        good = "version" in project.get("dynamic", []) or project.get("version") == version
        check(good, f"pyproject.toml version {project.get('version', 'dynamic (from Cargo.toml)')}")
        check(project.get("name") == cargo["name"], f"pyproject.toml name {project.get('name')}")
    else:
        skipped("pyproject.toml", args.require_all)

    containerfile = (ROOT / "packaging/container/Containerfile").read_text()
    label = re.search(r'io\.modelcontextprotocol\.server\.name="([^"]+)"', containerfile)
    check(bool(label) and label.group(1) == name,
          f"Containerfile label io.modelcontextprotocol.server.name {label and label.group(1)}")
    # PyPI shows the wheel's readme (pyproject's `readme`); the registry looks for the line there.
    readmes = {"README.md"}
    if pyproject.exists():
        readme_field = tomllib.loads(pyproject.read_text()).get("project", {}).get("readme")
        if isinstance(readme_field, dict):
            readme_field = readme_field.get("file")
        if readme_field:
            readmes.add(readme_field)
    for readme in sorted(readmes):
        # The name must end at a boundary (space, newline, tag, `-->`), as the registry requires.
        found = re.findall(r"mcp-name:\s*(\S+?)(?=\s|<|-->|$)", (ROOT / readme).read_text())
        if found:
            check(set(found) == {name}, f"{readme} mcp-name line names {sorted(set(found))}")
        else:
            skipped(f"{readme} `mcp-name:` line", args.require_all)

    check_variables(server)
    print(f"{passes} passed, {len(failures)} failed")
    return 1 if failures else 0


def check_npm(version: str, name: str, require_all: bool) -> None:
    """The npm packages: each at the version; the launcher's mcpName and platform pins."""
    manifests = sorted((ROOT / "packaging/npm").glob("*/package.json"))
    if not manifests:
        skipped("packaging/npm/*/package.json", require_all)
        return
    launchers = 0
    for path in manifests:
        package = json.loads(path.read_text())
        where = path.relative_to(ROOT)
        check(package.get("version") == version, f"{where} version {package.get('version')}")
        pins = package.get("optionalDependencies", {})
        for dependency, pinned in pins.items():
            check(pinned == version, f"{where} pins {dependency} at {pinned}")
        if "mcpName" in package or pins:
            launchers += 1
            check(package.get("mcpName") == name, f"{where} mcpName {package.get('mcpName')}")
    check(launchers == 1, f"one npm launcher package (with mcpName), found {launchers}")


def check_variables(server: dict) -> None:
    """Variables named exist in src/setting.rs; secrets are marked so."""
    settings = set(re.findall(r'"(VULTR_[A-Z0-9_]+)"', (ROOT / "src/setting.rs").read_text()))
    secret_words = ("KEY", "TOKEN", "PASSWORD", "SECRET")
    for package in server.get("packages", []):
        names = [v["name"] for v in package.get("environmentVariables", [])]
        unknown = [n for n in names if n not in settings]
        open_secrets = [v["name"] for v in package.get("environmentVariables", [])
                        if any(w in v["name"] for w in secret_words) and v.get("isSecret") is not True]
        kind = package["registryType"]
        check(not unknown, f"{kind}: its {len(names)} variables are settings of src/setting.rs"
              + (f" (not: {unknown})" if unknown else ""))
        check(not open_secrets, f"{kind}: keys and tokens marked isSecret"
              + (f" (not: {open_secrets})" if open_secrets else ""))
    for remote in server.get("remotes", []):
        check(remote.get("type") == "streamable-http", "remote is streamable-http")
        check(remote.get("url", "").endswith("/mcp"), "remote URL ends in /mcp")
        for header in remote.get("headers", []):
            if header["name"].lower() == "authorization":
                check(header.get("isSecret") is True, "remote Authorization header is isSecret")


if __name__ == "__main__":
    sys.exit(main())
