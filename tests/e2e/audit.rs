//! The audit log (`VULTR_MCP_AUDIT_LOG`): one JSON line per tool call with who, what,
//! which model, tokens, cost, outcome and time, and never the prompt, the reply or a key;
//! a file created 0600 (one that others may read is refused at start-up), or stderr with
//! stdout still pure protocol.

use std::process::Stdio;

use serde_json::{Value, json};

use crate::support::fake_vultr::{ACCOUNT_KEY, DEFAULT_SUBSCRIPTION_KEY, FakeVultr};
use crate::support::mcp::{Home, Server, server_command};
use crate::support::raw::RawServer;
use crate::support::session::{err, ok, text};

/// A prompt no field of the log may carry.
const PROMPT: &str = "Tell the PERIWINKLE-OTTER-5521 secret plan";

/// Every field of a line, in no particular order.
const FIELDS: [&str; 12] = [
    "time",
    "principal",
    "transport",
    "tool",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "outcome",
    "ms",
    "conversation_id",
    "task_id",
];

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

fn assert_fields(line: &Value) {
    let keys: Vec<&str> = line
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = FIELDS.to_vec();
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected, "{line}");
    let time = line["time"].as_str().expect("a time");
    assert!(
        time.len() == "2026-12-06T20:30:00.123Z".len()
            && time.ends_with('Z')
            && &time[10..11] == "T",
        "not RFC 3339 UTC: {time}"
    );
    assert!(line["ms"].is_u64(), "{line}");
}

#[tokio::test]
async fn each_call_is_one_line_with_its_facts_and_no_prompt_reply_or_key() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_MCP_AUDIT_LOG", path.to_str().unwrap()),
            ("VULTR_MCP_RATE_LIMIT", "2/min"),
        ],
    )
    .await;
    let chat = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": PROMPT}),
        )
        .await;
    let reply = text(&chat);
    let conversation = ok(&chat)["conversation_id"]
        .as_str()
        .expect("a conversation id")
        .to_owned();
    ok(&server.call("list_models", json!({})).await);
    err(&server.call("list_models", json!({})).await);
    server.stop().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let written = std::fs::read_to_string(&path).unwrap();
    let lines = lines(&written);
    assert_eq!(lines.len(), 3, "{written}");
    lines.iter().for_each(assert_fields);

    let chat = &lines[0];
    assert_eq!(chat["principal"], "local");
    assert_eq!(chat["transport"], "stdio");
    assert_eq!(chat["tool"], "chat_completion");
    assert_eq!(chat["model"], "kimi-k2-instruct");
    assert_eq!(chat["outcome"], "ok");
    assert_eq!(chat["conversation_id"], conversation.as_str());
    assert_eq!(chat["task_id"], Value::Null);
    assert!(chat["prompt_tokens"].as_u64().unwrap() > 0, "{chat}");
    assert!(chat["completion_tokens"].as_u64().unwrap() > 0, "{chat}");
    assert!(chat["cost_usd"].as_f64().unwrap() > 0.0, "{chat}");

    assert_eq!(lines[1]["tool"], "list_models");
    assert_eq!(lines[1]["outcome"], "ok");
    assert_eq!(lines[1]["model"], Value::Null);
    assert_eq!(lines[2]["tool"], "list_models");
    assert_eq!(lines[2]["outcome"], "rate_limited");

    for secret in [
        "PERIWINKLE",
        PROMPT,
        reply.as_str(),
        ACCOUNT_KEY,
        DEFAULT_SUBSCRIPTION_KEY,
    ] {
        assert!(
            !written.contains(secret),
            "{secret:?} in the audit log:\n{written}"
        );
    }
}

#[tokio::test]
async fn to_stderr_the_lines_go_to_stderr_and_stdout_stays_protocol() {
    let fake = FakeVultr::start().await;
    let mut builder = RawServer::builder().env("VULTR_MCP_AUDIT_LOG", "stderr");
    for (name, value) in fake.settings() {
        builder = builder.env(name, &value);
    }
    let mut raw = builder.start().await;
    raw.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "chat_completion",
        "arguments": {"model": "kimi-k2-instruct", "prompt": PROMPT}}}),
    )
    .await;
    // Every stdout line up to the answer parses as JSON-RPC (the harness fails otherwise).
    let (_, answer) = raw.until_response(1).await;
    assert_eq!(answer.value["result"]["isError"], false, "{}", answer.value);
    raw.close_stdin();
    let (_, stderr) = raw.exit().await;
    let audit: Vec<Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("tool").is_some())
        .collect();
    assert_eq!(audit.len(), 1, "{stderr}");
    assert_fields(&audit[0]);
    assert_eq!(audit[0]["tool"], "chat_completion");
    assert_eq!(audit[0]["outcome"], "ok");
    assert!(!stderr.contains("PERIWINKLE"), "{stderr}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_file_others_may_read_stops_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let home = Home::new();
    let output = server_command(&home)
        .env("VULTR_MCP_CONVERSATIONS", "memory")
        .env("VULTR_MCP_AUDIT_LOG", &path)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("VULTR_MCP_AUDIT_LOG") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}
