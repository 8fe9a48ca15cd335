//! The MCP server: its identity, its tools (one registry, `registry.rs`, from which
//! `tools/list`, dispatch, tasks and the instructions derive) and its resources. It knows
//! nothing of the transport; `main.rs` picks it.

pub(crate) mod args;
mod audio;
mod chat;
mod collections;
mod compare;
mod confirm;
mod conversations;
mod delegate;
mod error;
mod images;
mod media;
mod models;
mod progress;
mod registry;
mod retrieval;
mod subscriptions;
mod tasks;
mod usage;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    GetTaskParams, GetTaskResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::principal::Principal;
use crate::setting;

pub use args::InvalidArguments;
pub use error::ToolError;
use progress::CallProgress;
use registry::{Call, ToolEntry, Tools, cancelled};
use tracing::Instrument;

use crate::observe::trace::TraceParent;
use crate::observe::{CallObservation, Outcome, Transport};
use crate::spend::CallSpend;

/// The names of the tools a client is offered with `selection`, in `tools/list` order.
pub fn listed_tool_names(selection: &crate::settings::ToolSelection) -> Vec<String> {
    Tools::of(selection)
        .listed()
        .iter()
        .map(|tool| tool.name.to_string())
        .collect()
}

/// The vultr-inference-mcp MCP handler: one value per session, all sharing one [`App`].
#[derive(Clone)]
pub struct VultrServer {
    app: Arc<App>,
    /// Cancelled when this session's client is gone: every call still running stops.
    shutdown: CancellationToken,
    /// Who the session acts for when its requests carry no authenticated principal
    /// (stdio: `local`).
    principal: Principal,
    /// The tools the app lists, built once per process.
    tools: Arc<Tools>,
}

impl VultrServer {
    /// The MCP handler of one session over the shared `app`; cancelling `shutdown` (the
    /// session's client is gone) stops every call the session still runs.
    pub fn new(app: Arc<App>, shutdown: CancellationToken) -> Self {
        let tools = Tools::of(&app.tools);
        Self {
            app,
            shutdown,
            principal: Principal::local(),
            tools,
        }
    }

