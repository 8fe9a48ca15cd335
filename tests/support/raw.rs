//! The one raw stdio harness: the real binary driven over JSON-RPC lines, for what rmcp's
//! client hides or does for us (garbage lines, requests without `_meta.progressToken`,
//! the exact order of everything written, answers to cancelled calls, closing stdin or
//! stdout, signals). It starts the binary through [`server_command`] (a private home).

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::fake_vultr::faults::FaultServer;
use super::mcp::{Home, server_command};

/// The `initialize` request (id 0) a raw client opens its session with.
pub fn initialize_request(client: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": client, "version": "0"}}
    })
}

/// The notification that ends the handshake.
pub fn initialized_notification() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// Time allowed for something that should happen at once (an answer, an exit).
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A line the server wrote to stdout, parsed, with the time it arrived.
#[derive(Debug)]
pub struct Line {
    /// When the line was read.
    pub at: Instant,
    /// The line as JSON.
    pub value: Value,
}

/// How to start a [`RawServer`]: conversations in memory, `RUST_LOG=warn`, no keys.
pub struct RawBuilder {
    home: Home,
    command: Command,
}

impl RawBuilder {
    /// Sets one server variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.command.env(name, value);
        self
    }

    /// Points the server at `faults` with a configured inference key.
    pub fn faults(self, faults: &FaultServer) -> Self {
        faults
            .settings()
            .iter()
            .fold(self, |builder, (name, value)| builder.env(name, value))
    }

    /// Leaves `RUST_LOG` unset, so the server logs at its default (quiet) level.
    pub fn default_log_level(mut self) -> Self {
        self.command.env_remove("RUST_LOG");
        self
    }

    /// Starts the binary without any handshake.
    pub fn spawn(mut self) -> RawServer {
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = self.command.spawn().expect("the server binary starts");
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
        RawServer {
            child,
            stdin,
            stdout,
            stderr,
            stderr_reader: Some(stderr_reader),
            _home: self.home,
        }
    }

    /// Starts the binary and completes the MCP handshake (`initialize` as request 0).
    pub async fn start(self) -> RawServer {
        let mut raw = self.spawn();
        raw.send(initialize_request("raw")).await;
        let (_, answer) = raw.until_response(0).await;
        assert!(answer.value.get("result").is_some(), "{}", answer.value);
        raw.send(initialized_notification()).await;
        raw
    }
}

/// The binary driven over raw JSON-RPC lines, with its stderr kept.
pub struct RawServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    _home: Home,
}

impl RawServer {
    /// A builder for the binary in a new private home.
    pub fn builder() -> RawBuilder {
        let home = Home::new();
        let mut command = server_command(&home);
        command.env("VULTR_MCP_CONVERSATIONS", "memory");
        RawBuilder { home, command }
    }

    /// Starts the binary pointed at `faults` and completes the handshake.
    pub async fn with_faults(faults: &FaultServer) -> RawServer {
        Self::builder().faults(faults).start().await
    }

    /// Writes `line` and a newline to stdin.
    pub async fn send_line(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line).await.expect("write");
        stdin.write_all(b"\n").await.expect("write");
        stdin.flush().await.expect("flush");
    }

    /// Writes one JSON-RPC message.
    pub async fn send(&mut self, message: Value) {
        self.send_line(message.to_string().as_bytes()).await;
    }

    /// The next stdout line as written, within `within`; `None` at EOF or after `within`.
    pub async fn next_text_line(&mut self, within: Duration) -> Option<String> {
        let stdout = self.stdout.as_mut().expect("stdout is open");
        match tokio::time::timeout(within, stdout.next_line()).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// The next stdout line as JSON, with its arrival time; `None` at EOF or after `within`.
    pub async fn next_line(&mut self, within: Duration) -> Option<Line> {
        let line = self.next_text_line(within).await?;
        Some(Line {
            at: Instant::now(),
            value: serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
        })
    }

    /// The next JSON-RPC message; `None` at EOF or after `within`.
    pub async fn next_message(&mut self, within: Duration) -> Option<Value> {
        self.next_line(within).await.map(|line| line.value)
    }

    /// The next JSON-RPC message; fails the test if none comes [`PROMPTLY`].
    pub async fn expect_message(&mut self) -> Value {
        self.next_message(PROMPTLY)
            .await
            .expect("a message on stdout")
    }

    /// Everything written before the response to request `id`, and that response.
    pub async fn until_response(&mut self, id: i64) -> (Vec<Line>, Line) {
        read_until_response(id, async || self.next_line(PROMPTLY).await).await
    }

    /// Sends a ping and checks that the next message is its answer.
    pub async fn assert_still_serving(&mut self, id: &str) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await;
        let answer = self.expect_message().await;
        assert_eq!(answer["id"], id, "expected the ping's answer, got {answer}");
        assert!(answer.get("result").is_some(), "{answer}");
    }

    /// Takes stdin, e.g. to write a flood from another task; dropping it closes it.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin is open")
    }

    /// Closes the server's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Closes our end of the server's stdout, as a client that goes away does.
    pub fn close_stdout(&mut self) {
        self.stdout = None;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server is running")
    }

    /// Sends the signal `name` (`TERM`, `INT`, `HUP`, ...) with `kill`.
    pub async fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let status = tokio::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    /// The exit status, if the process exits within `within` (stdin left as it is).
    pub async fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|status| status.expect("wait for the server"))
    }

    /// Waits for the process to exit [`PROMPTLY`] (stdin left as it is), then returns its
    /// status and everything it wrote to stderr.
    pub async fn exit(&mut self) -> (ExitStatus, String) {
        let status = self
            .exit_status(PROMPTLY)
            .await
            .expect("the server exits promptly");
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(PROMPTLY, reader).await;
        }
        (status, self.stderr())
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Closes stdin and checks the process exits cleanly.
    pub async fn stop(mut self) {
        self.close_stdin();
        let (status, stderr) = self.exit().await;
        assert!(status.success(), "exit status {status}; stderr: {stderr}");
    }
}

/// Reads lines with `next` until the response to request `id`: everything written before
/// it, and the response; fails the test when `next` gives nothing first. Every raw
/// session's `until_response`.
pub async fn read_until_response(
    id: i64,
    mut next: impl AsyncFnMut() -> Option<Line>,
) -> (Vec<Line>, Line) {
    let mut before = Vec::new();
    loop {
        let line = next()
            .await
            .unwrap_or_else(|| panic!("no response to request {id}"));
        if line.value.get("id") == Some(&json!(id)) && line.value.get("method").is_none() {
            return (before, line);
        }
        before.push(line);
    }
}

/// The per-request `_meta` of a 2026-07-28 client named `client` with `capabilities`.
pub fn stateless_meta(client: &str, capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"}
    })
}

/// A raw `tools/call` of chat_completion (`kimi-k2-instruct`, prompt "hi") as request `id`.
pub fn chat_request(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "chat_completion",
                   "arguments": {"model": "kimi-k2-instruct", "prompt": "hi"}}
    })
}
