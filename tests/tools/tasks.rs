//! Long calls as MCP tasks (the `io.modelcontextprotocol/tasks` extension), in process.
//! A client that declares the extension gets a task handle for a `chat_completion` still
//! running after `VULTR_MCP_TASK_AFTER` (at once with 0), polls `tasks/get` for the exact
//! result the call would have returned, and can stop it with `tasks/cancel` (its upstream
//! request too), also through another server sharing the store. A client that did not
//! declare it always gets the plain result. A working task's status message counts the
//! tokens so far; a failed call's task holds its error result. Tasks belong to their
//! principal, end `failed` when the server running them stops heartbeating, and go after
//! their TTL. A principal over `VULTR_MCP_MAX_TASKS_PER_PRINCIPAL` is refused at once
//! while others' calls run; a task cancelled (through any server) while it waited for a
//! call slot never reaches Vultr.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    ClientConfig, CreateTaskResult, GetTaskParams, Implementation, TaskPayload, TaskStatus,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use vultr_inference_mcp::app::App;
use vultr_inference_mcp::mcp::VultrServer;
use vultr_inference_mcp::principal::Principal;
use vultr_inference_mcp::store::StoreLocation;
use vultr_inference_mcp::tasks::{TaskRecord, WallClock};

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::faults::{Fault, FaultServer, StreamEnd, content_chunks};
use crate::support::in_process::settings;
use crate::support::session::{ok, overridden, text};

/// Time allowed for something that should happen at once.
const PROMPTLY: Duration = Duration::from_secs(10);
/// Longer than the default `VULTR_MCP_TASK_AFTER` (5 s).
const SLOW: Duration = Duration::from_secs(10);

/// A client of one server (`App`), declaring the tasks extension or not.
struct Client {
    client: RunningService<RoleClient, ClientConfig>,
    shutdown: CancellationToken,
}

impl Client {
    /// A session on `app` acting for `principal`, its client declaring the tasks
    /// extension when `tasks` is true.
    async fn connect(app: &Arc<App>, principal: Principal, tasks: bool) -> Client {
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let handler = VultrServer::new(Arc::clone(app), shutdown.clone()).acting_for(principal);
        tokio::spawn(async move {
            if let Ok(running) = handler.serve(server_end).await {
                let _ = running.waiting().await;
            }
        });
        let capabilities = if tasks {
            ClientCapabilities::builder().enable_tasks().build()
        } else {
            ClientCapabilities::default()
        };
        let client = ClientConfig::new(capabilities, Implementation::new("tasks-test", "0"))
            .serve(client_end)
            .await
            .expect("the MCP handshake succeeds");
        Client { client, shutdown }
    }

    /// `chat_completion` of "hi", as the server answers it (a result or a task handle).
    async fn chat(&self) -> CallToolResponse {
        let arguments = json!({"model": "kimi-k2-instruct", "prompt": "hi"});
        self.client
            .call_tool_once(
                CallToolRequestParams::new("chat_completion")
                    .with_arguments(arguments.as_object().cloned().expect("an object")),
            )
            .await
            .expect("tools/call answers")
    }

    /// A chat call that must be answered at once: its result (`why` it must, on failure).
    async fn chat_result(&self, why: &str) -> CallToolResult {
        match self.chat().await {
            CallToolResponse::Complete(result) => result,
            other => panic!("{why}: got {other:?}"),
        }
    }

    /// A chat call that must become a task: its handle.
    async fn chat_task(&self) -> CreateTaskResult {
        match self.chat().await {
            CallToolResponse::Task(task) => task,
            other => panic!("expected a task handle, got {other:?}"),
        }
    }

    /// `tasks/get`, with its protocol error as text.
    async fn get(&self, id: &str) -> Result<rmcp::model::DetailedTask, String> {
        self.client
            .get_task(GetTaskParams::new(id.to_owned()))
            .await
            .map(|result| result.task)
            .map_err(|e| e.to_string())
    }

