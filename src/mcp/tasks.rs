//! The tasks extension at the protocol edge: a call of a task-capable tool (the registry
//! says which) by a client that declared the extension may answer with a task handle
//! (`CreateTaskResult`), and
//! `tasks/get` / `tasks/cancel` read and stop tasks through [`crate::tasks::Tasks`].

use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, JsonObject,
    Task, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::VultrServer;
use super::error::ToolError;
use super::progress::CallProgress;
use super::registry::{Call, ToolEntry, cancelled};
use crate::fair_share::CallTicket;
use crate::observe::{CallObservation, Outcome};
use crate::spend::CallSpend;
use crate::tasks::{POLL_INTERVAL, Started, StatusLine, TaskError, TaskRecord, TaskState, rfc3339};

/// Whether the request's client declared the tasks extension (in the request's `_meta`,
/// or, for a session of an older protocol, when it initialized).
pub(super) fn accepts_tasks(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|capabilities| capabilities.supports_tasks())
}

impl VultrServer {
    /// Runs a task-capable tool for a client that accepts tasks: its result if it ends
    /// within `VULTR_MCP_TASK_AFTER`, else a task handle while the call goes on. The call
    /// takes a slot of the shared limit as any call does; a task cancelled while it waited
    /// for its slot stops there. Refused at once (`isError`) when the caller already has
    /// `VULTR_MCP_MAX_TASKS_PER_PRINCIPAL` calls working as tasks here. `share` is the
    /// caller's place among its calls in flight: the call keeps it until it ends, task or
    /// not.
    pub(super) async fn call_as_task(
        &self,
        tool: &'static ToolEntry,
        arguments: JsonObject,
        context: RequestContext<RoleServer>,
        share: Option<CallTicket>,
        spend: CallSpend,
        observation: CallObservation,
    ) -> CallToolResponse {
        let owner = self.principal(&context);
        let admission = match self.app.tasks.admit(&owner) {
            Ok(admission) => admission,
            Err(too_many) => {
                observation.finish(Outcome::OverTasks);
                return self.failure(ToolError::Tasks(too_many)).into();
            }
        };
        let facts = observation.facts();
        let cancel_check = admission.cancel_check();
        let status = StatusLine::default();
        let progress = CallProgress::of_task(&context, status.clone());
        let call = Call {
            owner,
            arguments,
            progress: Some(progress.clone()),
            // A task is stopped by dropping its call, so it needs no token of its own.
            cancel: CancellationToken::new(),
            local_files: self.local_files(&context),
            spend,
            facts: facts.clone(),
        };
        let server = self.clone();
        let in_flight = self.app.calls_in_flight.token();
        let run_facts = facts.clone();
        let run = async move {
            let _in_flight = in_flight;
            let _share = share;
            let permit = server.app.calls.acquire().await;
            // Cancelled while queued (through any replica): stops here, never upstream.
            cancel_check.go_ahead().await;
            let result = match permit {
                Ok(_permit) => (tool.handler)(&server, call).await,
                Err(closed) => CallToolResult::error(vec![ContentBlock::text(format!(
                    "the server is stopping ({closed}); try again"
                ))]),
            };
            // The record may be made while the call ran: its line names the task either way.
            if let Some(id) = cancel_check.task_id() {
                run_facts.task(&id);
            }
            observation.finish(super::outcome_of(&result));
            result
        };
        let started = self
            .app
            .tasks
            .start(
                admission,
                run,
                status,
                context.ct.clone(),
                self.shutdown.clone(),
            )
            .await;
        match started {
            Started::Finished(result) => result.into(),
            Started::Task(record) => {
                facts.task(&record.id);
                progress.stop_forwarding();
                CallToolResponse::Task(CreateTaskResult::new(task_of(&record)))
            }
            Started::Stopped => cancelled().into(),
            Started::Failed(message) => self.failure(ToolError::Internal(message)).into(),
        }
    }

    /// `tasks/get`: the caller's task, with its result or error once it ended.
    pub(super) async fn task_status(
        &self,
        id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<DetailedTask, ErrorData> {
        let record = self
            .app
            .tasks
            .get(&self.principal(context), id)
            .await
            .map_err(protocol_error)?;
        Ok(detailed(record))
    }

    /// `tasks/cancel`: asks to stop the caller's task.
    pub(super) async fn cancel_task_of(
        &self,
        id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.app
            .tasks
            .cancel(&self.principal(context), id)
            .await
            .map_err(protocol_error)
    }
}

/// An unknown task is invalid params (as the extension asks); a store failure, internal.
fn protocol_error(error: TaskError) -> ErrorData {
    match &error {
        TaskError::NotFound { .. } => ErrorData::invalid_params(error.to_string(), None),
        TaskError::Store(_) => ErrorData::internal_error(error.to_string(), None),
    }
}

/// A record's protocol metadata.
fn task_of(record: &TaskRecord) -> Task {
    let status = match record.state {
        TaskState::Working => TaskStatus::Working,
        TaskState::Completed { .. } => TaskStatus::Completed,
        TaskState::Failed { .. } => TaskStatus::Failed,
        TaskState::Cancelled => TaskStatus::Cancelled,
    };
    let ttl_ms = u64::try_from(record.expires_at - record.created_at).unwrap_or(0);
    let poll_ms = u64::try_from(POLL_INTERVAL.as_millis()).unwrap_or(u64::MAX);
    let task = Task::new(
        record.id.clone(),
        status,
        rfc3339(record.created_at),
        rfc3339(record.updated_at),
    )
    .with_ttl_ms(ttl_ms)
    .with_poll_interval_ms(poll_ms);
    match &record.status_message {
        Some(message) => task.with_status_message(message.clone()),
        None => task,
    }
}

/// A record as `tasks/get` reports it.
fn detailed(record: TaskRecord) -> DetailedTask {
    let task = task_of(&record);
    let payload = match record.state {
        TaskState::Working => TaskPayload::Working,
        TaskState::Completed { result } => TaskPayload::Completed {
            result: object(result),
        },
        TaskState::Failed { error } => TaskPayload::Failed {
            error: object(error),
        },
        TaskState::Cancelled => TaskPayload::Cancelled,
    };
    DetailedTask::new(task, payload)
}

/// A stored JSON object (results and errors always are).
fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => JsonObject::from_iter([("value".to_owned(), other)]),
    }
}
