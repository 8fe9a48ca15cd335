//! The server run inside the test's own runtime: `App::new(config)` and
//! `VultrServer::new(app, token)` served by rmcp over `tokio::io::duplex`, with rmcp's
//! client (or raw JSON-RPC lines) on the other end. No process starts, so tool behaviour
//! is tested quickly, and timing-dependent tests can run on tokio's paused clock. A
//! session acts for `local`; `Server::client_acting_for` adds a client of the same `App`
//! whose session acts for another principal (`VultrServer::acting_for`), as two users of
//! one HTTP server are.
//!
//! Settings are given by their environment variable names, as for the binary
//! (`support::mcp::Server`), and turned into the matching command-line flags. The
//! developer's own environment never leaks in: the `Config` is parsed with every
//! setting's environment variable removed from clap's definition, so only the flags given
//! here count. Conversations are kept in memory unless a test names a store; an
//! in-process server has no private home, so the default store file is refused.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Arc;

use clap::builder::{FalseyValueParser, TypedValueParser};
use clap::{CommandFactory, FromArgMatches};
use rmcp::service::RunningService;
use rmcp::{RoleServer, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vultr_inference_mcp::app::App;
use vultr_inference_mcp::config::Config;
use vultr_inference_mcp::mcp::VultrServer;
use vultr_inference_mcp::principal::Principal;

use super::fake_vultr::FakeVultr;
use super::fake_vultr::faults::FaultServer;
use super::raw::{Line, PROMPTLY, initialize_request, initialized_notification};
use super::session::{Session, overridden};

/// Size of the in-memory pipe between client and server, each way.
const PIPE_BYTES: usize = 64 * 1024;

/// The `Config` the binary would build from exactly these settings (by variable name,
/// e.g. `("VULTR_MCP_CHAT_TIMEOUT", "500ms")`), ignoring the process environment.
/// Conversations default to `memory`.
pub fn config(env: &[(&str, &str)]) -> Config {
    let mut command = Config::command();
    let flags: HashMap<String, (String, bool)> = command
        .get_arguments()
        .filter_map(|arg| {
            let name = arg.get_env()?.to_str()?.to_owned();
            let long = arg.get_long()?.to_owned();
            Some((name, (long, arg.get_action().takes_values())))
        })
        .collect();
    let mut args = vec!["vultr-inference-mcp".to_owned()];
    let mut conversations = Some("memory");
    for (name, value) in env {
        let (long, takes_value) = flags.get(*name).unwrap_or_else(|| {
            panic!("{name} is not a setting of the server; an in-process server takes only those")
        });
        if *name == "VULTR_MCP_CONVERSATIONS" {
            conversations = None;
            assert!(
                !value.trim().is_empty(),
                "an in-process server has no private home for the default conversation store; \
                 give a path or `memory`, or test this with the binary (support::mcp::Server)"
            );
        }
        if *takes_value {
            args.push(format!("--{long}={value}"));
        } else if FalseyValueParser::new()
            .parse_ref(&command, None, OsStr::new(value))
            .expect("a boolean setting")
        {
            args.push(format!("--{long}"));
        }
    }
    if let Some(memory) = conversations {
        args.push(format!("--conversations={memory}"));
    }
    command = command.mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| panic!("settings {env:?} are refused: {e}"));
    Config::from_arg_matches(&matches).expect("a configuration")
}

/// Serves a new session on `app`, acting for `principal`, on one end of an in-memory
/// pipe; returns the other end. The session ends when the client's end closes or
/// `shutdown` is cancelled; either way `shutdown` ends up cancelled, stopping the calls
/// still running.
fn serve(
    app: Arc<App>,
    principal: Principal,
    shutdown: &CancellationToken,
) -> (DuplexStream, JoinHandle<()>) {
    let (client_end, server_end) = tokio::io::duplex(PIPE_BYTES);
    let handler = VultrServer::new(app, shutdown.clone()).acting_for(principal);
    let shutdown = shutdown.clone();
    let session = tokio::spawn(async move {
        let running: RunningService<RoleServer, VultrServer> = match handler.serve(server_end).await
        {
            Ok(running) => running,
            Err(_) => return,
        };
        let cancel = running.cancellation_token();
        tokio::select! {
            _ = running.waiting() => {}
            () = shutdown.cancelled() => cancel.cancel(),
        }
        // As the binary does when its client goes away: calls still running stop.
        shutdown.cancel();
    });
    (client_end, session)
}

/// An in-process server with a connected rmcp client: the API of `support::mcp::Server`
/// without the process (no home, no stderr).
pub struct Server {
    session: Session,
    app: Arc<App>,
    shutdown: CancellationToken,
    serving: JoinHandle<()>,
}

impl Server {
    /// A server with exactly these settings (conversations in memory unless `env` says
    /// otherwise), its session acting for `local`.
    pub async fn start(env: &[(&str, &str)]) -> Server {
        Server::connect(App::new(config(env)), Principal::local()).await
    }

