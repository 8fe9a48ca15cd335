//! The `chat_completion` tool: decodes the arguments, runs one turn through the chat
//! turns service (src/conversations/) and renders the reply (or the tool calls the model
//! asks for).

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry, cancelled};
use crate::chat::{ChatInput, ChatOutcome, Progress, Skipped};
use crate::conversations::{CompletedTurn, TurnRequest};
use crate::setting;
use crate::settings::Toolset;
use crate::spend::CallSpend;
use crate::store::ConversationId;
use crate::vultr::chat::{ChatOptions, ChatReply, Message, Stop, ToolChoice, ToolDefinition};

/// Room kept for the notices and the footer when the reply is cut to the result limit.
const RENDERING_ROOM: usize = 400;

/// Arguments of `chat_completion`.
///
/// The sampling and output options are declared here one by one rather than as a
/// `#[serde(flatten)]` of [`ChatOptions`]: through a flattened struct serde loses the
/// path of a field at fault (`max_tokens: -1` would no longer be named in the error),
/// and the descriptions here point at list_models, which the wire type must not.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ChatCompletionArgs {
    /// Model id from list_models; default VULTR_DEFAULT_MODEL.
    #[serde(default)]
    model: Option<String>,
    /// A single user message (instead of messages).
    #[serde(default)]
    prompt: Option<String>,
    /// System instruction sent before prompt.
    #[serde(default)]
    system: Option<String>,
    /// The conversation in OpenAI format (instead of prompt).
    #[serde(default)]
    messages: Option<Vec<Message>>,
    /// Most tokens to generate (list_models gives each model's maximum).
    #[serde(default)]
    max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default)]
    temperature: Option<f64>,
    /// Nucleus sampling, 0 to 1.
    #[serde(default)]
    top_p: Option<f64>,
    /// Stop sequence(s), at most 4.
    #[serde(default)]
    stop: Option<Stop>,
    /// Seed for repeatable sampling.
    #[serde(default)]
    seed: Option<i64>,
    /// -2 to 2.
    #[serde(default)]
    frequency_penalty: Option<f64>,
    /// -2 to 2.
    #[serde(default)]
    presence_penalty: Option<f64>,
    /// One of the model's reasoning_efforts (list_models), or none.
    #[serde(default)]
    reasoning_effort: Option<String>,
    /// e.g. {"type":"json_object"}, where the model supports it.
    #[serde(default)]
    response_format: Option<serde_json::Map<String, serde_json::Value>>,
    /// Functions the model may call (OpenAI format).
    #[serde(default)]
    tools: Option<Vec<ToolDefinition>>,
    /// auto, required, none, or {"type":"function","function":{"name":..}}.
    #[serde(default)]
    tool_choice: Option<ToolChoice>,
    /// Subscription (id or label) whose key to use.
    #[serde(default)]
    subscription: Option<String>,
    /// Continue this conversation (from an earlier result): its stored messages go first.
    #[serde(default)]
    conversation_id: Option<String>,
    /// Models to try in turn if the model is down (at most 5).
    #[serde(default)]
    fallback_models: Option<Vec<String>>,
}

impl ChatCompletionArgs {
    /// The turn asked for: the chat request, and the conversation it continues.
    fn into_request(self, spend: CallSpend, default_fallbacks: &[String]) -> TurnRequest {
        let input = ChatInput {
            model: self.model,
            prompt: self.prompt,
            system: self.system,
            messages: self.messages,
            options: ChatOptions {
                max_tokens: self.max_tokens,
                temperature: self.temperature,
                top_p: self.top_p,
                stop: self.stop,
                seed: self.seed,
                frequency_penalty: self.frequency_penalty,
                presence_penalty: self.presence_penalty,
                reasoning_effort: self.reasoning_effort,
                response_format: self.response_format,
                tools: self.tools,
                tool_choice: self.tool_choice,
            },
            subscription: self.subscription,
            history: Vec::new(),
            stored_model: None,
            collection: None,
            spend,
            fallback_models: self
                .fallback_models
                .unwrap_or_else(|| default_fallbacks.to_vec()),
        };
        TurnRequest {
            input,
            conversation_id: self.conversation_id,
        }
    }
}

/// The `chat_completion` entry.
pub(super) fn chat_completion() -> ToolEntry {
    ToolEntry {
        name: "chat_completion",
        toolset: Toolset::Core,
        description: "Run a chat completion on a Vultr-hosted model, with optional tool calling. Give `prompt` or `messages`; pass the result's conversation_id to continue without resending history. When the result has tool_calls, run them and call again with one role \"tool\" message (tool_call_id, content) per call, plus conversation_id (or your messages + assistant_message).".to_owned(),
        input_schema: input_schema::<ChatCompletionArgs>,
        behaviour: Behaviour::MODEL_RUN,
        guide: "\
- chat_completion: run a model. Simple use: `prompt` (+ optional `system`). Multi-turn or tool calling: `messages` in OpenAI format.
- Tool calling round trip: pass `tools` (OpenAI function tools) and optionally `tool_choice`. If the result has `tool_calls`, run each yourself, then call chat_completion again with the same `tools`, the result's `conversation_id`, and `messages` = one {\"role\":\"tool\",\"tool_call_id\":<id>,\"content\":<result text>} per call (without conversation_id, send your previous messages + the result's `assistant_message` + the tool messages). Repeat until `finish_reason` is not tool_calls.
- Conversations: every chat_completion result has a conversation_id. Pass it back to continue: the stored messages are sent first, so send only the new prompt or messages (for a tool round trip, just the tool messages). delete_conversation removes one; the resources vultr://conversations (list) and vultr://conversations/{id} (transcript) show them.
".to_owned(),
        handler: |server, call| Box::pin(server.chat_completion(call)),
    }
}