    /// The same handler acting for `principal` instead of `local` when a request carries
    /// no principal of its own (as in-process tests of isolation do).
    pub fn acting_for(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// Whether `context`'s call may name files on this machine: only when the process
    /// serves no HTTP at all, and the request did not come over HTTP (both must hold, so a
    /// transport that forgot its HTTP parts still gets no local files).
    pub(crate) fn local_files(&self, context: &RequestContext<RoleServer>) -> bool {
        !self.app.serves_http && without_http_parts(context)
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

impl ServerHandler for VultrServer {
    /// Runs a tool once a slot is free, so a burst of calls queues instead of piling onto Vultr.
    /// An unknown tool is refused at once, naming the tools that exist.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = self.tools.get(&request.name) else {
            let why = self
                .tools
                .why_not_listed(&request.name)
                .unwrap_or_else(|| format!("unknown tool {:?}", request.name));
            return Err(ErrorData::invalid_params(
                format!("{why}; the tools are: {}", self.tools.names()),
                None,
            ));
        };
        let caller = self.principal(&context);
        let observation = self.app.observer.start(
            tool.name,
            caller.clone(),
            transport_of(&context),
            &trace_parent_of(&context),
        );
        let span = observation.span();
        self.run_call(tool, request, context, caller, observation)
            .instrument(span)
            .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.tools.listed().to_vec(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools
            .listed()
            .iter()
            .find(|tool| tool.name == name)
            .cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut resources = self
            .conversation_resources(&self.principal(&context))
            .await?;
        resources.resources.insert(0, Self::usage_resource());
        Ok(resources)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut templates = self.conversation_templates();
        if self.tools.makes_media() {
            templates.resource_templates.push(Self::media_template());
        }
        Ok(templates)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let owner = self.principal(&context);
        if request.uri == usage::USAGE_URI {
            return Ok(self.read_usage(&owner).await?.into());
        }
        if request.uri.starts_with(crate::media::URI_PREFIX) {
            return Ok(self.read_media_resource(&owner, &request.uri).await?.into());
        }
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
        .with_instructions(self.tools.instructions())
    }
}

impl VultrServer {
    /// Runs a tool once a slot is free, so a burst of calls queues instead of piling onto
    /// Vultr; `observation` is finished with how the call ended (for a task, when the task
    /// ends).
    async fn run_call(
        &self,
        tool: &'static ToolEntry,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
        caller: Principal,
        observation: CallObservation,
    ) -> Result<CallToolResponse, ErrorData> {
        let _in_flight = self.app.calls_in_flight.token();
        if let Some(limit) = &self.app.rate_limit
            && let Err(over) = limit.check(&caller)
        {
            observation.finish(Outcome::RateLimited);
            return Ok(self.failure(ToolError::RateLimited(over)).into());
        }
        // A principal's share bounds its calls that take (or wait for) upstream slots.
        let share = if tool.behaviour.upstream {
            match self.app.shares.enter(&caller) {
                Ok(ticket) => Some(ticket),
                Err(over) => {
                    observation.finish(Outcome::OverShare);
                    return Ok(self.failure(ToolError::OverShare(over)).into());
                }
            }
        } else {
            None
        };
        let facts = observation.facts();
        let as_task = tool.behaviour.runs_as_task && tasks::accepts_tasks(&context);
        // Only a server that asks needs an approver (for a 2026-07-28 client, making one
        // hashes the arguments), and only for calls that go upstream.
        let approver = (self.app.spending.asks() && tool.behaviour.upstream)
            .then(|| confirm::approver(&context, &request, &caller, as_task))
            .flatten();
        let spend = CallSpend::new(
            self.app.spending.clone(),
            caller.clone(),
            facts.clone(),
            approver.clone(),
        );
        let arguments = request.arguments.unwrap_or_default();
        if as_task {
            let response = self
                .call_as_task(tool, arguments, context, share, spend, observation)
                .await;
            return Ok(confirm::answer(approver.as_ref(), response));
        }
        let cancel = context.ct.clone();
        let cancelled_call = cancel.clone();
        let shutdown = self.shutdown.clone();
        // Only calls that go to Vultr wait for a slot; the others never queue behind them.
        let _share = share;
        let _permit = if tool.behaviour.upstream {
            Some(tokio::select! {
                permit = self.app.calls.acquire() => permit.map_err(|e| {
                    ErrorData::internal_error(e.to_string(), None)
                })?,
                () = cancel.cancelled() => {
                    observation.finish(Outcome::Cancelled);
                    return Ok(cancelled().into());
                }
                () = shutdown.cancelled() => {
                    observation.finish(Outcome::Cancelled);
                    return Ok(cancelled().into());
                }
            })
        } else {
            None
        };
        let call = Call {
            owner: caller,
            arguments,
            progress: CallProgress::of(&context),
            cancel,
            local_files: self.local_files(&context),
            spend,
            facts,
        };
        let result = tokio::select! {
            result = (tool.handler)(self, call) => result,
            () = shutdown.cancelled() => {
                observation.finish(Outcome::Cancelled);
                return Ok(cancelled().into());
            }
        };
        observation.finish(if cancelled_call.is_cancelled() {
            Outcome::Cancelled
        } else {
            outcome_of(&result)
        });
        Ok(confirm::answer(approver.as_ref(), result.into()))
    }

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

/// How a call that returned `result` ended: a refusal a service recorded takes the place
/// of `Error` when the observation finishes.
fn outcome_of(result: &CallToolResult) -> Outcome {
    if result.is_error == Some(true) {
        Outcome::Error
    } else {
        Outcome::Ok
    }
}

/// How `context`'s request arrived.
fn transport_of(context: &RequestContext<RoleServer>) -> Transport {
    if without_http_parts(context) {
        Transport::Stdio
    } else {
        Transport::Http
    }
}

/// The W3C trace context `context`'s request carried: in its `_meta` (SEP-414), else in
/// the headers of the HTTP request that brought it. Only read when traces are on.
fn trace_parent_of(context: &RequestContext<RoleServer>) -> TraceParent {
    if !crate::observe::trace::enabled() {
        return TraceParent::default();
    }
    if let Some(traceparent) = context.meta.get_traceparent() {
        return TraceParent {
            traceparent: Some(traceparent.to_owned()),
            tracestate: context.meta.get_tracestate().map(str::to_owned),
        };
    }
    let header = |name: &str| {
        let parts = context.extensions.get::<http::request::Parts>()?;
        let value = parts.headers.get(name)?.to_str().ok()?;
        Some(value.to_owned())
    };
    TraceParent {
        traceparent: header("traceparent"),
        tracestate: header("tracestate"),
    }
}

/// Whether `context`'s request carries no HTTP parts (requests over HTTP carry them).
fn without_http_parts(context: &RequestContext<RoleServer>) -> bool {
    context.extensions.get::<http::request::Parts>().is_none()
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
