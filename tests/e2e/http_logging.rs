//! What the HTTP server logs: at `info` exactly one access line per request (none of rmcp's,
//! hyper's or the database driver's own lines), and at `debug` still no prompt, reply, tool
//! argument or SQL parameter.

use std::time::Duration;

use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::http::{Generation, HttpServer};
use crate::support::postgres::PgServer;
use crate::support::raw::stateless_meta;
use crate::support::session::{ok, overridden};

/// How long log lines may take to reach the capture.
const PROMPTLY: Duration = Duration::from_secs(10);

/// Whether `line` is the gate's access line.
fn is_access_line(line: &str) -> bool {
    line.contains(" INFO ") && line.contains("vultr_inference_mcp::http::gate: request ")
}

/// The server's stderr once it holds at least `count` access lines (or after [`PROMPTLY`]).
async fn stderr_with_access_lines(server: &HttpServer, count: usize) -> String {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let stderr = server.stderr();
        let seen = stderr.lines().filter(|l| is_access_line(l)).count();
        if seen >= count || tokio::time::Instant::now() >= deadline {
            return stderr;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One self-contained (2026-07-28) `tools/call` of `list_models` over a raw POST.
async fn list_models_once(server: &HttpServer, id: u64) {
    let params = json!({
        "name": "list_models", "arguments": {}, "_meta": stateless_meta("raw", json!({}))});
    let id = i64::try_from(id).expect("a small id");
    let response = server.post_stateless(id, "tools/call", params).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("kimi-k2-instruct"), "{text}");
}

#[tokio::test]
async fn at_info_each_request_writes_exactly_one_line_the_access_line() {
    const REQUESTS: usize = 6;
    let fake = FakeVultr::start().await;
    let settings = fake.settings();
    let server = HttpServer::start(&overridden(&settings, &[("RUST_LOG", "info")])).await;
    for id in 0..REQUESTS {
        list_models_once(&server, id as u64).await;
    }
    let stderr = stderr_with_access_lines(&server, REQUESTS).await;
    let after_start: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !is_access_line(line))
        .collect();
    let info: Vec<&&str> = after_start
        .iter()
        .filter(|line| line.contains(" INFO "))
        .collect();
    assert_eq!(
        info.len(),
        REQUESTS,
        "{REQUESTS} stateless requests should give {REQUESTS} info lines:\n{stderr}"
    );
    assert!(info.iter().all(|line| is_access_line(line)), "{stderr}");

    // A session-generation client too: every info line is an access line.
    let session = server.connect(Generation::Sessions, None).await;
    ok(&session.call("list_models", json!({})).await);
    session.client.cancel().await.ok();
    let stderr = stderr_with_access_lines(&server, REQUESTS + 3).await;
    let other: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !is_access_line(line))
        .filter(|line| line.contains(" INFO ") && !is_access_line(line))
        .collect();
    assert!(
        other.is_empty(),
        "info lines besides the access lines: {other:#?}"
    );
    server.terminate().await;
}

#[tokio::test]
async fn at_debug_no_prompt_reply_tool_argument_or_sql_parameter_is_logged() {
    const MARKER: &str = "qz-secret-prompt-4471";
    let fake = FakeVultr::start().await;
    let database = PgServer::shared().create_database();
    let settings = fake.settings();
    let server = HttpServer::start(&overridden(
        &settings,
        &[
            ("RUST_LOG", "debug"),
            ("VULTR_MCP_CONVERSATIONS", &database),
        ],
    ))
    .await;
    for generation in Generation::BOTH {
        let session = server.connect(generation, None).await;
        let started = ok(&session
            .call(
                "chat_completion",
                json!({"model": "kimi-k2-instruct", "prompt": format!("remember {MARKER}")}),
            )
            .await);
        let id = started["conversation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("saved in Postgres: {started}"))
            .to_owned();
        let reply = started["content"].as_str().unwrap_or_default().to_owned();
        assert!(
            reply.contains(MARKER),
            "the fake echoes the prompt: {started}"
        );
        ok(&session
            .call(
                "chat_completion",
                json!({"conversation_id": id, "prompt": format!("and {MARKER} again")}),
            )
            .await);
        session.client.cancel().await.ok();
    }
    let (_, stderr) = server.terminate().await;
    assert!(
        stderr.contains(" DEBUG "),
        "RUST_LOG=debug gave no debug lines: {stderr}"
    );
    assert!(
        !stderr.contains(MARKER),
        "a prompt or reply reached the log at debug:\n{stderr}"
    );
    assert!(
        !stderr.contains("with parameters"),
        "SQL parameters reached the log at debug:\n{stderr}"
    );
}
