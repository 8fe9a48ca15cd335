//! Streamed chat completions: server-sent events decoded, deltas assembled into the same
//! reply a non-streamed call returns, with deadlines for the first chunk, for a stall
//! between chunks, and for the whole stream.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::error::{Api, VultrError, error_message, human_duration, snippet};

/// The three deadlines of a stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamDeadlines {
    /// Longest wait for the first chunk.
    pub first_chunk: Duration,
    /// Longest silence between two chunks once the stream has started.
    pub stall: Duration,
    /// Longest time for the whole stream.
    pub total: Duration,
}

impl StreamDeadlines {
    /// The error for a stream that produced nothing in time, naming whichever limit ran out.
    pub fn no_first_chunk(&self) -> VultrError {
        if self.total < self.first_chunk {
            VultrError::NoFirstChunk {
                after: self.total,
                setting: "VULTR_MCP_CHAT_TIMEOUT",
            }
        } else {
            VultrError::NoFirstChunk {
                after: self.first_chunk,
                setting: "VULTR_MCP_FIRST_TOKEN_TIMEOUT",
            }
        }
    }
}

/// Why a stream that had already produced output was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOff {
    /// No chunk arrived within the stall deadline.
    Stalled(Duration),
    /// The whole-stream deadline passed.
    Deadline(Duration),
}

impl CutOff {
    /// The `finish_reason` given to a reply cut short this way.
    pub fn finish_reason(self) -> &'static str {
        match self {
            CutOff::Stalled(_) => "cut_off_stalled",
            CutOff::Deadline(_) => "cut_off_deadline",
        }
    }

    /// A sentence saying what happened and which setting governs it.
    pub fn explanation(self) -> String {
        match self {
            CutOff::Stalled(d) => format!(
                "Vultr sent nothing for {}, so the answer is incomplete (VULTR_MCP_STALL_TIMEOUT).",
                human_duration(d)
            ),
            CutOff::Deadline(d) => format!(
                "the answer took longer than {}, so it is incomplete (VULTR_MCP_CHAT_TIMEOUT).",
                human_duration(d)
            ),
        }
    }
}

/// A tool call being assembled from its deltas.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Collects the chunks of a streamed completion.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    model: Option<String>,
    content: String,
    reasoning: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    deltas: u64,
}

impl StreamAssembler {
    /// Adds one chunk: `{model, choices:[{delta:{content, reasoning, tool_calls}, finish_reason}], usage}`.
    pub fn push(&mut self, chunk: &Value) {
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            self.model.get_or_insert_with(|| model.to_owned());
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
            return;
        };
        let mut grew = false;
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.content.push_str(text);
            grew |= !text.is_empty();
        }
        let reasoning = delta
            .get("reasoning")
            .or_else(|| delta.get("reasoning_content"))
            .and_then(Value::as_str);
        if let Some(text) = reasoning {
            self.reasoning.push_str(text);
            grew |= !text.is_empty();
        }
        for (position, call) in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = call
                .get("index")
                .and_then(Value::as_u64)
                .map_or(position, |i| i as usize);
            if index > 1024 {
                continue;
            }
            if self.calls.len() <= index {
                self.calls.resize_with(index + 1, PartialCall::default);
            }
            let partial = &mut self.calls[index];
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                partial.id = id.to_owned();
            }
            let function = call.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                partial.name.push_str(name);
            }
            match function.and_then(|f| f.get("arguments")) {
                Some(Value::String(piece)) => partial.arguments.push_str(piece),
                Some(Value::Null) | None => {}
                Some(other) => partial.arguments.push_str(&other.to_string()),
            }
            grew = true;
        }
        if grew {
            self.deltas += 1;
        }
    }

    /// How many chunks carried output so far (about one token each).
    pub fn deltas(&self) -> u64 {
        self.deltas
    }

    /// Whether any content, reasoning or tool call arrived.
    pub fn has_output(&self) -> bool {
        self.deltas > 0
    }

    /// The reply text so far.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Whether a `finish_reason` arrived.
    pub fn finished(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// The assembled completion in the non-streamed response shape.
    pub fn into_response(self, cut_off: Option<CutOff>) -> Value {
        let mut message = Map::new();
        message.insert("role".to_owned(), json!("assistant"));
        message.insert(
            "content".to_owned(),
            if self.content.is_empty() && !self.calls.is_empty() {
                Value::Null
            } else {
                json!(self.content)
            },
        );
        if !self.reasoning.is_empty() {
            message.insert("reasoning".to_owned(), json!(self.reasoning));
        }
        if !self.calls.is_empty() {
            let calls: Vec<Value> = self
                .calls
                .into_iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments },
                    })
                })
                .collect();
            message.insert("tool_calls".to_owned(), Value::Array(calls));
        }
        let finish_reason = match cut_off {
            Some(cut) => Some(cut.finish_reason().to_owned()),
            None => self.finish_reason,
        };
        let mut response = json!({
            "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
        });
        if let Some(model) = self.model {
            response["model"] = json!(model);
        }
        if let Some(usage) = self.usage {
            response["usage"] = usage;
        }
        response
    }
}

/// How a stream ended.
#[derive(Debug)]
pub struct StreamEnd {
    /// The completion in the non-streamed response shape.
    pub response: Value,
    /// Set when the stream was cut short after some output.
    pub cut_off: Option<CutOff>,
}

