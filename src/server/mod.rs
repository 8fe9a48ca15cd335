//! The MCP server: its tools, its identity and its instructions. It knows nothing of
//! stdio; `main.rs` picks the transport.

mod args;
mod chat;
mod error;
mod models;
mod subscriptions;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool_handler};

use crate::catalog::{CATALOG_TTL, ModelCatalog};
use crate::config::Config;
use crate::keys::InferenceKeys;
use crate::vultr::account::AccountClient;
use crate::vultr::http::build_client;
use crate::vultr::inference::InferenceClient;

pub use args::InvalidArguments;
pub use error::ToolError;

/// What an agent reads once, at `initialize`, to know when to use which tool.
const INSTRUCTIONS: &str = "\
Delegate work to models hosted on Vultr Serverless Inference.
- list_models: the live catalog (ids, context window, max output, tool support, prices). Use it to pick a `model`; filter with `capability` (chat, tools, ...) or `query`.
- chat_completion: run a model. Simple use: `prompt` (+ optional `system`). Multi-turn or tool calling: `messages` in OpenAI format.
- Tool calling round trip: pass `tools` (OpenAI function tools) and optionally `tool_choice`. If the result has `tool_calls`, run each yourself, then call chat_completion again with `messages` = your previous messages + the result's `assistant_message` + one {\"role\":\"tool\",\"tool_call_id\":<id>,\"content\":<result text>} per call, and the same `tools`. Repeat until `finish_reason` is not tool_calls.
- list_subscriptions / get_subscription: the account's inference subscriptions and their usage (needs VULTR_API_KEY). Keys are never shown, only their last 4 characters.
Errors come back as tool results with isError and say what to change.";

/// The vultr-inference-mcp server.
#[derive(Clone)]
pub struct VultrServer {
    state: Arc<State>,
    tool_router: ToolRouter<Self>,
}

/// Everything the tools share.
struct State {
    account: Option<AccountClient>,
    keys: InferenceKeys,
    inference: InferenceClient,
    catalog: ModelCatalog,
    default_model: Option<String>,
}

impl VultrServer {
    /// A server for `config`. Nothing is fetched until a tool needs it.
    pub fn new(config: Config) -> Self {
        let config = config.normalized();
        let http = build_client();
        let account = config
            .api_key()
            .map(|key| AccountClient::new(http.clone(), config.api_base_url.clone(), key));
        let inference = InferenceClient::new(http, config.inference_base_url.clone());
        let state = State {
            keys: InferenceKeys::new(
                config.inference_api_key(),
                account.clone(),
                config.inference_subscription.clone(),
            ),
            catalog: ModelCatalog::new(inference.clone(), CATALOG_TTL),
            account,
            inference,
            default_model: config.default_model,
        };
        Self {
            state: Arc::new(state),
            tool_router: Self::subscriptions_router() + Self::models_router() + Self::chat_router(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for VultrServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                    .with_title("Vultr Serverless Inference"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

/// A successful result: readable text for the model, compact JSON for programs.
fn success(text: String, structured: impl serde::Serialize) -> rmcp::model::CallToolResult {
    let mut result =
        rmcp::model::CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(structured).ok();
    result
}
