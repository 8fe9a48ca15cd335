//! What every server under test offers, whether the binary (`support::mcp::Server`) or
//! in process (`support::in_process::Server`): an rmcp client session and tool calls.
//! Both servers dereference to a [`Session`].

use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use serde_json::{Value, json};

/// The tools every server lists (the `core` toolset), in the order `tools/list` gives them.
pub const CORE_TOOLS: [&str; 6] = [
    "list_models",
    "chat_completion",
    "compare_models",
    "delete_conversation",
    "list_subscriptions",
    "get_subscription",
];

/// An MCP client session with a server under test.
pub struct Session {
    /// The MCP client session.
    pub client: RunningService<RoleClient, ()>,
}

impl Session {
    /// Calls a tool; protocol errors fail the test.
    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        self.try_call(tool, arguments)
            .await
            .unwrap_or_else(|e| panic!("tools/call {tool} failed at the protocol level: {e}"))
    }

    /// Calls a tool, returning protocol errors.
    pub async fn try_call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, rmcp::ServiceError> {
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => Default::default(),
            other => panic!("arguments must be an object, got {other}"),
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
    }

    /// The chat call many tests make: `kimi-k2-instruct`, prompt "hi".
    pub async fn chat_hi(&self) -> CallToolResult {
        self.call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi"}),
        )
        .await
    }
}

/// `settings` with `extra` on top: a setting named in both takes its value from `extra`.
pub fn overridden<'a>(
    settings: &'a [(&'static str, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
    for (name, value) in extra {
        env.retain(|(n, _)| n != name);
        env.push((name, value));
    }
    env
}

/// The text of a result's content blocks, joined.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a successful result; fails the test on an error result.
pub fn ok(result: &CallToolResult) -> Value {
    assert_eq!(
        result.is_error,
        Some(false),
        "expected success, got error: {}",
        text(result)
    );
    result
        .structured_content
        .clone()
        .expect("a successful result carries structured content")
}

/// The text of an error result; fails the test on success.
pub fn err(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an error result, got: {}",
        text(result)
    );
    text(result)
}
