//! Streamed chat completions: models whose catalog entry says they stream are asked for
//! server-sent events, and the deltas are assembled into the same result a non-streamed
//! call gives. Around that: progress notifications while a slow answer streams (only with
//! a progressToken, none in the first second, at most four a second, never after the
//! result), the three stream deadlines (first token, stall, total) with partial answers,
//! broken streams, and `cost_usd` / `latency_ms`.
//!
//! Content and timing faults use the raw `FaultServer` (`Fault::Stream`); the equality of
//! streamed and non-streamed results uses the wiremock fake, whose replies depend only on
//! the messages.

use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::fake_vultr::faults::{
    Fault, FaultServer, StreamEnd, content_chunks, empty_chunks,
};
use crate::support::fake_vultr::{Catalog, FakeVultr, TOOL_CALL_ID, weather_tool};
use crate::support::in_process::{RawSession, Server};
use crate::support::raw::Line;
use crate::support::session::{err, ok, text};

/// A model the 2.4 catalog marks as streaming.
const STREAMING_MODEL: &str = "glm-5.2";
/// Time allowed for something that should happen at once; a call that takes longer hangs.
const PROMPTLY: Duration = Duration::from_secs(10);
/// How long to watch for a notification after the result.
const QUIET_AFTER: Duration = Duration::from_millis(300);
/// The pieces of the slow stream: 12 chunks 200 ms apart (plus the finish chunk), ≈ 2.4 s.
const SLOW_PIECES: [&str; 12] = [
    "One ", "two ", "three ", "four ", "five ", "six ", "seven ", "eight ", "nine ", "ten ",
    "eleven ", "twelve.",
];
const SLOW_INTERVAL: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A stream of `pieces` (with a finish chunk when `finish`), `interval` apart, then `then`.
fn stream(pieces: &[&str], finish: bool, interval: Duration, then: StreamEnd) -> Fault {
    Fault::Stream {
        chunks: content_chunks(STREAMING_MODEL, pieces, finish),
        interval,
        then,
    }
}

/// A whole answer of `pieces`, sent at once.
fn quick_answer(pieces: &[&str]) -> Fault {
    stream(pieces, true, Duration::ZERO, StreamEnd::Done)
}

/// Fails if `session` writes anything within [`QUIET_AFTER`].
async fn assert_nothing_more(session: &mut RawSession) {
    let late = session.next_line(QUIET_AFTER).await;
    assert!(
        late.is_none(),
        "a line after the result: {:?}",
        late.map(|l| l.value)
    );
}

/// Sends `chat_completion` on the streaming model with `prompt` as request 1, with
/// `_meta` when given; returns when it was sent, what came before the response, and the
/// response.
async fn raw_chat(
    session: &mut RawSession,
    prompt: &str,
    meta: Option<Value>,
) -> (Instant, Vec<Line>, Line) {
    let sent = session
        .call_tool(
            1,
            "chat_completion",
            json!({"model": STREAMING_MODEL, "prompt": prompt}),
            meta,
        )
        .await;
    let (before, response) = session.until_response(1).await;
    (sent, before, response)
}

/// The slow stream: [`SLOW_PIECES`] 200 ms apart, a finish chunk, then `[DONE]`.
fn slow_stream() -> Fault {
    stream(&SLOW_PIECES, true, SLOW_INTERVAL, StreamEnd::Done)
}

/// The whole text of the slow stream.
fn slow_text() -> String {
    SLOW_PIECES.concat()
}

/// Calls chat_completion on the streaming model with `prompt`, failing the test if it
/// takes longer than [`PROMPTLY`]; returns the result and how long it took.
async fn timed_chat(server: &Server, prompt: &str) -> (CallToolResult, Duration) {
    let started = Instant::now();
    let call = server.call(
        "chat_completion",
        json!({"model": STREAMING_MODEL, "prompt": prompt}),
    );
    let result = tokio::time::timeout(PROMPTLY, call)
        .await
        .expect("the call ends instead of hanging");
    (result, started.elapsed())
}

/// A structured chat result without the fields that differ between two calls of the
/// same conversation on different models or runs.
fn comparable(mut reply: Value) -> Value {
    let object = reply
        .as_object_mut()
        .expect("structured content is an object");
    for field in ["model", "latency_ms", "cost_usd", "conversation_id"] {
        object.remove(field);
    }
    reply
}

