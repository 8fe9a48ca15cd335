"""A fake Vultr (account API under /v2, inference API under /v1) for the Python interop tests.

Standard library only: `ThreadingHTTPServer` on 127.0.0.1, an ephemeral port, HTTP/1.1
with keep-alive (JSON bodies carry Content-Length, streams use chunked encoding, as the
real API does).

The fake model answers like the Rust fake in tests/support/fake_vultr.rs:
- last message has role `tool`      -> "Tool result received: <content>"
- `tools` given, tool_choice != none -> one call `call_py_1` to get_weather {"city":"Paris"}
- otherwise                          -> "echo: <last user content>"

Prompts with these markers change the behaviour:
- "TOO_LONG": HTTP 400 context_length_exceeded
- "SLOW":     (streamed) ~15 content chunks 200 ms apart
- "HANG":     (streamed) one chunk, then waits up to 30 s; records when the client closes
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT_KEY = "acct-py-key-0000000000"
SUBSCRIPTION_ID = "5a6b7c8d-0000-4111-8222-933344445555"
INFERENCE_KEY = "INFKEY-PY-0000-1111-2222"
TOOL_CALL_ID = "call_py_1"
TOOL_CALL_ARGUMENTS = '{"city":"Paris"}'
CHAT_MODEL = "glm-5.2"

SUBSCRIPTION = {
    "id": SUBSCRIPTION_ID,
    "label": "main",
    "date_created": "2024-06-05T10:13:31+00:00",
    "api_key": INFERENCE_KEY,
}

# The usage example of the account API spec (shared/vultr-api.md A.2).
USAGE = {
    "usage": {
        "chat_by_model": {
            "current_month": [
                {"model": "MiniMaxAI/MiniMax-M2.5", "tokens": 1000000, "input_tokens": 500000,
                 "output_price": 120, "input_price": 30},
                {"model": "moonshotai/Kimi-K2.5", "tokens": 1234567, "input_tokens": 500000,
                 "output_price": 275, "input_price": 55},
            ],
            "previous_month": [
                {"model": "moonshotai/Kimi-K2.5", "tokens": 6543210, "input_tokens": 12425821,
                 "output_price": 275, "input_price": 55},
            ],
        },
        "audio": {"tts_characters": 45678, "tts_sm_characters": 23456},
        "image": {"megapixels": 21.35, "sm_megapixels": 6.55},
        "chat": {"completion_tokens": 56782401, "cost": 156.16, "input_tokens": 10380472,
                 "input_cost": 5.71, "current_tokens": None, "monthly_allotment": None,
                 "overage": None},
    }
}

# A Model Document 2.4 catalog (the shape of tests/fixtures/catalog-2.4.json).
CATALOG = {
    "data": [
        {
            "schema_version": "2.4",
            "id": CHAT_MODEL,
            "name": "GLM 5.2",
            "created": 1788472794,
            "description": "GLM-5.2 is Z.ai's flagship model for agentic coding and long-context reasoning.",
            "datacenters": [{"country_code": "US", "region": "atl"}],
            "hugging_face_id": "nvidia/GLM-5.2-NVFP4",
            "quantization": "nvfp4",
            "input_modalities": [
                {
                    "type": "text",
                    "supported_inputs": {"max_context_length": {"value": 1048576, "unit": "token"}},
                    "pricing": [{"type": "prompt", "unit": "token", "cost_usd": "0.00000075"}],
                }
            ],
            "output_modalities": [
                {
                    "type": "text",
                    "streaming": True,
                    "max_length": {"value": 1048576, "unit": "token"},
                    "supported_parameters": {
                        "temperature": {"type": "range", "min": 0, "max": 2},
                        "top_p": {"type": "range", "min": 0, "max": 1},
                        "max_tokens": {"type": "integer", "min": 1, "max": 131072, "unit": "token"},
                        "stop": {"type": "array", "items": {"type": "unknown"}, "max_items": 4},
                        "seed": {"type": "boolean"},
                        "tools": {"type": "boolean"},
                    },
                    "pricing": [{"type": "completion", "unit": "token", "cost_usd": "0.000003"}],
                }
            ],
            "reasoning": {
                "mandatory": False,
                "default_effort": None,
                "default_enabled": None,
                "supported_efforts": ["high", "medium", "low"],
                "supports_max_tokens": True,
            },
        },
        {
            "schema_version": "2.4",
            "id": "plain-chat-7b",
            "name": "Plain Chat 7B",
            "created": 1735689600,
            "description": "A small chat model without tool calling or streaming (test fixture).",
            "datacenters": [{"country_code": "US", "region": "atl"}],
            "hugging_face_id": None,
            "quantization": "bf16",
            "input_modalities": [
                {"type": "text", "supported_inputs": {"max_context_length": {"value": 32768, "unit": "token"}}}
            ],
            "output_modalities": [
                {
                    "type": "text",
                    "streaming": False,
                    "max_length": {"value": 32768, "unit": "token"},
                    "supported_parameters": {
                        "temperature": {"type": "range", "min": 0, "max": 2},
                        "max_tokens": {"type": "integer", "min": 1, "max": 8192, "unit": "token"},
                    },
                }
            ],
            "reasoning": None,
        },
        {
            "schema_version": "2.4",
            "id": "qwen3-embedding-4b",
            "name": "Qwen3 Embedding 4B",
            "created": 1750000000,
            "description": "Text embedding model.",
            "datacenters": [{"country_code": "US", "region": "atl"}],
            "hugging_face_id": "Qwen/Qwen3-Embedding-4B",
            "quantization": "bf16",
            "input_modalities": [
                {
                    "type": "text",
                    "supported_inputs": {"max_context_length": {"value": 32768, "unit": "token"}},
                    "pricing": [{"type": "prompt", "unit": "token", "cost_usd": "0.00000002"}],
                }
            ],
            "output_modalities": [
                {
                    "type": "embeddings",
                    "supported_parameters": {"dimensions": {"type": "integer", "min": 32, "max": 2560}},
                }
            ],
            "reasoning": None,
        },
    ]
}

SLOW_CHUNKS = 15
SLOW_INTERVAL = 0.2
HANG_LIMIT = 30.0


def content_text(content: Any) -> str:
    """The text of a message `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass
class Hang:
    """One HANG request: when it started streaming and when the client went away."""

    started: float
    closed_at: float | None = None
    closed: threading.Event = field(default_factory=threading.Event)


class FakeVultr:
    """The fake, started on 127.0.0.1:0 in a background thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.chat_bodies: list[dict[str, Any]] = []
        self.hangs: list[Hang] = []
        self.hang_started = threading.Event()
        self.stopping = threading.Event()
        fake = self

        class Handler(_Handler):
            owner = fake

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-vultr", daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def account_base_url(self) -> str:
        return f"{self.base}/v2"

    @property
    def inference_base_url(self) -> str:
        return f"{self.base}/v1"

    def start(self) -> "FakeVultr":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r == (method, path))


class _Handler(BaseHTTPRequestHandler):
    owner: FakeVultr
    protocol_version = "HTTP/1.1"
    server_version = "FakeVultr/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: pytest shows failures, not access logs

    # ---------------------------------------------------------------- plumbing

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[len("Bearer "):] if value.startswith("Bearer ") else None

    def _record(self) -> None:
        with self.owner.lock:
            self.owner.requests.append((self.command, self.path.split("?")[0]))

    # ----------------------------------------------------------------- routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._record()
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/models":
            self._send_json(200, CATALOG)
            return
        if path.startswith("/v2/"):
            self._account(path)
            return
        self._send_json(404, {"error": f"no route for GET {path}", "status": 404})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._record()
        path = self.path.split("?")[0].rstrip("/")
        body = self._read_body()
        if path == "/v1/chat/completions":
            self._chat(body)
            return
        self._send_json(404, {"error": f"no route for POST {path}", "status": 404})

    def _account(self, path: str) -> None:
        if self._bearer() != ACCOUNT_KEY:
            self._send_json(401, {"error": "Invalid API token.", "status": 401})
            return
        parts = path.split("/")  # ["", "v2", "inference", id?, "usage"?]
        if parts[:3] != ["", "v2", "inference"]:
            self._send_json(404, {"error": "Not found", "status": 404})
        elif len(parts) == 3:
            self._send_json(200, {"subscriptions": [SUBSCRIPTION]})
        elif parts[3] != SUBSCRIPTION_ID:
            self._send_json(404, {"error": "Subscription not found.", "status": 404})
        elif len(parts) == 4:
            self._send_json(200, {"subscription": SUBSCRIPTION})
        elif len(parts) == 5 and parts[4] == "usage":
            self._send_json(200, USAGE)
        else:
            self._send_json(404, {"error": "Not found", "status": 404})

    def _inference_error(self, status: int, message: str, code: Any, kind: str) -> None:
        self._send_json(status, {"error": {"message": message, "code": code, "type": kind}})

    def _chat(self, raw: bytes) -> None:
        if self._bearer() != INFERENCE_KEY:
            self._inference_error(401, "Invalid API key", 401, "authentication_error")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._inference_error(400, "Request body is not valid JSON", 400, "invalid_request_error")
            return
        with self.owner.lock:
            self.owner.chat_bodies.append(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._inference_error(400, "`messages` is required", 400, "invalid_request_error")
            return
        model = body.get("model")
        if model not in {m["id"] for m in CATALOG["data"]}:
            self._inference_error(404, f"The model `{model}` does not exist", "model_not_found",
                                  "invalid_request_error")
            return

        all_text = " ".join(content_text(m.get("content")) for m in messages)
        if "TOO_LONG" in all_text:
            self._inference_error(400, "context_length_exceeded", 400, "invalid_request_error")
            return

        last = messages[-1]
        tools = body.get("tools") or []
        tool_call = False
        if last.get("role") == "tool":
            text = f"Tool result received: {content_text(last.get('content'))}"
        elif tools and body.get("tool_choice") != "none":
            tool_call = True
            text = ""
        else:
            last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
            text = f"echo: {content_text(last_user.get('content'))}"

        prompt_tokens = max(1, len(all_text) // 4)
        completion_tokens = 12 if tool_call else max(1, len(text) // 4)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        finish = "tool_calls" if tool_call else "stop"
        completion_id = f"chatcmpl-py-{len(self.owner.chat_bodies)}"

        if body.get("stream") is True:
            self._stream(completion_id, model, text, tool_call, finish, usage, all_text)
            return

        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_call:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": TOOL_CALL_ID, "type": "function",
                "function": {"name": "get_weather", "arguments": TOOL_CALL_ARGUMENTS}}]}
        self._send_json(200, {
            "id": completion_id, "object": "chat.completion", "created": 1788480000, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        })

    # -------------------------------------------------------------- streaming

    def _stream(self, completion_id: str, model: str, text: str, tool_call: bool, finish: str,
                usage: dict[str, int], prompt: str) -> None:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
            out = {"id": completion_id, "object": "chat.completion.chunk", "created": 1788480000,
                   "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            out.update(extra or {})
            return out

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        try:
            self._event(chunk({"role": "assistant", "content": ""}))
            if "HANG" in prompt:
                self._event(chunk({"content": "Thinking"}))
                self._hang()
                return
            if tool_call:
                head, tail = TOOL_CALL_ARGUMENTS[:8], TOOL_CALL_ARGUMENTS[8:]
                self._event(chunk({"tool_calls": [{"index": 0, "id": TOOL_CALL_ID, "type": "function",
                                                   "function": {"name": "get_weather", "arguments": ""}}]}))
                self._event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": head}}]}))
                self._event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": tail}}]}))
            elif "SLOW" in prompt:
                for i in range(SLOW_CHUNKS):
                    self._event(chunk({"content": f"word{i} "}))
                    time.sleep(SLOW_INTERVAL)
                self._event(chunk({"content": text}))
            else:
                middle = len(text) // 2
                self._event(chunk({"content": text[:middle]}))
                self._event(chunk({"content": text[middle:]}))
            self._event(chunk({}, finish))
            self._event(chunk({}, None, {"choices": [], "usage": usage}))
            self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _event(self, payload: dict[str, Any]) -> None:
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _hang(self) -> None:
        """Sends nothing more, for up to HANG_LIMIT seconds, watching for the client to leave."""
        hang = Hang(started=time.monotonic())
        with self.owner.lock:
            self.owner.hangs.append(hang)
        self.owner.hang_started.set()
        sock: socket.socket = self.connection
        deadline = hang.started + HANG_LIMIT
        while time.monotonic() < deadline and not self.owner.stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if not readable:
                continue
            try:
                peeked = sock.recv(1, socket.MSG_PEEK)
            except OSError:
                peeked = b""
            if not peeked:  # EOF or reset: the client closed the connection
                hang.closed_at = time.monotonic()
                hang.closed.set()
                break
            # The client sent bytes mid-response (it should not); keep waiting.
            time.sleep(0.05)
        self.close_connection = True


if __name__ == "__main__":  # manual use: python fake_vultr.py, then point the server at it
    fake = FakeVultr().start()
    print(f"VULTR_API_BASE_URL={fake.account_base_url}")
    print(f"VULTR_INFERENCE_BASE_URL={fake.inference_base_url}")
    print(f"VULTR_API_KEY={ACCOUNT_KEY}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
