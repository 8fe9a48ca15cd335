"""Drive an installed vultr-inference-mcp with the official MCP Python SDK (interop/packages/).

One MCP client for every way the server is packaged (the PyPI wheel's command, `npx`, an
unpacked MCP Bundle, the binary taken out of the container image): it connects, completes
`initialize`, checks `serverInfo.name`, calls `list_models` against the tests' fake Vultr
(examples/fake_vultr.rs) and checks that the fake's catalog models come back (not isError).
On success it prints one summary line to stdout and exits 0; on any failure it prints one
`drive: FAIL ...` message to stderr (and the server's stderr when it has it) and exits 1.
Everything is bounded by --timeout (default 60 s). Secrets are never printed.

  drive.py stdio [--env K=V]... [--no-fake] [--fake-json FILE] [--cwd DIR] [--timeout S]
                 [--name NAME] [--label TEXT] [--launch-json FILE] [-- COMMAND [ARGS...]]
      Starts the fake (unless --no-fake), then COMMAND over stdio with a clean environment:
      PATH/HOME/locale from ours (never our VULTR_* settings), VULTR_API_KEY /
      VULTR_API_BASE_URL / VULTR_INFERENCE_BASE_URL pointing at the fake, a private
      VULTR_MCP_CONVERSATIONS store in a 0700 temp folder, RUST_LOG=warn, then the --env
      extras (which win). With --no-fake nothing is set but the --env extras and the store
      (for a command whose settings come from elsewhere, e.g. an unpacked bundle's mcp_config);
      the models expected then come from --fake-json (a fake already running) or are not
      checked beyond "not an error". --launch-json FILE takes the command instead from a JSON
      object {"command": ..., "args": [...], "env": {...}} (what an MCP client's config holds,
      e.g. an MCP Bundle's mcp_config after substitution); its env goes between ours and --env.
      When the fake is known, `list_subscriptions` is called too: the fake's account API
      answers only its account key, so this proves the configured key reached the server.

  drive.py http URL --token TOKEN [--fake-json FILE] [--timeout S] [--name NAME] [--label TEXT]
      Connects to a server already listening at URL (its /mcp endpoint) over streamable HTTP
      with `Authorization: Bearer TOKEN` (TOKEN may be given as @FILE to keep it off the
      command line). --fake-json is the fake's JSON line (from `drive.py fake`), used for the
      models expected; the server must have been started against that fake.

  drive.py fake [--env-file FILE]
      Starts only the fake Vultr and prints its JSON line (URLs, ids, the fake's keys) to
      stdout; with --env-file also writes `export VULTR_API_KEY=...` lines (0600) a shell can
      `source` before starting a server against it. Then runs until SIGTERM/SIGINT or until
      its stdin closes, and stops the fake. Typical use from a script:

          python drive.py fake --env-file "$tmp/fake.env" > "$tmp/fake.json" < <(sleep 1d) &
          # wait until $tmp/fake.json is non-empty, then:
          ( source "$tmp/fake.env"; exec ./vultr-inference-mcp --http 127.0.0.1:0 ... ) &
          python drive.py http "$url" --token @"$tmp/token" --fake-json "$tmp/fake.json"

The fake binary: FAKE_VULTR_BIN (default: $CARGO_TARGET_DIR or ./target, then
debug/examples/fake_vultr). --name is the expected serverInfo.name (default
vultr-inference-mcp); --label names the package in the summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

if sys.version_info < (3, 11):  # anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_NAME = "vultr-inference-mcp"
# A text model of the fake's catalog without tool support; always listed.
PLAIN_MODEL = "plain-chat-7b"
# What we pass from our own environment to a stdio server (never VULTR_* settings).
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "USER")


class Failure(Exception):
    """A check failed; the message says which and what was seen."""


def unwrap(error: BaseException) -> BaseException:
    """The first leaf of (nested) exception groups, as anyio task groups wrap what they raise."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        failures = [e for e in error.exceptions if isinstance(unwrap(e), Failure)]
        error = failures[0] if failures else error.exceptions[0]
    return error


def explain(error: BaseException, secret: str = "") -> Failure:
    """A Failure for whatever the client raised (a Failure itself passes through)."""
    leaf = unwrap(error)
    if isinstance(leaf, Failure):
        return leaf
    message = f"{type(leaf).__name__}: {leaf}"
    return Failure(message.replace(secret, "<token>") if secret else message)