/// Reads a stream of SSE events to its end, awaiting `on_chunk` after every chunk that
/// carried output. Stalls and the total deadline after some output end the stream
/// early (the partial reply is kept); without output they are errors.
pub async fn read_stream<S, E, F, Fut>(
    events: S,
    deadlines: StreamDeadlines,
    mut on_chunk: F,
) -> Result<StreamEnd, VultrError>
where
    S: Stream<Item = Result<sse_stream::Sse, E>>,
    E: std::fmt::Display,
    F: FnMut(&StreamAssembler) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let total_deadline = started + deadlines.total;
    let mut assembler = StreamAssembler::default();
    let mut events = std::pin::pin!(events);
    loop {
        let wait = if assembler.has_output() {
            deadlines.stall
        } else {
            deadlines.first_chunk
        };
        let next_deadline = (Instant::now() + wait).min(total_deadline);
        let event = match tokio::time::timeout_at(next_deadline, events.next()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(error))) => {
                return Err(interrupted(format!("the stream broke off: {error}")));
            }
            Ok(None) if assembler.finished() => break,
            Ok(None) => {
                return Err(interrupted(
                    "the stream ended before the answer was complete (no finish_reason, no [DONE])"
                        .to_owned(),
                ));
            }
            Err(_elapsed) => {
                let cut = if Instant::now() >= total_deadline {
                    CutOff::Deadline(deadlines.total)
                } else {
                    CutOff::Stalled(wait)
                };
                if !assembler.has_output() {
                    return Err(deadlines.no_first_chunk());
                }
                return Ok(StreamEnd {
                    response: assembler.into_response(Some(cut)),
                    cut_off: Some(cut),
                });
            }
        };
        let Some(data) = event.data else { continue };
        let data = data.trim();
        if data.is_empty() {
            continue;
        }
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| VultrError::Decode {
            api: Api::Inference,
            status: 200,
            detail: format!("a stream chunk is not JSON: {e}"),
            snippet: snippet(data, 200),
        })?;
        if chunk.get("error").is_some() {
            return Err(VultrError::Status {
                api: Api::Inference,
                status: chunk
                    .pointer("/error/code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(500),
                message: error_message(data),
                retry_after: None,
            });
        }
        let before = assembler.deltas();
        assembler.push(&chunk);
        if assembler.deltas() > before {
            on_chunk(&assembler).await;
        }
    }
    Ok(StreamEnd {
        response: assembler.into_response(None),
        cut_off: None,
    })
}

fn interrupted(detail: String) -> VultrError {
    VultrError::Interrupted {
        api: Api::Inference,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vultr::chat::ChatReply;

    fn event(data: &str) -> Result<sse_stream::Sse, std::convert::Infallible> {
        Ok(sse_stream::Sse::default().data(data))
    }

    fn deadlines() -> StreamDeadlines {
        StreamDeadlines {
            first_chunk: Duration::from_secs(5),
            stall: Duration::from_secs(5),
            total: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn content_and_tool_call_deltas_assemble_into_one_reply() {
        let events = futures_util::stream::iter(vec![
            event(
                r#"{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            ),
            event(r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#),
            event(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}}]}"#,
            ),
            event(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}}]}"#,
            ),
            event(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#),
            event(
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
            ),
            event("[DONE]"),
        ]);
        let mut seen = Vec::new();
        let end = read_stream(events, deadlines(), |a| {
            seen.push(a.content().to_owned());
            std::future::ready(())
        })
        .await
        .unwrap();
        assert_eq!(seen, ["Hel", "Hello", "Hello", "Hello"]);
        let reply = ChatReply::from_response(&end.response, "m").unwrap();
        assert_eq!(reply.content.as_deref(), Some("Hello"));
        assert_eq!(reply.tool_calls[0].arguments, json!({"city": "Paris"}));
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(reply.usage.unwrap().total_tokens, Some(8));
    }

    #[tokio::test]
    async fn a_stream_that_ends_early_is_an_error() {
        let events = futures_util::stream::iter(vec![event(
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        )]);
        let error = read_stream(events, deadlines(), |_| std::future::ready(()))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("ended before"), "{error}");
    }

    #[tokio::test]
    async fn a_malformed_chunk_is_an_error() {
        let events = futures_util::stream::iter(vec![event("{not json")]);
        let error = read_stream(events, deadlines(), |_| std::future::ready(()))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("not JSON"), "{error}");
    }

    #[tokio::test]
    async fn an_error_chunk_is_reported_with_its_message() {
        let events = futures_util::stream::iter(vec![event(
            r#"{"error":{"message":"model overloaded","code":503}}"#,
        )]);
        let error = read_stream(events, deadlines(), |_| std::future::ready(()))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(503));
        assert!(error.to_string().contains("model overloaded"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_after_some_text_keeps_the_partial_reply() {
        let events = futures_util::stream::iter(vec![event(
            r#"{"choices":[{"index":0,"delta":{"content":"partial"}}]}"#,
        )])
        .chain(futures_util::stream::pending());
        let end = read_stream(events, deadlines(), |_| std::future::ready(()))
            .await
            .unwrap();
        assert_eq!(end.cut_off, Some(CutOff::Stalled(Duration::from_secs(5))));
        let reply = ChatReply::from_response(&end.response, "m").unwrap();
        assert_eq!(reply.content.as_deref(), Some("partial"));
        assert_eq!(reply.finish_reason.as_deref(), Some("cut_off_stalled"));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_from_the_start_is_a_timeout() {
        let events =
            futures_util::stream::pending::<Result<sse_stream::Sse, std::convert::Infallible>>();
        let error = read_stream(events, deadlines(), |_| std::future::ready(()))
            .await
            .unwrap_err();
        assert!(matches!(error, VultrError::NoFirstChunk { .. }), "{error}");
    }
}
