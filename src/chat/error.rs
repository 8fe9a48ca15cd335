//! Why a chat completion failed: each message says what went wrong and what to do.

use crate::keys::KeyError;
use crate::setting;
use crate::vultr::error::VultrError;

impl ChatError {
    /// Whether Vultr refused the request (an error status) or it was never sent, so
    /// nothing was generated or billed.
    pub fn was_refused(&self) -> bool {
        matches!(
            self,
            ChatError::Upstream(VultrError::Status { .. })
                | ChatError::SubscriptionKeyRefused { .. }
                | ChatError::Key(_)
        )
    }
}

/// How many model ids an error message lists before it says "and N more".
const LISTED_MODELS: usize = 25;

/// Everything that can make a chat completion fail.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The request makes no sense as given; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// No inference key could be had.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The inference API failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
    /// The call was not allowed to spend (a limit, or the user's confirmation).
    #[error(transparent)]
    Spend(#[from] crate::spend::SpendError),
    /// The inference API refused the key read from a subscription, even after reading it again.
    #[error("Vultr inference API answered HTTP 401{} to the key read from your subscription. Check in the Vultr customer portal that the subscription chosen by {chosen_by} (or the `subscription` argument) is active, or choose another one.", .message.as_deref().map(|m| format!(": {}", m.trim_end_matches('.'))).unwrap_or_default(), chosen_by = setting::INFERENCE_SUBSCRIPTION)]
    SubscriptionKeyRefused {
        /// Vultr's message.
        message: Option<String>,
    },
    /// The model and every fallback model failed or could not serve the request.
    #[error("no model could answer: {}. Try again in a while, or name other models in fallback_models (list_models shows them).", each_tried(.tried))]
    NoneAnswered {
        /// Each model tried or passed over, in order, with why.
        tried: Vec<super::Skipped>,
    },
    /// No model was named and no default is set.
    #[error(
        "no model given: pass `model` (list_models shows the choices) or set {}.",
        setting::DEFAULT_MODEL
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

fn each_tried(tried: &[super::Skipped]) -> String {
    tried
        .iter()
        .map(|s| match s.charged_usd {
            Some(usd) => format!(
                "{} ({}; charged its worst case, ${usd:.6})",
                s.model, s.reason
            ),
            None => format!("{} ({})", s.model, s.reason),
        })
        .collect::<Vec<_>>()
        .join("; ")
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