def fake_binary() -> str:
    """The fake Vultr binary: FAKE_VULTR_BIN, else the cargo target's debug example."""
    configured = os.environ.get("FAKE_VULTR_BIN")
    if configured:
        return configured
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    return str(target / "debug" / "examples" / "fake_vultr")


class Fake:
    """The fake Vultr process: started, its JSON line read; stopped by closing its stdin."""

    def __init__(self, timeout: float) -> None:
        binary = fake_binary()
        if not Path(binary).is_file():
            raise Failure(f"fake Vultr not found at {binary}: set FAKE_VULTR_BIN or cargo build --example fake_vultr")
        self.process = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].strip():
            self.stop()
            raise Failure(f"the fake Vultr printed no JSON line within {timeout:g} s (status {self.process.poll()})")
        self.line = line[0].strip()
        self.info: dict[str, Any] = json.loads(self.line)

    def server_env(self) -> dict[str, str]:
        """The settings that point a server at this fake."""
        return {
            "VULTR_API_KEY": self.info["account_key"],
            "VULTR_API_BASE_URL": self.info["account_base_url"],
            "VULTR_INFERENCE_BASE_URL": self.info["inference_base_url"],
        }

    def stop(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def expected_models(info: dict[str, Any] | None) -> list[str]:
    """Model ids list_models must show: the fake's first catalog model and a plain one."""
    if info is None:
        return []
    return [info["chat_model"], PLAIN_MODEL]


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def exercise(session: ClientSession, name: str, info: dict[str, Any] | None) -> str:
    """initialize, list_models (and list_subscriptions when the fake is known) on a session."""
    models = expected_models(info)
    subscription = info["subscription_id"] if info else None
    init = await session.initialize()
    server = init.server_info
    if server is None or server.name != name:
        raise Failure(f"serverInfo.name is {getattr(server, 'name', None)!r}, expected {name!r}")
    result = await session.call_tool("list_models", {})
    text = text_of(result)
    if result.is_error:
        raise Failure(f"list_models returned isError: {text[:500]}")
    everything = text + json.dumps(result.structured_content or {})
    missing = [m for m in models if m not in everything]
    if missing:
        raise Failure(f"list_models lacks {missing}: {text[:500]}")
    if not text.strip():
        raise Failure("list_models returned no text")
    seen = f"list_models ok ({len(models)} expected models seen)"
    if subscription:
        # The fake answers the account API only to its account key: this proves the key the
        # package was configured with reached the server.
        result = await session.call_tool("list_subscriptions", {})
        text = text_of(result)
        if result.is_error:
            raise Failure(f"list_subscriptions returned isError (was the API key passed?): {text[:500]}")
        if subscription not in text + json.dumps(result.structured_content or {}):
            raise Failure(f"list_subscriptions lacks the fake's subscription {subscription}: {text[:500]}")
        seen += ", list_subscriptions ok"
    return f"server {server.name} {server.version}, protocol {init.protocol_version}, {seen}"


async def drive_stdio(args: argparse.Namespace) -> str:
    command, env_extra = list(args.command), {}
    if args.launch_json:
        launch = json.loads(Path(args.launch_json).read_text(encoding="utf-8"))
        command = [launch["command"], *launch.get("args", [])]
        env_extra = {str(k): str(v) for k, v in (launch.get("env") or {}).items()}
    if not command:
        raise Failure("no COMMAND given after -- (or --launch-json)")
    fake = None if args.no_fake else Fake(args.timeout)
    info = fake.info if fake else load_fake_json(args.fake_json)
    with tempfile.TemporaryDirectory(prefix="drive-") as private:
        os.chmod(private, 0o700)
        env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        env["VULTR_MCP_CONVERSATIONS"] = str(Path(private) / "conversations.sqlite3")
        env["RUST_LOG"] = "warn"
        if fake:
            env.update(fake.server_env())
        env.update(env_extra)
        env.update(parse_env(args.env))
        errlog_path = Path(private) / "server-stderr.log"
        params = StdioServerParameters(
            command=command[0], args=command[1:], env=env, cwd=args.cwd or private
        )
        try:
            with open(errlog_path, "w+", encoding="utf-8") as errlog:
                try:
                    with anyio.fail_after(args.timeout):
                        async with stdio_client(params, errlog=errlog) as (read, write):
                            async with ClientSession(read, write, read_timeout_seconds=args.timeout) as session:
                                return await exercise(session, args.name, info)
                except TimeoutError as error:
                    raise Failure(f"no answer within {args.timeout:g} s") from error
                except Exception as error:  # the SDK's connection errors, a command that does not start
                    raise explain(error) from error
        except Failure as failure:
            stderr = errlog_path.read_text(encoding="utf-8", errors="replace").strip()
            if stderr:
                raise Failure(f"{failure}\n--- server stderr ---\n{stderr[-4000:]}\n--- end server stderr ---") from failure
            raise
        finally:
            if fake:
                fake.stop()


async def drive_http(args: argparse.Namespace) -> str:
    token = args.token
    if token.startswith("@"):
        token = Path(token[1:]).read_text(encoding="utf-8").strip()
    info = load_fake_json(args.fake_json)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with anyio.fail_after(args.timeout):
            async with httpx2.AsyncClient(headers=headers, timeout=args.timeout) as http:
                async with streamable_http_client(args.url, http_client=http) as (read, write):
                    async with ClientSession(read, write, read_timeout_seconds=args.timeout) as session:
                        return await exercise(session, args.name, info)
    except TimeoutError as error:
        raise Failure(f"no answer from {args.url} within {args.timeout:g} s") from error
    except Exception as error:  # the SDK's connection errors, an HTTP status
        failure = explain(error, token)
        if isinstance(unwrap(error), Failure):
            raise failure from error
        raise Failure(
            f"{failure} (from {args.url}: is the server listening there, and is the token one of its auth tokens?)"
        ) from error


def run_fake(args: argparse.Namespace) -> int:
    """`drive.py fake`: the fake until SIGTERM/SIGINT or our stdin closes."""
    fake = Fake(args.timeout)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if args.env_file:
            path = Path(args.env_file)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for key, value in fake.server_env().items():
                    out.write(f"export {key}={shlex.quote(value)}\n")
        print(fake.line, flush=True)

        def watch_stdin() -> None:
            try:
                while sys.stdin.readline():
                    pass
            except (OSError, ValueError):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stop.wait(0.5):
            if fake.process.poll() is not None:
                print(f"drive: FAIL the fake Vultr exited ({fake.process.returncode})", file=sys.stderr)
                return 1
        return 0
    finally:
        fake.stop()


def load_fake_json(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    line = Path(path).read_text(encoding="utf-8").strip().splitlines()
    if not line:
        raise Failure(f"{path} is empty: is `drive.py fake` running?")
    return json.loads(line[0])


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Failure(f"--env wants K=V, got {pair.split('=')[0]!r}")
        env[key] = value
    return env


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="mode", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--timeout", type=float, default=60.0, help="bound for the whole run, seconds")
        p.add_argument("--name", default=SERVER_NAME, help="expected serverInfo.name")
        p.add_argument("--label", default="", help="what is being driven, for the summary line")

    stdio = sub.add_parser("stdio", help="launch COMMAND over stdio against the fake")
    common(stdio)
    stdio.add_argument("--env", action="append", default=[], metavar="K=V", help="extra server setting")
    stdio.add_argument("--no-fake", action="store_true", help="do not start the fake or set its env")
    stdio.add_argument("--fake-json", help="the JSON line of a fake already running (with --no-fake)")
    stdio.add_argument("--cwd", help="working directory of the server (default: a private temp folder)")
    stdio.add_argument(
        "--launch-json", help="take command, args and env from this JSON (an MCP client config entry)"
    )
    stdio.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")

    http = sub.add_parser("http", help="connect to URL over streamable HTTP with a bearer token")
    common(http)
    http.add_argument("url")
    http.add_argument("--token", required=True, help="bearer token, or @FILE")
    http.add_argument("--fake-json", help="the JSON line of the fake the server uses")

    fake = sub.add_parser("fake", help="run only the fake Vultr and print its JSON line")
    fake.add_argument("--env-file", help="also write `export K=V` lines for a server (0600)")
    fake.add_argument("--timeout", type=float, default=60.0, help="bound for the fake to start, seconds")
    return top


def main() -> int:
    args = parser().parse_args()
    if args.mode == "stdio" and args.command and args.command[0] == "--":
        args.command = args.command[1:]
    try:
        if args.mode == "fake":
            return run_fake(args)
        drive = drive_stdio if args.mode == "stdio" else drive_http
        summary = anyio.run(drive, args)
    except Failure as failure:
        label = f" {args.label}" if getattr(args, "label", "") else ""
        print(f"drive: FAIL{label}: {failure}", file=sys.stderr)
        return 1
    label = f"{args.label}: " if args.label else ""
    print(f"drive: ok {args.mode} {label}{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
