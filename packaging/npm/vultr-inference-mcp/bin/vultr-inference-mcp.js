#!/usr/bin/env node
// The npm launcher of vultr-inference-mcp: finds the binary of this platform in its optional
// dependency (vultr-inference-mcp-<platform>-<arch>, installed by npm only where its `os` and
// `cpu` match, with no download at install time) and runs it with our stdio, forwarding
// SIGINT/SIGTERM/SIGHUP and exiting with its code or signal.
// VULTR_INFERENCE_MCP_BINARY=/path/to/vultr-inference-mcp runs that binary instead.
"use strict";

const { spawn } = require("node:child_process");
const os = require("node:os");
const path = require("node:path");

/** The platform packages this launcher knows, by `${process.platform}-${process.arch}`. */
const PLATFORMS = {
  "linux-x64": "vultr-inference-mcp-linux-x64",
  "linux-arm64": "vultr-inference-mcp-linux-arm64",
  "darwin-x64": "vultr-inference-mcp-darwin-x64",
  "darwin-arm64": "vultr-inference-mcp-darwin-arm64",
  "win32-x64": "vultr-inference-mcp-win32-x64",
};

const version = require("../package.json").version;
const platform = `${process.platform}-${process.arch}`;

/** Prints a message saying what is wrong and how to fix it, then exits 1. */
function fail(lines) {
  process.stderr.write(`vultr-inference-mcp: ${lines.join("\n  ")}\n`);
  process.exit(1);
}

/** The binary to run: the override, else the one in this platform's package. */
function binaryPath() {
  const override = process.env.VULTR_INFERENCE_MCP_BINARY;
  if (override) {
    return override;
  }
  const pkg = PLATFORMS[platform];
  if (!pkg) {
    fail([
      `no prebuilt binary for ${platform}; prebuilt: ${Object.keys(PLATFORMS).join(", ")}.`,
      "Build it from source (cargo install --locked --git https://github.com/vultr-inference-mcp/vultr-inference-mcp) and set",
      "VULTR_INFERENCE_MCP_BINARY=/path/to/vultr-inference-mcp, or run it without npm.",
    ]);
  }
  const exe = process.platform === "win32" ? "vultr-inference-mcp.exe" : "vultr-inference-mcp";
  try {
    return require.resolve(`${pkg}/bin/${exe}`);
  } catch {
    fail([
      `the binary for ${platform} is not installed: the optional dependency ${pkg} is missing.`,
      "npm skips optional dependencies with --omit=optional (or --no-optional), and a lockfile",
      "made on another platform may leave it out. Fix it with one of:",
      `  npm install ${pkg}@${version}`,
      "  reinstall without --omit=optional (npx: npx -y vultr-inference-mcp@" + version + ")",
      "  VULTR_INFERENCE_MCP_BINARY=/path/to/vultr-inference-mcp (a binary you built or downloaded)",
    ]);
  }
}

const binary = binaryPath();
const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", windowsHide: true });

const forwarded = ["SIGINT", "SIGTERM", "SIGHUP"];
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill(signal);
  }
};
for (const signal of forwarded) {
  process.on(signal, forward);
}

child.on("error", (error) => {
  const hint =
    error.code === "ENOENT"
      ? "the file does not exist"
      : error.code === "EACCES"
        ? "it is not executable (chmod +x it, or reinstall the package)"
        : error.message;
  fail([`could not start ${path.resolve(binary)}: ${hint}.`]);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so our parent sees what the server saw.
    for (const s of forwarded) {
      process.removeListener(s, forward);
    }
    process.kill(process.pid, signal);
    // A signal Node ignores or handles itself (SIGPIPE, SIGUSR1) leaves us running: then
    // exit as a shell reports a death by that signal.
    setTimeout(() => process.exit(128 + (os.constants.signals[signal] || 0)), 100);
    return;
  }
  process.exit(code === null ? 1 : code);
});
