//! Two replicas (`--http`) on one Postgres database share more than conversations: a task
//! made on one is polled and cancelled on the other (its upstream request closed within
//! 2 s, every time; a task cancelled while queued never reaches Vultr); a task whose
//! replica was killed reads `failed` on the other once its heartbeat lease runs out; and a
//! 2025-era client's session opened on one replica works on the other for its principal
//! only.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::faults::{Fault, FaultServer};
use crate::support::http::{HttpServer, tokens_file};
use crate::support::postgres::PgServer;
use crate::support::raw::stateless_meta;
use crate::support::session::overridden;

/// Time allowed for what should happen at once (a request to reach the upstream, a
/// cancelled task to read `cancelled`).
const PROMPTLY: Duration = Duration::from_secs(10);
/// The bound on stopping a cancelled task's upstream request.
const CANCEL_BOUND: Duration = Duration::from_secs(2);
/// The heartbeat lease (60 s after the last heartbeat) plus room for the last heartbeat
/// (every 15 s at most) to have been just before the kill, and a poll.
const LEASE_BOUND: Duration = Duration::from_secs(80);

const ALICE_TOKEN: &str = "alice-token-3c9e1a7f2b64";
const BOB_TOKEN: &str = "bob-token-9a4d2e6b8c10";

/// The per-request `_meta` of a 2026-07-28 client declaring the tasks extension.
fn tasks_meta() -> Value {
    stateless_meta(
        "replicas",
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}}),
    )
}

/// A chat that becomes a task at once (with `VULTR_MCP_TASK_AFTER=0`).
fn chat() -> Value {
    json!({"name": "chat_completion", "arguments": {"model": "kimi-k2-instruct", "prompt": "hi"}})
}

/// Posts request `id` to `server` as a stateless 2026-07-28 client declaring tasks, and
/// returns its result, whether it came as JSON or on an event stream.
async fn post(server: &HttpServer, id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = tasks_meta();
    server.stateless_result(id, method, params).await
}

