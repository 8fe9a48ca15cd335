//! Tool failures: each becomes a result with `isError: true` whose text says what went
//! wrong and what to do.

use rmcp::model::{CallToolResult, ContentBlock};

use super::args::InvalidArguments;
use crate::keys::KeyError;
use crate::vultr::error::VultrError;

/// How many model ids an error message lists before it says "and N more".
const LISTED_MODELS: usize = 25;

/// Everything that can make a tool call fail.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not decode.
    #[error(transparent)]
    Arguments(#[from] InvalidArguments),
    /// The arguments decoded but make no sense together; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// A subscription tool was called without an account key.
    #[error(
        "this tool needs the Vultr account API: set VULTR_API_KEY to an account API key (Vultr customer portal > Account > API, with this machine's IP allowed) in the MCP server's env, then restart it."
    )]
    NoAccountKey,
    /// No inference key could be had.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A Vultr API failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
    /// No model was named and no default is set.
    #[error(
        "no model given: pass `model` (list_models shows the choices) or set VULTR_DEFAULT_MODEL."
    )]
    NoModel,
    /// The model is not in the catalog.
    #[error("unknown model `{model}`.{} Chat models: {}.", did_you_mean(.suggestions), listed(.chat_models))]
    UnknownModel {
        /// What was asked for.
        model: String,
        /// Close matches.
        suggestions: Vec<String>,
        /// Every chat model.
        chat_models: Vec<String>,
    },
    /// The model does not produce text.
    #[error("`{model}` is not a chat model (it outputs {}). Chat models: {}.", .outputs.join(", "), listed(.chat_models))]
    NotAChatModel {
        /// What was asked for.
        model: String,
        /// What it outputs.
        outputs: Vec<String>,
        /// Every chat model.
        chat_models: Vec<String>,
    },
    /// `tools` given for a model that cannot call tools.
    #[error("`{model}` does not support tool calling, so `tools` cannot be used with it. Models with tool support: {}.", listed(.tool_models))]
    ToolsUnsupported {
        /// What was asked for.
        model: String,
        /// Models that can.
        tool_models: Vec<String>,
    },
    /// `max_tokens` above what the model allows.
    #[error(
        "`max_tokens` is {given}, but `{model}` generates at most {max} tokens: use {max} or less, or leave max_tokens out."
    )]
    MaxTokensTooHigh {
        /// The model.
        model: String,
        /// Its maximum.
        max: u64,
        /// What was asked for.
        given: u32,
    },
    /// `reasoning_effort` the model does not offer.
    #[error("`reasoning_effort` `{given}` is not offered by `{model}`; it accepts: {}, or none.", .supported.join(", "))]
    ReasoningEffort {
        /// The model.
        model: String,
        /// What was asked for.
        given: String,
        /// What it accepts.
        supported: Vec<String>,
    },
}

impl ToolError {
    /// The tool result carrying this error.
    pub fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.to_string())])
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" Did you mean {}?", suggestions.join(" or "))
    }
}

fn listed(models: &[String]) -> String {
    match models.len() {
        0 => "none in the catalog right now".to_owned(),
        n if n <= LISTED_MODELS => models.join(", "),
        n => format!(
            "{} and {} more (see list_models)",
            models[..LISTED_MODELS].join(", "),
            n - LISTED_MODELS
        ),
    }
}
