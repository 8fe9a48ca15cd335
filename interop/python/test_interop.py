"""Interop: the official Python MCP SDK (mcp 2.x) drives vultr-inference-mcp over stdio and HTTP.

Each test starts a fresh fake Vultr (the tests' own fake, through the `fake_vultr` example
binary: tests/support/fake_vultr/, examples/fake_vultr.rs) and a fresh server process, and
checks what a Python client sees. Every test runs in both protocol generations: with
`ClientSession.initialize()` (the initialize handshake, protocol 2025-11-25) and with the SDK's
high-level `Client` in its default mode (`server/discover`, protocol 2026-07-28).
The stdio tests connect with `mcp.client.stdio.stdio_client`; the `test_http_*` tests start the
server with `--http 127.0.0.1:0` and connect to its `/mcp` with the SDK's streamable HTTP
client. Run through `bash interop/python/run.sh`, which builds the server and the fake and sets
VULTR_MCP_BIN and FAKE_VULTR_BIN.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"chat_completion", "compare_models", "delete_conversation", "get_subscription", "list_models", "list_subscriptions"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# Every MCP exchange of a test must finish within this; a hang fails the test instead of CI.
STEP_TIMEOUT = 30


def built(variable: str, relative: str) -> str:
    """The binary named by `variable`, else `relative` under the cargo target directory."""
    configured = os.environ.get(variable)
    if configured:
        return configured
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    return str(target / "debug" / relative)


def server_binary() -> str:
    return built("VULTR_MCP_BIN", "vultr-inference-mcp")


class FakeVultr:
    """The fake Vultr process (examples/fake_vultr.rs): its URLs, ids and keys, and what it saw.

    It prints its URLs, ids and keys as one JSON line on start, answers each `state` line on
    stdin with one JSON line (requests, chat bodies, hung-up HANG streams), and exits when
    stdin closes.
    """

    def __init__(self) -> None:
        binary = built("FAKE_VULTR_BIN", "examples/fake_vultr")
        assert Path(binary).is_file(), f"fake binary not found at {binary}: cargo build --example fake_vultr"
        self.process = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.lock = threading.Lock()
        started = json.loads(self._line())
        self.account_base_url: str = started["account_base_url"]
        self.inference_base_url: str = started["inference_base_url"]
        self.account_key: str = started["account_key"]
        self.subscription_id: str = started["subscription_id"]
        self.subscription_label: str = started["subscription_label"]
        self.inference_key: str = started["inference_key"]
        self.tool_call_id: str = started["tool_call_id"]
        self.chat_model: str = started["chat_model"]

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the fake exited (status {self.process.poll()})"
        return line

    def state(self) -> dict[str, Any]:
        """What the fake has seen so far (thread-safe)."""
        assert self.process.stdin is not None
        with self.lock:
            self.process.stdin.write("state\n")
            self.process.stdin.flush()
            return json.loads(self._line())

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request the fake's HTTP routes received, in order."""
        return [(method, path) for method, path in self.state()["requests"]]

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        """Every chat completion request body, in order (marker answers included)."""
        return self.state()["chat_bodies"]

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r == (method, path))

    def wait_until(self, holds: Any, timeout: float) -> float | None:
        """Polls the state until `holds(state)`; the monotonic time it was seen, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if holds(self.state()):
                return time.monotonic()
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> Any:
    server = FakeVultr()
    try:
        yield server
    finally:
        server.stop()


# The two ways an mcp 2.x client connects over stdio:
# - "handshake": `stdio_client` + `ClientSession.initialize()`, the initialize handshake
#   (protocol 2025-11-25, what every 1.x-era client does);
# - "discover":  the high-level `mcp.client.Client` in its default mode="auto", which probes
#   `server/discover` first and, when the server answers, speaks protocol 2026-07-28.
ERAS = {"handshake": "2025-11-25", "discover": "2026-07-28"}


@pytest.fixture(params=list(ERAS))
def era(request: pytest.FixtureRequest) -> str:
    return request.param


def server_env(fake: FakeVultr, **env: str) -> dict[str, str]:
    """The server's settings: the fake's URLs and account key, conversations in memory, warnings only."""
    return {
        "VULTR_API_KEY": fake.account_key,
        "VULTR_API_BASE_URL": fake.account_base_url,
        "VULTR_INFERENCE_BASE_URL": fake.inference_base_url,
        "VULTR_MCP_CONVERSATIONS": "memory",
        "RUST_LOG": "warn",
        **env,
    }


@asynccontextmanager
async def connect(
    fake: FakeVultr, tmp_path: Path, era: str, message_handler: Any = None, **env: str
) -> AsyncIterator[ClientSession]:
    """Starts the server against `fake`, connects an SDK session in `era`, yields it."""
    binary = server_binary()
    assert Path(binary).is_file(), f"server binary not found at {binary}: build it or set VULTR_MCP_BIN"
    params = StdioServerParameters(command=binary, args=[], env=server_env(fake, **env), cwd=str(tmp_path))
    client_info = types.Implementation(name="interop-python", version="1.0.0")
    log_path = tmp_path / "server-stderr.log"
    with open(log_path, "w+", encoding="utf-8") as errlog:
        try:
            transport = stdio_client(params, errlog=errlog)
            if era == "handshake":
                async with transport as (read, write):
                    async with ClientSession(
                        read,
                        write,
                        read_timeout_seconds=STEP_TIMEOUT,
                        client_info=client_info,
                        message_handler=message_handler,
                    ) as session:
                        with anyio.fail_after(STEP_TIMEOUT):
                            await session.initialize()
                        yield session
            else:
                async with Client(
                    transport,
                    mode="auto",
                    read_timeout_seconds=STEP_TIMEOUT,
                    client_info=client_info,
                    message_handler=message_handler,
                ) as client:
                    yield client.session
        finally:
            errlog.flush()
            stderr = log_path.read_text(encoding="utf-8")
            if stderr.strip():
                # Shown by pytest for failing tests: what the server logged at RUST_LOG=warn.
                print(f"--- server stderr ---\n{stderr}--- end server stderr ---")


async def call(session: ClientSession, name: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> types.CallToolResult:
    with anyio.fail_after(STEP_TIMEOUT):
        return await session.call_tool(name, arguments or {}, **kwargs)


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def ok(result: types.CallToolResult) -> types.CallToolResult:
    assert not result.is_error, f"tool failed: {text_of(result)}"
    assert result.content, "a result needs at least one content block"
    return result


# ------------------------------------------------------------------------------ tests


@pytest.mark.anyio
async def test_initialize(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        assert session.protocol_version == ERAS[era]
        assert session.server_info is not None
        assert session.server_info.name == "vultr-inference-mcp"
        assert session.server_info.version
        capabilities = session.server_capabilities
        assert capabilities is not None and capabilities.tools is not None
        assert session.instructions and "chat_completion" in session.instructions
        if era == "handshake":
            assert session.initialize_result is not None
            with anyio.fail_after(STEP_TIMEOUT):
                await session.send_ping()  # ping is gone from 2026-07-28
        else:
            assert session.discover_result is not None
    # Connecting contacts no Vultr API.
    assert fake.requests == []
    assert fake.chat_bodies == []


@pytest.mark.anyio
async def test_list_tools(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        with anyio.fail_after(STEP_TIMEOUT):
            listing = await session.list_tools()
    tools = {tool.name: tool for tool in listing.tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description, f"{tool.name} has no description"
        assert tool.input_schema.get("type") == "object", f"{tool.name}: {tool.input_schema}"
    assert "conversation_id" in tools["delete_conversation"].input_schema.get("properties", {})
    chat_props = tools["chat_completion"].input_schema.get("properties", {})
    for arg in ("model", "prompt", "messages", "tools", "tool_choice", "conversation_id"):
        assert arg in chat_props, f"chat_completion lacks {arg}"


@pytest.mark.anyio
async def test_list_models(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        result = ok(await call(session, "list_models"))
        tools_only = ok(await call(session, "list_models", {"capability": "tools"}))
    assert fake.chat_model in text_of(result)
    assert "plain-chat-7b" in text_of(result)
    assert result.structured_content is not None
    assert fake.chat_model in json.dumps(result.structured_content)
    assert fake.chat_model in text_of(tools_only)
    assert "plain-chat-7b" not in text_of(tools_only)
    # Cached: the second call did not fetch the catalog again.
    assert fake.count("GET", "/v1/models") == 1


@pytest.mark.anyio
async def test_list_subscriptions(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        result = ok(await call(session, "list_subscriptions"))
    everything = text_of(result) + json.dumps(result.structured_content)
    assert fake.subscription_id in everything
    assert fake.subscription_label in everything
    assert f"…{fake.inference_key[-4:]}" in everything  # the key hint: last 4 characters
    assert fake.inference_key not in everything
    assert fake.count("GET", "/v2/inference") == 1


@pytest.mark.anyio
async def test_get_subscription(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        by_label = ok(await call(session, "get_subscription", {"subscription": fake.subscription_label}))
        by_id = ok(await call(session, "get_subscription", {"subscription": fake.subscription_id}))
    for result in (by_label, by_id):
        everything = text_of(result) + json.dumps(result.structured_content)
        assert fake.subscription_id in everything
        assert "MiniMaxAI/MiniMax-M2.5" in everything
        assert "moonshotai/Kimi-K2.5" in everything
        assert "45678" in everything or "45,678" in everything  # tts characters
        assert fake.inference_key not in everything
    assert fake.count("GET", f"/v2/inference/{fake.subscription_id}/usage") >= 2


@pytest.mark.anyio
async def test_speak_wav_is_audio_content_that_decodes_as_wav(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    spoken = "Hello from the Python SDK."
    async with connect(fake, tmp_path, era, VULTR_MCP_TOOLSETS="core,audio") as session:
        result = ok(await call(session, "speak", {"text": spoken, "format": "wav"}))
    audio = [block for block in result.content if isinstance(block, types.AudioContent)]
    assert len(audio) == 1, result.content
    assert audio[0].mime_type == "audio/wav"
    raw = base64.b64decode(audio[0].data)
    with wave.open(io.BytesIO(raw), "rb") as decoded:
        assert decoded.getnchannels() == 1
        assert decoded.getsampwidth() == 2
        seconds = decoded.getnframes() / decoded.getframerate()
    # The fake speaks 0.05 s per character.
    assert abs(seconds - len(spoken) * 0.05) < 0.01, seconds
    assert result.structured_content is not None
    assert abs(result.structured_content["duration_seconds"] - seconds) < 0.01
    links = [block for block in result.content if isinstance(block, types.ResourceLink)]
    assert len(links) == 1 and str(links[0].uri).startswith("vultr://media/")
    assert links[0].mime_type == "audio/wav" and links[0].size == len(raw)
    assert fake.count("POST", "/v1/audio/speech") == 1


@pytest.mark.anyio
async def test_account_key_refused_is_a_tool_error(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era, VULTR_API_KEY=fake.account_key + "-WRONG") as session:
        result = await call(session, "list_subscriptions")
        assert result.is_error
        assert "401" in text_of(result)
        # The server keeps serving after a failure.
        ok(await call(session, "list_models"))


@pytest.mark.anyio
async def test_chat_completion_and_delete_conversation(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        result = ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "hello from python"}))
        assert "echo: hello from python" in text_of(result)
        data = result.structured_content
        assert isinstance(data, dict)
        assert data["content"] == "echo: hello from python"
        assert data["finish_reason"] == "stop"
        assert data["model"] == fake.chat_model
        conversation_id = data["conversation_id"]
        assert isinstance(conversation_id, str) and conversation_id

        # The inference key was discovered through the account API and sent upstream.
        assert fake.count("GET", "/v2/inference") >= 1
        upstream = fake.chat_bodies[-1]
        assert upstream["model"] == fake.chat_model
        assert upstream["messages"][-1] == {"role": "user", "content": "hello from python"}

        # Continue the conversation: the stored turn goes first.
        follow = ok(await call(session, "chat_completion", {"conversation_id": conversation_id, "prompt": "second turn"}))
        assert "echo: second turn" in text_of(follow)
        sent = [m.get("content") for m in fake.chat_bodies[-1]["messages"]]
        assert sent[:3] == ["hello from python", "echo: hello from python", "second turn"], sent

        deleted = ok(await call(session, "delete_conversation", {"conversation_id": conversation_id}))
        assert conversation_id in text_of(deleted) or "delet" in text_of(deleted).lower()

        gone = await call(session, "chat_completion", {"conversation_id": conversation_id, "prompt": "again"})
        assert gone.is_error
        assert "conversation not found" in text_of(gone)

        again = await call(session, "delete_conversation", {"conversation_id": conversation_id})
        assert again.is_error, text_of(again)


@pytest.mark.anyio
async def test_tool_calling_round_trip(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        first = ok(await call(session, "chat_completion", {
            "model": fake.chat_model,
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [WEATHER_TOOL],
        }))
        data = first.structured_content
        assert isinstance(data, dict)
        assert data["finish_reason"] == "tool_calls"
        [tool_call] = data["tool_calls"]
        assert tool_call["id"] == fake.tool_call_id
        assert tool_call["name"] == "get_weather"
        assert tool_call["arguments"] == {"city": "Paris"}
        assistant = data["assistant_message"]
        assert assistant["role"] == "assistant"
        assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
        assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
        assert fake.chat_bodies[-1]["tools"][0]["function"]["name"] == "get_weather"

        weather = json.dumps({"temperature_c": 18, "conditions": "sunny"})
        second = ok(await call(session, "chat_completion", {
            "conversation_id": data["conversation_id"],
            "tools": [WEATHER_TOOL],
            "messages": [{"role": "tool", "tool_call_id": tool_call["id"], "content": weather}],
        }))
        answer = second.structured_content
        assert isinstance(answer, dict)
        assert answer["finish_reason"] == "stop"
        assert answer["content"] == f"Tool result received: {weather}"
        assert not answer.get("tool_calls")
        assert answer["conversation_id"] == data["conversation_id"]

        # What went upstream: user, the assistant's tool call, then the tool result.
        sent = fake.chat_bodies[-1]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"], sent
        assert sent[1]["tool_calls"][0]["id"] == fake.tool_call_id
        assert sent[2]["tool_call_id"] == fake.tool_call_id
        assert sent[2]["content"] == weather


@pytest.mark.anyio
async def test_compare_models_answers_side_by_side_with_a_synthesis(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        models = [fake.chat_model, "plain-chat-7b"]
        result = ok(await call(session, "compare_models", {
            "prompt": "Monolith first?",
            "models": models,
            "stances": ["argue for", "argue against"],
            "judge": fake.chat_model,
            "max_tokens": 100,
        }))
        data = result.structured_content
        assert isinstance(data, dict)
        assert [a["model"] for a in data["answers"]] == models
        assert all(a["content"] == "echo: Monolith first?" for a in data["answers"]), data
        assert data["synthesis"]["labels"] == {"A": models[0], "B": models[1]}
        for model in models:
            assert f"## {model}" in text_of(result)
        # Two answers and the judge went upstream; the judge never saw a model id.
        judge = fake.chat_bodies[-1]
        assert "Answer B" in json.dumps(judge)
        assert "plain-chat-7b" not in json.dumps(judge["messages"])


@pytest.mark.anyio
async def test_upstream_error_is_an_error_result(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    async with connect(fake, tmp_path, era) as session:
        result = await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "TOO_LONG " * 10})
        assert result.is_error is True
        text = text_of(result)
        assert "400" in text, text
        assert "context_length_exceeded" in text, text
        assert fake.inference_key not in text
        # An unknown tool is a protocol error, not a result; the session survives both.
        with pytest.raises(Exception) as caught:
            await call(session, "no_such_tool")
        assert "no_such_tool" in str(caught.value) or "not found" in str(caught.value).lower()
        ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "still alive"}))


@pytest.mark.anyio
async def test_progress_for_slow_streamed_call(fake: FakeVultr, tmp_path: Path, era: str) -> None:
    updates: list[tuple[float, float, float | None, str | None]] = []

    seen_on_wire: list[types.ProgressNotification] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((time.monotonic(), progress, total, message))

    async def on_message(message: Any) -> None:
        # Every notifications/progress the server wrote, including any after the result
        # (which the SDK would no longer route to on_progress).
        if isinstance(message, types.ProgressNotification):
            seen_on_wire.append(message)

    async with connect(fake, tmp_path, era, message_handler=on_message) as session:
        started = time.monotonic()
        result = ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "SLOW please"},
                               progress_callback=on_progress))
        finished = time.monotonic()
        await anyio.sleep(0.7)  # room for a stray late notification to arrive
    assert fake.chat_bodies[-1].get("stream") is True
    data = result.structured_content
    assert isinstance(data, dict)
    assert data["content"].startswith("word0 word1 ")
    assert data["content"].endswith("echo: SLOW please")
    assert data["finish_reason"] == "stop"

    assert updates, "no notifications/progress arrived for a ~3 s streamed call"
    first_at = updates[0][0] - started
    assert first_at >= 0.9, f"first progress after {first_at:.2f}s; the server promises none in the first second"
    progress_values = [u[1] for u in updates]
    assert progress_values == sorted(progress_values), f"progress must not go down: {progress_values}"
    assert len(set(progress_values)) == len(progress_values), f"progress must increase: {progress_values}"
    # At most four a second (one of slack for the window edges).
    assert len(updates) <= 4 * (finished - started) + 1, f"{len(updates)} updates in {finished - started:.2f}s"
    assert any(u[3] for u in updates), "progress messages carry no text"
    assert len(seen_on_wire) == len(updates), (
        f"{len(seen_on_wire)} progress notifications on the wire, {len(updates)} before the result: "
        "the server sent progress after the result"
    )


@pytest.mark.anyio
async def test_cancelled_call_stops_upstream_work(
    fake: FakeVultr, tmp_path: Path, era: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK logs (at debug) every response it drops for a request it no longer waits for.
    caplog.set_level(logging.DEBUG, logger="mcp.shared.jsonrpc_dispatcher")
    async with connect(fake, tmp_path, era) as session:
        outcome: dict[str, Any] = {}

        async def hanging_call(task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
            with anyio.CancelScope() as scope:
                task_status.started(scope)
                outcome["result"] = await session.call_tool(
                    "chat_completion", {"model": fake.chat_model, "prompt": "HANG until cancelled"})
            outcome["cancelled"] = scope.cancelled_caught

        async with anyio.create_task_group() as tg:
            scope = await tg.start(hanging_call)
            hanging = await anyio.to_thread.run_sync(
                lambda: fake.wait_until(lambda state: state["stream_events"] > 0, 15))
            assert hanging is not None, "the HANG request never reached the fake"
            cancelled_at = time.monotonic()
            scope.cancel()  # the SDK sends notifications/cancelled for the abandoned request

        assert outcome.get("cancelled") is True
        assert "result" not in outcome
        [hang] = [b for b in fake.chat_bodies if "HANG" in json.dumps(b["messages"])]
        closed_at = await anyio.to_thread.run_sync(
            lambda: fake.wait_until(lambda state: state["stalls_closed"] == 1, 5))
        assert closed_at is not None, "the server kept the upstream request open after notifications/cancelled"
        delay = closed_at - cancelled_at
        assert delay < 3, f"upstream connection closed {delay:.2f}s after the cancel"

        # Nothing is sent back for a cancelled request.
        await anyio.sleep(0.5)
        late = [r.getMessage() for r in caplog.records if "unknown/late request id" in r.getMessage()]
        assert not late, f"the server answered the cancelled request: {late}"

        # The session still works afterwards.
        after = ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "after the cancel"}))
        assert "echo: after the cancel" in text_of(after)
        ok(await call(session, "list_models"))


# ------------------------------------------------------------------------------ over streamable HTTP

LISTENING = re.compile(r"^listening on (http://127\.0\.0\.1:\d+/mcp)$", re.MULTILINE)


class HttpServer:
    """The server started with `--http 127.0.0.1:0`: its process and the URL it printed.

    It prints `listening on http://127.0.0.1:PORT/mcp` to stderr once it listens, with the port
    it picked; stderr goes to a file the tests read (and show when a test fails).
    """

    def __init__(self, fake: FakeVultr, tmp_path: Path, **env: str) -> None:
        binary = server_binary()
        assert Path(binary).is_file(), f"server binary not found at {binary}: build it or set VULTR_MCP_BIN"
        # The developer's own VULTR_* settings must not reach the server under test.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("VULTR_")}
        self.stderr_path = tmp_path / "server-stderr.log"
        with open(self.stderr_path, "w", encoding="utf-8") as stderr:
            self.process = subprocess.Popen(
                [binary, "--http", "127.0.0.1:0"],
                env={**inherited, **server_env(fake, **env)},
                cwd=str(tmp_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            self.url = self._wait_for_url()
        except BaseException:
            self.stop()
            raise

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            listening = LISTENING.search(self.stderr())
            if listening:
                return listening.group(1)
            assert self.process.poll() is None, f"the server exited ({self.process.returncode}) before listening"
            time.sleep(0.02)
        raise AssertionError(f"no 'listening on' line within {STEP_TIMEOUT} s")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def http_server(fake: FakeVultr, tmp_path: Path) -> Iterator[HttpServer]:
    server = HttpServer(fake, tmp_path)
    try:
        yield server
    finally:
        server.stop()
        # Shown by pytest for failing tests: what the server logged at RUST_LOG=warn.
        print(f"--- server stderr ---\n{server.stderr()}--- end server stderr ---")


@asynccontextmanager
async def connect_http(url: str, era: str, message_handler: Any = None) -> AsyncIterator[ClientSession]:
    """Connects an SDK session in `era` to the server's `/mcp` over streamable HTTP.

    "handshake": `streamable_http_client` + `ClientSession.initialize()` (the server answers
    with an `Mcp-Session-Id` session); "discover": `Client(url)`, which probes `server/discover`
    and then sends each request on its own, stateless (protocol 2026-07-28).
    """
    client_info = types.Implementation(name="interop-python-http", version="1.0.0")
    if era == "handshake":
        async with streamable_http_client(url) as (read, write):
            async with ClientSession(
                read, write, read_timeout_seconds=STEP_TIMEOUT, client_info=client_info, message_handler=message_handler
            ) as session:
                with anyio.fail_after(STEP_TIMEOUT):
                    await session.initialize()
                yield session
    else:
        async with Client(
            url, mode="auto", read_timeout_seconds=STEP_TIMEOUT, client_info=client_info, message_handler=message_handler
        ) as client:
            yield client.session


async def read_text(session: ClientSession, uri: str) -> str:
    with anyio.fail_after(STEP_TIMEOUT):
        result = await session.read_resource(uri)
    [contents] = result.contents
    assert isinstance(contents, types.TextResourceContents), contents
    assert contents.uri == uri
    return contents.text


@pytest.mark.anyio
async def test_http_initialize_and_list_tools(fake: FakeVultr, http_server: HttpServer, era: str) -> None:
    async with connect_http(http_server.url, era) as session:
        assert session.protocol_version == ERAS[era]
        assert session.server_info is not None
        assert session.server_info.name == "vultr-inference-mcp"
        capabilities = session.server_capabilities
        assert capabilities is not None and capabilities.tools is not None
        assert capabilities.resources is not None
        assert session.instructions and "chat_completion" in session.instructions
        with anyio.fail_after(STEP_TIMEOUT):
            listing = await session.list_tools()
    assert {tool.name for tool in listing.tools} == TOOLS
    # Connecting and listing contact no Vultr API.
    assert fake.requests == []


@pytest.mark.anyio
async def test_http_session_close_is_quiet(
    fake: FakeVultr, http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK closes its session with DELETE and accepts only 200/204 (rmcp answers 202,
    which made it warn "Session termination failed: 202" after every session)."""
    caplog.set_level(logging.DEBUG)
    async with connect_http(http_server.url, "handshake") as session:
        ok(await call(session, "list_models"))
    complaints = [r.getMessage() for r in caplog.records if "termination" in r.getMessage().lower()]
    assert complaints == [], complaints


