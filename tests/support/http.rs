//! Starts the real binary serving streamable HTTP (`--http 127.0.0.1:0`) and connects
//! rmcp's streamable HTTP client to it, in either protocol generation.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ProtocolVersion;
use rmcp::service::ClientInitializeError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use super::mcp::{Home, server_command};
use super::session::Session;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which MCP protocol generation a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 2025-11-25 and earlier: `initialize`, then requests in an `Mcp-Session-Id` session.
    Sessions,
    /// 2026-07-28: `server/discover`, every request self-contained, no sessions.
    Stateless,
}

impl Generation {
    /// Both generations, for tests that must hold in each.
    pub const BOTH: [Generation; 2] = [Generation::Sessions, Generation::Stateless];

    /// The protocol version a client of this generation ends up with.
    pub fn version(self) -> ProtocolVersion {
        match self {
            Generation::Sessions => ProtocolVersion::V_2025_11_25,
            Generation::Stateless => ProtocolVersion::V_2026_07_28,
        }
    }
}

/// The binary serving HTTP in a private home.
pub struct HttpServer {
    child: tokio::process::Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    home: Home,
}

impl HttpServer {
    /// Starts the binary on a free loopback port with exactly these server variables set
    /// (conversations in memory unless `env` says otherwise); panics if it does not listen.
    pub async fn start(env: &[(&str, &str)]) -> HttpServer {
        match HttpServer::try_start(env).await {
            Ok(server) => server,
            Err((status, stderr)) => panic!("the server did not listen ({status}): {stderr}"),
        }
    }

    /// Like [`HttpServer::start`], returning the exit status and stderr of a server that
    /// ended without listening.
    pub async fn try_start(env: &[(&str, &str)]) -> Result<HttpServer, (ExitStatus, String)> {
        let home = Home::new();
        let mut command = server_command(&home);
        command
            .env("VULTR_MCP_CONVERSATIONS", "memory")
            .env("VULTR_MCP_HTTP", "127.0.0.1:0");
        for (name, value) in env {
            command.env(name, value);
        }
        HttpServer::spawn(command, home).await
    }

    /// Starts `command` (made by [`server_command`] for `home`) and waits for its
    /// `listening on` line.
    pub async fn spawn(
        mut command: tokio::process::Command,
        home: Home,
    ) -> Result<HttpServer, (ExitStatus, String)> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (url_tx, mut url_rx) = watch::channel(None::<String>);
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let captured = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = url_tx.send(Some(url.to_owned()));
                }
                let mut captured = captured.lock().unwrap();
                captured.push_str(&line);
                captured.push('\n');
            }
        });
        let listening = tokio::time::timeout(START_TIMEOUT, async {
            tokio::select! {
                changed = url_rx.wait_for(Option::is_some) => changed.ok().and_then(|url| url.clone()),
                _ = child.wait() => None,
            }
        })
        .await
        .ok()
        .flatten();
        match listening {
            Some(url) => Ok(HttpServer {
                child,
                url,
                stderr,
                home,
            }),
            None => {
                let status = child.wait().await.expect("the server exits");
                // Let the reader take the last of stderr.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let text = stderr.lock().unwrap().clone();
                Err((status, text))
            }
        }
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of `path` on this server.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches("/mcp"))
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
    }

    /// The server's private home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the server runs")
    }

    /// An MCP client of `generation`, sending `token` as its bearer token if given.
    pub async fn connect(&self, generation: Generation, token: Option<&str>) -> Session {
        self.try_connect(generation, token)
            .await
            .unwrap_or_else(|error| panic!("{generation:?} client could not connect: {error}"))
    }

    /// Like [`HttpServer::connect`], returning the error of a refused connection.
    pub async fn try_connect(
        &self,
        generation: Generation,
        token: Option<&str>,
    ) -> Result<Session, ClientInitializeError> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        let client = match generation {
            Generation::Sessions => ().serve(transport).await?,
            Generation::Stateless => {
                ().serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await?
            }
        };
        Ok(Session { client })
    }

    /// A raw 2026-07-28 POST of request `id` (its `params` carrying their `_meta`), with
    /// the `Mcp-Method` header and the `Mcp-Name` of the tool or task it acts on; the
    /// response as it came.
    pub async fn post_stateless(&self, id: i64, method: &str, params: Value) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(self.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = params["name"].as_str().or(params["taskId"].as_str()) {
            request = request.header("mcp-name", name);
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        request
            .body(body.to_string())
            .send()
            .await
            .expect("an answer")
    }

    /// [`HttpServer::post_stateless`], returning the request's result, whether it came as
    /// JSON or on an event stream; fails the test on a JSON-RPC error.
    pub async fn stateless_result(&self, id: i64, method: &str, params: Value) -> Value {
        let response = self.post_stateless(id, method, params).await;
        let text = response.text().await.expect("a body");
        let answer = std::iter::once(text.as_str())
            .chain(text.lines().filter_map(|line| line.strip_prefix("data:")))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {method} in {text}"));
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {answer}"))
    }

    /// Sends SIGTERM and waits for the process to exit; its status and stderr.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = i32::try_from(self.pid()).expect("a pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .expect("wait");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stderr = self.stderr();
        (status, stderr)
    }
}