/// Whether a chat request body asked for a stream with usage.
fn asked_to_stream(body: &Value) -> bool {
    body.get("stream") == Some(&json!(true))
        && body.get("stream_options") == Some(&json!({"include_usage": true}))
}

/// The `notifications/progress` params among `lines`, with arrival times.
fn progress_of(lines: &[Line]) -> Vec<(Instant, Value)> {
    lines
        .iter()
        .filter(|l| l.value["method"] == "notifications/progress")
        .map(|l| (l.at, l.value["params"].clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// Streamed and non-streamed results are the same
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_streamed_text_reply_equals_the_non_streamed_one_and_only_the_streaming_model_asks_for_a_stream()
 {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let prompt = "Name three rivers of Europe";
    let streamed = ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": prompt}),
        )
        .await);
    let plain = ok(&server
        .call(
            "chat_completion",
            json!({"model": "plain-chat-7b", "prompt": prompt}),
        )
        .await);
    assert_eq!(streamed["model"], "glm-5.2");
    assert_eq!(plain["model"], "plain-chat-7b");
    assert_eq!(comparable(streamed.clone()), comparable(plain));
    // And both are what the fake's model says (prompt of 27 characters: 6 tokens; reply of
    // 33 characters: 8 tokens).
    assert_eq!(
        comparable(streamed),
        json!({
            "content": "echo: Name three rivers of Europe",
            "tool_calls": [],
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14},
            "assistant_message": {"role": "assistant", "content": "echo: Name three rivers of Europe"}
        })
    );

    let sent = fake.chat_requests().await;
    assert_eq!(sent.len(), 2);
    assert!(asked_to_stream(&sent[0]), "glm-5.2 streams: {}", sent[0]);
    assert_eq!(sent[1].get("stream"), None, "{}", sent[1]);
    assert_eq!(sent[1].get("stream_options"), None, "{}", sent[1]);
    server.stop().await;
}

#[tokio::test]
async fn a_streamed_tool_call_with_split_arguments_equals_the_non_streamed_one() {
    // The same model streams with the 2.4 catalog, and does not with the OpenAI list
    // catalog (which says nothing about streaming).
    let streaming_fake = FakeVultr::start().await;
    let plain_fake = FakeVultr::builder()
        .catalog(Catalog::OpenAiList)
        .start()
        .await;
    let streaming = Server::with_fake(&streaming_fake, &[]).await;
    let plain = Server::with_fake(&plain_fake, &[]).await;
    let arguments = json!({
        "model": "kimi-k2-instruct",
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [weather_tool()]
    });

    let streamed_result = streaming.call("chat_completion", arguments.clone()).await;
    let streamed = ok(&streamed_result);
    let unstreamed = ok(&plain.call("chat_completion", arguments.clone()).await);
    assert_eq!(comparable(streamed.clone()), comparable(unstreamed.clone()));
    assert_eq!(streamed["model"], unstreamed["model"]);
    assert_eq!(
        comparable(streamed),
        json!({
            "content": null,
            "tool_calls": [{"id": TOOL_CALL_ID, "name": "get_weather", "arguments": {"city": "Paris"}}],
            "finish_reason": "tool_calls",
            "usage": {"prompt_tokens": 7, "completion_tokens": 10, "total_tokens": 17},
            "assistant_message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{"id": TOOL_CALL_ID, "type": "function",
                                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
            }
        })
    );
    let shown = text(&streamed_result);
    assert!(
        shown.contains(&format!(
            "id {TOOL_CALL_ID}: get_weather({{\"city\":\"Paris\"}})"
        )),
        "{shown}"
    );

    // A text reply through both, too.
    let text_arguments = json!({"model": "kimi-k2-instruct", "prompt": "hello there"});
    let streamed = ok(&streaming
        .call("chat_completion", text_arguments.clone())
        .await);
    let unstreamed = ok(&plain.call("chat_completion", text_arguments).await);
    assert_eq!(comparable(streamed.clone()), comparable(unstreamed));
    assert_eq!(streamed["content"], "echo: hello there");

    let streamed_bodies = streaming_fake.chat_requests().await;
    let plain_bodies = plain_fake.chat_requests().await;
    assert_eq!((streamed_bodies.len(), plain_bodies.len()), (2, 2));
    assert!(streamed_bodies.iter().all(asked_to_stream));
    assert!(
        plain_bodies
            .iter()
            .all(|b| b.get("stream").is_none() && b.get("stream_options").is_none())
    );
    streaming.stop().await;
    plain.stop().await;
}

