"""Interop: asking before an expensive call (VULTR_MCP_CONFIRM_ABOVE_USD), driven by the official
Python SDK (mcp 2.x) over stdio and over streamable HTTP, in both protocol generations.

- "handshake" (`ClientSession.initialize()`, protocol 2025-11-25): the server sends
  `elicitation/create` to a client whose `ClientSession` has an `elicitation_callback`.
- "discover" (`mcp.client.Client`, protocol 2026-07-28): the server answers the call with an
  input-required result; the SDK's `Client.call_tool` puts it to the same callback and makes
  the call again with the answer.

Accepted (the form's `send` box ticked): the chat reaches the fake Vultr. Declined: an error
result saying so, and the fake sees no chat request. A client without an elicitation callback
(so without the capability) is refused with a message naming the setting. A call under the
threshold is not asked about. Helpers and fixtures come from test_interop.py; run through
`bash interop/python/run.sh`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from test_interop import (  # noqa: F401 (fixtures are found by name)
    ERAS,
    STEP_TIMEOUT,
    FakeVultr,
    HttpServer,
    anyio_backend,
    era,
    fake,
    server_binary,
    server_env,
    text_of,
)

SETTING = "VULTR_MCP_CONFIRM_ABOVE_USD"
# A chat on kimi-k2-instruct without max_tokens could cost about $0.0328 (16384 output tokens at
# $2 per million): above this. With max_tokens 10, a few millionths of a dollar: below.
THRESHOLD = "0.01"
EXPENSIVE = {"model": "kimi-k2-instruct", "prompt": "hello from python"}
CHEAP = {**EXPENSIVE, "max_tokens": 10}


class User:
    """An elicitation callback that answers `reply` ("send", "decline", "cancel") and keeps what it was asked."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams), params
        schema = params.requested_schema
        assert schema["properties"]["send"]["type"] == "boolean", schema
        self.asked.append(params.message)
        if self.reply == "send":
            return types.ElicitResult(action="accept", content={"send": True})
        return types.ElicitResult(action=self.reply)


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@asynccontextmanager
async def connect(
    fake: FakeVultr, tmp_path: Path, era: str, transport: str, user: User | None
) -> AsyncIterator[Any]:
    """A client of a server asking above THRESHOLD, with `user` as its elicitation callback (None:
    no callback, so no elicitation capability). Yields what the test calls tools on: the
    `ClientSession` (handshake) or the `Client` (discover, whose `call_tool` answers input-required
    results through the callback)."""
    client_info = types.Implementation(name="interop-python-confirm", version="1.0.0")
    callback = {"elicitation_callback": user} if user is not None else {}
    http: HttpServer | None = None
    errlog_path = tmp_path / "stdio-stderr.log"
    errlog = open(errlog_path, "w+", encoding="utf-8")
    try:
        if transport == "http":
            http = HttpServer(fake, tmp_path, **{SETTING: THRESHOLD})
            if era == "handshake":
                opened = streamable_http_client(http.url)
            else:
                opened = None
            target: Any = http.url
        else:
            binary = server_binary()
            params = StdioServerParameters(
                command=binary, args=[], env=server_env(fake, **{SETTING: THRESHOLD}), cwd=str(tmp_path)
            )
            opened = stdio_client(params, errlog=errlog)
            target = opened
        if era == "handshake":
            assert opened is not None
            async with opened as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(
                    read, write, read_timeout_seconds=STEP_TIMEOUT, client_info=client_info, **callback
                ) as session:
                    with anyio.fail_after(STEP_TIMEOUT):
                        await session.initialize()
                    assert session.protocol_version == ERAS[era]
                    yield session
        else:
            async with Client(
                target, mode="auto", read_timeout_seconds=STEP_TIMEOUT, client_info=client_info, **callback
            ) as client:
                assert client.session.protocol_version == ERAS[era]
                yield client
    finally:
        errlog.close()
        logged = http.stderr() if http is not None else errlog_path.read_text(encoding="utf-8")
        if http is not None:
            http.stop()
        if logged.strip():
            print(f"--- server stderr ---\n{logged}--- end server stderr ---")


async def chat(client: Any, arguments: dict[str, Any]) -> types.CallToolResult:
    with anyio.fail_after(STEP_TIMEOUT):
        return await client.call_tool("chat_completion", arguments)


@pytest.mark.anyio
async def test_accepted_call_is_sent_after_the_user_saw_model_and_cost(
    fake: FakeVultr, tmp_path: Path, era: str, transport: str
) -> None:
    user = User("send")
    async with connect(fake, tmp_path, era, transport, user) as client:
        result = await chat(client, EXPENSIVE)
    assert not result.is_error, text_of(result)
    assert "echo: hello from python" in text_of(result)
    assert len(user.asked) == 1, user.asked
    assert "kimi-k2-instruct" in user.asked[0] and "$0.0328" in user.asked[0], user.asked[0]
    assert len(fake.chat_bodies) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("reply", ["decline", "cancel"])
async def test_declined_call_is_an_error_and_nothing_is_sent(
    fake: FakeVultr, tmp_path: Path, era: str, transport: str, reply: str
) -> None:
    user = User(reply)
    async with connect(fake, tmp_path, era, transport, user) as client:
        result = await chat(client, EXPENSIVE)
    assert result.is_error
    assert "not sent: the user declined" in text_of(result), text_of(result)
    assert len(user.asked) == 1, user.asked
    assert fake.chat_bodies == []


@pytest.mark.anyio
async def test_client_without_elicitation_is_refused_naming_the_setting(
    fake: FakeVultr, tmp_path: Path, era: str, transport: str
) -> None:
    async with connect(fake, tmp_path, era, transport, None) as client:
        result = await chat(client, EXPENSIVE)
    assert result.is_error
    assert SETTING in text_of(result), text_of(result)
    assert fake.chat_bodies == []


@pytest.mark.anyio
async def test_call_under_the_threshold_is_not_asked_about(
    fake: FakeVultr, tmp_path: Path, era: str, transport: str
) -> None:
    user = User("decline")  # would refuse: the call goes through only because nobody asks
    async with connect(fake, tmp_path, era, transport, user) as client:
        result = await chat(client, CHEAP)
    assert not result.is_error, text_of(result)
    assert user.asked == []
    assert len(fake.chat_bodies) == 1
