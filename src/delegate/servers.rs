//! The downstream MCP servers: each started on first use and then kept, started again
//! when it died; their tools listed (allowlist and destructive filtering) and called with
//! a timeout. Concurrent callers share one start attempt, and a failed start is
//! remembered for [`START_RETRY_AFTER`]. Stdio children run in their own process group
//! and, on Linux, die with the bridge; at shutdown all are stopped at once.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use http::{HeaderName, HeaderValue};
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt;

use super::config::{ServerSpec, Transport};

/// How long a failed start is remembered: callers meanwhile get its error at once.
const START_RETRY_AFTER: Duration = Duration::from_secs(3);

/// At shutdown, how long a child has to exit after its input closes, and again after
/// SIGTERM, before its process group gets SIGKILL.
const EXIT_GRACE: Duration = Duration::from_millis(1500);

/// The longest wait for an HTTP server's session to close when the bridge stops.
const HTTP_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A connected downstream server and the tools it offers the model.
struct Connection {
    client: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
    /// The child of a stdio server.
    process: Option<tokio::sync::Mutex<Process>>,
}

/// One start attempt, awaited by every caller that needs the server meanwhile.
type Start = Shared<BoxFuture<'static, Result<Arc<Connection>, String>>>;

/// Where one configured server stands.
enum State {
    /// Never started, or its last failure is older than [`START_RETRY_AFTER`].
    Idle,
    /// A start attempt is under way.
    Starting {
        start: Start,
        abort: tokio::task::AbortHandle,
    },
    /// Connected (its transport may have closed since).
    Running(Arc<Connection>),
    /// The last start failed at `at` with `error`.
    Failed { error: String, at: Instant },
    /// The bridge is stopping: no new start.
    Closed,
}

/// One configured server and where it stands.
struct Slot {
    spec: ServerSpec,
    state: Mutex<State>,
    /// The longest a start or a call may take.
    timeout: Duration,
}

impl Slot {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The configured downstream servers, shared by every session.
pub struct Downstream {
    slots: BTreeMap<String, Arc<Slot>>,
}

/// A tool of a downstream server as the model sees it.
pub struct OfferedTool {
    /// The server it belongs to.
    pub server: String,
    /// The server's own tool.
    pub tool: Tool,
}

impl OfferedTool {
    /// `<server>__<tool>`, the name the model calls it by.
    pub fn qualified_name(&self) -> String {
        format!("{}__{}", self.server, self.tool.name)
    }
}

impl Downstream {
    /// Stops every server at once and waits for them: a stdio child gets end of input,
    /// then SIGTERM, then SIGKILL (its whole process group), [`EXIT_GRACE`] apart; a start
    /// under way is abandoned. No server starts after this.
    pub async fn close(&self) {
        join_all(self.slots.values().map(|slot| close_slot(slot))).await;
    }

    /// The servers of `specs`, none started yet; a call waits at most `default_timeout`
    /// unless its server sets its own.
    pub fn new(specs: Vec<ServerSpec>, default_timeout: Duration) -> Self {
        let slots = specs
            .into_iter()
            .map(|spec| {
                let timeout = spec.timeout.unwrap_or(default_timeout);
                let slot = Slot {
                    spec,
                    state: Mutex::new(State::Idle),
                    timeout,
                };
                (slot.spec.name.clone(), Arc::new(slot))
            })
            .collect();
        Self { slots }
    }

