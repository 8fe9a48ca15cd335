#!/usr/bin/env node
// Stages the npm packages of one release target, ready for `npm pack` / `npm publish`:
//
//   node packaging/npm/stage.mjs --target TRIPLE --binary PATH --out DIR [--launcher]
//
// writes DIR/vultr-inference-mcp-<os>-<cpu>/ (package.json from the template below, README.md,
// bin/vultr-inference-mcp[.exe] copied from PATH, mode 0755) and, with --launcher, a copy of the
// launcher package (packaging/npm/vultr-inference-mcp/) in DIR/vultr-inference-mcp/. The version
// is Cargo.toml's; the script fails when the launcher's package.json (its version or its
// optional dependencies) disagrees with it or with the targets below, so the committed package
// can be published as is. Prints the staged folders, one a line. Used by the release workflow
// and by interop/packages/npm.sh, so CI packs what the release publishes.
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

/** Rust target triple → npm `os`/`cpu` (and the package suffix `<os>-<cpu>`). */
const TARGETS = {
  "x86_64-unknown-linux-gnu": { os: "linux", cpu: "x64" },
  "aarch64-unknown-linux-gnu": { os: "linux", cpu: "arm64" },
  "x86_64-apple-darwin": { os: "darwin", cpu: "x64" },
  "aarch64-apple-darwin": { os: "darwin", cpu: "arm64" },
  "x86_64-pc-windows-msvc": { os: "win32", cpu: "x64" },
};
// No `libc` field: the Linux binaries are static (glibc with +crt-static), so they run on
// glibc and musl systems alike.

/** Fails with a message on stderr. */
function die(message) {
  process.stderr.write(`stage: ${message}\n`);
  process.exit(1);
}

/** The [package] version of Cargo.toml. */
function cargoVersion() {
  const cargo = readFileSync(join(root, "Cargo.toml"), "utf8");
  const pkg = cargo.split(/^\[/m).find((section) => section.startsWith("package]"));
  const version = pkg && pkg.match(/^version\s*=\s*"([^"]+)"/m);
  if (!version) die("no [package] version in Cargo.toml");
  return version[1];
}

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    binary: { type: "string" },
    out: { type: "string" },
    launcher: { type: "boolean", default: false },
  },
});
if (!values.target || !values.binary || !values.out) {
  die("usage: node packaging/npm/stage.mjs --target TRIPLE --binary PATH --out DIR [--launcher]");
}
const platform = TARGETS[values.target];
if (!platform) die(`unknown target ${values.target}; known: ${Object.keys(TARGETS).join(", ")}`);

const version = cargoVersion();
const launcherDir = join(here, "vultr-inference-mcp");
const launcher = JSON.parse(readFileSync(join(launcherDir, "package.json"), "utf8"));
if (launcher.version !== version) {
  die(`packaging/npm/vultr-inference-mcp/package.json has version ${launcher.version}, Cargo.toml ${version}`);
}
const expected = Object.values(TARGETS).map(({ os, cpu }) => `${launcher.name}-${os}-${cpu}`).sort();
const optional = launcher.optionalDependencies || {};
if (JSON.stringify(Object.keys(optional).sort()) !== JSON.stringify(expected)) {
  die(`the launcher's optionalDependencies must be exactly ${expected.join(", ")}`);
}
for (const [name, wanted] of Object.entries(optional)) {
  if (wanted !== version) die(`the launcher wants ${name}@${wanted}, Cargo.toml is ${version}`);
}

const name = `${launcher.name}-${platform.os}-${platform.cpu}`;
const exe = platform.os === "win32" ? "vultr-inference-mcp.exe" : "vultr-inference-mcp";
const out = resolve(values.out);
const dir = join(out, name);
rmSync(dir, { recursive: true, force: true });
mkdirSync(join(dir, "bin"), { recursive: true });

// The template of every platform package.
const manifest = {
  name,
  version,
  description: `The ${platform.os}-${platform.cpu} binary of vultr-inference-mcp (installed by the vultr-inference-mcp launcher).`,
  license: launcher.license,
  homepage: launcher.homepage,
  repository: launcher.repository,
  os: [platform.os],
  cpu: [platform.cpu],
  files: [`bin/${exe}`],
  preferUnplugged: true,
};
writeFileSync(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
writeFileSync(
  join(dir, "README.md"),
  `# ${name}\n\nThe ${platform.os}-${platform.cpu} binary of [vultr-inference-mcp](https://www.npmjs.com/package/vultr-inference-mcp).\n` +
    "Do not install it directly: `npx -y vultr-inference-mcp` picks the right one.\n",
);
copyFileSync(values.binary, join(dir, "bin", exe));
chmodSync(join(dir, "bin", exe), 0o755);
process.stdout.write(`${dir}\n`);

if (values.launcher) {
  const staged = join(out, launcher.name);
  rmSync(staged, { recursive: true, force: true });
  cpSync(launcherDir, staged, { recursive: true });
  chmodSync(join(staged, "bin", "vultr-inference-mcp.js"), 0o755);
  process.stdout.write(`${staged}\n`);
}
