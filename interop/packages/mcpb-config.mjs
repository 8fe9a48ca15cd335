// Prints the MCP client config entry ({"command", "args", "env"}) of an unpacked MCP Bundle, as a
// desktop client computes it: the official library's getMcpConfigForManifest (the same code the
// mcpb CLI ships) substitutes ${__dirname}, ${user_config.*} (user values over the manifest's
// defaults) and applies this platform's platform_overrides; it gives nothing when a required
// user_config value is missing, and then this script fails.
//
//   node interop/packages/mcpb-config.mjs DIR USER_CONFIG_JSON_FILE > launch.json
//
// USER_CONFIG_JSON_FILE holds the values a user typed ({"vultr_api_key": "..."}); it is a file
// so that the key stays off command lines. Resolves @anthropic-ai/mcpb from interop/packages.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve, sep } from "node:path";

import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";

const [dir, userConfigFile] = process.argv.slice(2);
if (!dir || !userConfigFile) {
  process.stderr.write("usage: node mcpb-config.mjs DIR USER_CONFIG_JSON_FILE\n");
  process.exit(2);
}
const extensionPath = resolve(dir);
const manifest = JSON.parse(readFileSync(join(extensionPath, "manifest.json"), "utf8"));
const userConfig = JSON.parse(readFileSync(userConfigFile, "utf8"));
const home = homedir();
const config = await getMcpConfigForManifest({
  manifest,
  extensionPath,
  systemDirs: { HOME: home, DESKTOP: join(home, "Desktop"), DOCUMENTS: join(home, "Documents"), DOWNLOADS: join(home, "Downloads") },
  userConfig,
  pathSeparator: sep,
});
if (!config) {
  process.stderr.write("mcpb-config: no MCP config (is a required user_config value missing?)\n");
  process.exit(1);
}
const unresolved = JSON.stringify(config).match(/\$\{[^}]*\}/g);
if (unresolved) {
  process.stderr.write(`mcpb-config: unresolved variables left in mcp_config: ${[...new Set(unresolved)].join(", ")}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ command: config.command, args: config.args || [], env: config.env || {} })}\n`);
