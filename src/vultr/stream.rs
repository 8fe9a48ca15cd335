//! Streamed chat completions: server-sent events decoded, deltas assembled into the same
//! reply a non-streamed call returns, with deadlines for the first chunk, for a stall
//! between chunks, and for the whole stream.

use crate::setting;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::chat::{ChatReply, RawToolCall, TokenUsage, read_usage};
use super::error::{Api, VultrError, error_message, human_duration, snippet};

/// The three deadlines of a stream. Only chunks that carry output (content, reasoning or
/// a tool call) count as progress: chunks with empty deltas, role-only or usage-only
/// chunks and keep-alive comments start no timer again, so a stream of them ends at
/// whichever of the first-chunk and total deadlines comes first.
#[derive(Debug, Clone, Copy)]
pub struct StreamDeadlines {
    /// Longest wait for the first chunk with output, from the moment the request is sent.
    pub first_chunk: Duration,
    /// Longest wait for more output once some has arrived.
    pub stall: Duration,
    /// Longest time for the whole stream, from the moment the request is sent.
    pub total: Duration,
}

/// Which of the three stream deadlines is the next to run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// `VULTR_MCP_FIRST_TOKEN_TIMEOUT`: no output yet.
    FirstChunk,
    /// `VULTR_MCP_STALL_TIMEOUT`: no new output since the last.
    Stall,
    /// `VULTR_MCP_CHAT_TIMEOUT`: the whole stream.
    Total,
}

impl StreamDeadlines {
    /// The error for a stream that produced no output before its first-chunk or total
    /// deadline, naming whichever of the two ran out first, with its value.
    pub fn no_first_chunk(&self) -> VultrError {
        if self.total < self.first_chunk {
            self.no_output(Limit::Total)
        } else {
            self.no_output(Limit::FirstChunk)
        }
    }

    /// The error for a stream without output, ended by `limit`.
    fn no_output(&self, limit: Limit) -> VultrError {
        match limit {
            Limit::Total => VultrError::NoFirstChunk {
                after: self.total,
                setting: setting::CHAT_TIMEOUT,
            },
            Limit::FirstChunk | Limit::Stall => VultrError::NoFirstChunk {
                after: self.first_chunk,
                setting: setting::FIRST_TOKEN_TIMEOUT,
            },
        }
    }

    /// The next deadline of a stream sent at `started` whose last output came at
    /// `last_output`, and the limit it belongs to (the total one when two fall together).
    fn next(&self, started: Instant, last_output: Option<Instant>) -> (Instant, Limit) {
        let total = started + self.total;
        let (at, limit) = match last_output {
            None => (started + self.first_chunk, Limit::FirstChunk),
            Some(last) => (last + self.stall, Limit::Stall),
        };
        if total <= at {
            (total, Limit::Total)
        } else {
            (at, limit)
        }
    }

    /// How a stream that had some output is cut off by `limit`.
    fn cut_off(&self, limit: Limit) -> CutOff {
        match limit {
            Limit::Total => CutOff::Deadline(self.total),
            Limit::FirstChunk | Limit::Stall => CutOff::Stalled(self.stall),
        }
    }
}

/// Why a stream that had already produced output was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOff {
    /// No new output arrived within the stall deadline.
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
                "Vultr sent no more of the answer for {}, so it is incomplete ({}).",
                human_duration(d),
                setting::STALL_TIMEOUT
            ),
            CutOff::Deadline(d) => format!(
                "the answer took longer than {}, so it is incomplete ({}).",
                human_duration(d),
                setting::CHAT_TIMEOUT
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
    usage: Option<TokenUsage>,
    deltas: u64,
}

