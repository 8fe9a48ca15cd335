//! A scripted MCP client: starts vultr-inference-mcp over stdio, picks a model from the
//! live catalog, runs one chat and one complete tool-calling round trip, and prints
//! what happened. The server inherits this process's environment (VULTR_API_KEY or
//! VULTR_INFERENCE_API_KEY, and optionally VULTR_DEFAULT_MODEL).
//!
//! ```sh
//! cargo build && VULTR_API_KEY=... cargo run --example scripted_client
//! cargo run --example scripted_client -- --server /path/to/vultr-inference-mcp --model glm-5.2
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// How many model/tool rounds the round trip may take before giving up.
const MAX_ROUNDS: usize = 4;

#[tokio::main]
async fn main() -> Result<()> {
    let (server_path, model) = parse_args()?;
    let transport = TokioChildProcess::new(tokio::process::Command::new(&server_path))
        .with_context(|| format!("starting {}", server_path.display()))?;
    let client = ().serve(transport).await.context("MCP handshake")?;
    let info = client.peer_info().and_then(|i| i.server_info.clone());
    if let Some(info) = info {
        println!("connected to {} {}", info.name, info.version);
    }

    let model = match model {
        Some(model) => model,
        None => pick_model(&client).await?,
    };
    println!("model: {model}");

    let reply = call(
        &client,
        "chat_completion",
        json!({"model": model, "prompt": "In one sentence: what is the Model Context Protocol?", "max_tokens": 200}),
    )
    .await?;
    println!("chat: {}", reply["content"].as_str().unwrap_or_default());

    round_trip(&client, &model).await?;
    client.cancel().await?;
    Ok(())
}

/// `--server PATH` (default: the binary next to this example's build) and `--model ID`.
fn parse_args() -> Result<(PathBuf, Option<String>)> {
    let mut server = None;
    let mut model = std::env::var("VULTR_DEFAULT_MODEL")
        .ok()
        .filter(|m| !m.is_empty());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => {
                server = Some(PathBuf::from(args.next().context("--server needs a path")?))
            }
            "--model" => model = Some(args.next().context("--model needs a model id")?),
            other => bail!(
                "unknown argument {other}; usage: scripted_client [--server PATH] [--model ID]"
            ),
        }
    }
    let server = match server {
        Some(path) => path,
        None => default_server_path()?,
    };
    Ok((server, model))
}

/// `target/<profile>/vultr-inference-mcp` beside `target/<profile>/examples/scripted_client`.
fn default_server_path() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let beside = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("vultr-inference-mcp"));
    match beside {
        Some(path) if path.exists() => Ok(path),
        _ => Ok(PathBuf::from("vultr-inference-mcp")),
    }
}

/// The first chat model with tool support in the live catalog.
async fn pick_model(client: &RunningService<RoleClient, ()>) -> Result<String> {
    let listing = call(client, "list_models", json!({"capability": "tools"})).await?;
    listing["models"]
        .as_array()
        .and_then(|models| models.first())
        .and_then(|m| m["id"].as_str())
        .map(str::to_owned)
        .context("the catalog lists no chat model with tool support; pass --model")
}

/// Gives the model a `get_weather` tool and makes it call it (`tool_choice` names the
/// function), runs the calls it asks for, and sends back only the results with the
/// `conversation_id` until it answers in text. Fails when no tool call comes back: the
/// point of the example is to show the round trip working.
async fn round_trip(client: &RunningService<RoleClient, ()>, model: &str) -> Result<()> {
    let tools = json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }
    }]);
    let mut reply = call(
        client,
        "chat_completion",
        json!({
            "model": model,
            "prompt": "What is the weather in Amsterdam right now?",
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }),
    )
    .await?;
    if reply["tool_calls"].as_array().is_none_or(Vec::is_empty) {
        bail!(
            "{model} answered without calling get_weather although tool_choice required it \
             (finish_reason {}): tool calling does not work with this model; pick another with \
             list_models capability \"tools\"",
            reply["finish_reason"]
        );
    }
    for round in 1..=MAX_ROUNDS {
        let calls = reply["tool_calls"].as_array().cloned().unwrap_or_default();
        if calls.is_empty() {
            println!(
                "answer after {round} round(s): {}",
                reply["content"].as_str().unwrap_or_default()
            );
            return Ok(());
        }
        let conversation_id = reply["conversation_id"]
            .as_str()
            .context("the result has no conversation_id: the server could not store the turn")?
            .to_owned();
        let mut results = Vec::new();
        for tool_call in calls {
            let result = run_tool(&tool_call);
            println!(
                "tool call {} {}({}) -> {result}",
                tool_call["id"], tool_call["name"], tool_call["arguments"]
            );
            results
                .push(json!({"role": "tool", "tool_call_id": tool_call["id"], "content": result}));
        }
        // The stored conversation goes first; only the tool results are new.
        reply = call(
            client,
            "chat_completion",
            json!({"conversation_id": conversation_id, "tools": tools, "messages": results}),
        )
        .await?;
    }
    bail!("the model still asked for tools after {MAX_ROUNDS} rounds")
}

/// The local tool: a canned forecast.
fn run_tool(tool_call: &Value) -> String {
    match tool_call["name"].as_str() {
        Some("get_weather") => {
            let city = tool_call["arguments"]["city"]
                .as_str()
                .unwrap_or("somewhere");
            json!({"city": city, "temperature_c": 12, "conditions": "light rain"}).to_string()
        }
        other => format!("unknown tool {other:?}"),
    }
}

/// Calls a tool and returns its structured content, or fails with the tool's error text.
async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Result<Value> {
    let Value::Object(arguments) = arguments else {
        bail!("arguments must be an object");
    };
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .with_context(|| format!("calling {tool}"))?;
    if result.is_error == Some(true) {
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        bail!("{tool} failed: {}", text.join("\n"));
    }
    result
        .structured_content
        .with_context(|| format!("{tool} returned no structured content"))
}
