//! Tasks over stdio, as raw JSON-RPC lines of the 2026-07-28 protocol: `server/discover`
//! advertises the tasks extension; a `tools/call` whose `_meta` declares it gets a task
//! handle (with `VULTR_MCP_TASK_AFTER=0`) and `tasks/get` gives the call's result; the same
//! call without the declaration gets the plain result. Over HTTP, two servers sharing one
//! store file: a task made on one is polled and cancelled on the other; a call that
//! crosses `VULTR_MCP_TASK_AFTER` during the SIGTERM drain is answered in place. In-process
//! tests (`tests/tools/tasks.rs`) cover the rest.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_vultr::faults::{Fault, FaultServer};
#[cfg(unix)]
use crate::support::http::HttpServer;
use crate::support::raw::{RawServer, stateless_meta};
#[cfg(unix)]
use crate::support::session::overridden;

/// What the raw fault server's model answers to every normal request.
const RAW_REPLY: &str = "ok from raw fake";
/// Time allowed for a task to end.
const PROMPTLY: Duration = Duration::from_secs(10);

/// The per-request `_meta` of a 2026-07-28 client, declaring the tasks extension or not.
fn meta(tasks: bool) -> Value {
    let extensions = if tasks {
        json!({"io.modelcontextprotocol/tasks": {}})
    } else {
        json!({})
    };
    stateless_meta("raw-tasks", json!({"extensions": extensions}))
}

/// Sends request `id` and returns its result (fails the test on a JSON-RPC error).
async fn request(
    server: &mut RawServer,
    id: i64,
    method: &str,
    mut params: Value,
    tasks: bool,
) -> Value {
    params["_meta"] = meta(tasks);
    server
        .send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .await;
    let (_, answer) = server.until_response(id).await;
    answer
        .value
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method} failed: {}", answer.value))
}

fn chat() -> Value {
    json!({"name": "chat_completion", "arguments": {"model": "kimi-k2-instruct", "prompt": "hi"}})
}

#[tokio::test]
async fn over_stdio_a_client_declaring_tasks_gets_a_handle_and_polls_the_result() {
    let faults = FaultServer::start(vec![Fault::Normal, Fault::Normal]).await;
    let mut server = RawServer::builder()
        .faults(&faults)
        .env("VULTR_MCP_TASK_AFTER", "0")
        .spawn();

    let discovered = request(&mut server, 1, "server/discover", json!({}), false).await;
    assert!(
        discovered
            .pointer("/capabilities/extensions/io.modelcontextprotocol~1tasks")
            .is_some(),
        "{discovered}"
    );

    let handle = request(&mut server, 2, "tools/call", chat(), true).await;
    assert_eq!(handle["resultType"], "task", "{handle}");
    assert_eq!(handle["status"], "working", "{handle}");
    assert_eq!(handle["ttlMs"], 3_600_000, "{handle}");
    assert!(handle["pollIntervalMs"].is_u64(), "{handle}");
    let id = handle["taskId"].as_str().expect("a task id").to_owned();

    let mut polls = 10;
    let ended = tokio::time::timeout(PROMPTLY, async {
        loop {
            let task = request(&mut server, polls, "tasks/get", json!({"taskId": id}), true).await;
            if task["status"] != "working" {
                return task;
            }
            polls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the task ends");
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(ended["result"]["isError"], false, "{ended}");
    assert_eq!(
        ended["result"]["structuredContent"]["content"], RAW_REPLY,
        "{ended}"
    );

    let plain = request(&mut server, 3, "tools/call", chat(), false).await;
    assert!(plain.get("taskId").is_none(), "{plain}");
    assert_eq!(plain["structuredContent"]["content"], RAW_REPLY, "{plain}");
}

/// Posts request `id` to `server` as a stateless 2026-07-28 client declaring tasks, and
/// returns its result, whether it came as JSON or on an event stream.
#[cfg(unix)]
async fn post(server: &HttpServer, id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = meta(true);
    server.stateless_result(id, method, params).await
}

#[cfg(unix)]
#[tokio::test]
async fn over_http_a_task_made_on_one_server_is_polled_and_cancelled_on_another_sharing_the_store()
{
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("shared.sqlite3");
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let settings = faults.settings();
    let env = overridden(
        &settings,
        &[
            ("VULTR_MCP_TASK_AFTER", "0"),
            ("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap()),
        ],
    );
    let (one, other) = (HttpServer::start(&env).await, HttpServer::start(&env).await);

    let handle = post(&one, 1, "tools/call", chat()).await;
    assert_eq!(handle["resultType"], "task", "{handle}");
    let id = json!({"taskId": handle["taskId"]});
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);
    let polled = post(&other, 2, "tasks/get", id.clone()).await;
    assert_eq!(polled["status"], "working", "{polled}");

    post(&other, 3, "tasks/cancel", id.clone()).await;

    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream request went on after the cancel"
    );
    let ended = tokio::time::timeout(PROMPTLY, async {
        loop {
            let task = post(&other, 4, "tasks/get", id.clone()).await;
            if task["status"] != "working" {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the task ends");
    assert_eq!(ended["status"], "cancelled", "{ended}");
    for server in [one, other] {
        let (status, _) = server.terminate().await;
        assert!(status.success());
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_call_crossing_task_after_during_the_sigterm_drain_is_answered_in_place_not_made_a_task()
{
    let faults = FaultServer::start(vec![Fault::Delay(Duration::from_secs(3))]).await;
    let settings = faults.settings();
    let env = overridden(&settings, &[("VULTR_MCP_TASK_AFTER", "1s")]);
    let server = HttpServer::start(&env).await;

    let (answer, ()) = tokio::join!(post(&server, 1, "tools/call", chat()), async {
        assert!(faults.wait_chat_requests(1, PROMPTLY).await);
        let pid = i32::try_from(server.pid()).expect("a pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    });

    assert!(
        answer.get("taskId").is_none(),
        "a task was made while draining: {answer}"
    );
    assert_eq!(
        answer["structuredContent"]["content"], RAW_REPLY,
        "{answer}"
    );
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
}