/// Polls task `id` on `server` every half second until it is no longer working, for up
/// to `bound`.
async fn until_ended(server: &HttpServer, id: &Value, bound: Duration) -> Value {
    tokio::time::timeout(bound, async {
        for poll in 100.. {
            let task = post(server, poll, "tasks/get", id.clone()).await;
            if task["status"] != "working" {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        unreachable!()
    })
    .await
    .expect("the task ends")
}

/// Two replicas on one fresh database, with `settings` and every call a task.
async fn replicas(settings: &[(&'static str, String)]) -> (HttpServer, HttpServer) {
    let database = PgServer::shared().create_database();
    let env = overridden(
        settings,
        &[
            ("VULTR_MCP_TASK_AFTER", "0"),
            ("VULTR_MCP_CONVERSATIONS", database.as_str()),
        ],
    );
    (HttpServer::start(&env).await, HttpServer::start(&env).await)
}

/// Rounds of the cancel through the other replica: the bound must hold every time.
const CANCEL_ROUNDS: usize = 5;

#[tokio::test]
async fn a_task_made_on_one_replica_is_polled_and_cancelled_on_the_other_within_2_s_every_time() {
    let faults = FaultServer::start(vec![Fault::Stall; CANCEL_ROUNDS]).await;
    let (one, other) = replicas(&faults.settings()).await;

    for round in 1..=CANCEL_ROUNDS {
        let base = i64::try_from(round * 1_000).unwrap();
        let handle = post(&one, base, "tools/call", chat()).await;
        assert_eq!(handle["resultType"], "task", "{handle}");
        let id = json!({"taskId": handle["taskId"]});
        assert!(faults.wait_chat_requests(round, PROMPTLY).await);
        let polled = post(&other, base + 1, "tasks/get", id.clone()).await;
        assert_eq!(polled["status"], "working", "{polled}");

        let asked = std::time::Instant::now();
        post(&other, base + 2, "tasks/cancel", id.clone()).await;

        let left = CANCEL_BOUND.saturating_sub(asked.elapsed());
        assert!(
            faults.wait_stalls_closed(round, left).await,
            "round {round}: the upstream request went on {:?} after the cancel",
            asked.elapsed()
        );
        let ended = until_ended(&other, &id, PROMPTLY).await;
        assert_eq!(ended["status"], "cancelled", "{ended}");
    }
    for server in [one, other] {
        let (status, _) = server.terminate().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn tasks_cancelled_through_the_other_replica_while_queued_never_reach_vultr() {
    let faults = FaultServer::start(vec![Fault::Stall; 8]).await;
    let mut settings = faults.settings();
    settings.push(("VULTR_MCP_MAX_CONCURRENT_CALLS", "1".to_owned()));
    // Room in the principal's share for the queued calls.
    settings.push(("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "10".to_owned()));
    let (one, other) = replicas(&settings).await;
    let holding = post(&one, 1, "tools/call", chat()).await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);
    let mut queued = Vec::new();
    for n in 0..5 {
        let handle = post(&one, 10 + n, "tools/call", chat()).await;
        assert_eq!(handle["resultType"], "task", "{handle}");
        queued.push(json!({"taskId": handle["taskId"]}));
    }

    for (n, id) in (20..).zip(&queued) {
        post(&other, n, "tasks/cancel", id.clone()).await;
    }
    // The slot frees at once: each queued task gets it before `one`'s watcher looks.
    post(
        &one,
        30,
        "tasks/cancel",
        json!({"taskId": holding["taskId"]}),
    )
    .await;

    for id in &queued {
        let ended = until_ended(&other, id, PROMPTLY).await;
        assert_eq!(ended["status"], "cancelled", "{ended}");
    }
    assert!(faults.wait_stalls_closed(1, PROMPTLY).await);
    assert_eq!(
        faults.chat_requests(),
        1,
        "tasks cancelled while queued went upstream"
    );
    for server in [one, other] {
        let (status, _) = server.terminate().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn a_task_whose_replica_was_killed_reads_failed_on_the_other_after_the_lease() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let (one, other) = replicas(&faults.settings()).await;
    let handle = post(&one, 1, "tools/call", chat()).await;
    let id = json!({"taskId": handle["taskId"]});
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);

    let pid = i32::try_from(one.pid()).expect("a pid");
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    drop(one);

    let ended = until_ended(&other, &id, LEASE_BOUND).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let message = ended["statusMessage"].as_str().unwrap_or_default();
    assert!(message.contains("stopped"), "{ended}");
    other.terminate().await;
}

/// A 2025-era POST of `message` to `server` for `token`, in `session` when given.
async fn legacy_post(
    server: &HttpServer,
    token: &str,
    session: Option<&str>,
    message: Value,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {token}"))
        .body(message.to_string());
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.send().await.expect("an answer")
}

#[tokio::test]
async fn a_legacy_session_opened_on_one_replica_works_on_the_other_for_its_principal_only() {
    let fake = FakeVultr::start().await;
    let tokens = tokens_file(&[("alice", ALICE_TOKEN), ("bob", BOB_TOKEN)]).await;
    let mut settings = fake.settings();
    settings.push(("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap().to_owned()));
    let (a, b) = replicas(&settings).await;

    let opened = legacy_post(
        &a,
        ALICE_TOKEN,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "legacy", "version": "1"}}}),
    )
    .await;
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = legacy_post(
        &a,
        ALICE_TOKEN,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(initialized.status().is_success(), "{initialized:?}");

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let hijack = legacy_post(&b, BOB_TOKEN, Some(&session), list.clone()).await;
    assert_eq!(hijack.status(), 404, "bob used alice's session on B");
    let own = legacy_post(&b, ALICE_TOKEN, Some(&session), list.clone()).await;
    assert_eq!(own.status(), 200, "alice's session is unknown on B");
    let tools = own.text().await.unwrap();
    assert!(tools.contains("chat_completion"), "{tools}");
    let hijack = legacy_post(&a, BOB_TOKEN, Some(&session), list).await;
    assert_eq!(hijack.status(), 404, "bob used alice's session on A");
    for server in [a, b] {
        server.terminate().await;
    }
}
