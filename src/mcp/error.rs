//! Tool failures: each becomes a result with `isError: true` whose text says what went
//! wrong and what to do.

use super::args::InvalidArguments;
use crate::keys::KeyError;
use crate::store::{ConversationId, StoreError};
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
    /// get_subscription named a subscription that does not exist.
    #[error("no inference subscription has the id or label `{wanted}`. Known: {}.", if .known.is_empty() { "none".to_owned() } else { .known.join(", ") })]
    UnknownSubscription {
        /// What was asked for.
        wanted: String,
        /// What exists, as `label (id)`.
        known: Vec<String>,
    },
    /// The inference API refused the key read from a subscription, even after reading it again.
    #[error("Vultr inference API answered HTTP 401{} to the key read from your subscription. Check in the Vultr customer portal that the subscription chosen by VULTR_INFERENCE_SUBSCRIPTION (or the `subscription` argument) is active, or choose another one.", .message.as_deref().map(|m| format!(": {}", m.trim_end_matches('.'))).unwrap_or_default())]
    SubscriptionKeyRefused {
        /// Vultr's message.
        message: Option<String>,
    },
    /// A conversation could not be read or written.
    #[error(transparent)]
    Conversation(#[from] StoreError),
    /// delete_conversation named a conversation that is not stored.
    #[error(
        "no stored conversation has the id `{id}`: it may have been deleted or pruned already. Read the resource vultr://conversations for the ids that are stored."
    )]
    NothingToDelete {
        /// The id that was asked for.
        id: ConversationId,
    },
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
    /// `reasoning_effort` given for a model whose catalog entry offers none.
    #[error("`{model}` offers no reasoning_effort setting (list_models shows none for it): leave reasoning_effort out, or use a model that has one: {}.", listed(.reasoning_models))]
    NoReasoning {
        /// The model.
        model: String,
        /// Models that offer reasoning efforts.
        reasoning_models: Vec<String>,
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
