//! The `chat_completion` tool: checks a request against the catalog, sends it to Vultr,
//! and returns the reply (or the tool calls the model asks for).

use std::collections::HashSet;
use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde::Deserialize;
use std::future::Future;
use std::time::Duration;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer};
use tokio::time::Instant;

use super::VultrServer;
use super::args::{InvalidArguments, Parameters};
use super::error::ToolError;
use crate::keys::{InferenceKey, KeySource};
use crate::secret::KnownKeys;
use crate::store::ConversationId;
use crate::vultr::chat::{
    ChatOptions, ChatReply, ChatRequest, Content, Message, Role, Stop, TokenUsage, ToolChoice,
    ToolChoiceMode, ToolDefinition,
};
use crate::vultr::error::VultrError;
use crate::vultr::models::Model;
use crate::vultr::stream::{CutOff, StreamAssembler};

/// Arguments of `chat_completion`.
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
    /// Moves the sampling and output options out, to be sent as given.
    fn take_options(&mut self) -> ChatOptions {
        ChatOptions {
            max_tokens: self.max_tokens.take(),
            temperature: self.temperature.take(),
            top_p: self.top_p.take(),
            stop: self.stop.take(),
            seed: self.seed.take(),
            frequency_penalty: self.frequency_penalty.take(),
            presence_penalty: self.presence_penalty.take(),
            reasoning_effort: self.reasoning_effort.take(),
            response_format: self.response_format.take(),
            tools: self.tools.take(),
            tool_choice: self.tool_choice.take(),
        }
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
        let progress = ProgressReporter::new(&context);
        let outcome = tokio::select! {
            outcome = self.chat_inner(args, progress) => outcome,
            () = cancel.cancelled() => return CallToolResult::error(vec![rmcp::model::ContentBlock::text("cancelled")]),
        };
        match outcome {
            Ok(result) => result,
            Err(error) => self.failure(error),
        }
    }
}

impl VultrServer {
    async fn chat_inner(
        &self,
        args: Result<ChatCompletionArgs, InvalidArguments>,
        mut progress: ProgressReporter,
    ) -> Result<CallToolResult, ToolError> {
        let mut args = args?;
        let options = args.take_options();
        let stored = match args.conversation_id.take() {
            Some(id) => Some(self.load_conversation(&id).await?),
            None => None,
        };
        let history = stored.as_ref().map_or(&[][..], |c| &c.messages[..]);
        let (new_messages, repeated) = match args.messages {
            Some(messages) if !history.is_empty() => {
                without_repeats(messages, history, &self.app.known_keys)?
            }
            messages => (messages, 0),
        };
        let new_messages = conversation(args.prompt, args.system, new_messages, history)?;
        check_options(&options)?;
        let model = args
            .model
            .filter(|m| !m.trim().is_empty())
            .or_else(|| stored.as_ref().map(|c| c.summary.model.clone()))
            .or_else(|| self.app.default_model.clone())
            .ok_or(ToolError::NoModel)?;
        let key = self.app.keys.get(args.subscription.as_deref()).await?;
        let known = self.check_against_catalog(&model, &options, &key).await?;
        let request = ChatRequest {
            model,
            messages: [history, &new_messages[..]].concat(),
            options,
        };
        let streaming = known.as_ref().is_some_and(|m| m.streaming == Some(true));
        let started = Instant::now();
        let (mut reply, cut_off) = self
            .send(
                &request,
                key,
                args.subscription.as_deref(),
                streaming,
                &mut progress,
            )
            .await?;
        reply.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        reply.cost_usd = known
            .as_ref()
            .and_then(|m| cost_usd(m, reply.usage.as_ref()));
        let saved = self
            .save_turn(
                stored.map(|c| c.summary.id),
                &request.model,
                new_messages,
                &reply,
                cut_off,
            )
            .await;
        // Leave room for the notices and the footer within the result limit.
        reply.truncate(self.app.max_result_chars.saturating_sub(400).max(1));
        let text = render(&reply, cut_off, &saved, repeated);
        let conversation_id = saved.ok().map(|id| id.to_string());
        Ok(self.success(
            text,
            ChatResult {
                reply: &reply,
                conversation_id,
                repeated_messages_dropped: repeated,
            },
        ))
    }

