//! Chat completion types: the OpenAI-style request we send and the reply we read back.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// A message of a conversation, in the OpenAI chat format.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
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
    /// Most tokens to generate (see list_models for each model's maximum).
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
    /// One of the model's reasoning_efforts (list_models), or none.
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The reply as a message to append to `messages` for the next round.
    pub assistant_message: Value,
    /// True when content or reasoning was cut to the result size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// What the call cost in USD, from the usage and the catalog's prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Milliseconds from sending the request to the end of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

/// Why a completion body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplyShapeError(String);

impl ChatReply {
    /// Reads a completion body leniently; `requested_model` stands in when it names none.
    pub fn from_response(body: &Value, requested_model: &str) -> Result<Self, ReplyShapeError> {
        let choice = body
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .ok_or_else(|| ReplyShapeError("the response has no `choices`".to_owned()))?;
        let message = choice.get("message").unwrap_or(&Value::Null);
        let content = message.get("content").and_then(text_of);
        let reasoning = message
            .get("reasoning")
            .or_else(|| message.get("reasoning_content"))
            .and_then(text_of);
        let raw_calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut tool_calls = Vec::with_capacity(raw_calls.len());
        let mut echoed_calls = Vec::with_capacity(raw_calls.len());
        for (index, call) in raw_calls.iter().enumerate() {
            let function = call.get("function").unwrap_or(&Value::Null);
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("call_{index}"), str::to_owned);
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let raw = match function.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                None | Some(Value::Null) => "{}".to_owned(),
                Some(other) => other.to_string(),
            };
            let parsed = serde_json::from_str::<Value>(&raw).ok();
            echoed_calls.push(json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": raw },
            }));
            tool_calls.push(RequestedToolCall {
                id,
                name,
                arguments_raw: parsed.is_none().then(|| raw.clone()),
                arguments: parsed.unwrap_or(Value::Null),
            });
        }
        let mut assistant_message = json!({ "role": "assistant", "content": content });
        if !echoed_calls.is_empty() {
            assistant_message["tool_calls"] = Value::Array(echoed_calls);
        }
        Ok(Self {
            model: body
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or(requested_model)
                .to_owned(),
            content,
            reasoning,
            tool_calls,
            finish_reason: choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            usage: body.get("usage").and_then(read_usage),
            assistant_message,
            truncated: false,
            cost_usd: None,
            latency_ms: None,
        })
    }
}

impl ChatReply {
    /// Cuts content and reasoning to `max_chars` each (and the content of
    /// `assistant_message` with them); returns whether anything was cut.
    pub fn truncate(&mut self, max_chars: usize) -> bool {
        let mut cut = false;
        for text in [&mut self.content, &mut self.reasoning]
            .into_iter()
            .flatten()
        {
            if text.chars().count() > max_chars {
                *text = text.chars().take(max_chars).collect();
                cut = true;
            }
        }
        if cut {
            self.assistant_message["content"] = json!(self.content);
            self.truncated = true;
        }
        cut
    }
}

fn read_usage(value: &Value) -> Option<TokenUsage> {
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

    #[test]
    fn reads_a_plain_reply() {
        let body = json!({"id":"x","model":"glm-5.2","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],
                          "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}});
        let reply = ChatReply::from_response(&body, "asked").unwrap();
        assert_eq!(reply.model, "glm-5.2");
        assert_eq!(reply.content.as_deref(), Some("Hi"));
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(reply.usage.unwrap().total_tokens, Some(4));
        assert_eq!(
            reply.assistant_message,
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
        assert_eq!(
            reply.assistant_message["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(reply.assistant_message["content"], Value::Null);
    }

    #[test]
    fn truncation_cuts_content_and_the_echoed_message() {
        let body = json!({"choices":[{"message":{"content":"abcdef","reasoning":"xy"},"finish_reason":"length"}]});
        let mut reply = ChatReply::from_response(&body, "m").unwrap();
        assert!(reply.truncate(3));
        assert_eq!(reply.content.as_deref(), Some("abc"));
        assert_eq!(reply.reasoning.as_deref(), Some("xy"));
        assert_eq!(reply.assistant_message["content"], "abc");
        assert!(reply.truncated);
        assert!(!reply.truncate(3));
    }

    proptest::proptest! {
        #[test]
        fn any_completion_body_is_read_or_refused_without_panicking(body in crate::proptest_strategies::json_value()) {
            if let Ok(mut reply) = ChatReply::from_response(&body, "m") {
                reply.truncate(5);
            }
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
}
