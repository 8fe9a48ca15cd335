//! The MCP surface itself: identity, instructions, the tool list, and a clean stdout.

use rmcp::ServiceError;
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

use crate::support::fake_vultr::FakeVultr;
use crate::support::mcp::Server;
use crate::support::raw::{PROMPTLY, RawServer};
use crate::support::session::{CORE_TOOLS, ok};

#[tokio::test]
async fn the_server_introduces_itself_with_its_own_name_and_version() {
    let server = Server::start(&[]).await;
    let info = server.client.peer_info().expect("initialized");
    let implementation = info.server_info.as_ref().expect("server_info");
    assert_eq!(implementation.name, "vultr-inference-mcp");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());
    let instructions = info.instructions.as_deref().expect("instructions");
    for tool in [
        "list_models",
        "chat_completion",
        "list_subscriptions",
        "get_subscription",
    ] {
        assert!(instructions.contains(tool), "instructions mention {tool}");
    }
    assert!(instructions.contains("assistant_message") && instructions.contains("tool_call_id"));
    server.stop().await;
}

#[tokio::test]
async fn tools_list_matches_the_snapshot() {
    let server = Server::start(&[]).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names, CORE_TOOLS,
        "the core tools in registry order (src/mcp/registry.rs)"
    );
    let listing = serde_json::to_value(&tools).unwrap();
    insta::assert_json_snapshot!("tools_list", listing);
    server.stop().await;
}

/// Every `type` in `schema` that is a list (like `["string", "null"]`), by JSON path.
fn type_arrays(schema: &Value, path: &str, found: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{path}/{key}");
                if key == "type" && value.is_array() {
                    found.push(format!("{here} = {value}"));
                }
                type_arrays(value, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                type_arrays(item, &format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn tool_schemas_give_each_field_a_single_type() {
    // Optional means absent from `required`: stricter clients refuse type lists.
    let server = Server::start(&[]).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let mut found = Vec::new();
    for tool in &tools {
        let schema = Value::Object((*tool.input_schema).clone());
        type_arrays(&schema, &tool.name, &mut found);
    }
    assert!(found.is_empty(), "type lists in tool schemas: {found:#?}");
    server.stop().await;
}

#[tokio::test]
async fn the_tool_list_stays_small() {
    let server = Server::start(&[]).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let size = serde_json::to_string(&tools).unwrap().len();
    assert!(
        size < 8 * 1024,
        "tools/list is {size} bytes; keep it under 8 KiB"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error_and_the_server_keeps_serving() {
    let server = Server::start(&[]).await;
    let error = server
        .try_call("no_such_tool", json!({}))
        .await
        .unwrap_err();
    match error {
        ServiceError::McpError(e) => {
            assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
            // It names the tool asked for and the tools there are.
            assert!(e.message.contains("no_such_tool"), "{}", e.message);
            assert!(e.message.contains("chat_completion"), "{}", e.message);
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    assert!(server.client.list_all_tools().await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn without_any_key_list_models_works_and_other_tools_name_the_variable_to_set() {
    let fake = FakeVultr::start().await;
    let inference = fake.inference_base_url();
    let server = Server::start(&[("VULTR_INFERENCE_BASE_URL", inference.as_str())]).await;
    ok(&server.call("list_models", json!({})).await);
    let chat = server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi"}),
        )
        .await;
    let text = crate::support::session::err(&chat);
    assert!(
        text.contains("VULTR_INFERENCE_API_KEY") && text.contains("VULTR_API_KEY"),
        "{text}"
    );
    for tool in ["list_subscriptions"] {
        let text = crate::support::session::err(&server.call(tool, json!({})).await);
        assert!(text.contains("VULTR_API_KEY"), "{tool}: {text}");
    }
    server.stop().await;
}

/// Sends raw lines to the binary (logging at debug level) and returns every line it
/// wrote to stdout.
async fn exchange(lines: &[&str]) -> Vec<String> {
    let mut raw = RawServer::builder().env("RUST_LOG", "debug").spawn();
    for line in lines {
        raw.send_line(line.as_bytes()).await;
    }
    // Every request with an id gets exactly one answer; wait for those.
    let expected = lines
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.get("id").is_some()))
        .count();
    let mut out = Vec::new();
    while out.len() < expected {
        match raw.next_text_line(PROMPTLY).await {
            Some(line) => out.push(line),
            None => break,
        }
    }
    raw.close_stdin();
    let status = raw
        .exit_status(PROMPTLY)
        .await
        .expect("the server exits when stdin closes");
    while let Some(line) = raw.next_text_line(PROMPTLY).await {
        out.push(line);
    }
    assert!(status.success(), "exit status {status}");
    out
}

#[tokio::test]
async fn stdout_carries_only_json_rpc_even_when_garbage_arrives() {
    let lines = exchange(&[
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "this is not json",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"chat_completion","arguments":{"prompt":"hi","model":"m"}}}"#,
    ])
    .await;
    assert!(lines.len() >= 3, "got {lines:?}");
    for line in &lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(value["jsonrpc"], "2.0", "{line}");
    }
    let by_id = |id: i64| {
        lines
            .iter()
            .find(|l| serde_json::from_str::<Value>(l).unwrap()["id"] == id)
    };
    let init: Value = serde_json::from_str(by_id(1).expect("initialize answered")).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert!(
        by_id(2).is_some(),
        "tools/list answered after the garbage line"
    );
    let call: Value = serde_json::from_str(by_id(3).expect("tools/call answered")).unwrap();
    assert_eq!(call["result"]["isError"], true);
}