    /// Sends the request; a discovered key that is refused is looked up again, once.
    async fn send(
        &self,
        request: &ChatRequest,
        key: InferenceKey,
        subscription: Option<&str>,
        streaming: bool,
        progress: &mut ProgressReporter,
    ) -> Result<(ChatReply, Option<CutOff>), ToolError> {
        match self.attempt(&key, request, streaming, progress).await {
            Err(VultrError::Status { status: 401, .. }) if self.app.keys.forget(&key).await => {
                tracing::info!("inference key refused; reading the subscription's key again");
                let fresh = self.app.keys.get(subscription).await?;
                let outcome = self.attempt(&fresh, request, streaming, progress).await;
                outcome.map_err(|e| upstream_error(e, &fresh))
            }
            outcome => outcome.map_err(|e| upstream_error(e, &key)),
        }
    }

    /// One request to Vultr, streamed when the model can stream.
    async fn attempt(
        &self,
        key: &InferenceKey,
        request: &ChatRequest,
        streaming: bool,
        progress: &mut ProgressReporter,
    ) -> Result<(ChatReply, Option<CutOff>), VultrError> {
        let inference = &self.app.inference;
        if !streaming {
            return inference.chat(&key.key, request).await.map(|r| (r, None));
        }
        inference
            .chat_stream(&key.key, request, self.app.stream_deadlines, |so_far| {
                progress.on_chunk(so_far)
            })
            .await
    }

    /// Refuses what the catalog says cannot work. When the catalog cannot be read the
    /// request goes ahead unchecked: Vultr will judge it.
    async fn check_against_catalog(
        &self,
        model: &str,
        options: &ChatOptions,
        key: &InferenceKey,
    ) -> Result<Option<Model>, ToolError> {
        let catalog = match self.app.catalog.models(Some(&key.key)).await {
            Ok(catalog) => catalog,
            Err(error) => {
                let error = self.app.known_keys.redact(&error.to_string());
                tracing::warn!(%error, "model catalog unavailable; sending the request unchecked");
                return Ok(None);
            }
        };
        let chat_models = || ids(catalog.iter().filter(|m| m.is_chat()));
        let Some(found) = catalog.iter().find(|m| m.id == model) else {
            return Err(ToolError::UnknownModel {
                model: model.to_owned(),
                suggestions: suggestions(model, &catalog),
                chat_models: chat_models(),
            });
        };
        if !found.is_chat() {
            return Err(ToolError::NotAChatModel {
                model: model.to_owned(),
                outputs: found.outputs.clone(),
                chat_models: chat_models(),
            });
        }
        if options.tools.as_ref().is_some_and(|t| !t.is_empty()) && !found.may_use_tools() {
            return Err(ToolError::ToolsUnsupported {
                model: model.to_owned(),
                tool_models: ids(catalog
                    .iter()
                    .filter(|m| m.is_chat() && m.tools == Some(true))),
            });
        }
        if let (Some(given), Some(max)) = (options.max_tokens, found.max_output_tokens)
            && u64::from(given) > max
        {
            return Err(ToolError::MaxTokensTooHigh {
                model: model.to_owned(),
                max,
                given,
            });
        }
        if let (Some(effort), Some(supported)) =
            (&options.reasoning_effort, &found.reasoning_efforts)
        {
            if supported.is_empty() {
                return Err(ToolError::NoReasoning {
                    model: model.to_owned(),
                    reasoning_models: ids(catalog
                        .iter()
                        .filter(|m| m.reasoning_efforts.as_ref().is_some_and(|e| !e.is_empty()))),
                });
            }
            if effort != "none" && !supported.contains(effort) {
                return Err(ToolError::ReasoningEffort {
                    model: model.to_owned(),
                    given: effort.clone(),
                    supported: supported.clone(),
                });
            }
        }
        Ok(Some(found.clone()))
    }
}

/// The structured result of `chat_completion`: the reply and where it was stored.
#[derive(serde::Serialize)]
struct ChatResult<'a> {
    #[serde(flatten)]
    reply: &'a ChatReply,
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