impl VultrServer {
    /// Runs one chat turn for the caller (continuing and storing its conversation) and
    /// renders the reply, or the tool calls the model asks for.
    async fn chat_completion(&self, call: Call) -> CallToolResult {
        let Call {
            owner,
            mut arguments,
            progress,
            cancel,
            spend,
            facts,
            ..
        } = call;
        let rag = self.app.tools.toolsets.contains(&Toolset::Rag);
        let turn = async {
            let collection = take_collection(&mut arguments, rag)?;
            if let Some(collection) = &collection {
                self.app.collections.check_owned(&owner, collection).await?;
            }
            let mut request = decode::<ChatCompletionArgs>(arguments)?
                .into_request(spend, &self.app.fallback_models);
            request.input.collection = collection.clone();
            let mut progress = Progress::new(progress);
            let turn = self.app.turns.run(&owner, request, &mut progress).await?;
            if let Ok(id) = &turn.saved {
                facts.conversation(id.as_ref());
            }
            Ok::<_, ToolError>((turn, collection))
        };
        let turn = tokio::select! {
            turn = turn => turn,
            () = cancel.cancelled() => return cancelled(),
        };
        self.respond(turn.map(|(turn, collection)| self.render_turn(turn, collection.as_deref())))
    }

    /// A turn as the tool's result.
    fn render_turn(&self, turn: CompletedTurn, collection: Option<&str>) -> CallToolResult {
        let CompletedTurn { mut outcome, saved } = turn;
        outcome.truncate(
            self.app
                .max_result_chars
                .saturating_sub(RENDERING_ROOM)
                .max(1),
        );
        let text = render(&outcome, &saved);
        self.success(
            text,
            ChatResult {
                reply: &outcome.reply,
                truncated: outcome.truncated,
                cost_usd: outcome.cost_usd,
                latency_ms: outcome.latency_ms,
                conversation_id: saved.ok().map(|id| id.to_string()),
                repeated_messages_dropped: outcome.repeated,
                collection,
                answered_by: (!outcome.skipped.is_empty()).then_some(outcome.answered_by.as_str()),
                skipped: &outcome.skipped,
            },
        )
    }
}

/// The structured result of `chat_completion`: the reply, what it cost and took, and
/// where it was stored.
#[derive(Serialize)]
struct ChatResult<'a> {
    #[serde(flatten)]
    reply: &'a ChatReply,
    /// True when content or reasoning was cut to the result size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    /// What the call cost in USD, from the usage and the catalog's prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    /// Milliseconds from sending the request to the end of the answer.
    latency_ms: u64,
    /// Pass it back as `conversation_id` to continue; absent when saving failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<String>,
    /// How many messages at the start of `messages` repeated the stored conversation
    /// and were not sent again; absent when none did.
    #[serde(skip_serializing_if = "is_zero")]
    repeated_messages_dropped: usize,
    /// The collection the answer was grounded in (RAG chat), when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    collection: Option<&'a str>,
    /// The fallback model that answered, when the model asked for did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    answered_by: Option<&'a str>,
    /// The models tried or passed over before the one that answered, with why; absent
    /// when the model asked for answered.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    skipped: &'a [Skipped],
}