    /// `tasks/cancel`, with its protocol error as text.
    async fn cancel(&self, id: &str) -> Result<(), String> {
        self.client
            .cancel_task(CancelTaskParams::new(id.to_owned()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Polls `tasks/get` every `pollIntervalMs` until the task ended.
    async fn until_ended(&self, handle: &CreateTaskResult) -> rmcp::model::DetailedTask {
        let every = Duration::from_millis(handle.task.poll_interval_ms.expect("a poll interval"));
        tokio::time::timeout(PROMPTLY + SLOW, async {
            loop {
                let task = self
                    .get(&handle.task.task_id)
                    .await
                    .expect("the task is known");
                if task.status().is_terminal() {
                    return task;
                }
                tokio::time::sleep(every).await;
            }
        })
        .await
        .expect("the task ends")
    }

    async fn stop(self) {
        let _ = self.client.cancel().await;
        self.shutdown.cancel();
    }
}

/// An `App` talking to `faults`, with `extra` settings.
fn app(faults: &FaultServer, extra: &[(&str, &str)]) -> Arc<App> {
    App::new(settings(&overridden(&faults.settings(), extra)))
}

/// A client of its own `App` talking to `faults` with `extra` settings, acting for
/// `local`, declaring the tasks extension when `tasks` is true.
async fn local_client(faults: &FaultServer, extra: &[(&str, &str)], tasks: bool) -> Client {
    Client::connect(&app(faults, extra), Principal::local(), tasks).await
}

/// A completed task's result as the tool result it is.
fn completed(task: &rmcp::model::DetailedTask) -> CallToolResult {
    match &task.payload {
        TaskPayload::Completed { result } => {
            serde_json::from_value(Value::Object(result.clone())).expect("a tool result")
        }
        other => panic!("expected a completed task, got {other:?}"),
    }
}

/// A result with its conversation id (different for each call) blanked.
fn without_conversation_id(result: &CallToolResult) -> (String, Value) {
    let mut structured = ok(result);
    let id = structured["conversation_id"]
        .as_str()
        .expect("a conversation id")
        .to_owned();
    structured["conversation_id"] = json!("…");
    (text(result).replace(&id, "…"), structured)
}

fn alice() -> Principal {
    Principal::new("alice").unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_becomes_a_task_whose_result_is_exactly_the_calls_own() {
    let faults = FaultServer::start(vec![Fault::Delay(SLOW), Fault::Delay(SLOW)]).await;
    let app = app(&faults, &[]);
    let tasks = Client::connect(&app, Principal::local(), true).await;
    let plain = Client::connect(&app, Principal::local(), false).await;

    let handle = tasks.chat_task().await;
    assert_eq!(handle.task.status, TaskStatus::Working);
    assert_eq!(
        handle.task.ttl_ms,
        Some(3_600_000),
        "VULTR_MCP_TASK_TTL's default"
    );
    let at_once = tasks.get(&handle.task.task_id).await;
    assert_eq!(
        at_once.map(|t| t.status()),
        Ok(TaskStatus::Working),
        "the task exists as soon as its handle"
    );

    let ended = tasks.until_ended(&handle).await;
    let plain_result = plain
        .chat_result("a client without the extension gets the result")
        .await;

    assert_eq!(ended.status(), TaskStatus::Completed);
    assert_eq!(
        without_conversation_id(&completed(&ended)),
        without_conversation_id(&plain_result)
    );
    tasks.stop().await;
    plain.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_that_ends_within_task_after_is_answered_at_once() {
    let faults = FaultServer::start(vec![Fault::Delay(Duration::from_secs(1))]).await;
    let client = local_client(&faults, &[], true).await;

    let result = client
        .chat_result("a call within VULTR_MCP_TASK_AFTER is not a task")
        .await;

    ok(&result);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_did_not_declare_tasks_never_gets_one() {
    let faults = FaultServer::start(vec![Fault::Delay(SLOW)]).await;
    let client = local_client(&faults, &[("VULTR_MCP_TASK_AFTER", "0")], false).await;

    let result = client
        .chat_result("a client that did not declare the extension gets no task handle")
        .await;

    ok(&result);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_task_after_0_every_call_of_a_declaring_client_is_a_task() {
    let faults = FaultServer::start(vec![Fault::Normal]).await;
    let client = local_client(&faults, &[("VULTR_MCP_TASK_AFTER", "0")], true).await;

    let handle = client.chat_task().await;
    let ended = client.until_ended(&handle).await;

    ok(&completed(&ended));
    client.stop().await;
}

#[tokio::test]
async fn cancelling_a_task_stops_its_upstream_request_and_it_ends_cancelled() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let client = local_client(&faults, &[("VULTR_MCP_TASK_AFTER", "0")], true).await;
    let handle = client.chat_task().await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    client
        .cancel(&handle.task.task_id)
        .await
        .expect("the cancel is acknowledged");

    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream request was left open"
    );
    assert_eq!(
        client.until_ended(&handle).await.status(),
        TaskStatus::Cancelled
    );
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancel_through_another_server_sharing_the_store_stops_the_call_within_2_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite3");
    let settings = [
        ("VULTR_MCP_TASK_AFTER", "0"),
        ("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap()),
    ];
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let running = local_client(&faults, &settings, true).await;
    let other = local_client(&faults, &settings, true).await;
    let handle = running.chat_task().await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    let asked = tokio::time::Instant::now();
    other
        .cancel(&handle.task.task_id)
        .await
        .expect("the other server knows the task");
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream request was left open"
    );

    assert!(
        asked.elapsed() <= Duration::from_secs(2),
        "noticed after {:?}",
        asked.elapsed()
    );
    assert_eq!(
        other.until_ended(&handle).await.status(),
        TaskStatus::Cancelled
    );
    running.stop().await;
    other.stop().await;
}

#[tokio::test(start_paused = true)]
async fn another_principals_task_is_unknown_exactly_as_a_made_up_id() {
    let faults = FaultServer::start(vec![Fault::Normal]).await;
    let app = app(&faults, &[("VULTR_MCP_TASK_AFTER", "0")]);
    let owner = Client::connect(&app, alice(), true).await;
    let stranger = Client::connect(&app, Principal::new("bob").unwrap(), true).await;
    let handle = owner.chat_task().await;
    let id = handle.task.task_id.clone();
    let made_up = "task_00000000000000000000000000000000";

    let seen = stranger
        .get(&id)
        .await
        .expect_err("bob cannot read alice's task");
    let cancelled = stranger
        .cancel(&id)
        .await
        .expect_err("bob cannot cancel alice's task");
    let unknown = stranger
        .get(made_up)
        .await
        .expect_err("a made-up id is unknown");

    assert_eq!(seen, unknown.replace(made_up, &id));
    assert_eq!(cancelled, seen);
    assert!(seen.contains("unknown task"), "{seen}");
    ok(&completed(&owner.until_ended(&handle).await));
    owner.stop().await;
    stranger.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_whose_server_stopped_heartbeating_ends_failed_after_60_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite3");
    let faults = FaultServer::start(vec![]).await;
    let client = Client::connect(
        &app(
            &faults,
            &[("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap())],
        ),
        Principal::local(),
        true,
    )
    .await;
    // What a server that was then killed leaves behind: a working task it no longer beats for.
    let orphan = TaskRecord::working(WallClock::new().now_ms(), 3_600_000, "running");
    vultr_inference_mcp::store::open_task_store(&StoreLocation::File(store))
        .await
        .unwrap()
        .create(&Principal::local(), &orphan)
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        client.get(&orphan.id).await.map(|t| t.status()),
        Ok(TaskStatus::Working)
    );

    tokio::time::advance(Duration::from_secs(31)).await;
    let task = client.get(&orphan.id).await.expect("the task is known");

    let TaskPayload::Failed { error } = &task.payload else {
        panic!("expected a failed task, got {task:?}");
    };
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("server running this task stopped"),
        "{message}"
    );
    assert_eq!(task.task.status_message.as_deref(), Some(message));
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_and_its_result_are_gone_after_task_ttl() {
    let faults = FaultServer::start(vec![Fault::Normal]).await;
    let client = Client::connect(
        &app(
            &faults,
            &[("VULTR_MCP_TASK_AFTER", "0"), ("VULTR_MCP_TASK_TTL", "1m")],
        ),
        Principal::local(),
        true,
    )
    .await;
    let handle = client.chat_task().await;
    assert_eq!(handle.task.ttl_ms, Some(60_000));
    ok(&completed(&client.until_ended(&handle).await));

    tokio::time::advance(Duration::from_secs(60)).await;

    let gone = client
        .get(&handle.task.task_id)
        .await
        .expect_err("the task expired");
    assert_contains(&gone, &["unknown task", "VULTR_MCP_TASK_TTL"]);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn when_no_task_can_be_recorded_the_call_answers_as_a_plain_call() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_folder = dir.path().join("file");
    std::fs::write(&not_a_folder, "").unwrap();
    let store = not_a_folder.join("store.sqlite3");
    let faults = FaultServer::start(vec![Fault::Normal]).await;
    let client = Client::connect(
        &app(
            &faults,
            &[
                ("VULTR_MCP_TASK_AFTER", "0"),
                ("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap()),
            ],
        ),
        Principal::local(),
        true,
    )
    .await;

    let result = client
        .chat_result("without a durable record there is no task handle")
        .await;

    assert!(
        text(&result).contains("this turn was not saved"),
        "{}",
        text(&result)
    );
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_whose_call_fails_holds_the_error_result_the_call_would_have_returned() {
    let refused = Fault::Status {
        status: 400,
        headers: vec![],
        body: r#"{"error":{"message":"prompt refused"}}"#.to_owned(),
    };
    let faults = FaultServer::start(vec![refused.clone(), refused]).await;
    let app = app(&faults, &[("VULTR_MCP_TASK_AFTER", "0")]);
    let tasks = Client::connect(&app, Principal::local(), true).await;
    let plain = Client::connect(&app, Principal::local(), false).await;

    let handle = tasks.chat_task().await;
    let ended = tasks.until_ended(&handle).await;
    let plain_result = plain
        .chat_result("a client without the extension gets the result")
        .await;

    assert_eq!(
        ended.status(),
        TaskStatus::Completed,
        "a tool error is a result"
    );
    let mut result = completed(&ended);
    assert_eq!(result.is_error, Some(true));
    // `resultType` is the wire's, and the legacy session's plain answer goes without it.
    result.result_type = None;
    assert_eq!(result, plain_result);
    tasks.stop().await;
    plain.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_working_tasks_status_message_counts_the_tokens_so_far() {
    let pieces: Vec<String> = (1..=8).map(|n| format!("{n} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let faults = FaultServer::start(vec![Fault::Stream {
        chunks: content_chunks("glm-5.2", &pieces, false),
        interval: Duration::from_secs(1),
        then: StreamEnd::Stall,
    }])
    .await;
    let client = local_client(&faults, &[("VULTR_MCP_TASK_AFTER", "0")], true).await;
    let arguments = json!({"model": "glm-5.2", "prompt": "count"});
    let CallToolResponse::Task(handle) = client
        .client
        .call_tool_once(
            CallToolRequestParams::new("chat_completion")
                .with_arguments(arguments.as_object().cloned().expect("an object")),
        )
        .await
        .expect("tools/call answers")
    else {
        panic!("expected a task handle");
    };

    tokio::time::sleep(Duration::from_secs(5)).await;
    let task = client
        .get(&handle.task.task_id)
        .await
        .expect("the task is known");

    assert_eq!(task.status(), TaskStatus::Working);
    let message = task.task.status_message.unwrap_or_default();
    assert!(message.contains("tokens so far"), "{message}");
    client
        .cancel(&handle.task.task_id)
        .await
        .expect("cancelled");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_task_ends_failed_when_its_server_stops_and_its_upstream_request_is_closed() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let app = app(&faults, &[("VULTR_MCP_TASK_AFTER", "0")]);
    let stopping = Client::connect(&app, Principal::local(), true).await;
    let poller = Client::connect(&app, Principal::local(), true).await;
    let handle = stopping.chat_task().await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    stopping.shutdown.cancel();

    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream request was left open"
    );
    let ended = poller.until_ended(&handle).await;
    let TaskPayload::Failed { error } = &ended.payload else {
        panic!("expected a failed task, got {ended:?}");
    };
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("server running this task stopped"),
        "{message}"
    );
    stopping.stop().await;
    poller.stop().await;
}

#[tokio::test]
async fn a_delegation_becomes_a_task_too_and_its_result_is_the_delegations() {
    use crate::support::downstream::Downstreams;
    use crate::support::fake_vultr::FakeVultr;
    use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};

    let fake = FakeVultr::start().await;
    fake.script(|messages| match tool_result(messages, "c1") {
        None => tool_calls(&[("c1", "calc__add", r#"{"a": 2, "b": 3}"#)]),
        Some(sum) => answer(&format!("the sum is {sum}")),
    })
    .await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let servers = downstreams.setting();
    let fake_settings = fake.settings();
    let app = App::new(settings(&overridden(
        &fake_settings,
        &[
            ("VULTR_MCP_DELEGATE_SERVERS", servers.as_str()),
            ("VULTR_MCP_TASK_AFTER", "0"),
        ],
    )));
    let client = Client::connect(&app, Principal::local(), true).await;
    let arguments = json!({"task": "add 2 and 3", "model": "kimi-k2-instruct"});
    let response = client
        .client
        .call_tool_once(
            CallToolRequestParams::new("delegate")
                .with_arguments(arguments.as_object().cloned().expect("an object")),
        )
        .await
        .expect("tools/call answers");
    let CallToolResponse::Task(handle) = response else {
        panic!("expected a task handle, got {response:?}")
    };

    let ended = client.until_ended(&handle).await;
    let delegation = ok(&completed(&ended));
    assert_eq!(delegation["answer"], "the sum is 5");
    assert_eq!(delegation["stopped"], "done");
    assert_eq!(downstreams.calls("calc").len(), 1, "the tool ran once");
    client.stop().await;
}

#[tokio::test]
async fn compare_models_becomes_a_task_too_and_its_result_is_the_comparison() {
    let faults = FaultServer::start(vec![Fault::Normal, Fault::Normal]).await;
    let client = local_client(&faults, &[("VULTR_MCP_TASK_AFTER", "0")], true).await;
    let arguments = json!({"prompt": "hi", "models": ["glm-5.2", "kimi-k2-instruct"]});
    let response = client
        .client
        .call_tool_once(
            CallToolRequestParams::new("compare_models")
                .with_arguments(arguments.as_object().cloned().expect("an object")),
        )
        .await
        .expect("tools/call answers");
    let CallToolResponse::Task(handle) = response else {
        panic!("expected a task handle, got {response:?}")
    };

    let ended = client.until_ended(&handle).await;
    let comparison = ok(&completed(&ended));
    assert_eq!(comparison["answers"][0]["model"], "glm-5.2");
    assert_eq!(comparison["answers"][1]["content"], "ok from raw fake");
    assert_eq!(faults.chat_requests(), 2);
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn expired_tasks_are_deleted_from_the_store_without_anyone_asking_for_them() {
    let faults = FaultServer::start(vec![Fault::Normal]).await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("store.sqlite3");
    let client = Client::connect(
        &app(
            &faults,
            &[
                ("VULTR_MCP_TASK_AFTER", "0"),
                ("VULTR_MCP_TASK_TTL", "1m"),
                ("VULTR_MCP_CONVERSATIONS", file.to_str().unwrap()),
            ],
        ),
        Principal::local(),
        true,
    )
    .await;
    let handle = client.chat_task().await;
    ok(&completed(&client.until_ended(&handle).await));
    let stored = || {
        rusqlite::Connection::open(&file)
            .and_then(|db| {
                db.query_row("SELECT count(*) FROM tasks", [], |row| row.get::<_, i64>(0))
            })
            .expect("the store file reads")
    };
    assert_eq!(stored(), 1);

    // Past the TTL and one pruning period, with nobody polling.
    tokio::time::advance(Duration::from_secs(60) + vultr_inference_mcp::tasks::PRUNE_EVERY).await;
    let mut count = stored();
    for _ in 0..200 {
        if count == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        count = stored();
    }
    assert_eq!(count, 0, "the expired task's row is still stored");
    client.stop().await;
}

#[tokio::test(start_paused = true)]
async fn over_its_task_cap_a_principals_call_is_refused_at_once_and_another_principals_still_runs()
{
    let faults = FaultServer::start(vec![Fault::Stall, Fault::Stall, Fault::Normal]).await;
    let app = app(
        &faults,
        &[
            ("VULTR_MCP_TASK_AFTER", "0"),
            ("VULTR_MCP_MAX_TASKS_PER_PRINCIPAL", "2"),
        ],
    );
    let alice = Client::connect(&app, alice(), true).await;
    let bob = Client::connect(&app, Principal::new("bob").unwrap(), true).await;
    let first = alice.chat_task().await;
    alice.chat_task().await;
    assert!(faults.wait_chat_requests(2, PROMPTLY).await);

    let refused = alice
        .chat_result("a call over the cap is refused, not made a task")
        .await;

    assert_eq!(refused.is_error, Some(true));
    let message = text(&refused);
    assert_contains(
        &message,
        &[
            "VULTR_MCP_MAX_TASKS_PER_PRINCIPAL=2",
            "you have 2 calls working",
        ],
    );
    assert_eq!(faults.chat_requests(), 2, "the refused call went upstream");
    let handle = bob.chat_task().await;
    ok(&completed(&bob.until_ended(&handle).await));

    alice.cancel(&first.task.task_id).await.expect("cancelled");
    alice.until_ended(&first).await;
    faults.push(Fault::Normal);
    let again = alice.chat_task().await;
    ok(&completed(&alice.until_ended(&again).await));
    alice.stop().await;
    bob.stop().await;
}

/// Real time: the cancel through the other server and the slot freeing come a few
/// milliseconds apart, before the running server's watcher looks (without the check the
/// call takes its slot, it went upstream).
#[tokio::test]
async fn a_task_cancelled_through_another_server_while_queued_never_reaches_vultr() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite3");
    let settings = [
        ("VULTR_MCP_TASK_AFTER", "0"),
        ("VULTR_MCP_MAX_CONCURRENT_CALLS", "1"),
        // Room in the principal's share for the queued calls.
        ("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "10"),
        ("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap()),
    ];
    let faults = FaultServer::start(vec![Fault::Stall; 8]).await;
    let running = local_client(&faults, &settings, true).await;
    let other = local_client(&faults, &settings, true).await;
    let holding = running.chat_task().await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(running.chat_task().await);
    }

    for handle in &queued {
        other
            .cancel(&handle.task.task_id)
            .await
            .expect("the other server knows the task");
    }
    running
        .cancel(&holding.task.task_id)
        .await
        .expect("cancelled");

    for handle in &queued {
        assert_eq!(
            other.until_ended(handle).await.status(),
            TaskStatus::Cancelled
        );
    }
    assert!(faults.wait_stalls_closed(1, PROMPTLY).await);
    assert_eq!(
        faults.chat_requests(),
        1,
        "a task cancelled while queued went upstream"
    );
    running.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn a_call_that_became_a_task_keeps_its_place_in_the_callers_share_until_it_ends() {
    let faults = FaultServer::start(vec![Fault::Delay(Duration::from_secs(3))]).await;
    let app = app(
        &faults,
        &[
            ("VULTR_MCP_TASK_AFTER", "0"),
            ("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "1"),
        ],
    );
    let client = Client::connect(&app, alice(), true).await;
    let handle = client.chat_task().await;

    let refused = match client.chat().await {
        CallToolResponse::Complete(result) => result,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL"),
        "{}",
        text(&refused)
    );

    ok(&completed(&client.until_ended(&handle).await));
    // The task ended: its place is free again.
    let again = client.chat_task().await;
    ok(&completed(&client.until_ended(&again).await));
    client.stop().await;
}