impl StreamAssembler {
    /// Adds one chunk: `{model, choices:[{delta:{content, reasoning, tool_calls}, finish_reason}], usage}`.
    pub fn push(&mut self, chunk: &Value) {
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            self.model.get_or_insert_with(|| model.to_owned());
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = read_usage(usage);
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

    /// The assembled reply, as a non-streamed call returns it; `requested_model` stands
    /// in when the stream named none, and a cut-off gives the `finish_reason`.
    pub fn into_reply(self, requested_model: &str, cut_off: Option<CutOff>) -> ChatReply {
        let content = if self.content.is_empty() && !self.calls.is_empty() {
            None
        } else {
            Some(self.content)
        };
        let finish_reason = match cut_off {
            Some(cut) => Some(cut.finish_reason().to_owned()),
            None => self.finish_reason,
        };
        let calls = self.calls.into_iter().map(|c| RawToolCall {
            id: c.id,
            name: c.name,
            arguments: c.arguments,
        });
        ChatReply::assemble(
            self.model.as_deref(),
            requested_model,
            content,
            (!self.reasoning.is_empty()).then_some(self.reasoning),
            calls,
            finish_reason,
            self.usage,
        )
    }
}

/// How a stream ended.
#[derive(Debug)]
pub struct StreamEnd {
    /// The reply, as a non-streamed call returns it.
    pub reply: ChatReply,
    /// Set when the stream was cut short after some output.
    pub cut_off: Option<CutOff>,
}

/// Reads a stream of SSE events to its end into the reply to a request for
/// `requested_model`, awaiting `on_chunk` after every chunk that carried output; `started`
/// is when the request was sent. Stalls and the total deadline
/// after some output end the stream early (the partial reply is kept); without output
/// they are errors. Either way the limit named is the one that ran out.
pub async fn read_stream<S, E, F, Fut>(
    events: S,
    deadlines: StreamDeadlines,
    started: Instant,
    requested_model: &str,
    mut on_chunk: F,
) -> Result<StreamEnd, VultrError>
where
    S: Stream<Item = Result<sse_stream::Sse, E>>,
    E: std::fmt::Display,
    F: FnMut(&StreamAssembler) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut last_output = None;
    let mut assembler = StreamAssembler::default();
    let mut events = std::pin::pin!(events);
    loop {
        let (deadline, limit) = deadlines.next(started, last_output);
        let event = match tokio::time::timeout_at(deadline, events.next()).await {
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
                if !assembler.has_output() {
                    return Err(deadlines.no_output(limit));
                }
                let cut = deadlines.cut_off(limit);
                return Ok(StreamEnd {
                    reply: assembler.into_reply(requested_model, Some(cut)),
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
            if last_output.is_none() {
                crate::observe::metrics::first_token(requested_model, started.elapsed());
            }
            last_output = Some(Instant::now());
            on_chunk(&assembler).await;
        }
    }
    Ok(StreamEnd {
        reply: assembler.into_reply(requested_model, None),
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
    use serde_json::json;

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
        let end = read_stream(events, deadlines(), Instant::now(), "m", |a| {
            seen.push(a.content().to_owned());
            std::future::ready(())
        })
        .await
        .unwrap();
        assert_eq!(seen, ["Hel", "Hello", "Hello", "Hello"]);
        let reply = end.reply;
        assert_eq!(reply.content.as_deref(), Some("Hello"));
        assert_eq!(reply.tool_calls[0].arguments, json!({"city": "Paris"}));
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(reply.usage.unwrap().total_tokens, Some(8));
    }

    /// The reply assembled from `chunks` (ending with `[DONE]`) as JSON.
    async fn assembled(chunks: &[Value]) -> Value {
        let events = chunks
            .iter()
            .map(|c| event(&c.to_string()))
            .chain([event("[DONE]")]);
        let end = read_stream(
            futures_util::stream::iter(events.collect::<Vec<_>>()),
            deadlines(),
            Instant::now(),
            "asked",
            |_| std::future::ready(()),
        )
        .await
        .unwrap();
        serde_json::to_value(end.reply).unwrap()
    }

    /// The reply read from a non-streamed `body`, as JSON.
    fn read(body: Value) -> Value {
        serde_json::to_value(ChatReply::from_response(&body, "asked").unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_streamed_reply_is_the_reply_of_the_same_completion_sent_whole() {
        let cases = [
            (
                vec![
                    json!({"model": "m", "choices": [{"delta": {"content": "Hi"}}]}),
                    json!({"choices": [{"delta": {"reasoning_content": "think"}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 2.0, "completion_tokens": 1}}),
                ],
                json!({"model": "m", "choices": [{"message": {"content": "Hi", "reasoning": "think"},
                       "finish_reason": "stop"}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}),
            ),
            (
                // No model named, no text: an empty reply.
                vec![
                    json!({"model": "", "choices": [{"delta": {"content": ""}, "finish_reason": "length"}]}),
                ],
                json!({"choices": [{"message": {"content": ""}, "finish_reason": "length"}]}),
            ),
            (
                // Calls without ids, the second before the first, one with broken arguments.
                vec![
                    json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"name": "b", "arguments": "{\"x\""}}]}}]}),
                    json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "a", "arguments": "{}"}}]}}]}),
                    json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]}),
                ],
                json!({"choices": [{"message": {"content": null, "tool_calls": [
                    {"id": "c0", "function": {"name": "a", "arguments": "{}"}},
                    {"function": {"name": "b", "arguments": "{\"x\":1}"}}]}, "finish_reason": "tool_calls"}]}),
            ),
        ];
        for (chunks, body) in cases {
            assert_eq!(assembled(&chunks).await, read(body.clone()), "{body}");
        }
    }

    #[tokio::test]
    async fn a_stream_that_ends_early_is_an_error() {
        let events = futures_util::stream::iter(vec![event(
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        )]);
        let error = read_stream(events, deadlines(), Instant::now(), "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap_err();
        assert!(error.to_string().contains("ended before"), "{error}");
    }

    #[tokio::test]
    async fn a_malformed_chunk_is_an_error() {
        let events = futures_util::stream::iter(vec![event("{not json")]);
        let error = read_stream(events, deadlines(), Instant::now(), "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap_err();
        assert!(error.to_string().contains("not JSON"), "{error}");
    }

    #[tokio::test]
    async fn an_error_chunk_is_reported_with_its_message() {
        let events = futures_util::stream::iter(vec![event(
            r#"{"error":{"message":"model overloaded","code":503}}"#,
        )]);
        let error = read_stream(events, deadlines(), Instant::now(), "m", |_| {
            std::future::ready(())
        })
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
        let end = read_stream(events, deadlines(), Instant::now(), "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap();
        assert_eq!(end.cut_off, Some(CutOff::Stalled(Duration::from_secs(5))));
        let reply = end.reply;
        assert_eq!(reply.content.as_deref(), Some("partial"));
        assert_eq!(reply.finish_reason.as_deref(), Some("cut_off_stalled"));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_from_the_start_is_a_timeout() {
        let events =
            futures_util::stream::pending::<Result<sse_stream::Sse, std::convert::Infallible>>();
        let error = read_stream(events, deadlines(), Instant::now(), "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap_err();
        assert!(matches!(error, VultrError::NoFirstChunk { .. }), "{error}");
    }

    const EMPTY_DELTA: &str = r#"{"choices":[{"index":0,"delta":{"content":""}}]}"#;
    const SOME_TEXT: &str = r#"{"choices":[{"index":0,"delta":{"content":"x"}}]}"#;

    /// `first`, then a chunk with an empty delta every second, forever.
    fn then_empty_deltas(
        first: Vec<&'static str>,
    ) -> impl Stream<Item = Result<sse_stream::Sse, std::convert::Infallible>> {
        let keep_alive = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((event(EMPTY_DELTA), ()))
        });
        futures_util::stream::iter(first.into_iter().map(event)).chain(keep_alive)
    }

    fn assert_no_output_error(error: &VultrError, after: u64, named: &str) {
        match error {
            VultrError::NoFirstChunk { after: a, setting } => {
                assert_eq!((*a, *setting), (Duration::from_secs(after), named));
            }
            other => panic!("expected no first chunk, got {other}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn empty_deltas_do_not_hold_off_the_first_token_deadline() {
        let started = Instant::now();
        let error = read_stream(then_empty_deltas(vec![]), deadlines(), started, "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_no_output_error(&error, 5, crate::setting::FIRST_TOKEN_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn empty_deltas_until_the_chat_timeout_name_the_chat_timeout() {
        let short_total = StreamDeadlines {
            total: Duration::from_secs(3),
            ..deadlines()
        };
        let started = Instant::now();
        let error = read_stream(then_empty_deltas(vec![]), short_total, started, "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_no_output_error(&error, 3, crate::setting::CHAT_TIMEOUT);
        assert!(
            error
                .to_string()
                .contains(&format!("within 3s ({})", crate::setting::CHAT_TIMEOUT)),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_token_deadline_counts_from_the_request_not_from_the_answer_head() {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let error = read_stream(
            futures_util::stream::pending::<Result<sse_stream::Sse, std::convert::Infallible>>(),
            deadlines(),
            started,
            "m",
            |_| std::future::ready(()),
        )
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_no_output_error(&error, 5, crate::setting::FIRST_TOKEN_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn empty_deltas_after_some_text_are_a_stall() {
        let started = Instant::now();
        let end = read_stream(
            then_empty_deltas(vec![SOME_TEXT]),
            deadlines(),
            started,
            "m",
            |_| std::future::ready(()),
        )
        .await
        .unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(end.cut_off, Some(CutOff::Stalled(Duration::from_secs(5))));
    }

    #[tokio::test(start_paused = true)]
    async fn text_that_keeps_coming_is_cut_off_at_the_chat_timeout() {
        let text_every_second = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((event(SOME_TEXT), ()))
        });
        let started = Instant::now();
        let end = read_stream(text_every_second, deadlines(), started, "m", |_| {
            std::future::ready(())
        })
        .await
        .unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(end.cut_off, Some(CutOff::Deadline(Duration::from_secs(10))));
        assert!(
            CutOff::Deadline(Duration::from_secs(10))
                .explanation()
                .contains("longer than 10s")
        );
    }
}