    /// The configured server names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    /// Whether `name` is a configured server.
    pub fn has(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// The tools `server` offers, starting it if it is not running.
    pub async fn tools(&self, server: &str) -> Result<Vec<OfferedTool>, String> {
        let connection = self.connect(server).await?;
        Ok(connection
            .tools
            .iter()
            .map(|tool| OfferedTool {
                server: server.to_owned(),
                tool: tool.clone(),
            })
            .collect())
    }

    /// Calls `tool` of `server` with `arguments`, within the server's timeout. Dropping
    /// the future cancels the call downstream (`notifications/cancelled`).
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<CallToolResult, String> {
        let answer = self.call_once(server, tool, arguments).await;
        crate::observe::metrics::delegate_call(server, delegate_outcome(&answer));
        answer
    }

    /// [`Downstream::call`], uncounted.
    async fn call_once(
        &self,
        server: &str,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<CallToolResult, String> {
        let timeout = self.slot(server)?.timeout;
        let connection = self.connect(server).await?;
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        match tokio::time::timeout(timeout, connection.client.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(format!("server {server:?} failed the call: {error}")),
            Err(_) => Err(format!(
                "no answer from server {server:?} within {}s; the call was cancelled",
                timeout.as_secs_f64()
            )),
        }
    }

    fn slot(&self, server: &str) -> Result<&Arc<Slot>, String> {
        self.slots
            .get(server)
            .ok_or_else(|| format!("no server {server:?}"))
    }

    /// The running connection to `server`: the one there is, else the result of the start
    /// under way, else of a new start (unless the last one failed moments ago).
    async fn connect(&self, server: &str) -> Result<Arc<Connection>, String> {
        let slot = self.slot(server)?;
        let start = {
            let mut state = slot.state();
            let under_way = match &*state {
                State::Running(connection) if !connection.client.is_transport_closed() => {
                    return Ok(connection.clone());
                }
                State::Running(_) => {
                    tracing::info!(server, "downstream server stopped; starting it again");
                    None
                }
                State::Starting { start, .. } => Some(start.clone()),
                State::Failed { error, at } if at.elapsed() < START_RETRY_AFTER => {
                    return Err(format!(
                        "{error} (the last start failed {:.1}s ago; it is tried again {}s after a failure)",
                        at.elapsed().as_secs_f64(),
                        START_RETRY_AFTER.as_secs()
                    ));
                }
                State::Closed => {
                    return Err(format!(
                        "server {server:?} is not started: the bridge is shutting down"
                    ));
                }
                State::Failed { .. } | State::Idle => None,
            };
            under_way.unwrap_or_else(|| {
                let (start, abort) = begin_start(slot.clone());
                *state = State::Starting {
                    start: start.clone(),
                    abort,
                };
                start
            })
        };
        start.await
    }
}

/// How a downstream call ended, as the metrics count it.
fn delegate_outcome(answer: &Result<CallToolResult, String>) -> &'static str {
    match answer {
        Ok(result) if result.is_error == Some(true) => "tool_error",
        Ok(_) => "ok",
        Err(_) => "error",
    }
}

/// Starts `slot`'s server in a task of its own, so the attempt finishes (and its result
/// is kept in the slot) even when every caller waiting for it gives up.
fn begin_start(slot: Arc<Slot>) -> (Start, tokio::task::AbortHandle) {
    let task = tokio::spawn(async move {
        let server = &slot.spec.name;
        let result = match tokio::time::timeout(slot.timeout, start(&slot.spec)).await {
            Ok(Ok(connection)) => Ok(Arc::new(connection)),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(format!(
                "server {server:?} did not start within {}s",
                slot.timeout.as_secs_f64()
            )),
        };
        let mut state = slot.state();
        // After `close` the slot stays closed; `close` stops what this start returns.
        if matches!(*state, State::Starting { .. }) {
            *state = match &result {
                Ok(connection) => State::Running(connection.clone()),
                Err(error) => State::Failed {
                    error: error.clone(),
                    at: Instant::now(),
                },
            };
        }
        result
    });
    let abort = task.abort_handle();
    let start = async move {
        task.await.unwrap_or_else(|_| {
            Err("the start was abandoned: the bridge is shutting down".to_owned())
        })
    }
    .boxed()
    .shared();
    (start, abort)
}

/// Stops `slot`'s server, if it runs or is starting, and keeps it from starting again.
async fn close_slot(slot: &Slot) {
    let previous = std::mem::replace(&mut *slot.state(), State::Closed);
    match previous {
        State::Running(connection) => stop(connection).await,
        State::Starting { start, abort } => {
            abort.abort();
            // It may have finished just before the abort.
            if let Ok(Ok(connection)) = tokio::time::timeout(EXIT_GRACE, start).await {
                stop(connection).await;
            }
        }
        State::Idle | State::Failed { .. } | State::Closed => {}
    }
}

/// Closes `connection`: a stdio child through [`Process::stop`], an HTTP session within
/// [`HTTP_CLOSE_TIMEOUT`].
async fn stop(connection: Arc<Connection>) {
    if let Some(process) = &connection.process {
        // Ending the service closes the transport, so the child's stdin.
        connection.client.cancellation_token().cancel();
        process.lock().await.stop().await;
        return;
    }
    match Arc::try_unwrap(connection) {
        Ok(connection) => {
            let _ = tokio::time::timeout(HTTP_CLOSE_TIMEOUT, connection.client.cancel()).await;
        }
        // A call still holds it: stop its service, which closes the transport.
        Err(shared) => shared.client.cancellation_token().cancel(),
    }
}

/// A stdio server's child, leader of its own process group. Dropped while it runs (a
/// start that timed out, a connection replaced), its whole group gets SIGKILL.
struct Process {
    child: tokio::process::Child,
}

impl Process {
    /// Waits [`EXIT_GRACE`] for the child to exit on its own (its input is closed), then
    /// sends SIGTERM to its group and waits again, then SIGKILL.
    async fn stop(&mut self) {
        for signal in [libc::SIGTERM, libc::SIGKILL] {
            if self.exited_within(EXIT_GRACE).await {
                return;
            }
            self.signal_group(signal);
        }
        self.exited_within(EXIT_GRACE).await;
    }

    /// Whether the child exited (and was reaped) within `limit`.
    async fn exited_within(&mut self, limit: Duration) -> bool {
        // An error waiting means there is no child left to wait for.
        tokio::time::timeout(limit, self.child.wait()).await.is_ok()
    }

