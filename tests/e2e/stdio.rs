//! The stdio transport itself, driven with raw lines: every line gets an answer (a
//! JSON-RPC error when it is not a usable request, `"id": null` when its id cannot be
//! read), a request reusing the id of one in flight is refused, a flood with stdout
//! unread keeps memory bounded, a client that closes our stdout cancels the calls in
//! flight, and signals end the process cleanly.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::fake_vultr::faults::{Fault, FaultServer};
use crate::support::raw::{PROMPTLY, RawServer, chat_request};

/// The binary at the default log level, pointed at `faults` when given, after the handshake.
async fn start(faults: Option<&FaultServer>) -> RawServer {
    let builder = RawServer::builder().default_log_level();
    match faults {
        Some(faults) => builder.faults(faults),
        None => builder,
    }
    .start()
    .await
}

/// A server whose one chat call is held by the fault server.
async fn server_with_a_call_in_flight() -> (FaultServer, RawServer) {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let mut raw = start(Some(&faults)).await;
    raw.send(chat_request(2)).await;
    assert!(
        faults.wait_chat_requests(1, PROMPTLY).await,
        "the call reached the fake"
    );
    (faults, raw)
}

/// Asserts `answer` is a JSON-RPC error with `code` and exactly this `id` member.
fn assert_error(answer: &Value, code: i64, id: &Value) {
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let object = answer.as_object().expect("an object");
    assert_eq!(object.get("id"), Some(id), "{answer}");
}

// ---------------------------------------------------------------------------
// Every line gets an answer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_line_that_is_not_a_usable_request_gets_an_error_and_the_server_keeps_serving() {
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"ping","params":{{"_meta":{{"x":{}1{}}}}}}}"#,
        "[".repeat(130),
        "]".repeat(130)
    );
    let cases: Vec<(&str, Vec<u8>, i64, Value)> = vec![
        ("text", b"this is not json".to_vec(), -32700, Value::Null),
        (
            "truncated JSON",
            br#"{"jsonrpc":"2.0","id":5,"meth"#.to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"p\xffng\"}".to_vec(),
            -32700,
            Value::Null,
        ),
        (
            "JSON nested 130 levels",
            deep.into_bytes(),
            -32700,
            Value::Null,
        ),
        (
            "a batch",
            br#"[{"jsonrpc":"2.0","id":7,"method":"ping"}]"#.to_vec(),
            -32600,
            Value::Null,
        ),
        ("a number", b"42".to_vec(), -32600, Value::Null),
        (
            "jsonrpc 1.0",
            br#"{"jsonrpc":"1.0","id":8,"method":"ping"}"#.to_vec(),
            -32600,
            json!(8),
        ),
        (
            "id null",
            br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#.to_vec(),
            -32600,
            Value::Null,
        ),
    ];
    let mut raw = start(None).await;
    for (what, line, code, id) in cases {
        raw.send_line(&line).await;
        let answer = raw.expect_message().await;
        assert_error(&answer, code, &id);
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {answer}");
        raw.assert_still_serving(&format!("after {what}")).await;
    }
    raw.close_stdin();
    let (status, _) = raw.exit().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_line_over_16_mib_is_skipped_and_answered_with_an_error_naming_the_cap() {
    let mut raw = start(None).await;
    let padding = "x".repeat(17 * 1024 * 1024);
    let line = json!({"jsonrpc": "2.0", "id": 9, "method": "ping",
                      "params": {"_meta": {"padding": padding}}});

    raw.send(line).await;

    let answer = raw.expect_message().await;
    assert_error(&answer, -32600, &Value::Null);
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("16 MiB"), "{message}");
    raw.assert_still_serving("after the long line").await;
}

// ---------------------------------------------------------------------------
// Duplicate ids
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_request_reusing_the_id_of_one_in_flight_is_refused_and_never_goes_upstream() {
    let (faults, mut raw) = server_with_a_call_in_flight().await;
    faults.push(Fault::Normal);

    raw.send(chat_request(2)).await;

    let refusal = raw.expect_message().await;
    assert_error(&refusal, -32600, &json!(2));
    let message = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("request id 2"), "{message}");
    // The ping after the duplicate is answered, so the duplicate was dealt with.
    raw.assert_still_serving("after the duplicate").await;
    assert_eq!(faults.chat_requests(), 1, "the duplicate went upstream");
}

