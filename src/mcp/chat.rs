//! The `chat_completion` tool: decodes the arguments, loads the conversation they
//! continue, runs the chat service (src/chat/), stores the turn and renders the reply (or
//! the tool calls the model asks for).

use std::fmt::Write as _;

use rmcp::model::{CallToolResult, ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer, tool, tool_router};
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{InvalidArguments, Parameters};
use super::error::ToolError;
use crate::chat::{ChatInput, ChatOutcome, ChatService, Progress, ProgressSink, ProgressUpdate};
use crate::principal::Principal;
use crate::setting;
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
}

impl ChatCompletionArgs {
    /// The request for the chat service, and the conversation it continues.
    fn into_input(self) -> (ChatInput, Option<String>) {
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
        };
        (input, self.conversation_id)
    }
}

#[tool_router(router = chat_router, vis = "pub(super)")]
impl VultrServer {
    /// Run a chat completion on a Vultr-hosted model, with optional tool calling. Give `prompt` or `messages`; pass the result's conversation_id to continue without resending history. When the result has tool_calls, run them and call again with one role "tool" message (tool_call_id, content) per call, plus conversation_id (or your messages + assistant_message).
    #[tool(
        input_schema = super::args::input_schema::<ChatCompletionArgs>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true))]
    async fn chat_completion(
        &self,
        Parameters(args): Parameters<ChatCompletionArgs>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let cancel = context.ct.clone();
        let sink = context.meta.get_progress_token().map(|token| PeerProgress {
            peer: context.peer.clone(),
            token,
        });
        let progress = Progress::new(sink);
        let owner = self.principal(&context);
        let outcome = tokio::select! {
            outcome = self.chat_inner(&owner, args, progress) => outcome,
            () = cancel.cancelled() => return CallToolResult::error(vec![rmcp::model::ContentBlock::text("cancelled")]),
        };
        self.respond(outcome)
    }
}

impl VultrServer {
    /// Runs one chat turn for `owner`, continuing one of `owner`'s conversations when
    /// asked, and stores the turn as `owner`'s.
    pub(super) async fn chat_inner<S: ProgressSink>(
        &self,
        owner: &Principal,
        args: Result<ChatCompletionArgs, InvalidArguments>,
        mut progress: Progress<S>,
    ) -> Result<CallToolResult, ToolError> {
        let (mut input, conversation_id) = args?.into_input();
        let continuing = match conversation_id {
            Some(id) => {
                let stored = self.load_conversation(owner, &id).await?;
                input.history = stored.messages;
                input.stored_model = Some(stored.summary.model);
                Some(stored.summary.id)
            }
            None => None,
        };
        let mut outcome = ChatService::new(&self.app)
            .complete(input, &mut progress)
            .await?;
        let turn = std::mem::take(&mut outcome.turn);
        let saved = self
            .save_turn(
                owner,
                continuing,
                &outcome.model,
                turn,
                &outcome.reply,
                outcome.cut_off,
            )
            .await;
        outcome.truncate(
            self.app
                .max_result_chars
                .saturating_sub(RENDERING_ROOM)
                .max(1),
        );
        let text = render(&outcome, &saved);
        Ok(self.success(
            text,
            ChatResult {
                reply: &outcome.reply,
                truncated: outcome.truncated,
                cost_usd: outcome.cost_usd,
                latency_ms: outcome.latency_ms,
                conversation_id: saved.ok().map(|id| id.to_string()),
                repeated_messages_dropped: outcome.repeated,
            },
        ))
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
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Progress of a streamed reply as `notifications/progress` to the client that asked
/// for it with a `progressToken`.
#[derive(Clone)]
pub(super) struct PeerProgress {
    pub(super) peer: Peer<RoleServer>,
    pub(super) token: ProgressToken,
}

impl ProgressSink for PeerProgress {
    async fn send(self, update: ProgressUpdate) {
        let param = ProgressNotificationParam::new(self.token, update.tokens as f64)
            .with_message(update.message);
        if let Err(error) = self.peer.notify_progress(param).await {
            tracing::debug!(%error, "progress notification not sent");
        }
    }
}

/// The reply as text for the model reading the tool result.
fn render(outcome: &ChatOutcome, saved: &Result<ConversationId, String>) -> String {
    let reply = &outcome.reply;
    let repeated = outcome.repeated;
    let mut text = String::new();
    if let Some(cut) = outcome.cut_off {
        let _ = write!(text, "[cut off: {}]\n\n", cut.explanation());
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
                let (input, _) = args.into_input();
                let _ = crate::chat::check_options(&input.options);
                let _ = crate::chat::new_messages(input.prompt, input.system, input.messages, &[]);
            }
        }
    }
}