@pytest.mark.anyio
async def test_http_list_models(fake: FakeVultr, http_server: HttpServer, era: str) -> None:
    async with connect_http(http_server.url, era) as session:
        result = ok(await call(session, "list_models"))
        tools_only = ok(await call(session, "list_models", {"capability": "tools"}))
    assert fake.chat_model in text_of(result)
    assert "plain-chat-7b" in text_of(result)
    assert fake.chat_model in json.dumps(result.structured_content)
    assert "plain-chat-7b" not in text_of(tools_only)
    # One server process, one catalog cache, across HTTP requests.
    assert fake.count("GET", "/v1/models") == 1


@pytest.mark.anyio
async def test_http_conversation_continued_and_read_as_resource(
    fake: FakeVultr, http_server: HttpServer, era: str
) -> None:
    async with connect_http(http_server.url, era) as session:
        first = ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "hello over http"}))
        data = first.structured_content
        assert isinstance(data, dict)
        assert data["content"] == "echo: hello over http"
        conversation_id = data["conversation_id"]

        follow = ok(await call(session, "chat_completion", {"conversation_id": conversation_id, "prompt": "second turn"}))
        assert "echo: second turn" in text_of(follow)
        sent = [m.get("content") for m in fake.chat_bodies[-1]["messages"]]
        assert sent[:3] == ["hello over http", "echo: hello over http", "second turn"], sent

        listing = json.loads(await read_text(session, "vultr://conversations"))
        [summary] = [c for c in listing["conversations"] if c["id"] == conversation_id]
        assert summary["uri"] == f"vultr://conversations/{conversation_id}"
        assert summary["turns"] == 2
        transcript = await read_text(session, summary["uri"])
        for said in ("hello over http", "echo: hello over http", "second turn", "echo: second turn"):
            assert said in transcript, transcript

        ok(await call(session, "delete_conversation", {"conversation_id": conversation_id}))
        with pytest.raises(Exception) as caught:
            await read_text(session, summary["uri"])
        assert "no such resource" in str(caught.value), caught.value
    assert fake.inference_key not in transcript


