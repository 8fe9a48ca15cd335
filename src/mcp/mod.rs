//! The MCP server: its tools, its identity and its instructions. It knows nothing of
//! stdio; `main.rs` picks the transport.

pub(crate) mod args;
mod chat;
mod conversations;
mod delegate;
mod error;
mod models;
mod subscriptions;
mod tasks;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    GetTaskParams, GetTaskResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::principal::Principal;
use crate::setting;

pub use args::InvalidArguments;
pub use error::ToolError;

/// What an agent reads once, at `initialize`, to know when to use which tool.
const INSTRUCTIONS: &str = "\
Delegate work to models hosted on Vultr Serverless Inference.
- list_models: the live catalog (ids, context window, max output, tool support, prices). Use it to pick a `model`; filter with `capability` (chat, tools, ...) or `query`.
- chat_completion: run a model. Simple use: `prompt` (+ optional `system`). Multi-turn or tool calling: `messages` in OpenAI format.
- Tool calling round trip: pass `tools` (OpenAI function tools) and optionally `tool_choice`. If the result has `tool_calls`, run each yourself, then call chat_completion again with the same `tools`, the result's `conversation_id`, and `messages` = one {\"role\":\"tool\",\"tool_call_id\":<id>,\"content\":<result text>} per call (without conversation_id, send your previous messages + the result's `assistant_message` + the tool messages). Repeat until `finish_reason` is not tool_calls.
- Conversations: every chat_completion result has a conversation_id. Pass it back to continue: the stored messages are sent first, so send only the new prompt or messages (for a tool round trip, just the tool messages). delete_conversation removes one; the resources vultr://conversations (list) and vultr://conversations/{id} (transcript) show them.
- list_subscriptions / get_subscription: the account's inference subscriptions and their usage (needs VULTR_API_KEY). Keys are never shown, only their last 4 characters.
Errors come back as tool results with isError and say what to change.";

/// The tools whose calls go to Vultr (or downstream servers) and so take a slot of the
/// shared limit. `list_models` answers from the cached catalog (one shared fetch when it is
/// stale); `delete_conversation` only touches the store.
const UPSTREAM_TOOLS: [&str; 4] = [
    "chat_completion",
    "delegate",
    "list_subscriptions",
    "get_subscription",
];

/// The vultr-inference-mcp MCP handler: one value per session, all sharing one [`App`].
#[derive(Clone)]
pub struct VultrServer {
    app: Arc<App>,
    /// Cancelled when this session's client is gone: every call still running stops.
    shutdown: CancellationToken,
    /// Who the session acts for when its requests carry no authenticated principal
    /// (stdio: `local`).
    principal: Principal,
    /// Built once per process (the schemas are the same for every session).
    tool_router: Arc<ToolRouter<Self>>,
}

/// The tools of every session: without and with `delegate`.
static ROUTERS: [std::sync::OnceLock<Arc<ToolRouter<VultrServer>>>; 2] =
    [std::sync::OnceLock::new(), std::sync::OnceLock::new()];

impl VultrServer {
    /// The MCP handler of one session over the shared `app`; cancelling `shutdown` (the
    /// session's client is gone) stops every call the session still runs.
    pub fn new(app: Arc<App>, shutdown: CancellationToken) -> Self {
        let delegating = app.delegation.is_some();
        let tool_router = ROUTERS[usize::from(delegating)]
            .get_or_init(|| {
                let mut router = Self::subscriptions_router()
                    + Self::models_router()
                    + Self::chat_router()
                    + Self::conversations_router();
                if delegating {
                    router += Self::delegate_router();
                }
                Arc::new(router)
            })
            .clone();
        Self {
            app,
            shutdown,
            principal: Principal::local(),
            tool_router,
        }
    }

