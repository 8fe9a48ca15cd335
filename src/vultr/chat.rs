//! Chat completion types: the OpenAI-style request we send and the reply we read back.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::secret::KnownKeys;

/// A message of a conversation, in the OpenAI chat format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// system, user, assistant or tool.
    pub role: Role,
    /// Text, or an array of content parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Tool calls an assistant message made (as returned in assistant_message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For role tool: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message of `role` with `text` as its content.
    pub fn text(role: Role, text: String) -> Message {
        Message {
            role,
            content: Some(Content::Text(text)),
            tool_calls: None,
            tool_call_id: None,
            name: None,
        }
    }

    /// Replaces every known key in every text of the message by its redacted form, in
    /// place. The fields are named one by one, so a field added to [`Message`] does not
    /// compile until it is redacted here too.
    pub fn redact(&mut self, keys: &KnownKeys) {
        let Message {
            role: _,
            content,
            tool_calls,
            tool_call_id,
            name,
        } = self;
        match content {
            Some(Content::Text(text)) => keys.redact_in_place(text),
            Some(Content::Parts(parts)) => {
                for part in parts {
                    let mut value = Value::Object(std::mem::take(part));
                    keys.redact_value(&mut value);
                    if let Value::Object(map) = value {
                        *part = map;
                    }
                }
            }
            None => {}
        }
        for call in tool_calls.iter_mut().flatten() {
            let ToolCall { id, kind, function } = call;
            let FunctionCall { name, arguments } = function;
            for text in [id, kind, name, &mut arguments.0] {
                keys.redact_in_place(text);
            }
        }
        for text in [tool_call_id, name].into_iter().flatten() {
            keys.redact_in_place(text);
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// Message content: plain text or OpenAI content parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts such as `{"type":"text","text":..}` or `{"type":"image_url",..}`.
    Parts(Vec<Map<String, Value>>),
}

impl Content {
    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        match self {
            Content::Text(t) => t.trim().is_empty(),
            Content::Parts(p) => p.is_empty(),
        }
    }
}

/// A tool call made by an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    /// The call's id; tool results quote it as tool_call_id.
    pub id: String,
    /// Always "function".
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function called.
    pub function: FunctionCall,
}

/// The function of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON string (an object is accepted too).
    pub arguments: ArgumentsText,
}

/// Tool-call arguments, sent upstream as a JSON string whether given as a string or an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentsText(pub String);

impl Serialize for ArgumentsText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ArgumentsText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(s) => Self(s),
            Value::Null => Self("{}".to_owned()),
            other => Self(other.to_string()),
        })
    }
}

impl JsonSchema for ArgumentsText {
    fn schema_name() -> Cow<'static, str> {
        "ArgumentsText".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "object"] })
    }
}

fn function_kind() -> String {
    "function".to_owned()
}

/// A tool the model may call, in the OpenAI function format.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ToolDefinition {
    /// Always "function".
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function.
    pub function: FunctionDefinition,
}

/// A function the model may call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FunctionDefinition {
    /// Name: letters, digits, _ and -, at most 64.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// Ask for strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    /// auto, required or none.
    Mode(ToolChoiceMode),
    /// `{"type":"function","function":{"name":..}}`: call this function.
    Named(NamedToolChoice),
}

/// The plain tool_choice values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    /// The model decides.
    Auto,
    /// The model must call a tool.
    Required,
    /// The model must not call a tool.
    None,
}

/// A tool_choice naming one function.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NamedToolChoice {
    /// Always "function".
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function to call.
    pub function: FunctionName,
}

/// A function named by tool_choice.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FunctionName {
    /// Its name, one of `tools`.
    pub name: String,
}

/// Stop sequences: one string or several.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

/// Sampling and output options of a chat completion; each is sent upstream only when given.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatOptions {
    /// Most tokens to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequence(s), at most 4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Seed for repeatable sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// -2 to 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// -2 to 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// How hard a reasoning model thinks: one of the efforts it offers, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// e.g. {"type":"json_object"}, where the model supports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Map<String, Value>>,
    /// Functions the model may call (OpenAI format).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDefinition>>,
    /// auto, required, none, or {"type":"function","function":{"name":..}}.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// The body of `POST /chat/completions`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest {
    /// Model id.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Options, flattened into the body.
    #[serde(flatten)]
    pub options: ChatOptions,
}

/// Token counts of one completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenUsage {
    /// Tokens in the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Tokens generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Both together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