/// Takes `collection` out of the arguments (the arguments type does not have it, so the
/// core schema stays as it was): refused unless the `rag` toolset is on.
fn take_collection(
    arguments: &mut serde_json::Map<String, serde_json::Value>,
    rag: bool,
) -> Result<Option<String>, ToolError> {
    let Some(value) = arguments.remove("collection") else {
        return Ok(None);
    };
    if !rag {
        return Err(ToolError::Invalid(format!(
            "`collection` (RAG chat over a vector-store collection) needs the `rag` toolset, which this server does not list; add it to {} (e.g. core,rag), or leave `collection` out",
            setting::TOOLSETS
        )));
    }
    match value {
        serde_json::Value::String(id) if !id.trim().is_empty() => Ok(Some(id)),
        _ => Err(ToolError::Invalid(
            "`collection` must be the id of one of your collections (list_collections shows them)"
                .to_owned(),
        )),
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The reply as text for the model reading the tool result.
fn render(outcome: &ChatOutcome, saved: &Result<ConversationId, String>) -> String {
    let reply = &outcome.reply;
    let repeated = outcome.repeated;
    let mut text = String::new();
    if let Some(cut) = outcome.cut_off {
        let _ = write!(text, "[cut off: {}]\n\n", cut.explanation());
    }
    if !outcome.skipped.is_empty() {
        let _ = write!(
            text,
            "[answered by fallback model {}: {}]\n\n",
            outcome.answered_by,
            outcome
                .skipped
                .iter()
                .map(|s| match s.charged_usd {
                    Some(usd) => format!(
                        "{} skipped ({}; charged its worst case, ${usd:.6})",
                        s.model, s.reason
                    ),
                    None => format!("{} skipped ({})", s.model, s.reason),
                })
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if repeated > 0 {
        let _ = write!(
            text,
            "[the first {repeated} message(s) of `messages` repeated the stored conversation and were not sent again; with conversation_id, send only the new messages]\n\n"
        );
    }
    if let Some(content) = reply.content.as_deref().filter(|c| !c.trim().is_empty()) {
        text.push_str(content);
        text.push_str("\n\n");
    }
    if !reply.tool_calls.is_empty() {
        let _ = writeln!(
            text,
            "The model asks for {} tool call(s):",
            reply.tool_calls.len()
        );
        for call in &reply.tool_calls {
            let arguments = call
                .arguments_raw
                .clone()
                .unwrap_or_else(|| call.arguments.to_string());
            let _ = writeln!(text, "- id {}: {}({arguments})", call.id, call.name);
        }
        match saved {
            Ok(id) => {
                let _ = write!(
                    text,
                    "Run each call, then call chat_completion again with conversation_id \"{id}\", the same tools, and messages = only one {{\"role\":\"tool\",\"tool_call_id\":<id>,\"content\":<result>}} per call (the stored conversation is sent first for you). Without conversation_id, send instead your previous messages + assistant_message from this result + the tool messages.\n\n"
                );
            }
            Err(_) => text.push_str(
                "Run each call, then call chat_completion again with the same tools and messages = your previous messages (a prompt counts as a user message) + assistant_message from this result + one {\"role\":\"tool\",\"tool_call_id\":<id>,\"content\":<result>} per call.\n\n",
            ),
        }
    } else if text.is_empty() {
        text.push_str(match reply.finish_reason.as_deref() {
            Some("length") => {
                "(no text: the model used up max_tokens before answering; raise max_tokens)\n\n"
            }
            _ => "(the model returned no text)\n\n",
        });
    }
    if outcome.truncated {
        let _ = write!(
            text,
            "[the reply was cut to the result size limit ({}); ask for a shorter answer or a lower max_tokens]\n\n",
            setting::MAX_RESULT_CHARS
        );
    }
    let _ = write!(text, "[model {}", reply.model);
    if let Some(reason) = &reply.finish_reason {
        let _ = write!(text, ", finish_reason {reason}");
    }
    if let Some(usage) = &reply.usage
        && let (Some(p), Some(c)) = (usage.prompt_tokens, usage.completion_tokens)
    {
        let _ = write!(text, ", tokens {p} prompt + {c} completion");
    }
    if let Some(cost) = outcome.cost_usd {
        let _ = write!(text, ", ${cost:.6}");
    }
    match saved {
        Ok(id) => {
            let _ = write!(text, ", conversation_id {id}");
        }
        Err(problem) => {
            let _ = write!(text, "; this turn was not saved: {problem}");
        }
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mcp::args::decode;

    #[test]
    fn the_structured_result_is_the_reply_with_what_the_server_adds() {
        let body = json!({"model": "kimi", "choices": [{"message": {"content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let reply = ChatReply::from_response(&body, "kimi").unwrap();
        let result = |truncated, cost_usd, conversation_id, repeated_messages_dropped| {
            serde_json::to_value(ChatResult {
                reply: &reply,
                truncated,
                cost_usd,
                latency_ms: 12,
                conversation_id,
                repeated_messages_dropped,
                collection: None,
                answered_by: None,
                skipped: &[],
            })
            .unwrap()
        };
        let reply_json = json!({
            "model": "kimi",
            "content": null,
            "tool_calls": [{"id": "c1", "name": "f", "arguments": {"a": 1}}],
            "finish_reason": "tool_calls",
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
            "assistant_message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            "latency_ms": 12
        });
        assert_eq!(result(false, None, None, 0), reply_json);
        let mut everything = reply_json;
        let added = json!({"truncated": true, "cost_usd": 0.5, "conversation_id": "x", "repeated_messages_dropped": 2});
        everything
            .as_object_mut()
            .unwrap()
            .extend(added.as_object().unwrap().clone());
        assert_eq!(result(true, Some(0.5), Some("x".to_owned()), 2), everything);
    }

    proptest::proptest! {
        /// Whatever a client sends, decoding and checking it ends in a value or an
        /// error message, never a panic.
        #[test]
        fn any_arguments_are_accepted_or_refused_without_panicking(arguments in crate::proptest_strategies::json_object()) {
            if let Ok(args) = decode::<ChatCompletionArgs>(arguments) {
                let input = args.into_request(crate::spend::CallSpend::unlimited(), &[]).input;
                let _ = crate::chat::check_options(&input.options);
                let _ = crate::chat::new_messages(input.prompt, input.system, input.messages, &[]);
            }
        }
    }
}