    /// The same handler acting for `principal` instead of `local` when a request carries
    /// no principal of its own (as in-process tests of isolation do).
    pub fn acting_for(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// Who `context`'s request acts for: the principal the HTTP transport authenticated
    /// (put in the request's extensions), else this session's own.
    pub(crate) fn principal(&self, context: &RequestContext<RoleServer>) -> Principal {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .unwrap_or(&self.principal)
            .clone()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for VultrServer {
    /// Runs a tool once a slot is free, so a burst of calls queues instead of piling onto Vultr.
    /// An unknown tool is refused at once, naming the tools that exist.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.tool_router.has_route(&request.name) {
            let mut tools: Vec<String> = self
                .tool_router
                .list_all()
                .into_iter()
                .map(|tool| tool.name.into_owned())
                .collect();
            tools.sort();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {:?}; the tools are: {}",
                    request.name,
                    tools.join(", ")
                ),
                None,
            ));
        }
        let _in_flight = self.app.calls_in_flight.token();
        let caller = self.principal(&context);
        if let Some(limit) = &self.app.rate_limit
            && let Err(over) = limit.check(&caller)
        {
            return Ok(self.failure(ToolError::RateLimited(over)).into());
        }
        let upstream = UPSTREAM_TOOLS.contains(&request.name.as_ref());
        // A principal's share bounds its calls that take (or wait for) upstream slots.
        let share = if upstream {
            match self.app.shares.enter(&caller) {
                Ok(ticket) => Some(ticket),
                Err(over) => return Ok(self.failure(ToolError::OverShare(over)).into()),
            }
        } else {
            None
        };
        if tasks::TASK_TOOLS.contains(&request.name.as_ref()) && tasks::accepts_tasks(&context) {
            return self.call_as_task(request, context, share).await;
        }
        let cancelled = context.ct.clone();
        let shutdown = self.shutdown.clone();
        let stopped = || Ok(CallToolResult::error(vec![ContentBlock::text("cancelled")]).into());
        // Only calls that go to Vultr wait for a slot; the others never queue behind them.
        let _share = share;
        let _permit = if upstream {
            Some(tokio::select! {
                permit = self.app.calls.acquire() => permit.map_err(|e| ErrorData::internal_error(e.to_string(), None))?,
                () = cancelled.cancelled() => return stopped(),
                () = shutdown.cancelled() => return stopped(),
            })
        } else {
            None
        };
        tokio::select! {
            outcome = self.tool_router.call(ToolCallContext::new(self, request, context)) => outcome,
            () = shutdown.cancelled() => stopped(),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.conversation_resources(&self.principal(&context)).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(self.conversation_templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let owner = self.principal(&context);
        Ok(self
            .read_conversation_resource(&owner, &request.uri)
            .await?
            .into())
    }

    /// `tasks/get`: the caller's task; another principal's is unknown, as a made-up id is.
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(
            self.task_status(&request.task_id, &context).await?,
        ))
    }

    /// `tasks/cancel`: stops the caller's running task (it ends `cancelled`).
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.cancel_task_of(&request.task_id, &context).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                .with_title("Vultr Serverless Inference"),
        )
        .with_instructions(INSTRUCTIONS)
    }
}

impl VultrServer {
    /// A successful result: readable text for the model, compact JSON for programs. Text
    /// over the result limit is cut, with a notice saying so.
    fn success(&self, text: String, structured: impl serde::Serialize) -> CallToolResult {
        let text = self.app.known_keys.redact(&text);
        let structured = serde_json::to_value(structured).ok().map(|mut value| {
            self.app.known_keys.redact_value(&mut value);
            value
        });
        self.result_of(text, structured)
    }

    /// Like [`VultrServer::success`], without scrubbing keys: only for results the user
    /// asked to reveal keys in.
    fn success_revealing_keys(
        &self,
        text: String,
        structured: impl serde::Serialize,
    ) -> CallToolResult {
        self.result_of(text, serde_json::to_value(structured).ok())
    }

    fn result_of(&self, text: String, structured: Option<serde_json::Value>) -> CallToolResult {
        let text = limit_text(text, self.app.max_result_chars);
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = structured;
        result
    }

    /// A tool's outcome as its result: a failure becomes an `isError` result.
    fn respond(&self, outcome: Result<CallToolResult, ToolError>) -> CallToolResult {
        outcome.unwrap_or_else(|error| self.failure(error))
    }

    /// A failed call as a tool result, scrubbed of any key that came back in a message.
    fn failure(&self, error: ToolError) -> CallToolResult {
        let text = self.app.known_keys.redact(&error.to_string());
        CallToolResult::error(vec![ContentBlock::text(text)])
    }
}

/// Cuts `text` to `max` characters, ending with a notice of what was left out.
fn limit_text(text: String, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push_str(&format!(
        "\n\n[truncated: showing {max} of {total} characters ({}). Ask for less: a lower max_tokens, a narrower query, or a shorter answer.]",
        setting::MAX_RESULT_CHARS
    ));
    cut
}
