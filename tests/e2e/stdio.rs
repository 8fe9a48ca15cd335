//! The stdio transport itself, driven with raw lines: every line gets an answer (a
//! JSON-RPC error when it is not a usable request, `"id": null` when its id cannot be
//! read), a request reusing the id of one in flight is refused, a flood with stdout
//! unread keeps memory bounded, a client that closes our stdout cancels the calls in
//! flight, and signals end the process cleanly.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

use crate::support::faults::{Fault, FaultServer};
use crate::support::mcp::{Home, server_command};

/// Any key: the raw fault server accepts every key.
const INFERENCE_KEY: &str = "STDIO-TEST-INFERENCE-KEY-0001";
/// Time allowed for something that should happen at once.
const PROMPTLY: Duration = Duration::from_secs(10);

/// The binary driven over raw lines, with its stderr kept.
struct RawServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    _home: Home,
}

impl RawServer {
    /// Starts the binary (pointed at `faults`, if given) at the default log level and
    /// completes the MCP handshake.
    async fn start(faults: Option<&FaultServer>) -> RawServer {
        let home = Home::new();
        let mut command = server_command(&home);
        command
            .env_remove("RUST_LOG")
            .env("VULTR_MCP_CONVERSATIONS", "memory")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(faults) = faults {
            command
                .env("VULTR_INFERENCE_BASE_URL", faults.base_url())
                .env("VULTR_INFERENCE_API_KEY", INFERENCE_KEY);
        }
        let mut child = command.spawn().expect("the server binary starts");
        let stdin = child.stdin.take();
        let stdout = Some(BufReader::new(child.stdout.take().expect("stdout")).lines());
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let kept = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                kept.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let mut raw = RawServer {
            child,
            stdin,
            stdout,
            stderr,
            stderr_reader: Some(stderr_reader),
            _home: home,
        };
        raw.send(json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}
        }))
        .await;
        assert_eq!(raw.next_message().await["id"], 1, "initialize answered");
        raw.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        raw
    }

    async fn send_line(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line).await.expect("write");
        stdin.write_all(b"\n").await.expect("write");
        stdin.flush().await.expect("flush");
    }

    async fn send(&mut self, message: Value) {
        self.send_line(message.to_string().as_bytes()).await;
    }

    /// The next message on stdout; fails the test if none comes.
    async fn next_message(&mut self) -> Value {
        let stdout = self.stdout.as_mut().expect("stdout is open");
        match tokio::time::timeout(PROMPTLY, stdout.next_line()).await {
            Ok(Ok(Some(line))) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
            other => panic!("no message on stdout: {other:?}"),
        }
    }

    /// Sends a ping and checks that the next message is its answer.
    async fn assert_still_serving(&mut self, id: &str) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await;
        let answer = self.next_message().await;
        assert_eq!(answer["id"], id, "expected the ping's answer, got {answer}");
        assert!(answer.get("result").is_some(), "{answer}");
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    async fn signal(&self, name: &str) {
        let status = tokio::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -{name}: {status}");
    }

    /// Waits for the process to exit (stdin left as it is), then returns its status and
    /// everything it wrote to stderr.
    async fn exit(&mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(PROMPTLY, self.child.wait())
            .await
            .expect("the server exits promptly")
            .expect("wait for the server");
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(PROMPTLY, reader).await;
        }
        (status, self.stderr.lock().unwrap().clone())
    }
}

/// A raw `tools/call` of chat_completion.
fn chat_request(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "chat_completion",
                   "arguments": {"model": "kimi-k2-instruct", "prompt": "hi"}}
    })
}

/// A server whose one chat call is held by the fault server.
async fn server_with_a_call_in_flight() -> (FaultServer, RawServer) {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let mut raw = RawServer::start(Some(&faults)).await;
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
    let mut raw = RawServer::start(None).await;
    for (what, line, code, id) in cases {
        raw.send_line(&line).await;
        let answer = raw.next_message().await;
        assert_error(&answer, code, &id);
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {answer}");
        raw.assert_still_serving(&format!("after {what}")).await;
    }
    raw.stdin = None;
    let (status, _) = raw.exit().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_line_over_16_mib_is_skipped_and_answered_with_an_error_naming_the_cap() {
    let mut raw = RawServer::start(None).await;
    let padding = "x".repeat(17 * 1024 * 1024);
    let line = json!({"jsonrpc": "2.0", "id": 9, "method": "ping",
                      "params": {"_meta": {"padding": padding}}});

    raw.send(line).await;

    let answer = raw.next_message().await;
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

    let refusal = raw.next_message().await;
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
    let mut raw = RawServer::start(None).await;
    let mut stdin = raw.stdin.take().expect("stdin");
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

    let stdout = raw.stdout.as_mut().expect("stdout");
    let mut answered = 0;
    while answered < PINGS {
        let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("the pings keep being answered")
            .expect("read stdout")
            .expect("stdout open");
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

    raw.stdout = None;

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
    raw.stdout = None;
    raw.stdin = None;
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
    let mut raw = RawServer::start(None).await;
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "no_such_tool", "arguments": {}}}))
        .await;
    assert_error(&raw.next_message().await, -32602, &json!(2));
    raw.send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                    "params": {"uri": "vultr://conversations/no-such-conversation"}}),
    )
    .await;
    let missing = raw.next_message().await;
    assert!(missing.get("error").is_some(), "{missing}");

    raw.stdin = None;
    let (status, stderr) = raw.exit().await;
    assert!(status.success(), "exit status {status}");
    assert_eq!(stderr, "", "the default log shows client mistakes");
}