/// A tool call the model asked for, with its arguments parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestedToolCall {
    /// Quote it as `tool_call_id` in the tool result message.
    pub id: String,
    /// The function to run.
    pub name: String,
    /// The arguments as parsed JSON (null when they are not valid JSON).
    pub arguments: Value,
    /// The arguments exactly as the model wrote them, kept only when they are not valid JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_raw: Option<String>,
}

/// The model's reply, normalised from the OpenAI/OpenRouter response shape.
#[derive(Debug, Clone, Serialize)]
pub struct ChatReply {
    /// The model that answered.
    pub model: String,
    /// The reply text.
    pub content: Option<String>,
    /// The model's reasoning, when it returned it separately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Tools the model wants called.
    pub tool_calls: Vec<RequestedToolCall>,
    /// Why generation stopped: stop, length, tool_calls, ...
    pub finish_reason: Option<String>,
    /// Token counts.
    pub usage: Option<TokenUsage>,
    /// The reply as a message to append to `messages` for the next round; written as the
    /// API writes it, with `content` present (null) even when there is none.
    #[serde(serialize_with = "with_content")]
    pub assistant_message: Message,
}

/// Why a completion body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplyShapeError(String);

/// A tool call as read from a reply: its id (when it has one), function name and
/// arguments exactly as written.
pub(super) struct RawToolCall {
    /// The call's id; empty when the API gave none.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, as the model wrote them.
    pub arguments: String,
}

impl ChatReply {
    /// Reads a completion body leniently; `requested_model` stands in when it names none.
    pub fn from_response(body: &Value, requested_model: &str) -> Result<Self, ReplyShapeError> {
        let choice = body
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .ok_or_else(|| ReplyShapeError("the response has no `choices`".to_owned()))?;
        let message = choice.get("message").unwrap_or(&Value::Null);
        let reasoning = message
            .get("reasoning")
            .or_else(|| message.get("reasoning_content"))
            .and_then(text_of);
        let calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|call| {
                let function = call.get("function").unwrap_or(&Value::Null);
                RawToolCall {
                    id: call
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    name: function
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: match function.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        None | Some(Value::Null) => "{}".to_owned(),
                        Some(other) => other.to_string(),
                    },
                }
            });
        Ok(Self::assemble(
            body.get("model").and_then(Value::as_str),
            requested_model,
            message.get("content").and_then(text_of),
            reasoning,
            calls,
            choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            body.get("usage").and_then(read_usage),
        ))
    }

    /// The reply from its parts, read from one body or assembled from a stream: calls
    /// without an id get `call_<index>`, arguments that are not JSON are kept as written,
    /// and `assistant_message` echoes the text and the calls.
    pub(super) fn assemble(
        model: Option<&str>,
        requested_model: &str,
        content: Option<String>,
        reasoning: Option<String>,
        calls: impl ExactSizeIterator<Item = RawToolCall>,
        finish_reason: Option<String>,
        usage: Option<TokenUsage>,
    ) -> Self {
        let mut tool_calls = Vec::with_capacity(calls.len());
        let mut echoed_calls = Vec::with_capacity(calls.len());
        for (index, call) in calls.enumerate() {
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            let parsed = serde_json::from_str::<Value>(&call.arguments).ok();
            tool_calls.push(RequestedToolCall {
                id: id.clone(),
                name: call.name.clone(),
                arguments_raw: parsed.is_none().then(|| call.arguments.clone()),
                arguments: parsed.unwrap_or(Value::Null),
            });
            echoed_calls.push(ToolCall {
                id,
                kind: function_kind(),
                function: FunctionCall {
                    name: call.name,
                    arguments: ArgumentsText(call.arguments),
                },
            });
        }
        let assistant_message = Message {
            role: Role::Assistant,
            content: content.clone().map(Content::Text),
            tool_calls: (!echoed_calls.is_empty()).then_some(echoed_calls),
            tool_call_id: None,
            name: None,
        };
        Self {
            model: model
                .filter(|m| !m.is_empty())
                .unwrap_or(requested_model)
                .to_owned(),
            content,
            reasoning,
            tool_calls,
            finish_reason,
            usage,
            assistant_message,
        }
    }
}

/// Writes a message with its `content` always present, as the API writes replies.
fn with_content<S: Serializer>(message: &Message, serializer: S) -> Result<S::Ok, S::Error> {
    /// [`Message`] with `content` written even when it is `None`.
    #[derive(Serialize)]
    struct Echo<'a> {
        role: Role,
        content: &'a Option<Content>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_calls: &'a Option<Vec<ToolCall>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_call_id: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: &'a Option<String>,
    }
    Echo {
        role: message.role,
        content: &message.content,
        tool_calls: &message.tool_calls,
        tool_call_id: &message.tool_call_id,
        name: &message.name,
    }
    .serialize(serializer)
}

