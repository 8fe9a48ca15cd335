//! `delegate`: a scripted fake model runs the tool loop over the real downstream test
//! server (`examples/downstream_server.rs`, started over stdio); every assertion is on
//! what the downstream server logged and the fake received.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::assertions::assert_contains;
use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};
use crate::support::in_process::{RawSession, Server};
use crate::support::session::{err, ok, text};

const MODEL: &str = "kimi-k2-instruct";

/// A fake whose model follows `script`, and a server delegating to the test servers
/// `names` (each entry merged with `extra`).
async fn delegation(
    names: &[&str],
    extra: Value,
    script: impl Fn(&[Value]) -> Value + Send + Sync + 'static,
) -> (FakeVultr, Downstreams, Server) {
    let fake = FakeVultr::start().await;
    fake.script(script).await;
    let downstreams = Downstreams::new(names, extra);
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    (fake, downstreams, server)
}

/// A model that asks for `calc__add` on every turn, never answering.
async fn endless_adding() -> (FakeVultr, Downstreams, Server) {
    delegation(&["calc"], json!({}), |_| {
        tool_calls(&[("again", "calc__add", r#"{"a": 1, "b": 1}"#)])
    })
    .await
}

/// Delegates `task` to [`MODEL`].
async fn delegate(server: &Server, task: &str) -> CallToolResult {
    server
        .call("delegate", json!({"task": task, "model": MODEL}))
        .await
}

/// The names of the tools the model was offered in chat request `n`.
fn offered(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            t["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn delegate_is_listed_only_when_servers_are_configured() {
    let fake = FakeVultr::start().await;
    let plain = Server::with_fake(&fake, &[]).await;
    let tools = plain.client.list_all_tools().await.unwrap();
    assert!(tools.iter().all(|t| t.name != "delegate"));
    plain.stop().await;
    let (_fake, _downstreams, server) = delegation(&["calc"], json!({}), |_| answer("x")).await;
    let tools = server.client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "delegate"));
    server.stop().await;
}

#[tokio::test]
async fn the_model_calls_a_then_b_with_as_result_then_answers() {
    let (fake, downstreams, server) = delegation(&["calc"], json!({}), |messages| {
        match (tool_result(messages, "c1"), tool_result(messages, "c2")) {
            (None, _) => tool_calls(&[("c1", "calc__add", r#"{"a": 2, "b": 3}"#)]),
            (Some(a), None) => {
                tool_calls(&[("c2", "calc__add", &format!(r#"{{"a": {a}, "b": 10}}"#))])
            }
            (Some(_), Some(b)) => answer(&format!("the total is {b}")),
        }
    })
    .await;
    let result = server
        .call(
            "delegate",
            json!({"task": "add 2 and 3, then 10", "model": MODEL}),
        )
        .await;
    let delegation = ok(&result);
    assert_eq!(
        downstreams.calls("calc"),
        [
            json!({"tool": "add", "a": 2.0, "b": 3.0}),
            json!({"tool": "add", "a": 5.0, "b": 10.0})
        ]
    );
    assert_eq!(delegation["answer"], "the total is 15");
    assert_eq!(delegation["stopped"], "done");
    assert_eq!(delegation["model"], MODEL);
    let steps = delegation["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["n"], 2);
    assert_eq!(steps[1]["turn"], 2);
    assert_eq!(steps[1]["tool"], "calc__add");
    assert_eq!(steps[1]["arguments"], json!({"a": 5, "b": 10}));
    assert_eq!(steps[1]["is_error"], false);
    assert_eq!(steps[1]["result"], "15");
    assert_eq!(
        delegation["usage"]["prompt_tokens"], 3_000,
        "summed over 3 turns"
    );
    assert!(delegation["cost_usd"].as_f64().unwrap() > 0.0);
    let shown = text(&result);
    assert!(shown.starts_with("the total is 15"), "{shown}");
    assert!(
        shown.contains("2. turn 2: calc__add({\"a\":5,\"b\":10}) ok"),
        "{shown}"
    );

    let requests = fake.chat_requests().await;
    assert_eq!(requests.len(), 3);
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("not instructions"), "{system}");
    assert_eq!(
        requests[0]["messages"][1]["content"],
        "add 2 and 3, then 10"
    );
    let tools = offered(&requests[0]);
    assert!(tools.contains(&"calc__add".to_owned()), "{tools:?}");
    assert!(
        !tools.contains(&"calc__wipe".to_owned()),
        "destructive: {tools:?}"
    );
    let add = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "calc__add")
        .unwrap();
    assert_eq!(add["function"]["description"], "Adds a and b.");
    assert!(add["function"]["parameters"]["properties"]["a"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn the_calls_of_one_turn_run_concurrently() {
    let (_fake, downstreams, server) = delegation(&["calc"], json!({}), |messages| {
        if tool_result(messages, "s1").is_none() {
            tool_calls(&[
                ("s1", "calc__sleep", r#"{"ms": 1000}"#),
                ("s2", "calc__sleep", r#"{"ms": 1001}"#),
            ])
        } else {
            answer("slept")
        }
    })
    .await;
    let delegation = ok(&delegate(&server, "sleep twice").await);
    assert_eq!(delegation["stopped"], "done");
    let events: Vec<Value> = downstreams
        .calls("calc")
        .iter()
        .map(|c| c["event"].clone())
        .collect();
    assert_eq!(
        events,
        ["start", "start", "end", "end"],
        "both calls started before either ended"
    );
    server.stop().await;
}

#[tokio::test]
async fn failures_unknown_tools_and_bad_arguments_go_back_to_the_model() {
    let (fake, downstreams, server) = delegation(&["calc"], json!({}), |messages| {
        if tool_result(messages, "e1").is_none() {
            tool_calls(&[
                ("e1", "calc__fail", "{}"),
                ("e2", "calc__nope", "{}"),
                ("e3", "calc__add", "{not json"),
            ])
        } else {
            answer("recovered")
        }
    })
    .await;
    let delegation = ok(&delegate(&server, "try").await);
    assert_eq!(delegation["answer"], "recovered");
    assert_eq!(delegation["stopped"], "done");
    assert_eq!(downstreams.calls("calc"), [json!({"tool": "fail"})]);
    let requests = fake.chat_requests().await;
    let messages = requests[1]["messages"].as_array().unwrap();
    for (id, expected) in [
        ("e1", "it failed on purpose"),
        ("e2", "unknown tool \"calc__nope\""),
        ("e3", "not valid JSON"),
    ] {
        let result = tool_result(messages, id).unwrap();
        assert!(result.starts_with("error:"), "{id}: {result}");
        assert!(result.contains(expected), "{id}: {result}");
    }
    let steps = delegation["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["is_error"] == true), "{steps:?}");
    server.stop().await;
}

#[tokio::test]
async fn max_turns_stops_after_running_the_last_turns_calls() {
    let (fake, downstreams, server) = endless_adding().await;
    let delegation = ok(&server
        .call(
            "delegate",
            json!({"task": "loop", "model": MODEL, "max_turns": 2}),
        )
        .await);
    assert_eq!(delegation["stopped"], "max_turns");
    assert_eq!(delegation["steps"].as_array().unwrap().len(), 2);
    assert_eq!(downstreams.calls("calc").len(), 2);
    assert_eq!(fake.chat_requests().await.len(), 2);

    let refused = server
        .call(
            "delegate",
            json!({"task": "loop", "model": MODEL, "max_turns": 51}),
        )
        .await;
    assert!(
        err(&refused).contains("max_turns must be 1 to 50"),
        "{}",
        text(&refused)
    );
    assert_eq!(fake.chat_requests().await.len(), 2, "nothing sent");
    server.stop().await;
}

#[tokio::test]
async fn the_budget_stops_the_loop_before_the_next_turn() {
    let (fake, downstreams, server) = endless_adding().await;
    let delegation = ok(&server
        .call(
            "delegate",
            json!({"task": "loop", "model": MODEL, "budget_usd": 0.000_000_1}),
        )
        .await);
    assert_eq!(delegation["stopped"], "budget");
    assert_eq!(fake.chat_requests().await.len(), 1);
    assert_eq!(
        downstreams.calls("calc").len(),
        1,
        "the turn's call still ran"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_allowlist_offers_exactly_its_tools_destructive_ones_included() {
    let (fake, downstreams, server) =
        delegation(&["calc"], json!({"tools": ["add", "wipe"]}), |messages| {
            if tool_result(messages, "w").is_none() {
                tool_calls(&[("w", "calc__wipe", "{}")])
            } else {
                answer("done")
            }
        })
        .await;
    ok(&delegate(&server, "wipe").await);
    let mut tools = offered(&fake.chat_requests().await[0]);
    tools.sort();
    assert_eq!(tools, ["calc__add", "calc__wipe"]);
    assert_eq!(downstreams.calls("calc"), [json!({"tool": "wipe"})]);
    server.stop().await;
}

#[tokio::test]
async fn a_model_without_tool_calling_is_refused_before_any_tool_runs() {
    let (fake, downstreams, server) = delegation(&["calc"], json!({}), |_| answer("x")).await;
    let result = server
        .call("delegate", json!({"task": "t", "model": "plain-chat-7b"}))
        .await;
    assert!(
        err(&result).contains("does not support tool calling"),
        "{}",
        text(&result)
    );
    assert!(fake.chat_requests().await.is_empty());
    assert!(downstreams.calls("calc").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn cancelling_the_delegation_cancels_the_downstream_call_in_flight() {
    let (fake, downstreams, server) = delegation(&["calc"], json!({}), |_| {
        tool_calls(&[("s", "calc__sleep", r#"{"ms": 60000}"#)])
    })
    .await;
    let started = json!({"tool": "sleep", "ms": 60000, "event": "start"});
    tokio::select! {
        result = server.call("delegate", json!({"task": "sleep", "model": MODEL})) => {
            panic!("the delegation ended: {}", text(&result))
        }
        seen = downstreams.wait_for("calc", &started) => assert!(seen, "the sleep started"),
    }
    // Dropping the call above sent notifications/cancelled for the delegation.
    let cancelled = json!({"tool": "sleep", "ms": 60000, "event": "cancelled"});
    assert!(
        downstreams.wait_for("calc", &cancelled).await,
        "the downstream call was cancelled: {:?}",
        downstreams.calls("calc")
    );
    assert_eq!(
        fake.chat_requests().await.len(),
        1,
        "no turn after the cancel"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_downstream_server_that_died_is_started_again_on_the_next_use() {
    let (_fake, downstreams, server) =
        delegation(&["calc"], json!({}), |messages| {
            match tool_result(messages, "p") {
                None => tool_calls(&[("p", "calc__pid", "{}")]),
                Some(pid) => answer(pid),
            }
        })
        .await;
    let pid_of = |result: &rmcp::model::CallToolResult| {
        let delegation = ok(result);
        (delegation["steps"][0]["is_error"] == false).then(|| delegation["answer"].clone())
    };
    let first = delegate(&server, "pid").await;
    let first = pid_of(&first).expect("the first call ran");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", first.as_str().unwrap()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The bridge notices the closed pipe; until then a call may fail (and is reported).
    let mut second = None;
    for _ in 0..50 {
        let result = delegate(&server, "pid").await;
        if let Some(pid) = pid_of(&result) {
            second = Some(pid);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let second = second.expect("a new server answered");
    assert_ne!(first, second, "a new process");
    assert_eq!(
        downstreams
            .calls("calc")
            .iter()
            .filter(|c| c["tool"] == "pid")
            .count(),
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn a_server_that_cannot_start_is_named_with_the_cause() {
    let fake = FakeVultr::start().await;
    fake.script(|_| answer("x")).await;
    let downstreams = Downstreams::new(&[], json!({}));
    downstreams.write(r#"{"mcpServers": {"ghost": {"command": "/nonexistent/server"}}}"#);
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    let result = delegate(&server, "t").await;
    let message = err(&result);
    assert_contains(&message, &["\"ghost\"", "/nonexistent/server"]);
    assert!(fake.chat_requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn each_tool_call_is_reported_as_progress_with_its_turn() {
    let fake = FakeVultr::start().await;
    fake.script(
        |messages| match (tool_result(messages, "a"), tool_result(messages, "c")) {
            (None, _) => tool_calls(&[
                ("a", "calc__add", r#"{"a": 1, "b": 2}"#),
                ("b", "calc__big", r#"{"chars": 3}"#),
            ]),
            (Some(_), None) => tool_calls(&[("c", "calc__add", r#"{"a": 3, "b": 4}"#)]),
            (Some(_), Some(_)) => answer("done"),
        },
    )
    .await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let mut env = fake.settings();
    env.push(("VULTR_MCP_DELEGATE_SERVERS", downstreams.setting()));
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut session = RawSession::start(&env).await;
    session
        .call_tool(
            1,
            "delegate",
            json!({"task": "t", "model": MODEL, "max_turns": 5}),
            Some(json!({"progressToken": "d-1"})),
        )
        .await;
    let (before, response) = session.until_response(1).await;
    assert_eq!(
        response.value["result"]["isError"], false,
        "{}",
        response.value
    );
    let mut progress: Vec<String> = before
        .iter()
        .filter(|l| l.value["method"] == "notifications/progress")
        .map(|l| {
            assert_eq!(l.value["params"]["progressToken"], "d-1");
            l.value["params"]["message"].as_str().unwrap().to_owned()
        })
        .collect();
    progress.sort();
    assert_eq!(
        progress,
        [
            "turn 1/5: calc__add",
            "turn 1/5: calc__big",
            "turn 2/5: calc__add"
        ]
    );
    session.stop().await;
}

#[tokio::test]
async fn an_http_server_is_reached_with_its_configured_headers() {
    let fake = FakeVultr::start().await;
    fake.script(|messages| match tool_result(messages, "h") {
        None => tool_calls(&[("h", "notes__add", r#"{"a": 20, "b": 22}"#)]),
        Some(result) => answer(result),
    })
    .await;
    let (downstreams, _http) = Downstreams::http("notes", "s3cret", Some("Bearer s3cret")).await;
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    let delegation = ok(&delegate(&server, "add").await);
    assert_eq!(delegation["answer"], "42");
    assert_eq!(
        downstreams.calls("notes"),
        [json!({"tool": "add", "a": 20.0, "b": 22.0})]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_http_server_that_refuses_the_bridge_is_named_without_its_headers() {
    let fake = FakeVultr::start().await;
    fake.script(|_| answer("x")).await;
    let (downstreams, http) = Downstreams::http("notes", "s3cret", Some("Bearer wrong-one")).await;
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    let result = delegate(&server, "t").await;
    let message = err(&result);
    assert_contains(&message, &["\"notes\"", &http.url]);
    assert!(!message.contains("wrong-one"), "{message}");
    assert!(fake.chat_requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn large_results_are_cut_for_the_model_and_in_the_steps() {
    let fake = FakeVultr::start().await;
    fake.script(|messages| match tool_result(messages, "b") {
        None => tool_calls(&[("b", "calc__big", r#"{"chars": 9000}"#)]),
        Some(_) => answer("read it"),
    })
    .await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let setting = downstreams.setting();
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_MCP_DELEGATE_SERVERS", setting.as_str()),
            ("VULTR_MCP_MAX_RESULT_CHARS", "5000"),
        ],
    )
    .await;
    let delegation = ok(&delegate(&server, "read").await);
    assert_eq!(
        delegation["steps"][0]["result"].as_str().unwrap().len(),
        2_000
    );
    let requests = fake.chat_requests().await;
    let fed = tool_result(requests[1]["messages"].as_array().unwrap(), "b").unwrap();
    assert!(
        fed.starts_with(&"x".repeat(5_000)),
        "the first 5000 characters"
    );
    assert!(!fed.contains(&"x".repeat(5_001)), "no more");
    assert!(fed.ends_with("[cut to 5000 characters]"), "and a notice");
    server.stop().await;
}

/// `n` delegations at once, all listing the tools of every server (the model answers
/// at once), with how long they took together.
async fn delegations_at_once(
    server: &Server,
    n: usize,
) -> (Vec<rmcp::model::CallToolResult>, std::time::Duration) {
    let started = std::time::Instant::now();
    let results = futures_util::future::join_all(
        (0..n).map(|_| server.call("delegate", json!({"task": "t", "model": MODEL}))),
    )
    .await;
    (results, started.elapsed())
}

#[tokio::test]
async fn concurrent_callers_share_one_start_and_see_its_timeout_together() {
    let fake = FakeVultr::start().await;
    fake.script(|_| answer("x")).await;
    // Each start would take 30 s; the server's timeout is 1 s.
    let downstreams = Downstreams::with_flags(
        &["slow"],
        &["--start-delay-ms", "30000"],
        json!({"timeout": 1}),
    );
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    let (results, took) = delegations_at_once(&server, 4).await;
    for result in &results {
        let message = err(result);
        assert!(
            message.contains("server \"slow\" did not start within 1s"),
            "{message}"
        );
    }
    assert_eq!(
        downstreams.starts("slow").len(),
        1,
        "one start attempt for all four callers"
    );
    // One start time (1 s) for all; started one after another it would be 4 s.
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_failed_start_is_remembered_for_a_few_seconds_then_tried_again() {
    let fake = FakeVultr::start().await;
    fake.script(|_| answer("x")).await;
    let downstreams = Downstreams::with_flags(&["broken"], &["--fail-start"], json!({}));
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    let (results, _) = delegations_at_once(&server, 3).await;
    for result in &results {
        let message = err(result);
        assert!(
            message.contains("server \"broken\" did not complete the MCP handshake"),
            "{message}"
        );
    }
    assert_eq!(downstreams.starts("broken").len(), 1, "one attempt");
    let failed_at = std::time::Instant::now();

    // Within the back-off: the same failure at once, no new attempt.
    let again = delegate(&server, "t").await;
    let message = err(&again);
    assert_contains(
        &message,
        &[
            "did not complete the MCP handshake",
            "tried again 3s after a failure",
        ],
    );
    assert_eq!(downstreams.starts("broken").len(), 1, "no new attempt");

    // After it: a new attempt.
    tokio::time::sleep(std::time::Duration::from_millis(3_500).saturating_sub(failed_at.elapsed()))
        .await;
    let later = delegate(&server, "t").await;
    let message = err(&later);
    assert!(
        !message.contains("tried again"),
        "a fresh failure: {message}"
    );
    assert_eq!(downstreams.starts("broken").len(), 2, "tried again");
    assert!(fake.chat_requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_working_directory_removed_after_start_up_is_named_as_missing() {
    let fake = FakeVultr::start().await;
    fake.script(|_| answer("x")).await;
    let workdir = tempfile::tempdir().unwrap();
    let cwd = workdir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let downstreams = Downstreams::new(&["calc"], json!({"cwd": cwd}));
    let setting = downstreams.setting();
    let server =
        Server::with_fake(&fake, &[("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())]).await;
    std::fs::remove_dir(&cwd).unwrap();
    let result = delegate(&server, "t").await;
    let message = err(&result);
    assert!(
        message.contains(&format!(
            "the working directory {} of server \"calc\" does not exist",
            cwd.display()
        )),
        "{message}"
    );
    server.stop().await;
}
