//! Fault injection on the binary: what only the process shows. Its log says whether a
//! failure was retried or sent again; the server sends no response for a cancelled call
//! (seen over raw JSON-RPC, since rmcp's client drops a late response itself); end of
//! stdin ends the process with status 0 (after rmcp's drain of at most 5 s for calls in
//! flight), and SIGTERM cancels calls in flight; either way their upstream connections are
//! closed. SIGTERM should end the process promptly even with stdin open.
//!
//! How the tools meet faults (retries, broken answers, cancellation, concurrency, absurd
//! input) is tested in process, in `tests/tools/faults.rs`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::faults::{Fault, FaultServer, INFERENCE_KEY, refused_base_url};
use crate::support::mcp::Server;
use crate::support::raw::{RawServer, chat_request};
use crate::support::session::{err, ok, text};

/// What the raw fault server's model answers to every normal request.
const RAW_REPLY: &str = "ok from raw fake";
/// Time allowed for something that should happen at once (a request to reach the fake,
/// a closed connection to be noticed, a process to exit).
const PROMPTLY: Duration = Duration::from_secs(5);
/// Time for the process to exit at end of stdin: rmcp lets calls in flight run for up to
/// 5 s to deliver their answers, then cancels them.
const AFTER_THE_DRAIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// 2. Refused connections
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_connection_is_reported_at_once_naming_the_base_url() {
    let refused = refused_base_url();
    let server = Server::start(&[
        ("VULTR_INFERENCE_BASE_URL", refused.as_str()),
        ("VULTR_INFERENCE_API_KEY", INFERENCE_KEY),
        ("RUST_LOG", "info"),
    ])
    .await;

    let started = Instant::now();
    let message = err(&server.chat_hi().await);
    let elapsed = started.elapsed();

    assert_contains(
        &message,
        &["could not reach", &refused, "VULTR_INFERENCE_BASE_URL"],
    );
    // Two retries with backoff would take at least 750 ms per request (catalog, chat).
    assert!(
        elapsed < Duration::from_secs(1),
        "a refused connection took {elapsed:?} to report"
    );
    let stderr = server.stderr();
    assert!(
        !stderr.contains("retrying a failed request"),
        "a refused connection was retried: {stderr}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Connections closed before answering
// ---------------------------------------------------------------------------

/// The kept-alive connection of the catalog request is closed (FIN, or RST for `Reset`)
/// when the chat request arrives on it, without a byte of answer.
async fn assert_sent_again_on_a_new_connection(closing: Fault) {
    let faults = FaultServer::start(vec![closing.clone()]).await;
    let server = Server::with_faults(&faults, &[("RUST_LOG", "info")]).await;

    let result = server.chat_hi().await;

    assert_eq!(
        ok(&result)["content"],
        RAW_REPLY,
        "{closing:?}: {}",
        text(&result)
    );
    assert_eq!(faults.chat_requests(), 2, "{closing:?}: one more request");
    assert_eq!(
        faults.chat_connections(),
        [1, 2],
        "{closing:?}: first on the catalog's kept-alive connection, then on a new one"
    );
    assert_eq!(faults.connections(), 2, "{closing:?}");
    let stderr = server.stderr();
    assert!(
        stderr.contains("closed before answering; sending the request again"),
        "{closing:?}: {stderr}"
    );
    assert!(
        !stderr.contains("retrying a failed request"),
        "{closing:?}: no backoff retry: {stderr}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_closed_before_answering_is_sent_again_at_once() {
    assert_sent_again_on_a_new_connection(Fault::Close).await;
}

#[tokio::test]
async fn a_kept_alive_connection_reset_before_answering_is_sent_again_at_once() {
    assert_sent_again_on_a_new_connection(Fault::Reset).await;
}

// ---------------------------------------------------------------------------
// 4. Cancellation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_server_sends_no_response_for_a_cancelled_call() {
    // Over raw JSON-RPC, since rmcp's client drops a late response itself.
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let mut raw = RawServer::with_faults(&faults).await;
    raw.send(chat_request(2)).await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    raw.send(json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": 2, "reason": "the user pressed stop"}
    }))
    .await;
    assert!(faults.wait_stalls_closed(1, PROMPTLY).await);
    raw.send(chat_request(3)).await;

    let mut seen = Vec::new();
    let answer = loop {
        let message = raw.next_message(PROMPTLY).await.unwrap_or_else(|| {
            panic!("no answer to the call after the cancelled one; saw {seen:?}")
        });
        if message["id"] == 3 {
            break message;
        }
        seen.push(message);
    };
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    raw.close_stdin();
    while let Some(message) = raw.next_message(PROMPTLY).await {
        seen.push(message);
    }
    assert!(
        seen.iter().all(|m| m["id"] != 2),
        "the cancelled call was answered: {seen:?}"
    );
}

