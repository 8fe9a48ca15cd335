//! Fault injection, in process: what the tools do when Vultr misbehaves, when a client
//! cancels a call or sends many at once, and when they are fed absurd input.
//!
//! - Retries: HTTP 408, 409, 429 and 5xx are tried again (2 retries by default, with
//!   backoff or the `Retry-After` Vultr asks for, up to `VULTR_MCP_RETRY_AFTER_CAP`);
//!   every other status, and every transport failure, is reported at once, except one: a
//!   kept-alive connection that closes before any byte of the answer (a server's idle close
//!   racing the request) is sent again once, at once, apart from the status retries.
//! - Every failure is an `isError` result that says what happened, and the server keeps
//!   serving: the next call succeeds.
//! - A cancelled call closes its upstream connection.
//! - Calls run side by side, up to `VULTR_MCP_MAX_CONCURRENT_CALLS`.
//!
//! Status-level faults use the wiremock fake (`FakeVultr`); transport-level faults (reset,
//! truncated or oversized bodies, stalls) use the raw `FaultServer`. What needs the
//! process (its log, raw JSON-RPC, end of stdin, signals) is in `tests/e2e/faults.rs`.

use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, ClientRequest, JsonObject, Request, ServerResult};
use rmcp::service::{PeerRequestOptions, RequestHandle};
use serde_json::json;

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::faults::{Fault, FaultServer};
use crate::support::fake_vultr::{CHAT_PATH, CONFIGURED_KEY, FakeVultr, SUBSCRIPTIONS_PATH};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

/// What the raw fault server's model answers to every normal request.
const RAW_REPLY: &str = "ok from raw fake";
/// What the wiremock fake's model answers to the prompt "hi".
const ECHO_REPLY: &str = "echo: hi";
/// Time allowed for something that should happen at once (a request to reach the fake,
/// a closed connection to be noticed).
const PROMPTLY: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The arguments of the chat call every test makes.
fn chat_arguments() -> JsonObject {
    json!({"model": "kimi-k2-instruct", "prompt": "hi"})
        .as_object()
        .cloned()
        .expect("an object")
}

fn chat_params() -> CallToolRequestParams {
    CallToolRequestParams::new("chat_completion").with_arguments(chat_arguments())
}

/// A chat call that should fail, with the error text.
async fn chat_error(server: &Server) -> String {
    err(&server.chat_hi().await)
}

/// The server still answers: with a normal reply scripted, a chat call succeeds.
async fn assert_still_serving(server: &Server, faults: &FaultServer) {
    faults.push(Fault::Normal);
    let result = server.chat_hi().await;
    assert_eq!(ok(&result)["content"], RAW_REPLY, "{}", text(&result));
}

/// The same, against the wiremock fake.
async fn assert_still_serving_fake(server: &Server) {
    let result = server.chat_hi().await;
    assert_eq!(ok(&result)["content"], ECHO_REPLY, "{}", text(&result));
}

/// A chat call sent so that the test can cancel it.
async fn send_cancellable_chat(server: &Server) -> RequestHandle<RoleClient> {
    server
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(chat_params())),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("the request is sent")
}

/// The start and the end of a text that may be huge, for failure messages.
fn preview(text: &str) -> String {
    let count = text.chars().count();
    if count <= 2000 {
        return text.to_owned();
    }
    let head: String = text.chars().take(300).collect();
    let tail: String = text.chars().skip(count - 700).collect();
    format!("{head} … [{} characters left out] … {tail}", count - 1000)
}

/// An error body in the inference API's shape.
fn inference_error_body(status: u16, message: &str) -> String {
    json!({"error": {"message": message, "code": status, "type": "test_error"}}).to_string()
}

/// Makes the next `times` chat requests fail with `status` and `message`.
async fn fail_chat(fake: &FakeVultr, status: u16, message: &str, times: u64) {
    fake.fail(
        "POST",
        CHAT_PATH,
        status,
        &inference_error_body(status, message),
        times,
    )
    .await;
}

/// Makes the next `times` chat requests fail with 429 and `Retry-After: retry_after`.
async fn rate_limit_chat(fake: &FakeVultr, times: u64, retry_after: &str) {
    fake.fail_with_retry_after(
        "POST",
        CHAT_PATH,
        429,
        &inference_error_body(429, "Too many requests"),
        times,
        retry_after,
    )
    .await;
}