@pytest.mark.anyio
async def test_http_progress_for_slow_streamed_call(fake: FakeVultr, http_server: HttpServer, era: str) -> None:
    updates: list[float] = []
    seen_on_wire: list[types.ProgressNotification] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ProgressNotification):
            seen_on_wire.append(message)

    async with connect_http(http_server.url, era, message_handler=on_message) as session:
        result = ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "SLOW please"},
                               progress_callback=on_progress))
        await anyio.sleep(0.7)  # room for a stray late notification to arrive
    data = result.structured_content
    assert isinstance(data, dict)
    assert data["content"].endswith("echo: SLOW please")
    # Progress came on the call's own response stream, increasing, and none after the result.
    assert updates, "no notifications/progress arrived over HTTP for a ~3 s streamed call"
    assert updates == sorted(set(updates)), f"progress must increase: {updates}"
    assert len(seen_on_wire) == len(updates), f"{len(seen_on_wire)} on the wire, {len(updates)} before the result"


@pytest.mark.anyio
async def test_http_cancelled_call_stops_upstream_work(fake: FakeVultr, http_server: HttpServer, era: str) -> None:
    # handshake: the SDK sends notifications/cancelled; discover (2026-07-28): it closes the
    # request's response stream. Either way the server closes its request to Vultr.
    async with connect_http(http_server.url, era) as session:
        outcome: dict[str, Any] = {}

        async def hanging_call(task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
            with anyio.CancelScope() as scope:
                task_status.started(scope)
                outcome["result"] = await session.call_tool(
                    "chat_completion", {"model": fake.chat_model, "prompt": "HANG until cancelled"})
            outcome["cancelled"] = scope.cancelled_caught

        async with anyio.create_task_group() as tg:
            scope = await tg.start(hanging_call)
            hanging = await anyio.to_thread.run_sync(
                lambda: fake.wait_until(lambda state: state["stream_events"] > 0, 15))
            assert hanging is not None, "the HANG request never reached the fake"
            scope.cancel()

        assert outcome.get("cancelled") is True
        assert "result" not in outcome
        closed = await anyio.to_thread.run_sync(
            lambda: fake.wait_until(lambda state: state["stalls_closed"] == 1, 5))
        assert closed is not None, "the server kept the upstream request open after the cancel"
        # The server still serves this client.
        after = ok(await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "after the cancel"}))
        assert "echo: after the cancel" in text_of(after)