// ---------------------------------------------------------------------------
// 6. Shutdown
// ---------------------------------------------------------------------------

/// A server with one chat call stalled upstream.
async fn raw_server_with_a_call_in_flight() -> (FaultServer, RawServer) {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let mut raw = RawServer::with_faults(&faults).await;
    raw.send(chat_request(2)).await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);
    (faults, raw)
}

#[tokio::test]
async fn end_of_stdin_ends_the_process_with_status_0_and_closes_calls_in_flight() {
    let (faults, mut raw) = raw_server_with_a_call_in_flight().await;

    raw.close_stdin();

    // rmcp gives calls in flight up to 5 s to finish and send their answers before it
    // cancels them.
    let status = raw
        .exit_status(AFTER_THE_DRAIN)
        .await
        .expect("the server exits at end of stdin");
    assert!(status.success(), "exit status {status}");
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream connection of the call in flight was left open"
    );
}

#[tokio::test]
async fn sigterm_cancels_calls_in_flight_closing_their_upstream_connections() {
    let (faults, mut raw) = raw_server_with_a_call_in_flight().await;

    raw.signal("TERM").await;

    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream connection of the call in flight was left open after SIGTERM"
    );
    // Whatever else SIGTERM did, end of stdin then finishes the process cleanly.
    raw.close_stdin();
    let status = raw
        .exit_status(AFTER_THE_DRAIN)
        .await
        .expect("the server exits");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn sigterm_ends_the_process_promptly_with_status_0_while_stdin_is_still_open() {
    let (_faults, mut raw) = raw_server_with_a_call_in_flight().await;

    // An MCP client that sends SIGTERM has not necessarily closed stdin first.
    raw.signal("TERM").await;

    let status = raw
        .exit_status(PROMPTLY)
        .await
        .expect("the server exits promptly on SIGTERM, with stdin still open");
    assert!(status.success(), "exit status {status}");
}

/// With no root certificates to load (an empty `SSL_CERT_FILE`, a container without CA
/// certificates) no HTTPS client can be made: every call says so at once, naming the fix,
/// and the server keeps serving, where it used to panic in the call and never answer.
#[tokio::test]
async fn no_root_certificates_is_a_prompt_error_naming_ssl_cert_file() {
    let fake = crate::support::fake_vultr::FakeVultr::start().await;
    let certs = tempfile::NamedTempFile::new().unwrap();
    let no_dir = tempfile::tempdir().unwrap();
    let server = Server::with_fake(
        &fake,
        &[
            ("SSL_CERT_FILE", certs.path().to_str().unwrap()),
            ("SSL_CERT_DIR", no_dir.path().to_str().unwrap()),
        ],
    )
    .await;
    for _ in 0..2 {
        let started = Instant::now();
        let result = tokio::time::timeout(PROMPTLY, server.call("list_models", json!({})))
            .await
            .expect("the call is answered");
        assert_contains(&err(&result), &["SSL_CERT_FILE", "nothing was sent"]);
        assert!(started.elapsed() < PROMPTLY);
    }
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    server.stop().await;
}