    /// A new session on `app` acting for `principal`, with its client connected.
    async fn connect(app: Arc<App>, principal: Principal) -> Server {
        let shutdown = CancellationToken::new();
        let (pipe, session) = serve(Arc::clone(&app), principal, &shutdown);
        let client = ().serve(pipe).await.expect("the MCP handshake succeeds");
        Server {
            session: Session { client },
            app,
            shutdown,
            serving: session,
        }
    }

    /// Another client of this same server (one `App`: one store, one set of limits), its
    /// session acting for `principal`, as an authenticated HTTP client's requests do.
    pub async fn client_acting_for(&self, principal: Principal) -> Server {
        Server::connect(Arc::clone(&self.app), principal).await
    }

    /// A server pointed at `fake`, with the account key and `extra` settings.
    pub async fn with_fake(fake: &FakeVultr, extra: &[(&str, &str)]) -> Server {
        let settings = fake.settings();
        Server::start(&overridden(&settings, extra)).await
    }

    /// A server pointed at the raw `faults` server, with a configured inference key and
    /// `extra` settings.
    pub async fn with_faults(faults: &FaultServer, extra: &[(&str, &str)]) -> Server {
        let settings = faults.settings();
        Server::start(&overridden(&settings, extra)).await
    }

    /// Ends the session and waits for the server side to finish.
    pub async fn stop(self) {
        let _ = self.session.client.cancel().await;
        self.shutdown.cancel();
        let _ = tokio::time::timeout(PROMPTLY, self.serving).await;
    }
}

impl std::ops::Deref for Server {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

/// An in-process server driven over raw JSON-RPC lines (the in-process twin of
/// `support::raw::RawServer`), for requests rmcp's client would change (it always adds
/// a `progressToken`) and to see everything written, in order, on the test's clock.
pub struct RawSession {
    writer: Option<WriteHalf<DuplexStream>>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    shutdown: CancellationToken,
    session: JoinHandle<()>,
}

impl RawSession {
    /// A server with `env`, after the MCP handshake (`initialize` as request 0).
    pub async fn start(env: &[(&str, &str)]) -> RawSession {
        let shutdown = CancellationToken::new();
        let (pipe, session) = serve(App::new(config(env)), Principal::local(), &shutdown);
        let (reader, writer) = tokio::io::split(pipe);
        let mut raw = RawSession {
            writer: Some(writer),
            lines: BufReader::new(reader).lines(),
            shutdown,
            session,
        };
        raw.send(initialize_request("raw-in-process")).await;
        let (_, answer) = raw.until_response(0).await;
        assert!(answer.value.get("result").is_some(), "{}", answer.value);
        raw.send(initialized_notification()).await;
        raw
    }

    /// A server pointed at the raw `faults` server with a configured inference key.
    pub async fn with_faults(faults: &FaultServer) -> RawSession {
        let settings = faults.settings();
        RawSession::start(&overridden(&settings, &[])).await
    }

    /// A server pointed at `fake` with its account key.
    pub async fn with_fake(fake: &FakeVultr) -> RawSession {
        let settings = fake.settings();
        RawSession::start(&overridden(&settings, &[])).await
    }

    /// Writes one JSON-RPC message.
    pub async fn send(&mut self, message: Value) {
        let writer = self.writer.as_mut().expect("the session is open");
        let mut line = message.to_string();
        line.push('\n');
        writer.write_all(line.as_bytes()).await.expect("write");
        writer.flush().await.expect("flush");
    }

    /// Sends a `tools/call` of `tool` as request `id`, with `_meta` when given; returns
    /// when it was sent.
    pub async fn call_tool(
        &mut self,
        id: i64,
        tool: &str,
        arguments: Value,
        meta: Option<Value>,
    ) -> Instant {
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        let sent = Instant::now();
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
            .await;
        sent
    }

    /// The next line as JSON, with its arrival time; `None` at the end or after `within`.
    pub async fn next_line(&mut self, within: Duration) -> Option<Line> {
        let line = match tokio::time::timeout(within, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
        };
        Some(Line {
            at: Instant::now(),
            value: serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {line}")),
        })
    }

    /// Everything written before the response to request `id`, and that response.
    pub async fn until_response(&mut self, id: i64) -> (Vec<Line>, Line) {
        let mut before = Vec::new();
        loop {
            let line = self
                .next_line(PROMPTLY)
                .await
                .unwrap_or_else(|| panic!("no response to request {id}"));
            if line.value.get("id") == Some(&json!(id)) && line.value.get("method").is_none() {
                return (before, line);
            }
            before.push(line);
        }
    }

    /// Closes the client's end and checks the session ends.
    pub async fn stop(mut self) {
        if let Some(mut writer) = self.writer.take() {
            // The other half keeps the pipe alive: shut our side down so the server reads its end.
            writer
                .shutdown()
                .await
                .expect("shut down the client's side");
        }
        let ended = tokio::time::timeout(PROMPTLY, &mut self.session).await;
        self.shutdown.cancel();
        assert!(
            ended.is_ok(),
            "the session ends when the client's input closes"
        );
    }
}