@pytest.mark.anyio
async def test_http_sigterm_lets_the_call_in_flight_finish_then_exits_0(
    fake: FakeVultr, http_server: HttpServer, era: str
) -> None:
    async with connect_http(http_server.url, era) as session:
        # The SDK checks a result against the tool's output schema, listing the tools first if
        # it has not yet: list them now, while the server still accepts connections.
        with anyio.fail_after(STEP_TIMEOUT):
            await session.list_tools()
        outcome: dict[str, types.CallToolResult] = {}

        async def slow_call() -> None:
            outcome["result"] = await call(session, "chat_completion", {"model": fake.chat_model, "prompt": "SLOW please"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_call)
            streaming = await anyio.to_thread.run_sync(
                lambda: fake.wait_until(lambda state: state["chat_bodies"], STEP_TIMEOUT))
            assert streaming is not None, "the SLOW request never reached the fake"
            http_server.process.send_signal(signal.SIGTERM)
        # The call that was running when SIGTERM came finished with its whole answer.
        data = ok(outcome["result"]).structured_content
        assert isinstance(data, dict)
        assert data["content"].endswith("echo: SLOW please")
        assert data["finish_reason"] == "stop"
    status = await anyio.to_thread.run_sync(lambda: http_server.process.wait(timeout=STEP_TIMEOUT))
    assert status == 0