/// Token counts from a `usage` object; `None` when it has none.
pub(super) fn read_usage(value: &Value) -> Option<TokenUsage> {
    let count = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
    };
    let usage = TokenUsage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
        total_tokens: count("total_tokens"),
    };
    (usage != TokenUsage::default()).then_some(usage)
}

/// Text of a content value: a string, or the text parts of an array joined.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let text: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!text.is_empty()).then(|| text.join(""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_plain_reply() {
        let body = json!({"id":"x","model":"glm-5.2","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],
                          "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}});
        let reply = ChatReply::from_response(&body, "asked").unwrap();
        assert_eq!(reply.model, "glm-5.2");
        assert_eq!(reply.content.as_deref(), Some("Hi"));
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(reply.usage.as_ref().unwrap().total_tokens, Some(4));
        assert_eq!(
            written(&reply)["assistant_message"],
            json!({"role":"assistant","content":"Hi"})
        );
    }

    #[test]
    fn reads_tool_calls_and_keeps_unparsable_arguments() {
        let body = json!({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"type":"function","function":{"name":"broken","arguments":"{not json"}}]},"finish_reason":"tool_calls"}]});
        let reply = ChatReply::from_response(&body, "kimi").unwrap();
        assert_eq!(reply.model, "kimi");
        assert_eq!(reply.tool_calls[0].arguments, json!({"city":"Paris"}));
        assert_eq!(reply.tool_calls[0].arguments_raw, None);
        assert_eq!(reply.tool_calls[1].id, "call_1");
        assert_eq!(reply.tool_calls[1].arguments, Value::Null);
        assert_eq!(
            reply.tool_calls[1].arguments_raw.as_deref(),
            Some("{not json")
        );
        let echoed = &written(&reply)["assistant_message"];
        assert_eq!(
            echoed["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(echoed["content"], Value::Null);
        assert!(
            echoed.as_object().unwrap().contains_key("content"),
            "{echoed}"
        );
    }

    /// The reply as JSON, as a result shows it.
    fn written(reply: &ChatReply) -> Value {
        serde_json::to_value(reply).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn any_completion_body_is_read_or_refused_without_panicking(body in crate::proptest_strategies::json_value()) {
            let _ = ChatReply::from_response(&body, "m");
            let _ = ChatReply::from_response(&json!({ "choices": [body] }), "m");
        }
    }

    #[test]
    fn a_body_without_choices_is_an_error() {
        assert!(ChatReply::from_response(&json!({"object":"error"}), "m").is_err());
    }

    #[test]
    fn arguments_given_as_an_object_are_sent_as_a_string() {
        let call: ToolCall =
            serde_json::from_value(json!({"id":"c","function":{"name":"f","arguments":{"a":1}}}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(&call).unwrap()["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(call.kind, "function");
    }

    #[test]
    fn tool_choice_reads_both_forms() {
        let mode: ToolChoice = serde_json::from_value(json!("required")).unwrap();
        assert!(matches!(mode, ToolChoice::Mode(ToolChoiceMode::Required)));
        let named: ToolChoice =
            serde_json::from_value(json!({"type":"function","function":{"name":"f"}})).unwrap();
        assert!(matches!(named, ToolChoice::Named(n) if n.function.name == "f"));
        assert!(serde_json::from_value::<ToolChoice>(json!("sometimes")).is_err());
    }

    #[test]
    fn every_text_of_a_message_is_redacted() {
        const KEY: &str = "INFKEY-TWO-AAAA-BBBB-CCCC-2222";
        let keys = KnownKeys::default();
        keys.remember(&crate::secret::ApiKey::new(KEY).unwrap());
        let with_key = |text: &str| format!("{text} {KEY}");
        for message in [
            json!({"role": "user", "content": with_key("text"), "name": with_key("n")}),
            json!({"role": "user", "content": [{"type": "text", "text": with_key("part")}]}),
            json!({"role": "assistant", "tool_calls": [{"id": with_key("id"), "type": "function",
                "function": {"name": with_key("f"), "arguments": with_key("args")}}]}),
            json!({"role": "tool", "tool_call_id": with_key("call"), "content": "ok"}),
        ] {
            let mut message: Message = serde_json::from_value(message).unwrap();
            message.redact(&keys);
            let stored = serde_json::to_string(&message).unwrap();
            assert!(!stored.contains(KEY), "{stored}");
            assert!(stored.contains("[redacted key …2222]"), "{stored}");
        }
    }
}
