//! `/metrics` (`VULTR_MCP_METRICS_ADDR`): on its own listener, over stdio and HTTP alike;
//! calls, refusals, upstream errors and retries, tokens and USD by model, the time to the
//! first token and sessions counted with the right labels; principal names only with
//! `VULTR_MCP_METRICS_PRINCIPALS`; tasks and downstream (delegate) calls; every scrape accepted by `promtool check metrics`
//! (Debian's `prometheus` package; a missing promtool fails the test unless
//! `VULTR_MCP_TEST_NO_PROMTOOL=1` says to skip that check).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::faults::{Fault, FaultServer};
use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};
use crate::support::fake_vultr::{CHAT_PATH, FakeVultr};
use crate::support::http::{ALICE_TOKEN, BOB_TOKEN, Generation, for_alice_and_bob};
use crate::support::mcp::Server;
use crate::support::raw::{RawServer, stateless_meta};
use crate::support::session::{err, ok};

/// Long enough for anything that is going to happen on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

/// Set to `1` to skip the `promtool` check where promtool is not installed.
const NO_PROMTOOL: &str = "VULTR_MCP_TEST_NO_PROMTOOL";

/// The metrics URL the server announced on stderr (`metrics at URL`).
async fn metrics_url(stderr: impl Fn() -> String) -> String {
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let text = stderr();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix("metrics at ")) {
            return url.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no `metrics at` line on stderr: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A scrape of `url`: 200 in the Prometheus text format.
async fn scrape(url: &str) -> String {
    let response = reqwest::get(url)
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("a body")
}

/// The value of the sample written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// `promtool check metrics` accepts `text` (format and lint).
fn promtool_accepts(text: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if std::env::var(NO_PROMTOOL).as_deref() == Ok("1") => {
            eprintln!("promtool not run ({error}); {NO_PROMTOOL}=1 skips it");
            return;
        }
        Err(error) => panic!(
            "promtool cannot be run ({error}): install Debian's `prometheus` package (apt-get install prometheus), or set {NO_PROMTOOL}=1 to skip this check"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed ({}):\n{}{}\nscrape:\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An MCP `initialize` posted to `url`: its status.
async fn post_mcp(url: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"}}})
            .to_string(),
        )
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

#[tokio::test]
async fn over_stdio_calls_refusals_upstream_errors_retries_tokens_and_usd_are_counted() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_MCP_METRICS_ADDR", "127.0.0.1:0"),
            ("VULTR_MCP_RATE_LIMIT", "3/min"),
        ],
    )
    .await;
    let url = metrics_url(|| server.stderr()).await;

    ok(&server.chat_hi().await);
    fake.fail("POST", CHAT_PATH, 400, r#"{"error":{"message":"bad"}}"#, 1)
        .await;
    err(&server.chat_hi().await);
    fake.fail("POST", CHAT_PATH, 503, r#"{"error":{"message":"busy"}}"#, 1)
        .await;
    ok(&server.chat_hi().await);
    err(&server.call("list_models", json!({})).await);

    let text = scrape(&url).await;
    let calls = "vultr_mcp_tool_calls_total";
    assert_eq!(
        value(
            &text,
            &format!("{calls}{{tool=\"chat_completion\",outcome=\"ok\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            &format!("{calls}{{tool=\"chat_completion\",outcome=\"error\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("{calls}{{tool=\"list_models\",outcome=\"rate_limited\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(&text, "vultr_mcp_refusals_total{reason=\"rate_limited\"}"),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "vultr_mcp_tool_call_duration_seconds_count{tool=\"chat_completion\"}"
        ),
        3.0
    );
    for status in ["400", "503"] {
        assert_eq!(
            value(
                &text,
                &format!(
                    "vultr_mcp_upstream_errors_total{{api=\"inference\",status=\"{status}\"}}"
                )
            ),
            1.0,
            "{status}"
        );
    }
    assert_eq!(
        value(&text, "vultr_mcp_upstream_retries_total{api=\"inference\"}"),
        1.0
    );
    // The catalog, three chats and the retry at least.
    assert!(
        value(
            &text,
            "vultr_mcp_upstream_request_duration_seconds_count{api=\"inference\"}"
        ) >= 5.0,
        "{text}"
    );
    let model = "model=\"kimi-k2-instruct\"";
    assert!(
        value(
            &text,
            &format!("vultr_mcp_tokens_total{{{model},type=\"prompt\"}}")
        ) > 0.0
    );
    assert!(
        value(
            &text,
            &format!("vultr_mcp_tokens_total{{{model},type=\"completion\"}}")
        ) > 0.0
    );
    assert!(value(&text, &format!("vultr_mcp_cost_usd_total{{{model}}}")) > 0.0);
    assert_eq!(
        value(
            &text,
            &format!("vultr_mcp_time_to_first_token_seconds_count{{{model}}}")
        ),
        2.0,
        "the two streamed replies"
    );
    assert!(
        !text.contains("principal=") && !text.contains("\"local\""),
        "principal names without VULTR_MCP_METRICS_PRINCIPALS:\n{text}"
    );
    promtool_accepts(&text);

    // The metrics listener serves nothing else.
    let base = url.strip_suffix("/metrics").expect("a /metrics URL");
    assert_eq!(post_mcp(&format!("{base}/mcp")).await, 404);
    assert_eq!(
        reqwest::get(format!("{base}/")).await.unwrap().status(),
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn over_http_metrics_have_their_own_listener_and_name_principals_only_when_asked() {
    let fake = FakeVultr::start().await;
    let (server, _tokens) =
        for_alice_and_bob(&fake, &[("VULTR_MCP_METRICS_ADDR", "127.0.0.1:0")]).await;
    let url = metrics_url(|| server.stderr()).await;
    let alice = server
        .connect(Generation::Stateless, Some(ALICE_TOKEN))
        .await;
    ok(&alice.chat_hi().await);
    let bob = server.connect(Generation::Sessions, Some(BOB_TOKEN)).await;
    ok(&bob.call("list_models", json!({})).await);

    let text = scrape(&url).await;
    assert_eq!(
        value(&text, "vultr_mcp_http_sessions_open"),
        1.0,
        "bob's session"
    );
    assert_eq!(
        value(
            &text,
            "vultr_mcp_tool_calls_total{tool=\"chat_completion\",outcome=\"ok\"}"
        ),
        1.0
    );
    for name in ["alice", "bob", "principal="] {
        assert!(!text.contains(name), "{name} in the scrape:\n{text}");
    }
    promtool_accepts(&text);

    // /metrics is not on the MCP listener, and the metrics listener does not speak MCP.
    let on_mcp = reqwest::get(server.at("/metrics")).await.unwrap();
    assert_eq!(on_mcp.status(), 404);
    let base = url.strip_suffix("/metrics").unwrap();
    assert_eq!(post_mcp(&format!("{base}/mcp")).await, 404);
    assert_ne!(base, server.url().strip_suffix("/mcp").unwrap());
    bob.client.cancel().await.ok();
    server.terminate().await;

    let (server, _tokens) = for_alice_and_bob(
        &fake,
        &[
            ("VULTR_MCP_METRICS_ADDR", "127.0.0.1:0"),
            ("VULTR_MCP_METRICS_PRINCIPALS", "1"),
        ],
    )
    .await;
    let url = metrics_url(|| server.stderr()).await;
    let alice = server
        .connect(Generation::Stateless, Some(ALICE_TOKEN))
        .await;
    ok(&alice.chat_hi().await);
    let text = scrape(&url).await;
    assert_eq!(
        value(
            &text,
            "vultr_mcp_tool_calls_total{tool=\"chat_completion\",outcome=\"ok\",principal=\"alice\"}"
        ),
        1.0
    );
    assert!(
        value(
            &text,
            "vultr_mcp_cost_usd_total{model=\"kimi-k2-instruct\",principal=\"alice\"}"
        ) > 0.0
    );
    promtool_accepts(&text);
    server.terminate().await;
}

#[tokio::test]
async fn an_address_in_use_stops_start_up_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let home = crate::support::mcp::Home::new();
    let output = crate::support::mcp::server_command(&home)
        .env("VULTR_MCP_CONVERSATIONS", "memory")
        .env("VULTR_MCP_METRICS_ADDR", &addr)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("VULTR_MCP_METRICS_ADDR") && stderr.contains(&addr),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn a_call_that_becomes_a_task_is_counted_from_creation_to_its_end() {
    let faults = FaultServer::start(vec![Fault::Normal]).await;
    let mut server = RawServer::builder()
        .faults(&faults)
        .env("VULTR_MCP_TASK_AFTER", "0")
        .env("VULTR_MCP_METRICS_ADDR", "127.0.0.1:0")
        .spawn();
    let url = metrics_url(|| server.stderr()).await;
    let meta = stateless_meta(
        "metrics-tasks",
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}}),
    );
    let chat = json!({"name": "chat_completion", "_meta": meta,
        "arguments": {"model": "kimi-k2-instruct", "prompt": "hi"}});
    server
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": chat}))
        .await;
    let (_, handle) = server.until_response(1).await;
    let id = handle.value["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {}", handle.value))
        .to_owned();
    let deadline = Instant::now() + PROMPTLY;
    let mut poll = 10;
    loop {
        let params = json!({"taskId": id, "_meta": meta});
        server
            .send(json!({"jsonrpc": "2.0", "id": poll, "method": "tasks/get", "params": params}))
            .await;
        let (_, task) = server.until_response(poll).await;
        if task.value["result"]["status"] != "working" {
            assert_eq!(
                task.value["result"]["status"], "completed",
                "{}",
                task.value
            );
            break;
        }
        assert!(Instant::now() < deadline, "the task did not end");
        poll += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = scrape(&url).await;
    assert_eq!(value(&text, "vultr_mcp_tasks_created_total"), 1.0);
    assert_eq!(
        value(&text, "vultr_mcp_tasks_ended_total{state=\"completed\"}"),
        1.0
    );
    assert_eq!(value(&text, "vultr_mcp_tasks_running"), 0.0);
    promtool_accepts(&text);
}

#[tokio::test]
async fn calls_to_a_downstream_server_are_counted_by_server_and_outcome() {
    let fake = FakeVultr::start().await;
    fake.script(
        |messages: &[serde_json::Value]| match tool_result(messages, "t") {
            None => tool_calls(&[("t", "calc__env", "{}")]),
            Some(result) => answer(result),
        },
    )
    .await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let setting = downstreams.setting();
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_MCP_DELEGATE_SERVERS", setting.as_str()),
            ("VULTR_MCP_METRICS_ADDR", "127.0.0.1:0"),
        ],
    )
    .await;
    let url = metrics_url(|| server.stderr()).await;
    ok(&server
        .call(
            "delegate",
            json!({"task": "env", "model": "kimi-k2-instruct"}),
        )
        .await);
    let text = scrape(&url).await;
    assert_eq!(
        value(
            &text,
            "vultr_mcp_delegate_calls_total{server=\"calc\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "vultr_mcp_tool_calls_total{tool=\"delegate\",outcome=\"ok\"}"
        ),
        1.0
    );
    promtool_accepts(&text);
    server.stop().await;
}