// ---------------------------------------------------------------------------
// Progress notifications
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_slow_stream_reports_progress_with_the_callers_token_and_never_after_the_result() {
    let faults = FaultServer::start(vec![slow_stream()]).await;
    let mut session = RawSession::with_faults(&faults).await;
    let token = "stream-progress-7";
    let (sent, before, response) = raw_chat(
        &mut session,
        "count to twelve",
        Some(json!({"progressToken": token})),
    )
    .await;
    let elapsed = response.at.duration_since(sent);

    // The result is the whole stream.
    let result = &response.value["result"];
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["content"], slow_text());
    assert_eq!(result["structuredContent"]["finish_reason"], "stop");

    // Only progress notifications came before it.
    for line in &before {
        assert_eq!(
            line.value["method"], "notifications/progress",
            "{}",
            line.value
        );
    }
    let progress = progress_of(&before);
    assert!(
        progress.len() >= 2,
        "at least two notifications in {elapsed:?}: {:?}",
        progress.iter().map(|(_, p)| p).collect::<Vec<_>>()
    );
    let allowed = (elapsed.as_secs_f64() * 4.0).floor() as usize + 1;
    assert!(
        progress.len() <= allowed,
        "at most 4 a second: {} in {elapsed:?}",
        progress.len()
    );
    let mut last = 0.0;
    for (at, params) in &progress {
        assert_eq!(params["progressToken"], token, "{params}");
        assert!(
            at.duration_since(sent) >= Duration::from_secs(1),
            "none in the first second: {params} after {:?}",
            at.duration_since(sent)
        );
        let value = params["progress"].as_f64().expect("a numeric progress");
        assert!(value > last, "progress increases: {value} after {last}");
        assert!(value <= SLOW_PIECES.len() as f64, "{params}");
        last = value;
        let message = params["message"].as_str().expect("a message");
        assert!(
            message.starts_with(&format!("{value} tokens so far: …")),
            "{message}"
        );
        let words = message.split_once('…').map(|(_, w)| w).unwrap_or_default();
        assert!(
            slow_text().contains(words.trim()),
            "the last words of the answer so far: {message}"
        );
    }

    // Nothing arrives after the result.
    assert_nothing_more(&mut session).await;
    session.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_stream_sends_no_progress_when_the_request_has_no_progress_token() {
    let faults = FaultServer::start(vec![slow_stream()]).await;
    let mut session = RawSession::with_faults(&faults).await;
    let (sent, before, response) = raw_chat(&mut session, "count to twelve", None).await;
    assert!(
        response.at.duration_since(sent) >= Duration::from_secs(2),
        "the stream was slow enough for progress"
    );
    assert_eq!(
        response.value["result"]["structuredContent"]["content"],
        slow_text()
    );
    let lines: Vec<&Value> = before.iter().map(|l| &l.value).collect();
    assert!(lines.is_empty(), "nothing but the result: {lines:?}");
    assert_nothing_more(&mut session).await;
    session.stop().await;
}

#[tokio::test]
async fn a_fast_stream_sends_no_progress_even_with_a_progress_token() {
    let fake = FakeVultr::start().await;
    let mut session = RawSession::with_fake(&fake).await;
    let (_, before, response) =
        raw_chat(&mut session, "hi", Some(json!({"progressToken": 42}))).await;
    assert_eq!(
        response.value["result"]["structuredContent"]["content"],
        "echo: hi"
    );
    assert!(asked_to_stream(&fake.chat_requests().await[0]));
    let lines: Vec<&Value> = before.iter().map(|l| &l.value).collect();
    assert!(lines.is_empty(), "nothing but the result: {lines:?}");
    assert_nothing_more(&mut session).await;
    session.stop().await;
}

