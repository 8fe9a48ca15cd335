//! Chat completions as a service, whatever the transport: the request checked (options,
//! messages, the catalog), history a caller resent dropped, the request sent (streamed or
//! not) with progress paced for the caller, and the reply timed and priced. No MCP types:
//! the tool layer (src/mcp/chat.rs) decodes, stores and renders around it.

mod error;
mod model_check;
mod price;
mod progress;
mod quote;
mod service;
mod validate;

pub use error::ChatError;
pub use progress::{Progress, ProgressSink, ProgressUpdate};
pub use service::{ChatService, MAX_FALLBACK_MODELS, WorstCase};
#[cfg(test)]
pub(crate) use validate::check_options;
pub(crate) use validate::new_messages;

use crate::spend::CallSpend;
use crate::vultr::chat::{ChatOptions, ChatReply, Content, Message};
use crate::vultr::stream::CutOff;

/// What a caller asks for, with the stored conversation it continues (if any).
#[derive(Debug)]
pub struct ChatInput {
    /// The model; else the stored conversation's, else the default one.
    pub model: Option<String>,
    /// A single user message (instead of `messages`).
    pub prompt: Option<String>,
    /// A system instruction sent before `prompt`.
    pub system: Option<String>,
    /// The new messages (instead of `prompt`).
    pub messages: Option<Vec<Message>>,
    /// Sampling and output options, sent as given.
    pub options: ChatOptions,
    /// The subscription whose key to use.
    pub subscription: Option<String>,
    /// The stored conversation's messages, sent first.
    pub history: Vec<Message>,
    /// The stored conversation's model.
    pub stored_model: Option<String>,
    /// The vector-store collection to answer over (RAG chat, never streamed), already
    /// checked to be the caller's.
    pub collection: Option<String>,
    /// Who pays, under which limits: the call's worst case is held before it is sent.
    pub spend: CallSpend,
    /// Models to ask, in order, when the model is unavailable (429 after the retries, 5xx,
    /// or no answer before the first token); each is checked against the catalog first.
    pub fallback_models: Vec<String>,
}

/// A model passed over on the way to the one that answered, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skipped {
    /// Its id.
    pub model: String,
    /// Why it did not answer: the upstream error, or what of the request it cannot serve.
    pub reason: String,
    /// What its try was charged: its worst case, when it was sent and not refused (a model
    /// silent until the deadline may still bill its work).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charged_usd: Option<f64>,
}

/// A completed chat: the reply, and what the service knows about it.
#[derive(Debug)]
pub struct ChatOutcome {
    /// The model asked for (the conversation continues on it).
    pub model: String,
    /// The model that answered: `model`, or one of the fallback models.
    pub answered_by: String,
    /// The models tried or passed over before `answered_by`, in order, with why.
    pub skipped: Vec<Skipped>,
    /// The caller's new messages, as sent after the history: the turn to store.
    pub turn: Vec<Message>,
    /// The reply.
    pub reply: ChatReply,
    /// Set when a streamed reply was cut short.
    pub cut_off: Option<CutOff>,
    /// What the call cost in USD, from the usage and the catalog's prices.
    pub cost_usd: Option<f64>,
    /// Milliseconds from sending the request to the end of the answer.
    pub latency_ms: u64,
    /// How many messages at the start of `messages` repeated the stored conversation and
    /// were not sent again.
    pub repeated: usize,
    /// Whether content or reasoning was cut by [`ChatOutcome::truncate`].
    pub truncated: bool,
}

impl ChatOutcome {
    /// Cuts the reply's content and reasoning to `max_chars` characters each (and the
    /// content of its `assistant_message` with them), marking the outcome truncated.
    pub fn truncate(&mut self, max_chars: usize) {
        let reply = &mut self.reply;
        let mut cut = false;
        for text in [&mut reply.content, &mut reply.reasoning]
            .into_iter()
            .flatten()
        {
            if let Some((end, _)) = text.char_indices().nth(max_chars) {
                text.truncate(end);
                cut = true;
            }
        }
        if cut {
            reply.assistant_message.content = reply.content.clone().map(Content::Text);
            self.truncated = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outcome(body: serde_json::Value) -> ChatOutcome {
        ChatOutcome {
            model: "m".to_owned(),
            answered_by: "m".to_owned(),
            skipped: Vec::new(),
            turn: Vec::new(),
            reply: ChatReply::from_response(&body, "m").unwrap(),
            cut_off: None,
            cost_usd: None,
            latency_ms: 0,
            repeated: 0,
            truncated: false,
        }
    }

    #[test]
    fn truncation_cuts_content_and_the_echoed_message() {
        let body = json!({"choices":[{"message":{"content":"abcdef","reasoning":"xy"},"finish_reason":"length"}]});
        let mut outcome = outcome(body);
        outcome.truncate(3);
        assert_eq!(outcome.reply.content.as_deref(), Some("abc"));
        assert_eq!(outcome.reply.reasoning.as_deref(), Some("xy"));
        assert_eq!(
            serde_json::to_value(&outcome.reply).unwrap()["assistant_message"]["content"],
            "abc"
        );
        assert!(outcome.truncated);
        outcome.truncated = false;
        outcome.truncate(3);
        assert!(!outcome.truncated, "nothing more to cut");
    }

    proptest::proptest! {
        /// Any text is cut on a character boundary to at most the limit.
        #[test]
        fn truncation_keeps_at_most_the_limit_in_whole_characters(text in ".{0,40}", max in 0usize..50) {
            let mut outcome = outcome(json!({"choices":[{"message":{"content": text.clone()}}]}));
            outcome.truncate(max);
            let kept = outcome.reply.content.unwrap();
            proptest::prop_assert_eq!(kept.chars().count(), text.chars().count().min(max));
            proptest::prop_assert!(text.starts_with(&kept));
            proptest::prop_assert_eq!(outcome.truncated, text.chars().count() > max);
        }
    }
}