/// With a stored conversation, `messages` should be only the new ones. A caller that
/// resends the history (all of it, or its last messages, such as the assistant message
/// that asked for tools) would pay for it twice: drop the longest start of `messages`
/// that repeats the end of `history`, and say how many were dropped. Messages are
/// compared as stored: with known keys redacted.
fn without_repeats(
    mut messages: Vec<Message>,
    history: &[Message],
    known_keys: &KnownKeys,
) -> Result<(Option<Vec<Message>>, usize), ToolError> {
    let as_stored = |m: &Message| {
        serde_json::to_value(m).ok().map(|mut value| {
            known_keys.redact_value(&mut value);
            value
        })
    };
    let given: Vec<_> = messages.iter().map(as_stored).collect();
    let stored: Vec<_> = history
        .iter()
        .map(|m| serde_json::to_value(m).ok())
        .collect();
    let longest = given.len().min(stored.len());
    let repeated = (1..=longest)
        .rev()
        .find(|&n| given[..n] == stored[stored.len() - n..])
        .unwrap_or(0);
    if repeated == messages.len() {
        return Err(ToolError::Invalid(format!(
            "`messages` only repeats the stored conversation ({repeated} message(s)); with `conversation_id`, send only what is new: a user message, or one tool message per tool call"
        )));
    }
    messages.drain(..repeated);
    Ok((Some(messages), repeated))
}

/// What a call cost, when the catalog prices both its prompt and completion tokens.
fn cost_usd(model: &Model, usage: Option<&TokenUsage>) -> Option<f64> {
    let usage = usage?;
    let prompt = usage.prompt_tokens? as f64 * model.prompt_usd_per_1m?;
    let completion = usage.completion_tokens? as f64 * model.completion_usd_per_1m?;
    let cost = (prompt + completion) / 1_000_000.0;
    Some((cost * 1e10).round() / 1e10)
}

/// Sends progress notifications for a streamed reply when the client asked for them
/// (a `progressToken`): none in the first second, then at most four a second, each
/// with the tokens so far and the last words. They are sent before the result, never after.
pub(super) struct ProgressReporter {
    target: Option<(Peer<RoleServer>, ProgressToken)>,
    started: Instant,
    last_sent: Option<Instant>,
}

impl ProgressReporter {
    /// Quiet for calls that end within this.
    const GRACE: Duration = Duration::from_secs(1);
    /// Least time between two notifications.
    const INTERVAL: Duration = Duration::from_millis(250);

    fn new(context: &RequestContext<RoleServer>) -> Self {
        Self {
            target: context
                .meta
                .get_progress_token()
                .map(|token| (context.peer.clone(), token)),
            started: Instant::now(),
            last_sent: None,
        }
    }

    /// The notification due after this chunk, if any, as a future that sends it.
    fn on_chunk(&mut self, so_far: &StreamAssembler) -> impl Future<Output = ()> + use<> {
        let now = Instant::now();
        let due = self.target.is_some()
            && now.duration_since(self.started) >= Self::GRACE
            && self
                .last_sent
                .is_none_or(|last| now.duration_since(last) >= Self::INTERVAL);
        let notification = match &self.target {
            Some((peer, token)) if due => {
                self.last_sent = Some(now);
                let tokens = so_far.deltas();
                let param = ProgressNotificationParam::new(token.clone(), tokens as f64)
                    .with_message(format!(
                        "{tokens} tokens so far: …{}",
                        last_words(so_far.content(), 60)
                    ));
                Some((peer.clone(), param))
            }
            _ => None,
        };
        async move {
            if let Some((peer, param)) = notification
                && let Err(error) = peer.notify_progress(param).await
            {
                tracing::debug!(%error, "progress notification not sent");
            }
        }
    }
}

/// The last `max` characters of `text` on one line.
fn last_words(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = flat.chars().count();
    flat.chars().skip(count.saturating_sub(max)).collect()
}

/// A refused key read from a subscription needs other advice than a configured one.
fn upstream_error(error: VultrError, key: &InferenceKey) -> ToolError {
    match (error, &key.source) {
        (
            VultrError::Status {
                status: 401,
                message,
                ..
            },
            KeySource::Discovered(_),
        ) => ToolError::SubscriptionKeyRefused { message },
        (error, _) => ToolError::Upstream(error),
    }
}