// ---------------------------------------------------------------------------
// Floods and a client that stops reading
// ---------------------------------------------------------------------------

/// Peak resident memory of a process, in KiB.
fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

#[tokio::test]
async fn a_flood_of_pings_with_stdout_unread_keeps_memory_bounded_and_every_ping_is_answered() {
    const PINGS: usize = 100_000;
    // Unbounded, this took 220 MiB (a debug build); bounded, it takes about 25 MiB.
    const PEAK_LIMIT_KIB: u64 = 100 * 1024;
    let mut raw = start(None).await;
    let mut stdin = raw.take_stdin();
    let flood = tokio::spawn(async move {
        let mut batch = String::new();
        for id in 0..PINGS {
            batch.push_str(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#));
            batch.push('\n');
            if batch.len() > 64 * 1024 {
                stdin.write_all(batch.as_bytes()).await.expect("write");
                batch.clear();
            }
        }
        stdin.write_all(batch.as_bytes()).await.expect("write");
        stdin.flush().await.expect("flush");
        stdin
    });
    // Leave stdout unread for a while, as a stuck client would.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut answered = 0;
    while answered < PINGS {
        let line = raw
            .next_text_line(Duration::from_secs(60))
            .await
            .expect("the pings keep being answered");
        let answer: Value = serde_json::from_str(&line).expect("JSON");
        assert!(answer.get("result").is_some(), "{answer}");
        answered += 1;
    }
    let peak = peak_memory_kib(raw.pid());
    assert!(
        peak < PEAK_LIMIT_KIB,
        "peak memory {peak} KiB for {PINGS} pipelined pings"
    );
    drop(flood.await.expect("the flood was written"));
    let (status, _) = raw.exit().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_client_closing_our_stdout_cancels_the_call_in_flight_and_the_process_ends() {
    let (faults, mut raw) = server_with_a_call_in_flight().await;

    raw.close_stdout();

    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the call went on after the client closed our stdout"
    );
    let (status, stderr) = raw.exit().await;
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/// `signal` with a call in flight and stdin open: the call is cancelled (its upstream
/// connection closed), the process exits with status 0 and logs no error.
async fn assert_clean_shutdown_on(signal: &str) {
    let (faults, mut raw) = server_with_a_call_in_flight().await;
    raw.signal(signal).await;
    assert_clean_shutdown(&faults, &mut raw, signal).await;
}

async fn assert_clean_shutdown(faults: &FaultServer, raw: &mut RawServer, signal: &str) {
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the call in flight went on after SIG{signal}"
    );
    let (status, stderr) = raw.exit().await;
    assert!(
        status.success(),
        "SIG{signal}: exit status {status}; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("ERROR"),
        "SIG{signal} logged an error: {stderr}"
    );
}

#[tokio::test]
async fn sighup_ends_the_process_cleanly_like_sigterm() {
    assert_clean_shutdown_on("HUP").await;
}

#[tokio::test]
async fn sigint_ends_the_process_cleanly_without_logging_an_error() {
    assert_clean_shutdown_on("INT").await;
}

#[tokio::test]
async fn ctrl_c_in_a_terminal_that_also_ends_the_client_ends_the_process_without_an_error() {
    let (faults, mut raw) = server_with_a_call_in_flight().await;
    // Ctrl-C reaches the whole process group: the client dies too, closing its pipes.
    raw.close_stdout();
    raw.close_stdin();
    raw.signal("INT").await;
    assert_clean_shutdown(&faults, &mut raw, "INT").await;
}

#[tokio::test]
async fn sigterm_ends_the_process_cleanly_without_logging_an_error() {
    assert_clean_shutdown_on("TERM").await;
}

// ---------------------------------------------------------------------------
// A quiet log
// ---------------------------------------------------------------------------

#[tokio::test]
async fn client_mistakes_leave_the_default_log_quiet() {
    let mut raw = start(None).await;
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "no_such_tool", "arguments": {}}}))
        .await;
    assert_error(&raw.expect_message().await, -32602, &json!(2));
    raw.send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                    "params": {"uri": "vultr://conversations/no-such-conversation"}}),
    )
    .await;
    let missing = raw.expect_message().await;
    assert!(missing.get("error").is_some(), "{missing}");

    raw.close_stdin();
    let (status, stderr) = raw.exit().await;
    assert!(status.success(), "exit status {status}");
    assert_eq!(stderr, "", "the default log shows client mistakes");
}