/// A server with one call slot for everyone and a share of 2 for the one principal: a
/// second call is within its share and waits for the only slot (over its share it would
/// be refused, tests/tools/fairness.rs).
async fn one_slot_server(faults: &FaultServer) -> Server {
    Server::with_faults(
        faults,
        &[
            ("VULTR_MCP_MAX_CONCURRENT_CALLS", "1"),
            ("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "2"),
        ],
    )
    .await
}

// ---------------------------------------------------------------------------
// 1. Retries
// ---------------------------------------------------------------------------

/// `status` on every attempt: the fake sees the first attempt and 2 retries, and the
/// error names the status; the next call (the failures used up) succeeds.
async fn assert_retried_twice_then_reported(status: u16) {
    let fake = FakeVultr::start().await;
    fail_chat(&fake, status, "transient trouble", 3).await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &[&format!("HTTP {status}"), "transient trouble"]);
    assert_eq!(
        fake.count("POST", CHAT_PATH).await,
        3,
        "1 attempt + 2 retries"
    );
    assert_still_serving_fake(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_429_is_retried_twice_then_reported() {
    assert_retried_twice_then_reported(429).await;
}

#[tokio::test]
async fn a_500_is_retried_twice_then_reported() {
    assert_retried_twice_then_reported(500).await;
}

#[tokio::test]
async fn a_502_is_retried_twice_then_reported() {
    assert_retried_twice_then_reported(502).await;
}

#[tokio::test]
async fn a_503_is_retried_twice_then_reported() {
    assert_retried_twice_then_reported(503).await;
}

#[tokio::test]
async fn a_failure_that_clears_before_the_last_retry_is_not_seen_by_the_client() {
    let fake = FakeVultr::start().await;
    fail_chat(&fake, 503, "warming up", 2).await;
    let server = Server::with_fake(&fake, &[]).await;

    assert_still_serving_fake(&server).await;

    assert_eq!(fake.count("POST", CHAT_PATH).await, 3);
    server.stop().await;
}

#[tokio::test]
async fn statuses_a_retry_cannot_fix_are_sent_once() {
    for status in [400, 404, 422] {
        let fake = FakeVultr::start().await;
        // Enough failures scripted that a retry would fail too, and be counted.
        fail_chat(&fake, status, "final answer", 3).await;
        let server = Server::with_fake(&fake, &[]).await;

        let message = chat_error(&server).await;

        assert!(message.contains(&format!("HTTP {status}")), "{message}");
        assert_eq!(fake.count("POST", CHAT_PATH).await, 1, "HTTP {status}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_401_to_a_configured_inference_key_is_sent_once() {
    let fake = FakeVultr::builder()
        .extra_inference_key(CONFIGURED_KEY)
        .start()
        .await;
    fail_chat(&fake, 401, "Invalid API key", 3).await;
    let server = Server::with_fake(&fake, &[("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY)]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &["HTTP 401", "VULTR_INFERENCE_API_KEY"]);
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn vultr_mcp_max_retries_0_turns_retries_off() {
    let fake = FakeVultr::start().await;
    fail_chat(&fake, 503, "down", 3).await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_RETRIES", "0")]).await;

    let message = chat_error(&server).await;

    assert!(message.contains("HTTP 503"), "{message}");
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_retry_after_is_waited_for_before_the_retry() {
    let fake = FakeVultr::start().await;
    rate_limit_chat(&fake, 1, "1").await;
    let server = Server::with_fake(&fake, &[]).await;
    // Key discovery and the catalog first, so that the timed call is the chat alone.
    ok(&server.call("list_models", json!({})).await);

    let started = Instant::now();
    assert_still_serving_fake(&server).await;
    let elapsed = started.elapsed();

    assert_eq!(fake.count("POST", CHAT_PATH).await, 2);
    assert!(
        elapsed >= Duration::from_millis(900),
        "Retry-After: 1 was not waited for (the call took {elapsed:?})"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_retry_after_above_the_cap_is_reported_instead_of_waited_for() {
    let fake = FakeVultr::start().await;
    rate_limit_chat(&fake, 3, "30").await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_RETRY_AFTER_CAP", "2s")]).await;

    let started = Instant::now();
    let message = chat_error(&server).await;
    let elapsed = started.elapsed();

    assert_contains(&message, &["HTTP 429", "wait 30s"]);
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    assert!(elapsed < PROMPTLY, "the call took {elapsed:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_account_api_is_retried_too() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "GET",
        SUBSCRIPTIONS_PATH,
        503,
        r#"{"error":"Service Unavailable","status":503}"#,
        1,
    )
    .await;
    let server = Server::with_fake(&fake, &[]).await;

    let listed = server.call("list_subscriptions", json!({})).await;

    assert_eq!(ok(&listed)["subscriptions"][0]["label"], "main");
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Broken answers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_reset_on_a_new_connection_is_an_error_sent_once_and_the_next_call_works() {
    // Every answer closes its connection, so the chat request gets a connection of its own.
    let faults = FaultServer::start_without_keep_alive(vec![Fault::Reset]).await;
    let server = Server::with_faults(&faults, &[]).await;

    let message = chat_error(&server).await;

    assert!(message.contains("Vultr inference API"), "{message}");
    assert!(message.to_lowercase().contains("try again"), "{message}");
    assert_eq!(
        faults.chat_requests(),
        1,
        "a reset of a connection opened for the request is not retried"
    );
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sending_again_after_a_closed_connection_uses_none_of_the_status_retries() {
    let unavailable = Fault::Status {
        status: 503,
        headers: vec![],
        body: inference_error_body(503, "busy"),
    };
    let faults = FaultServer::start(vec![Fault::Close, unavailable.clone(), unavailable]).await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_MAX_RETRIES", "2")]).await;

    let result = server.chat_hi().await;

    assert_eq!(ok(&result)["content"], RAW_REPLY, "{}", text(&result));
    assert_eq!(
        faults.chat_requests(),
        4,
        "closed, sent again (503), then 2 status retries (503, answered)"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_connection_closed_again_on_the_second_send_is_reported() {
    let faults = FaultServer::start(vec![Fault::Close, Fault::Close]).await;
    let server = Server::with_faults(&faults, &[]).await;

    let message = chat_error(&server).await;

    assert!(message.contains("Vultr inference API"), "{message}");
    assert!(message.to_lowercase().contains("try again"), "{message}");
    assert_eq!(faults.chat_requests(), 2, "sent again once, not more");
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

#[tokio::test]
async fn a_truncated_body_is_an_error_saying_it_was_cut_off() {
    let faults = FaultServer::start(vec![Fault::Truncated]).await;
    let server = Server::with_faults(&faults, &[]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &["Vultr inference API", "cut off"]);
    assert_eq!(faults.chat_requests(), 1);
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

#[tokio::test]
async fn a_200_with_malformed_json_shows_the_status_and_how_the_body_began() {
    let faults = FaultServer::start(vec![Fault::Status {
        status: 200,
        headers: vec![],
        body: "{not json".to_owned(),
    }])
    .await;
    let server = Server::with_faults(&faults, &[]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &["HTTP 200", "{not json"]);
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

#[tokio::test]
async fn a_body_above_vultr_mcp_max_response_bytes_is_refused_naming_the_limit() {
    const LIMIT: usize = 1024 * 1024;
    let faults = FaultServer::start(vec![Fault::Oversized(2 * LIMIT)]).await;
    let limit = LIMIT.to_string();
    let server = Server::with_faults(&faults, &[("VULTR_MCP_MAX_RESPONSE_BYTES", &limit)]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &[&limit, "VULTR_MCP_MAX_RESPONSE_BYTES"]);
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stalled_answer_times_out_after_vultr_mcp_chat_timeout_and_the_connection_is_closed() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_CHAT_TIMEOUT", "500ms")]).await;

    let result = tokio::time::timeout(PROMPTLY, server.chat_hi())
        .await
        .expect("the call ends when VULTR_MCP_CHAT_TIMEOUT runs out");

    let message = err(&result);
    assert!(
        message.contains("within 500ms (VULTR_MCP_CHAT_TIMEOUT)"),
        "{message}"
    );
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the stalled connection was left open"
    );
    assert_eq!(faults.chat_requests(), 1, "a timeout is not retried");
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_message_states_the_time_limit_that_was_set() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_CHAT_TIMEOUT", "500ms")]).await;

    let message = chat_error(&server).await;

    assert!(!message.contains("within 0s"), "{message}");
    assert!(
        message.contains("500ms") || message.contains("0.5s"),
        "{message}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 4. Cancellation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_cancelled_call_closes_its_upstream_connection_and_the_server_keeps_serving() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let server = Server::with_faults(&faults, &[]).await;
    let mut call = send_cancellable_chat(&server).await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    // Keep the response channel, to see what (if anything) comes back after the cancel.
    let (_placeholder_sender, placeholder) = tokio::sync::oneshot::channel();
    let response = std::mem::replace(&mut call.rx, placeholder);
    call.cancel(Some("the user pressed stop".to_owned()))
        .await
        .expect("notifications/cancelled is sent");

    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream request was not dropped on cancellation"
    );
    let late = tokio::time::timeout(Duration::from_secs(1), response).await;
    assert!(
        !matches!(late, Ok(Ok(Ok(ServerResult::CallToolResult(_))))),
        "a result came back for a cancelled call: {late:?}"
    );
    assert_still_serving(&server, &faults).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 5. Concurrency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn slow_calls_do_not_hold_up_each_other() {
    let faults = FaultServer::start(vec![Fault::Stall; 4]).await;
    let server = Server::with_faults(&faults, &[]).await;

    let calls: Vec<_> = (0..4)
        .map(|_| {
            let peer = server.client.peer().clone();
            tokio::spawn(async move { peer.call_tool(chat_params()).await })
        })
        .collect();

    assert!(
        faults.wait_chat_requests(4, PROMPTLY).await,
        "only {} of 4 concurrent calls reached Vultr",
        faults.chat_requests()
    );
    for call in calls {
        // Dropping a call cancels it.
        call.abort();
    }
    assert!(faults.wait_stalls_closed(4, PROMPTLY).await);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn vultr_mcp_max_concurrent_calls_makes_further_calls_wait_their_turn() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let server = one_slot_server(&faults).await;
    let first = send_cancellable_chat(&server).await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    let peer = server.client.peer().clone();
    let second = tokio::spawn(async move { peer.call_tool(chat_params()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        faults.chat_requests(),
        1,
        "the second call went upstream while the only slot was taken"
    );

    first.cancel(None).await.expect("cancelled");
    assert!(
        faults.wait_chat_requests(2, PROMPTLY).await,
        "the second call did not start once the slot was free"
    );
    let second = tokio::time::timeout(PROMPTLY, second)
        .await
        .expect("the second call finishes")
        .expect("the task did not panic")
        .expect("no protocol error");
    assert_eq!(ok(&second)["content"], RAW_REPLY, "{}", text(&second));
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_cancelled_while_waiting_for_a_slot_never_goes_upstream() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let server = one_slot_server(&faults).await;
    let first = send_cancellable_chat(&server).await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    let waiting = send_cancellable_chat(&server).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    waiting.cancel(None).await.expect("cancelled");
    first.cancel(None).await.expect("cancelled");
    assert!(faults.wait_stalls_closed(1, PROMPTLY).await);

    assert_still_serving(&server, &faults).await;
    assert_eq!(
        faults.chat_requests(),
        2,
        "the call cancelled in the queue reached Vultr"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 7. Absurd input
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_multi_megabyte_prompt_is_handled_and_the_result_is_cut_to_vultr_mcp_max_result_chars() {
    const PROMPT_BYTES: usize = 5 * 1024 * 1024;
    const MAX_RESULT_CHARS: usize = 1000;
    let fake = FakeVultr::start().await;
    let max = MAX_RESULT_CHARS.to_string();
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_RESULT_CHARS", &max)]).await;
    let prompt = "x".repeat(PROMPT_BYTES);

    let result = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": prompt}),
        )
        .await;

    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    let shown = text(&result);
    let length = shown.chars().count();
    // The answer is shown up to the limit, plus a notice of at most a few hundred characters.
    assert!(
        (MAX_RESULT_CHARS / 2..=MAX_RESULT_CHARS + 500).contains(&length),
        "the result text is {length} characters: {}",
        preview(&shown)
    );
    assert!(shown.starts_with("echo: xxx"), "{}", preview(&shown));
    let lowered = shown.to_lowercase();
    assert!(
        lowered.contains("truncated") || lowered.contains("was cut"),
        "no notice of the cut: {}",
        preview(&shown)
    );
    assert!(
        shown.contains("VULTR_MCP_MAX_RESULT_CHARS"),
        "{}",
        preview(&shown)
    );
    // The whole prompt went upstream.
    let sent = fake.chat_requests().await;
    let sent_prompt = sent[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(sent_prompt.len(), PROMPT_BYTES);
    assert_still_serving_fake(&server).await;
    server.stop().await;
}