    /// Sends `signal` to the child's process group, while the child is not yet reaped (so
    /// the group id cannot have been reused).
    fn signal_group(&self, signal: libc::c_int) {
        let Some(pid) = self
            .child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
        else {
            return;
        };
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group(libc::SIGKILL);
        }
    }
}

/// The command for a stdio server: only `PATH`, `HOME` and its configured env, its own
/// process group, and (Linux) SIGKILL when the bridge dies.
fn command(
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&std::path::Path>,
) -> tokio::process::Command {
    let mut child = tokio::process::Command::new(command);
    child.args(args).env_clear().process_group(0);
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            child.env(name, value);
        }
    }
    child.envs(env);
    if let Some(cwd) = cwd {
        child.current_dir(cwd);
    }
    child
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(target_os = "linux")]
    die_with_parent(&mut child);
    child
}

/// Makes the child get SIGKILL when the bridge dies, even by SIGKILL, so no downstream
/// server outlives it (one that ignores end of input would otherwise run on).
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls
    // (prctl, getppid) and does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The bridge died before the setting took effect: do not run as an orphan.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Why a stdio server's child could not be spawned, in words that say what to fix.
fn spawn_error(
    server: &str,
    command: &str,
    cwd: Option<&std::path::Path>,
    error: &std::io::Error,
) -> String {
    if let Some(cwd) = cwd
        && !cwd.is_dir()
    {
        return format!(
            "the working directory {} of server {server:?} does not exist; create it or fix the entry's `cwd` in the delegate servers file",
            cwd.display()
        );
    }
    if error.kind() == std::io::ErrorKind::NotFound {
        return format!(
            "server {server:?} could not start {command:?}: it was not found (give a full path, or a program on PATH)"
        );
    }
    format!("server {server:?} could not start {command:?}: {error}")
}

/// Starts the server of `spec`, connects and lists its tools.
async fn start(spec: &ServerSpec) -> Result<Connection, String> {
    let server = &spec.name;
    let (client, process) = match &spec.transport {
        Transport::Stdio {
            command: program,
            args,
            env,
            cwd,
        } => {
            let mut child = command(program, args, env, cwd.as_deref())
                .spawn()
                .map_err(|e| spawn_error(server, program, cwd.as_deref(), &e))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(format!("server {server:?}: the child's pipes are missing"));
            };
            if let Some(stderr) = child.stderr.take() {
                let name = server.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!("{name}: {line}");
                    }
                });
            }
            // Held from here: should the handshake fail or time out, the child is killed.
            let process = Process { child };
            let client = ().serve((stdout, stdin)).await.map_err(|e| {
                format!("server {server:?} did not complete the MCP handshake: {e}")
            })?;
            (client, Some(tokio::sync::Mutex::new(process)))
        }
        Transport::Http { url, headers } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let (Ok(name), Ok(mut value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) else {
                    return Err(format!(
                        "server {server:?} has a header that is not valid HTTP"
                    ));
                };
                value.set_sensitive(true);
                custom.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            let client = ()
                .serve(StreamableHttpClientTransport::from_config(config))
                .await
                .map_err(|e| format!("server {server:?} at {url} could not be reached: {e}"))?;
            (client, None)
        }
    };
    let listed = client
        .list_all_tools()
        .await
        .map_err(|e| format!("server {server:?} did not list its tools: {e}"))?;
    let tools = offered(listed, spec.allowlist.as_deref());
    Ok(Connection {
        client,
        tools,
        process,
    })
}

/// The tools to offer: those the allowlist names, else all but the destructive ones.
fn offered(tools: Vec<Tool>, allowlist: Option<&[String]>) -> Vec<Tool> {
    tools
        .into_iter()
        .filter(|tool| match allowlist {
            Some(names) => names.iter().any(|name| *name == tool.name),
            None => tool
                .annotations
                .as_ref()
                .is_none_or(|a| a.destructive_hint != Some(true)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rmcp::model::ToolAnnotations;

    use super::*;

    fn tool(name: &str, destructive: Option<bool>) -> Tool {
        let mut tool = Tool::new(name.to_owned(), "d", Arc::new(Map::new()));
        if let Some(destructive) = destructive {
            tool.annotations = Some(ToolAnnotations::new().destructive(destructive));
        }
        tool
    }

    fn names(tools: Vec<Tool>) -> Vec<String> {
        tools.into_iter().map(|t| t.name.into_owned()).collect()
    }

    #[test]
    fn destructive_tools_are_left_out_unless_the_allowlist_names_them() {
        let all = || {
            vec![
                tool("add", None),
                tool("wipe", Some(true)),
                tool("read", Some(false)),
            ]
        };
        assert_eq!(names(offered(all(), None)), ["add", "read"]);
        let allow = ["wipe".to_owned(), "add".to_owned()];
        assert_eq!(names(offered(all(), Some(&allow))), ["add", "wipe"]);
    }
}
