//! The scripted client in `examples/` works end to end against the fake Vultr server, and
//! fails loudly when the model does not make the tool call it was told to make.

use std::process::Output;
use std::time::Duration;

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::{ACCOUNT_KEY, FakeVultr, TOOL_CALL_ID, roles};
use crate::support::mcp::{BINARY, Home};

/// Runs the example against `fake` in `home`.
async fn run_example(fake: &FakeVultr, home: &Home) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = tokio::process::Command::new(cargo);
    // The example starts the server with its own environment: give it a private home, so
    // its conversations land there and never in the developer's data directory.
    home.apply(&mut command);
    let run = command
        .args([
            "run",
            "--quiet",
            "--example",
            "scripted_client",
            "--",
            "--server",
            BINARY,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("VULTR_API_KEY", ACCOUNT_KEY)
        .env("VULTR_API_BASE_URL", fake.account_base_url())
        .env("VULTR_INFERENCE_BASE_URL", fake.inference_base_url())
        .env_remove("VULTR_INFERENCE_API_KEY")
        .env_remove("VULTR_DEFAULT_MODEL")
        .env_remove("VULTR_MCP_CONVERSATIONS")
        .output();
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the example finishes")
        .expect("cargo runs")
}

#[tokio::test]
async fn the_scripted_example_runs_a_chat_and_a_tool_round_trip() {
    let fake = FakeVultr::start().await;
    let home = Home::new();
    let output = run_example(&fake, &home).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "example failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The first tool-capable chat model of the catalog, the fake's echo, its tool call, and
    // the answer built from the tool result.
    assert_contains(
        &stdout,
        &[
            "connected to vultr-inference-mcp",
            "model: glm-5.2",
            "chat: echo: In one sentence",
            &format!(r#"tool call "{TOOL_CALL_ID}" "get_weather"({{"city":"Paris"}})"#),
            r#"answer after 2 round(s): Tool result received: {"city":"Paris","#,
        ],
    );
    let sent = fake.chat_requests().await;
    assert_eq!(sent.len(), 3);
    // The tool call is forced, and the result goes back by conversation_id: the history is
    // sent once, by the server.
    assert_eq!(
        sent[1]["tool_choice"],
        serde_json::json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(roles(&sent[2]), ["user", "assistant", "tool"]);
    assert!(
        home.default_store().exists(),
        "the example's conversations are kept in the test's own home"
    );
}

#[tokio::test]
async fn the_scripted_example_fails_when_no_tool_call_comes_back() {
    let fake = FakeVultr::builder().ignoring_tools().start().await;
    let home = Home::new();
    let output = run_example(&fake, &home).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the example must not pass without a tool round trip:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("answered without calling get_weather"),
        "{stderr}"
    );
}
