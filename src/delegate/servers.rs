//! The downstream MCP servers: each started on first use and then kept, started again
//! when it died; their tools listed (allowlist and destructive filtering) and called with
//! a timeout.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Mutex;

use super::config::{ServerSpec, Transport};

/// The longest wait for one downstream server to exit when the bridge stops.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(8);

/// A connected downstream server and the tools it offers the model.
struct Connection {
    client: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
}

/// One configured server and its connection, when it has one.
struct Slot {
    spec: ServerSpec,
    connection: Mutex<Option<Arc<Connection>>>,
}

/// The configured downstream servers, shared by every session.
pub struct Downstream {
    slots: BTreeMap<String, Slot>,
    default_timeout: Duration,
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
    /// Closes every running server (a stdio child gets end of input, then SIGTERM, then
    /// SIGKILL) and waits for it, at most [`CLOSE_TIMEOUT`] each.
    pub async fn close(&self) {
        for slot in self.slots.values() {
            let connection = slot.connection.lock().await.take();
            let Some(connection) = connection else {
                continue;
            };
            match Arc::try_unwrap(connection) {
                Ok(connection) => {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.client.cancel()).await;
                }
                // A call still holds it: stop its service, which closes the transport.
                Err(shared) => shared.client.cancellation_token().cancel(),
            }
        }
    }

    /// The servers of `specs`, none started yet; a call waits at most `default_timeout`
    /// unless its server sets its own.
    pub fn new(specs: Vec<ServerSpec>, default_timeout: Duration) -> Self {
        let slots = specs
            .into_iter()
            .map(|spec| {
                (
                    spec.name.clone(),
                    Slot {
                        spec,
                        connection: Mutex::new(None),
                    },
                )
            })
            .collect();
        Self {
            slots,
            default_timeout,
        }
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
        let slot = self
            .slots
            .get(server)
            .ok_or_else(|| format!("no server {server:?}"))?;
        let timeout = slot.spec.timeout.unwrap_or(self.default_timeout);
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

    /// The running connection to `server`, started (again) when there is none or it died.
    async fn connect(&self, server: &str) -> Result<Arc<Connection>, String> {
        let slot = self
            .slots
            .get(server)
            .ok_or_else(|| format!("no server {server:?}"))?;
        let mut held = slot.connection.lock().await;
        if let Some(connection) = held.as_ref()
            && !connection.client.is_transport_closed()
        {
            return Ok(connection.clone());
        }
        if held.take().is_some() {
            tracing::info!(server, "downstream server stopped; starting it again");
        }
        let timeout = slot.spec.timeout.unwrap_or(self.default_timeout);
        let connection = tokio::time::timeout(timeout, start(&slot.spec))
            .await
            .map_err(|_| {
                format!(
                    "server {server:?} did not start within {}s",
                    timeout.as_secs_f64()
                )
            })??;
        let connection = Arc::new(connection);
        *held = Some(connection.clone());
        Ok(connection)
    }
}

/// Starts the server of `spec`, connects and lists its tools.
async fn start(spec: &ServerSpec) -> Result<Connection, String> {
    let server = &spec.name;
    let client = match &spec.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
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
            let (transport, stderr) = TokioChildProcess::builder(child)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("server {server:?} could not start {command:?}: {e}"))?;
            if let Some(stderr) = stderr {
                let name = server.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!("{name}: {line}");
                    }
                });
            }
            ().serve(transport)
                .await
                .map_err(|e| format!("server {server:?} did not complete the MCP handshake: {e}"))?
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
            ().serve(StreamableHttpClientTransport::from_config(config))
                .await
                .map_err(|e| format!("server {server:?} at {url} could not be reached: {e}"))?
        }
    };
    let listed = client
        .list_all_tools()
        .await
        .map_err(|e| format!("server {server:?} did not list its tools: {e}"))?;
    let tools = offered(listed, spec.allowlist.as_deref());
    Ok(Connection { client, tools })
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