fn ids<'a>(models: impl Iterator<Item = &'a Model>) -> Vec<String> {
    models.map(|m| m.id.clone()).collect()
}

/// Chat models whose id resembles what was asked for, closest first: one contains the
/// other (ignoring case and any `org/` prefix), or they are a few typos apart.
fn suggestions(wanted: &str, catalog: &[Model]) -> Vec<String> {
    /// How alike two ids must be (normalised Damerau-Levenshtein, 1 = equal).
    const ALIKE: f64 = 0.75;
    let tail = |id: &str| {
        let id = id.to_lowercase();
        id.rsplit('/').next().unwrap_or(&id).to_owned()
    };
    let wanted = tail(wanted);
    let mut close: Vec<(f64, &str)> = catalog
        .iter()
        .filter(|m| m.is_chat())
        .filter_map(|m| {
            let id = tail(&m.id);
            let contains = !wanted.is_empty()
                && (id.contains(&wanted) || (wanted.len() >= 3 && wanted.contains(&id)));
            let score = strsim::normalized_damerau_levenshtein(&wanted, &id);
            (contains || score >= ALIKE).then_some((score, m.id.as_str()))
        })
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    close
        .into_iter()
        .take(3)
        .map(|(_, id)| id.to_owned())
        .collect()
}

/// The messages to send: `prompt` (with `system`) or `messages`, checked for the
/// mistakes Vultr would otherwise reject with a less helpful message.
fn conversation(
    prompt: Option<String>,
    system: Option<String>,
    messages: Option<Vec<Message>>,
    history: &[Message],
) -> Result<Vec<Message>, ToolError> {
    let invalid = |m: &str| Err(ToolError::Invalid(m.to_owned()));
    match (prompt, messages) {
        (Some(_), Some(_)) => invalid("give either `prompt` or `messages`, not both"),
        (None, None) => invalid("give `prompt` (one user message) or `messages` (a conversation)"),
        (Some(prompt), None) => {
            if prompt.trim().is_empty() {
                return invalid("`prompt` is empty");
            }
            let mut messages = Vec::with_capacity(2);
            if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
                messages.push(text_message(Role::System, system));
            }
            messages.push(text_message(Role::User, prompt));
            Ok(messages)
        }
        (None, Some(messages)) => {
            if system.is_some() {
                return invalid(
                    "`system` goes with `prompt`; with `messages`, put a message with role system first",
                );
            }
            check_messages(&messages, history)?;
            Ok(messages)
        }
    }
}

fn text_message(role: Role, text: String) -> Message {
    Message {
        role,
        content: Some(Content::Text(text)),
        tool_calls: None,
        tool_call_id: None,
        name: None,
    }
}

/// Checks new messages; `history` (a stored conversation) supplies earlier tool calls.
fn check_messages(messages: &[Message], history: &[Message]) -> Result<(), ToolError> {
    if messages.is_empty() {
        return Err(ToolError::Invalid("`messages` is empty".to_owned()));
    }
    let mut call_ids: HashSet<&str> = history
        .iter()
        .flat_map(|m| m.tool_calls.iter().flatten())
        .map(|call| call.id.as_str())
        .collect();
    for (i, message) in messages.iter().enumerate() {
        let at = |field: &str, problem: &str| {
            Err(ToolError::Invalid(format!(
                "`messages[{i}].{field}` {problem}"
            )))
        };
        let has_content = message.content.as_ref().is_some_and(|c| !c.is_empty());
        let has_calls = message.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
        if message.tool_calls.is_some() && message.role != Role::Assistant {
            return at("tool_calls", "is only allowed on assistant messages");
        }
        if message.tool_call_id.is_some() && message.role != Role::Tool {
            return at("tool_call_id", "is only allowed on tool messages");
        }
        match message.role {
            Role::System | Role::User if !has_content => {
                return at("content", "is required and must not be empty");
            }
            Role::Assistant if !has_content && !has_calls => {
                return at(
                    "content",
                    "is required on an assistant message without tool_calls",
                );
            }
            Role::Tool => {
                let Some(id) = message.tool_call_id.as_deref() else {
                    return at(
                        "tool_call_id",
                        "is required on a tool message: copy the id of the tool call it answers",
                    );
                };
                if !call_ids.contains(id) {
                    return at(
                        "tool_call_id",
                        &format!(
                            "`{id}` matches no tool call of an earlier assistant message; include the assistant_message that made the call before the tool results"
                        ),
                    );
                }
                if message.content.is_none() {
                    return at(
                        "content",
                        "is required on a tool message: the tool's result as text",
                    );
                }
            }
            _ => {}
        }
        for call in message.tool_calls.iter().flatten() {
            call_ids.insert(call.id.as_str());
        }
    }
    Ok(())
}

