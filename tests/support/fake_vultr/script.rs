//! Scripted model turns for the delegation tests: the fake model's reply to each chat
//! request is decided by a test's function of the request's messages, so a test can ask
//! for tool A, then for B with A's result, then answer.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use super::{CHAT_PATH, FakeVultr, PRIORITY_SCRIPTED};

/// `usage` of every scripted turn.
pub const SCRIPTED_PROMPT_TOKENS: u64 = 1_000;
/// `completion_tokens` of every scripted turn.
pub const SCRIPTED_COMPLETION_TOKENS: u64 = 100;

/// An assistant message asking for these `(id, name, arguments text)` tool calls.
pub fn tool_calls(calls: &[(&str, &str, &str)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    json!({"role": "assistant", "content": null, "tool_calls": calls})
}

/// An assistant message answering `text`.
pub fn answer(text: &str) -> Value {
    json!({"role": "assistant", "content": text})
}

/// The content of the tool message answering call `id` in `messages`, if any.
pub fn tool_result<'m>(messages: &'m [Value], id: &str) -> Option<&'m str> {
    messages
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == id)
        .and_then(|m| m["content"].as_str())
}

struct Scripted<F>(F);

impl<F: Fn(&[Value]) -> Value + Send + Sync + 'static> Respond for Scripted<F> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let message = (self.0)(&messages);
        let finish = if message.get("tool_calls").is_some() {
            "tool_calls"
        } else {
            "stop"
        };
        let usage = json!({"prompt_tokens": SCRIPTED_PROMPT_TOKENS,
            "completion_tokens": SCRIPTED_COMPLETION_TOKENS,
            "total_tokens": SCRIPTED_PROMPT_TOKENS + SCRIPTED_COMPLETION_TOKENS});
        let model = body["model"].clone();
        if body["stream"] == true {
            let mut delta = message.clone();
            if let Some(calls) = delta.get_mut("tool_calls").and_then(Value::as_array_mut) {
                for (index, call) in calls.iter_mut().enumerate() {
                    call["index"] = json!(index);
                }
            }
            let chunks = [
                json!({"model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": null}]}),
                json!({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage}),
            ];
            let mut text: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
            text.push_str("data: [DONE]\n\n");
            return ResponseTemplate::new(200).set_body_raw(text, "text/event-stream");
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-scripted", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }))
    }
}

impl FakeVultr {
    /// From now on every chat request is answered by `reply(messages)` (an assistant
    /// message: see [`tool_calls`] and [`answer`]), streamed when asked, with a fixed usage.
    pub async fn script(&self, reply: impl Fn(&[Value]) -> Value + Send + Sync + 'static) {
        Mock::given(method("POST"))
            .and(path(CHAT_PATH))
            .respond_with(Scripted(reply))
            .with_priority(PRIORITY_SCRIPTED)
            .named("scripted chat turns")
            .mount(self.mock_server())
            .await;
    }
}