/// A raw POST of a 2025-11-25 `initialize` request to `url` with `headers`.
pub async fn post_initialize(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}})
            .to_string(),
        );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the server answers")
}

/// The tokens-file line for `name` and `token`, made by the binary's own `hash-token`
/// command; checks that the line does not hold the token itself.
pub async fn hash_token(name: &str, token: &str) -> String {
    let home = Home::new();
    let (success, line, stderr) =
        run_hash_token(server_command(&home), name, &format!("{token}\n")).await;
    assert!(success, "hash-token {name} failed: {stderr}");
    assert!(!line.contains(token), "the line holds the token itself");
    line
}

/// Runs `command` (the binary) as `hash-token NAME` with `stdin`; its exit success,
/// stdout and stderr.
pub async fn run_hash_token(
    mut command: tokio::process::Command,
    name: &str,
    stdin: &str,
) -> (bool, String, String) {
    let mut child = command
        .args(["hash-token", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hash-token starts");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).await.expect("write");
    drop(input);
    let output = child.wait_with_output().await.expect("hash-token ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Alice's bearer token in tests of two principals ([`for_alice_and_bob`]).
pub const ALICE_TOKEN: &str = "alice-token-5d1f0c7e9b2a";
/// Bob's bearer token in tests of two principals ([`for_alice_and_bob`]).
pub const BOB_TOKEN: &str = "bob-token-8e3a61c4f7d9";

/// A server over HTTP against `fake` with `extra` settings on top, that knows `alice` and
/// `bob` by [`ALICE_TOKEN`] and [`BOB_TOKEN`]; keep the tokens file (the second value)
/// while the server runs.
pub async fn for_alice_and_bob(
    fake: &super::fake_vultr::FakeVultr,
    extra: &[(&str, &str)],
) -> (HttpServer, tempfile::TempPath) {
    let tokens = tokens_file(&[("alice", ALICE_TOKEN), ("bob", BOB_TOKEN)]).await;
    let path = tokens.to_str().expect("a UTF-8 temp path").to_owned();
    let settings = fake.settings();
    let mut env = super::session::overridden(&settings, extra);
    env.push(("VULTR_MCP_AUTH_TOKENS", &path));
    (HttpServer::start(&env).await, tokens)
}

/// A tokens file (removed when dropped) holding a line for each `(name, token)`, made by
/// [`hash_token`].
pub async fn tokens_file(principals: &[(&str, &str)]) -> tempfile::TempPath {
    let mut lines = String::from("# test principals\n");
    for (name, token) in principals {
        lines.push_str(&hash_token(name, token).await);
    }
    let file = tempfile::NamedTempFile::new().expect("a tokens file");
    std::fs::write(file.path(), lines).expect("write the tokens file");
    file.into_temp_path()
}