// ---------------------------------------------------------------------------
// Deadlines and partial answers
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_stream_that_stalls_returns_the_partial_answer_cut_off_stalled() {
    let faults = FaultServer::start(vec![stream(
        &["The answer ", "is forty"],
        false,
        Duration::from_millis(50),
        StreamEnd::Stall,
    )])
    .await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_STALL_TIMEOUT", "500ms")]).await;
    let (result, took) = timed_chat(&server, "What is the answer?").await;
    let reply = ok(&result);
    assert_eq!(reply["content"], "The answer is forty");
    assert_eq!(reply["finish_reason"], "cut_off_stalled");
    assert_eq!(reply["usage"], Value::Null, "no usage arrived");
    assert_eq!(reply.get("cost_usd"), None, "no usage, no cost");
    assert_eq!(
        reply["assistant_message"],
        json!({"role": "assistant", "content": "The answer is forty"})
    );
    assert!(reply["conversation_id"].is_string(), "{reply}");
    let shown = text(&result);
    assert!(
        shown.starts_with(
            "[cut off: Vultr sent no more of the answer for 500ms, so it is incomplete (VULTR_MCP_STALL_TIMEOUT).]\n\nThe answer is forty"
        ),
        "{shown}"
    );
    assert!(shown.contains("finish_reason cut_off_stalled"), "{shown}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the server closed the stalled connection"
    );
    assert_eq!(faults.chat_requests(), 1);

    // The partial answer is what the conversation keeps, marked as cut off.
    faults.push(quick_answer(&["two."]));
    let next = server
        .call(
            "chat_completion",
            json!({"conversation_id": reply["conversation_id"], "prompt": "Go on"}),
        )
        .await;
    assert_eq!(ok(&next)["content"], "two.");
    assert_eq!(
        faults.chat_bodies()[1]["messages"],
        json!([
            {"role": "user", "content": "What is the answer?"},
            {"role": "assistant", "content": "The answer is forty\n\n[cut off: stalled; this answer is incomplete]"},
            {"role": "user", "content": "Go on"}
        ])
    );
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_longer_than_the_chat_timeout_returns_the_partial_answer_cut_off_deadline() {
    let faults = FaultServer::start(vec![slow_stream()]).await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_CHAT_TIMEOUT", "1s")]).await;
    let (result, took) = timed_chat(&server, "count to twelve").await;
    let reply = ok(&result);
    let content = reply["content"].as_str().expect("some text");
    assert!(!content.is_empty());
    assert!(
        slow_text().starts_with(content) && content != slow_text(),
        "a proper prefix of the answer: {content:?}"
    );
    assert_eq!(reply["finish_reason"], "cut_off_deadline");
    let shown = text(&result);
    assert!(
        shown.starts_with(&format!(
            "[cut off: the answer took longer than 1s, so it is incomplete (VULTR_MCP_CHAT_TIMEOUT).]\n\n{content}"
        )),
        "{shown}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(2),
        "ended at the deadline, not with the stream (≈2.4 s): {took:?}"
    );
    assert!(
        faults.wait_streams_abandoned(1, PROMPTLY).await,
        "the server hung up on the rest of the stream"
    );
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_before_the_first_token_deadline_is_an_error() {
    let faults = FaultServer::start(vec![
        // No response head at all.
        Fault::Stall,
        // A response head, then no event.
        Fault::Stream {
            chunks: vec![],
            interval: Duration::ZERO,
            then: StreamEnd::Stall,
        },
    ])
    .await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_FIRST_TOKEN_TIMEOUT", "500ms")]).await;
    for (n, case) in ["no head", "a head and no event"].into_iter().enumerate() {
        let (result, took) = timed_chat(&server, "hi").await;
        let message = err(&result);
        assert!(
            message.contains("no part of the answer within 500ms (VULTR_MCP_FIRST_TOKEN_TIMEOUT)"),
            "{case}: {message}"
        );
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "{case}: {took:?}"
        );
        assert!(
            faults.wait_stalls_closed(n + 1, PROMPTLY).await,
            "{case}: the server closed the connection"
        );
    }
    assert_eq!(faults.chat_requests(), 2, "no retry after a timeout");
    // The next call works.
    faults.push(quick_answer(&["fine"]));
    let (result, _) = timed_chat(&server, "hi").await;
    assert_eq!(ok(&result)["content"], "fine");
    server.stop().await;
}

/// A stream whose chunks carry nothing: `before` (chunks with text), then empty deltas
/// every 50 ms for 20 s, then silence.
fn empty_deltas_after(before: &[&str]) -> Fault {
    let mut chunks = content_chunks(STREAMING_MODEL, before, false);
    chunks.extend(empty_chunks(STREAMING_MODEL, 400));
    Fault::Stream {
        chunks,
        interval: Duration::from_millis(50),
        then: StreamEnd::Stall,
    }
}

/// Chats through [`empty_deltas_after`] `before` with a server of `settings`; returns the
/// fault server, the server, the result and how long the call took.
async fn chat_over_empty_deltas(
    before: &[&str],
    settings: &[(&str, &str)],
) -> (FaultServer, Server, CallToolResult, Duration) {
    let faults = FaultServer::start(vec![empty_deltas_after(before)]).await;
    let server = Server::with_faults(&faults, settings).await;
    let (result, took) = timed_chat(&server, "hi").await;
    (faults, server, result, took)
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_empty_deltas_ends_at_the_first_token_deadline_and_names_it() {
    let (faults, server, result, took) = chat_over_empty_deltas(
        &[],
        &[
            ("VULTR_MCP_FIRST_TOKEN_TIMEOUT", "500ms"),
            ("VULTR_MCP_CHAT_TIMEOUT", "3s"),
        ],
    )
    .await;
    let message = err(&result);
    assert!(
        message.contains("no part of the answer within 500ms (VULTR_MCP_FIRST_TOKEN_TIMEOUT)"),
        "{message}"
    );
    assert!(
        took < Duration::from_secs(3),
        "empty deltas held the call open until the chat timeout: {took:?}"
    );
    assert!(
        faults.wait_streams_abandoned(1, PROMPTLY).await,
        "the server hung up on the stream"
    );
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_empty_deltas_that_reaches_the_chat_timeout_names_the_chat_timeout() {
    let (_faults, server, result, _) = chat_over_empty_deltas(
        &[],
        &[
            ("VULTR_MCP_FIRST_TOKEN_TIMEOUT", "5s"),
            ("VULTR_MCP_CHAT_TIMEOUT", "1s"),
        ],
    )
    .await;
    let message = err(&result);
    assert!(
        message.contains("no part of the answer within 1s (VULTR_MCP_CHAT_TIMEOUT)"),
        "{message}"
    );
    assert!(!message.contains("FIRST_TOKEN"), "{message}");
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn empty_deltas_after_some_text_are_a_stall() {
    let (_faults, server, result, took) = chat_over_empty_deltas(
        &["partial"],
        &[
            ("VULTR_MCP_STALL_TIMEOUT", "500ms"),
            ("VULTR_MCP_CHAT_TIMEOUT", "3s"),
        ],
    )
    .await;
    let reply = ok(&result);
    assert_eq!(reply["content"], "partial");
    assert_eq!(reply["finish_reason"], "cut_off_stalled");
    assert!(
        text(&result).starts_with("[cut off: Vultr sent no more of the answer for 500ms"),
        "{}",
        text(&result)
    );
    assert!(
        took < Duration::from_secs(3),
        "empty deltas held the call open until the chat timeout: {took:?}"
    );
    server.stop().await;
}

/// Streams `pieces` then ends with `end`; the call must fail with a message containing
/// each of `expected`, and the next call must work.
async fn assert_broken_stream_is_an_error(pieces: &[&str], end: StreamEnd, expected: &[&str]) {
    let faults =
        FaultServer::start(vec![stream(pieces, false, Duration::from_millis(10), end)]).await;
    let server = Server::with_faults(&faults, &[]).await;
    let (result, _) = timed_chat(&server, "hi").await;
    let message = err(&result);
    for part in expected {
        assert!(message.contains(part), "{end:?}: {part:?} in {message}");
    }
    assert_eq!(faults.chat_requests(), 1, "{end:?}: not retried");
    faults.push(quick_answer(&["back ", "again"]));
    let (result, _) = timed_chat(&server, "hi").await;
    assert_eq!(ok(&result)["content"], "back again", "{end:?}");
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_truncated_at_the_http_level_is_an_error_and_the_next_call_works() {
    assert_broken_stream_is_an_error(
        &["Half an ", "answ"],
        StreamEnd::Cut,
        &[
            "the Vultr inference API's answer was cut off before it was complete",
            "the stream broke off",
            "try again",
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_ends_without_finish_reason_or_done_is_an_error_and_the_next_call_works() {
    assert_broken_stream_is_an_error(
        &["Half an ", "answ"],
        StreamEnd::Eof,
        &[
            "cut off before it was complete",
            "the stream ended before the answer was complete (no finish_reason, no [DONE])",
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_garbage_chunk_is_an_error_and_the_next_call_works() {
    assert_broken_stream_is_an_error(
        &["Half an "],
        StreamEnd::Garbage,
        &[
            "Vultr inference API answered HTTP 200 with a body that could not be read",
            "a stream chunk is not JSON",
            "{not json",
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_error_event_in_the_stream_is_reported_with_its_status_and_message() {
    let mut chunks = content_chunks(STREAMING_MODEL, &["Partial "], false);
    chunks.push(
        json!({"error": {"message": "Model overloaded, try later", "code": 503}}).to_string(),
    );
    let faults = FaultServer::start(vec![Fault::Stream {
        chunks,
        interval: Duration::from_millis(10),
        then: StreamEnd::Done,
    }])
    .await;
    let server = Server::with_faults(&faults, &[]).await;
    let (result, _) = timed_chat(&server, "hi").await;
    let message = err(&result);
    assert!(
        message.contains("Vultr inference API answered HTTP 503: Model overloaded, try later"),
        "{message}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Cost and latency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cost_comes_from_the_catalog_prices_and_the_reported_usage_and_latency_is_always_given() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    // 30 characters of prompt: 7 tokens; "echo: " + 30 characters of reply: 9 tokens.
    let prompt = "What is the capital of France?";
    let priced_result = server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": prompt}),
        )
        .await;
    let priced = ok(&priced_result);
    assert_eq!(
        priced["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16})
    );
    // glm-5.2 costs $0.75 per 1M prompt tokens and $3.00 per 1M completion tokens
    // (the entries without a time window): (7 × 0.75 + 9 × 3) / 1e6.
    assert_eq!(priced["cost_usd"].as_f64(), Some(3.225e-5), "{priced}");
    assert!(priced["latency_ms"].is_u64(), "{priced}");
    let shown = text(&priced_result);
    assert!(
        shown.contains("tokens 7 prompt + 9 completion, $0.000032"),
        "{shown}"
    );

    let unpriced_result = server
        .call(
            "chat_completion",
            json!({"model": "plain-chat-7b", "prompt": prompt}),
        )
        .await;
    let unpriced = ok(&unpriced_result);
    assert_eq!(unpriced["usage"], priced["usage"]);
    assert_eq!(unpriced.get("cost_usd"), None, "no prices, no cost");
    assert!(unpriced["latency_ms"].is_u64(), "{unpriced}");
    assert!(!text(&unpriced_result).contains('$'));
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_cost_of_a_raw_stream_uses_the_usage_of_its_final_chunk_and_latency_covers_the_stream()
{
    let faults = FaultServer::start(vec![stream(
        &["a", "b", "c", "d"],
        true,
        Duration::from_millis(100),
        StreamEnd::Done,
    )])
    .await;
    let server = Server::with_faults(&faults, &[]).await;
    let (result, took) = timed_chat(&server, "hi").await;
    let reply = ok(&result);
    assert_eq!(reply["content"], "abcd");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    );
    // (5 × 0.75 + 4 × 3) / 1e6
    assert_eq!(reply["cost_usd"].as_f64(), Some(1.575e-5), "{reply}");
    let latency = reply["latency_ms"].as_u64().expect("latency_ms");
    assert!(
        latency >= 400 && u128::from(latency) <= took.as_millis(),
        "latency {latency} ms covers the 4 chunks 100 ms apart, within the call's {took:?}"
    );
    server.stop().await;
}
