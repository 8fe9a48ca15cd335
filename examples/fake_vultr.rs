//! The tests' fake Vultr as a process, for the Python interop run (`interop/python/`).
//!
//! Starts the wiremock fake (`tests/support/fake_vultr/mod.rs`, both APIs) and, in front of
//! its inference API, the raw fault server (`tests/support/fake_vultr/faults.rs`) with the
//! prompt markers of the interop tests:
//!
//! - `TOO_LONG` anywhere in the messages: 400 `context_length_exceeded`;
//! - `SLOW` (streamed): 15 chunks `word0 ` … `word14 ` 200 ms apart, then `echo: <prompt>`;
//! - `HANG` (streamed): one chunk `Thinking`, then nothing until the client closes;
//! - a line `DELEGATE_CALL <tool> <arguments JSON>` (streamed): a two-turn tool loop for the
//!   delegate interop (`interop/delegate/`): while no tool result is in the messages, the model
//!   calls `<tool>` with `<arguments JSON>` (call id `call_delegate_1`); once one is, it answers
//!   `the tool said: <that result>`.
//!
//! Everything else is relayed to the wiremock fake. On start it prints one JSON line to stdout:
//! both base URLs and the fake's ids and keys. Then, for each line `state` on stdin, one JSON
//! line: `requests` (`[method, path]` as the wiremock fake received them), `chat_bodies`
//! (every chat request body), `stalls_closed` (HANG answers whose client hung up) and
//! `stream_events` (events written by the latest marker stream). It exits when stdin closes.
//!
//! ```sh
//! cargo run --example fake_vultr
//! ```

#[allow(dead_code)]
#[path = "../tests/support/fake_vultr/mod.rs"]
mod fake_vultr;

use std::time::Duration;

use fake_vultr::faults::{Fault, FaultServer, Rule, StreamEnd, content_chunks};
use fake_vultr::{
    ACCOUNT_KEY, CATALOG_DOCUMENT_24, DEFAULT_SUBSCRIPTION_ID, DEFAULT_SUBSCRIPTION_KEY,
    DEFAULT_SUBSCRIPTION_LABEL, FakeVultr, TOOL_CALL_ID, content_text,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Content chunks of a `SLOW` stream before the echo.
const SLOW_CHUNKS: usize = 15;
/// Pause between two chunks of a `SLOW` stream.
const SLOW_INTERVAL: Duration = Duration::from_millis(200);
/// The prompt marker of a scripted delegate tool loop.
const DELEGATE_CALL: &str = "DELEGATE_CALL ";
/// The id of the tool call a `DELEGATE_CALL` turn asks for.
const DELEGATE_CALL_ID: &str = "call_delegate_1";

#[tokio::main]
async fn main() {
    let wiremock = FakeVultr::start().await;
    let origin = wiremock.mock_server().uri();
    let front = FaultServer::in_front_of(&origin, vec![Rule::new(marker_fault)]).await;

    let catalog: Value = serde_json::from_str(CATALOG_DOCUMENT_24).expect("catalog fixture");
    let started = json!({
        "account_base_url": wiremock.account_base_url(),
        "inference_base_url": front.base_url(),
        "account_key": ACCOUNT_KEY,
        "subscription_id": DEFAULT_SUBSCRIPTION_ID,
        "subscription_label": DEFAULT_SUBSCRIPTION_LABEL,
        "inference_key": DEFAULT_SUBSCRIPTION_KEY,
        "tool_call_id": TOOL_CALL_ID,
        "chat_model": catalog["data"][0]["id"],
    });
    println!("{started}");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() != "state" {
            eprintln!("fake_vultr: unknown command {line:?} (the only one is `state`)");
            continue;
        }
        let requests: Vec<Value> = wiremock
            .requests()
            .await
            .into_iter()
            .map(|r| json!([r.method, r.path]))
            .collect();
        let state = json!({
            "requests": requests,
            "chat_bodies": front.chat_bodies(),
            "stalls_closed": front.stalls_closed_by_client(),
            "stream_events": front.last_stream_events().len(),
        });
        println!("{state}");
    }
}

/// The answer a prompt marker asks for, if the request's messages carry one.
fn marker_fault(body: &Value) -> Option<Fault> {
    let messages = body.get("messages")?.as_array()?;
    let text: Vec<String> = messages
        .iter()
        .map(|m| content_text(m.get("content")))
        .collect();
    let has = |marker: &str| text.iter().any(|t| t.contains(marker));
    let streamed = body.get("stream") == Some(&Value::Bool(true));
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if streamed && let Some(fault) = delegate_turn(messages, &text, model) {
        return Some(fault);
    }
    if has("TOO_LONG") {
        let error = json!({"error": {
            "message": "context_length_exceeded", "code": 400, "type": "invalid_request_error",
        }});
        return Some(Fault::Status {
            status: 400,
            headers: Vec::new(),
            body: error.to_string(),
        });
    }
    if streamed && has("HANG") {
        return Some(Fault::Stream {
            chunks: content_chunks(model, &["Thinking"], false),
            interval: Duration::ZERO,
            then: StreamEnd::Stall,
        });
    }
    if streamed && has("SLOW") {
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| content_text(m.get("content")))
            .unwrap_or_default();
        let mut pieces: Vec<String> = (0..SLOW_CHUNKS).map(|i| format!("word{i} ")).collect();
        pieces.push(format!("echo: {last_user}"));
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        return Some(Fault::Stream {
            chunks: content_chunks(model, &pieces, true),
            interval: SLOW_INTERVAL,
            then: StreamEnd::Done,
        });
    }
    None
}

/// The next streamed turn of a `DELEGATE_CALL` tool loop, if a message carries the marker
/// line: the tool call it names, or, once the messages hold a tool result, an answer quoting it.
fn delegate_turn(messages: &[Value], text: &[String], model: &str) -> Option<Fault> {
    let (tool, arguments) = text
        .iter()
        .flat_map(|t| t.lines())
        .find_map(|line| line.trim().strip_prefix(DELEGATE_CALL))?
        .trim()
        .split_once(' ')?;
    let result = messages
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| content_text(m.get("content")));
    let (delta, finish) = match result {
        None => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": DELEGATE_CALL_ID, "type": "function",
                "function": {"name": tool, "arguments": arguments.trim()},
            }]}),
            "tool_calls",
        ),
        Some(result) => (
            json!({"role": "assistant", "content": format!("the tool said: {result}")}),
            "stop",
        ),
    };
    let usage = json!({"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110});
    let chunks = [
        json!({"id": "x", "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": null}]}),
        json!({"id": "x", "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage}),
    ];
    Some(Fault::Stream {
        chunks: chunks.iter().map(Value::to_string).collect(),
        interval: Duration::ZERO,
        then: StreamEnd::Done,
    })
}