fn check_options(options: &ChatOptions) -> Result<(), ToolError> {
    let invalid = |m: String| Err(ToolError::Invalid(m));
    let in_range = |name: &str, value: Option<f64>, low: f64, high: f64| -> Result<(), ToolError> {
        match value {
            Some(v) if !(low..=high).contains(&v) => invalid(format!(
                "`{name}` must be between {low} and {high}, got {v}"
            )),
            _ => Ok(()),
        }
    };
    in_range("temperature", options.temperature, 0.0, 2.0)?;
    in_range("top_p", options.top_p, 0.0, 1.0)?;
    in_range("frequency_penalty", options.frequency_penalty, -2.0, 2.0)?;
    in_range("presence_penalty", options.presence_penalty, -2.0, 2.0)?;
    if options.max_tokens == Some(0) {
        return invalid("`max_tokens` must be at least 1".to_owned());
    }
    if let Some(Stop::Many(stops)) = &options.stop
        && stops.len() > 4
    {
        return invalid(format!(
            "`stop` takes at most 4 sequences, got {}",
            stops.len()
        ));
    }
    if let Some(effort) = &options.reasoning_effort
        && effort.trim().is_empty()
    {
        return invalid("`reasoning_effort` is empty".to_owned());
    }
    let tools = options.tools.as_deref().unwrap_or_default();
    let mut names = HashSet::new();
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return invalid(format!(
                "`tools[{i}].type` must be \"function\", got \"{}\"",
                tool.kind
            ));
        }
        let name = &tool.function.name;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return invalid(format!(
                "`tools[{i}].function.name` `{name}` must be 1 to 64 letters, digits, _ or -"
            ));
        }
        if !names.insert(name.as_str()) {
            return invalid(format!(
                "`tools[{i}].function.name` `{name}` is defined twice"
            ));
        }
    }
    match &options.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) if tools.is_empty() => {
            invalid("`tool_choice` \"required\" needs `tools`".to_owned())
        }
        Some(ToolChoice::Named(named)) if !names.contains(named.function.name.as_str()) => {
            invalid(format!(
                "`tool_choice.function.name` `{}` is not one of `tools`{}",
                named.function.name,
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", sorted(&names).join(", "))
                }
            ))
        }
        _ => Ok(()),
    }
}

fn sorted<'a>(names: &HashSet<&'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.iter().copied().collect();
    names.sort_unstable();
    names
}

/// The reply as text for the model reading the tool result.
fn render(
    reply: &ChatReply,
    cut_off: Option<CutOff>,
    saved: &Result<ConversationId, String>,
    repeated: usize,
) -> String {
    let mut text = String::new();
    if let Some(cut) = cut_off {
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
    if reply.truncated {
        text.push_str("[the reply was cut to the result size limit (VULTR_MCP_MAX_RESULT_CHARS); ask for a shorter answer or a lower max_tokens]\n\n");
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
    if let Some(cost) = reply.cost_usd {
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
    use super::*;
    use crate::mcp::args::decode;

    proptest::proptest! {
        /// Whatever a client sends, decoding and checking it ends in a value or an
        /// error message, never a panic.
        #[test]
        fn any_arguments_are_accepted_or_refused_without_panicking(arguments in crate::proptest_strategies::json_object()) {
            if let Ok(mut args) = decode::<ChatCompletionArgs>(arguments) {
                let options = args.take_options();
                let _ = check_options(&options);
                let _ = conversation(args.prompt, args.system, args.messages, &[]);
            }
        }
    }
}
