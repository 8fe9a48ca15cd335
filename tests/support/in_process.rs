//! The server run inside the test's own runtime: `App::new(settings)` and
//! `VultrServer::new(app, token)` served by rmcp over `tokio::io::duplex`, with rmcp's
//! client (or raw JSON-RPC lines) on the other end. No process starts, so tool behaviour
//! is tested quickly, and timing-dependent tests can run on tokio's paused clock. A
//! session acts for `local`; `Server::client_acting_for` adds a client of the same `App`
//! whose session acts for another principal (`VultrServer::acting_for`), as two users of
//! one HTTP server are.
//!
//! Settings are given by their environment variable names, as for the binary
//! (`support::mcp::Server`), and set on plain `Settings` (no clap), so the developer's own
//! environment never leaks in. Conversations are kept in memory unless a test names a store; an
//! in-process server has no private home, so the default store file is refused.

use std::path::PathBuf;
use std::sync::Arc;

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
use vultr_inference_mcp::config::parse_duration;
use vultr_inference_mcp::mcp::VultrServer;
use vultr_inference_mcp::principal::Principal;
use vultr_inference_mcp::secret::ApiKey;
use vultr_inference_mcp::setting;
use vultr_inference_mcp::settings::Settings;
use vultr_inference_mcp::store::StoreLocation;
use vultr_inference_mcp::vultr::BaseUrl;

use super::fake_vultr::FakeVultr;
use super::fake_vultr::faults::FaultServer;
use super::raw::{
    Line, PROMPTLY, initialize_request, initialized_notification, read_until_response,
};
use super::session::{Session, overridden};

/// Size of the in-memory pipe between client and server, each way.
const PIPE_BYTES: usize = 64 * 1024;

/// The settings the binary would run with given exactly these settings by variable name
/// (e.g. `("VULTR_MCP_CHAT_TIMEOUT", "500ms")`), ignoring the process environment.
/// Conversations default to `memory`.
pub fn settings(env: &[(&str, &str)]) -> Settings {
    let mut settings = Settings::default();
    settings.store.location = Some(StoreLocation::InMemory);
    for &(name, value) in env {
        apply(&mut settings, name, value)
            .unwrap_or_else(|problem| panic!("setting {name}={value:?} is refused: {problem}"));
    }
    settings
}

/// Sets the setting `name` of `settings` to `value`, read as the binary reads it.
fn apply(settings: &mut Settings, name: &str, value: &str) -> Result<(), String> {
    let duration = || parse_duration(value);
    let number = || value.trim().parse::<usize>().map_err(|e| e.to_string());
    let url = || value.parse::<BaseUrl>().map_err(|e| e.to_string());
    let key = || ApiKey::new(value);
    let text = || Some(value.to_owned()).filter(|v| !v.trim().is_empty());
    let on = matches!(value.trim(), "1" | "true" | "yes" | "on");
    let (vultr, limits) = (&mut settings.vultr, &mut settings.limits);
    match name {
        setting::API_KEY => vultr.api_key = key(),
        setting::INFERENCE_API_KEY => vultr.inference_api_key = key(),
        setting::INFERENCE_SUBSCRIPTION => vultr.inference_subscription = text(),
        setting::API_BASE_URL => vultr.api_base_url = url()?,
        setting::INFERENCE_BASE_URL => vultr.inference_base_url = url()?,
        setting::DEFAULT_MODEL => vultr.default_model = text(),
        setting::FALLBACK_MODELS => {
            vultr.fallback_models = value
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
        }
        setting::REVEAL_KEYS => vultr.reveal_keys = on,
        setting::CONNECT_TIMEOUT => limits.connect_timeout = duration()?,
        setting::ACCOUNT_TIMEOUT => limits.account_timeout = duration()?,
        setting::CHAT_TIMEOUT => limits.chat_timeout = duration()?,
        setting::FIRST_TOKEN_TIMEOUT => limits.first_token_timeout = duration()?,
        setting::STALL_TIMEOUT => limits.stall_timeout = duration()?,
        setting::MAX_RETRIES => limits.max_retries = number()?,
        setting::RETRY_AFTER_CAP => limits.retry_after_cap = duration()?,
        setting::MAX_RESPONSE_BYTES => limits.max_response_bytes = number()?,
        setting::MAX_RESULT_CHARS => limits.max_result_chars = number()?,
        setting::MAX_CONCURRENT_CALLS => settings.calls.max_concurrent = number()?,
        setting::MAX_CALLS_PER_PRINCIPAL => settings.calls.max_per_principal = Some(number()?),
        setting::CONVERSATIONS => {
            assert!(
                !value.trim().is_empty(),
                "an in-process server has no private home for the default conversation store; \
                 give a path or `memory`, or test this with the binary (support::mcp::Server)"
            );
            settings.store.location = Some(StoreLocation::parse(value));
        }
        setting::MAX_CONVERSATIONS => settings.store.max_conversations = number()?,
        setting::TASK_AFTER => settings.tasks.after = duration()?,
        setting::TASK_TTL => settings.tasks.ttl = duration()?,
        setting::MAX_TASKS_PER_PRINCIPAL => {
            settings.tasks.max_per_principal = value.trim().parse().map_err(|e| format!("{e}"))?;
        }
        setting::DELEGATE_SERVERS => {
            settings.delegate.servers_file =
                Some(PathBuf::from(value)).filter(|_| !value.is_empty());
        }
        setting::DELEGATE_TOOL_TIMEOUT => settings.delegate.tool_timeout = duration()?,
        setting::TOOLSETS => settings.tools.toolsets = value.parse().map_err(|e| format!("{e}"))?,
        setting::READ_ONLY => settings.tools.read_only = on,
        setting::MEDIA_TTL => settings.media.ttl = duration()?,
        setting::MEDIA_INLINE_MAX => settings.media.inline_max = number()?,
        setting::MEDIA_MAX_PER_PRINCIPAL => settings.media.max_per_principal = number()?,
        setting::MEDIA_MAX_TOTAL => settings.media.max_total = number()?,
        setting::BUDGETS => settings.operator.budgets_file = Some(PathBuf::from(value)),
        setting::ADMINS => {
            settings.operator.admins = value.split(',').map(|n| n.trim().to_owned()).collect();
        }
        setting::CONFIRM_ABOVE_USD => {
            settings.operator.confirm_above_usd =
                Some(value.trim().parse().map_err(|e| format!("{e}"))?);
        }
        other => {
            return Err(format!(
                "{other} is not a setting an in-process server takes (add it here, or test it with the binary)"
            ));
        }
    }
    Ok(())
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
        Server::connect(App::new(settings(env)), Principal::local()).await
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
        let (pipe, session) = serve(App::new(settings(env)), Principal::local(), &shutdown);
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
        read_until_response(id, async || self.next_line(PROMPTLY).await).await
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
