// The delegate interop check, run by run.sh with the pinned Node: the official TypeScript SDK's
// client drives vultr-inference-mcp over stdio and calls `delegate`; the bridge's one downstream
// server is the official reference server `@modelcontextprotocol/server-everything` over stdio;
// the model is the tests' fake Vultr (examples/fake_vultr.rs), scripted by the task's
// `DELEGATE_CALL` line to call `everything__get-sum` in turn 1 and quote its result in turn 2.
//
// Usage: node drive.mjs <server binary> <fake_vultr binary> <work dir>
// Prints what it checks; throws (non-zero exit) on the first failed check.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync, openSync } from "node:fs";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [serverBin, fakeBin, work] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const everythingEntry = path.join(here, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const MODEL = "kimi-k2-instruct";
const TOOL = "everything__get-sum";
// What server-everything's get-sum answers for these arguments.
const EXPECTED = "The sum of 17 and 25 is 42.";
// Every exchange with the server must finish within this; a hang fails the run.
const TIMEOUT_MS = 60_000;

const say = (message) => console.log(`[delegate] ${message}`);
function check(holds, what, detail) {
  if (!holds) throw new Error(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  say(`ok: ${what}`);
}

// The fake Vultr: one JSON line on start, one JSON line of state per `state` line on stdin.
const fake = spawn(fakeBin, [], { stdio: ["pipe", "pipe", "inherit"] });
const fakeLines = createInterface({ input: fake.stdout })[Symbol.asyncIterator]();
async function fakeLine() {
  const { value, done } = await fakeLines.next();
  if (done) throw new Error(`the fake Vultr exited (status ${fake.exitCode})`);
  return JSON.parse(value);
}
async function fakeState() {
  fake.stdin.write("state\n");
  return fakeLine();
}

let client;
try {
  const started = await fakeLine();

  const serversFile = path.join(work, "delegate-servers.json");
  const servers = {
    mcpServers: {
      everything: { command: process.execPath, args: [everythingEntry, "stdio"], tools: ["echo", "get-sum"] },
    },
  };
  writeFileSync(serversFile, JSON.stringify(servers, null, 2));

  const transport = new StdioClientTransport({
    command: serverBin,
    args: [],
    cwd: work,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? work,
      VULTR_API_KEY: started.account_key,
      VULTR_API_BASE_URL: started.account_base_url,
      VULTR_INFERENCE_BASE_URL: started.inference_base_url,
      VULTR_MCP_CONVERSATIONS: "memory",
      VULTR_MCP_DELEGATE_SERVERS: serversFile,
      RUST_LOG: process.env.RUST_LOG ?? "warn",
    },
    stderr: openSync(path.join(work, "server.stderr"), "w"),
  });
  client = new Client({ name: "interop-delegate", version: "1.0.0" });
  await client.connect(transport, { timeout: TIMEOUT_MS });
  say(`connected to ${client.getServerVersion()?.name} ${client.getServerVersion()?.version}`);

  const { tools } = await client.listTools(undefined, { timeout: TIMEOUT_MS });
  check(tools.some((t) => t.name === "delegate"), "the server lists `delegate`");

  const result = await client.callTool(
    { name: "delegate", arguments: { task: `Add 17 and 25.\nDELEGATE_CALL ${TOOL} {"a": 17, "b": 25}`, model: MODEL } },
    undefined,
    { timeout: TIMEOUT_MS },
  );
  const text = (result.content ?? []).map((c) => c.text ?? "").join("");
  say(`delegate answered: ${JSON.stringify(text)}`);
  check(result.isError !== true, "the delegation succeeded", text);
  const out = result.structuredContent ?? {};
  check(out.stopped === "done", "stopped is done", out.stopped);
  check(Array.isArray(out.steps) && out.steps.length === 1, "one step", out.steps);
  const [step] = out.steps;
  check(step.tool === TOOL && step.turn === 1 && step.is_error === false, `the step ran ${TOOL} in turn 1`, step);
  check(step.result.includes(EXPECTED), "server-everything's result is the step's result", step.result);
  check(out.answer === `the tool said: ${EXPECTED}`, "the answer quotes the result", out.answer);

  const { chat_bodies: chats } = await fakeState();
  check(chats.length === 2, "the fake model got two turns", chats.length);
  const offered = (chats[0].tools ?? []).map((t) => t.function);
  const sum = offered.find((f) => f.name === TOOL);
  check(
    sum !== undefined && sum.description === "Returns the sum of two numbers" && sum.parameters?.properties?.a !== undefined,
    `turn 1 offered ${TOOL} with server-everything's description and schema`,
    offered,
  );
  const fedBack = chats[1].messages.filter((m) => m.role === "tool");
  check(
    fedBack.length === 1 && fedBack[0].tool_call_id === "call_delegate_1" && String(fedBack[0].content).includes(EXPECTED),
    "turn 2 sent the model server-everything's result",
    fedBack,
  );
} finally {
  await client?.close();
  fake.stdin.end();
  if (fake.exitCode === null) await once(fake, "exit");
}
