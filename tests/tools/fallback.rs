//! Fallback models: when the model of a `chat_completion` or `delegate` is unavailable (429
//! after the retries, 5xx, no first token in time), the same request goes to the next
//! model of `fallback_models` (or `VULTR_MCP_FALLBACK_MODELS`) that can serve it, and the
//! result says who answered and why the others did not. Never after part of an answer
//! streamed; never for an error any model would give.
//!
//! The raw `FaultServer` stands in front of the wiremock fake: a rule fails one model's
//! requests, everything else is relayed and answered normally.

use std::time::Duration;

use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

use crate::support::assertions::assert_contains;
use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::faults::{Fault, FaultServer, Rule, StreamEnd, content_chunks};
use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};
use crate::support::fake_vultr::{FakeVultr, weather_tool};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

/// The model asked for: it streams and calls tools.
const ASKED: &str = "glm-5.2";
/// A fallback that streams and calls tools, with a 131,072-token window.
const KIMI: &str = "kimi-k2-instruct";
/// A fallback without tool calling or streaming, with a 32,768-token window and 8,192
/// tokens of output at most.
const PLAIN: &str = "plain-chat-7b";

/// An error status for every request to `model`.
fn failing(model: &'static str, status: u16) -> Rule {
    Rule::new(move |body: &Value| {
        (body["model"] == model).then(|| Fault::Status {
            status,
            headers: Vec::new(),
            body: json!({"error": {"message": "model overloaded", "code": status}}).to_string(),
        })
    })
}

/// The wiremock fake behind a fault server applying `rules`, and a server pointed at the
/// fault server with `extra` settings (no retries unless `extra` says so).
async fn behind(rules: Vec<Rule>, extra: &[(&str, &str)]) -> (FakeVultr, FaultServer, Server) {
    let fake = FakeVultr::start().await;
    let faults = FaultServer::in_front_of(&fake.mock_server().uri(), rules).await;
    let server = start(&through(&fake, &faults, extra)).await;
    (fake, faults, server)
}

/// The settings of a server reaching `fake` through `faults`, with `extra` on top (no
/// retries unless `extra` says so).
fn through<'a>(
    fake: &FakeVultr,
    faults: &FaultServer,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, String)> {
    let mut settings: Vec<(&str, String)> = fake.settings();
    settings.push(("VULTR_MCP_MAX_RETRIES", "0".to_owned()));
    settings.push(("VULTR_INFERENCE_BASE_URL", faults.base_url()));
    // Settings apply in order: a name given again in `extra` takes that value.
    settings.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    settings
}

/// Starts a server with `settings`.
async fn start(settings: &[(&str, String)]) -> Server {
    let env: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
    Server::start(&env).await
}

/// The model of each chat request the fault server received, in order.
fn models_asked(faults: &FaultServer) -> Vec<String> {
    faults
        .chat_bodies()
        .iter()
        .map(|b| b["model"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A chat on [`ASKED`] with `extra` arguments.
async fn chat(server: &Server, extra: Value) -> rmcp::model::CallToolResult {
    let mut arguments = json!({"model": ASKED, "prompt": "What is the answer?"});
    arguments
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    server.call("chat_completion", arguments).await
}

#[tokio::test]
async fn an_overloaded_or_failing_model_is_answered_by_the_next_one_with_a_note() {
    for status in [429, 500, 502, 503, 504] {
        let (_fake, faults, server) = behind(vec![failing(ASKED, status)], &[]).await;
        let result = chat(&server, json!({"fallback_models": [KIMI]})).await;
        let reply = ok(&result);
        assert_eq!(reply["content"], "echo: What is the answer?", "{status}");
        assert_eq!(reply["answered_by"], KIMI, "{status}");
        assert_eq!(reply["skipped"][0]["model"], ASKED, "{status}");
        assert!(
            reply["skipped"][0].get("charged_usd").is_none(),
            "{status}: a refusal costs nothing"
        );
        assert_eq!(
            reply["skipped"][0]["reason"],
            format!("HTTP {status} (model overloaded)")
        );
        assert_contains(
            &text(&result),
            &[&format!(
                "[answered by fallback model {KIMI}: {ASKED} skipped (HTTP {status} (model overloaded))]"
            )],
        );
        assert_eq!(models_asked(&faults), [ASKED, KIMI], "{status}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_429_falls_back_only_after_the_retries() {
    let (_fake, faults, server) = behind(
        vec![failing(ASKED, 429)],
        &[
            ("VULTR_MCP_MAX_RETRIES", "1"),
            ("VULTR_MCP_RETRY_AFTER_CAP", "1s"),
        ],
    )
    .await;
    let reply = ok(&chat(&server, json!({"fallback_models": [KIMI]})).await);
    assert_eq!(reply["answered_by"], KIMI);
    assert_eq!(models_asked(&faults), [ASKED, ASKED, KIMI]);
    server.stop().await;
}

#[tokio::test]
async fn a_model_silent_until_the_first_token_deadline_is_passed_over() {
    let silent = Rule::new(|body: &Value| (body["model"] == ASKED).then_some(Fault::Stall));
    let (_fake, faults, server) =
        behind(vec![silent], &[("VULTR_MCP_FIRST_TOKEN_TIMEOUT", "1s")]).await;
    let result = chat(&server, json!({"fallback_models": [KIMI]})).await;
    let reply = ok(&result);
    assert_eq!(reply["answered_by"], KIMI);
    assert_eq!(reply["skipped"][0]["reason"], "no first token within 1s");
    let charged = reply["skipped"][0]["charged_usd"]
        .as_f64()
        .expect("charged");
    assert!(
        charged > 0.0,
        "sent and not refused: its worst case stays charged"
    );
    assert_contains(
        &text(&result),
        &[&format!("charged its worst case, ${charged:.6}")],
    );
    assert!(
        faults.wait_stalls_closed(1, Duration::from_secs(10)).await,
        "the silent request is closed, not left hanging"
    );
    server.stop().await;
}

/// A stream on [`ASKED`] of `pieces`, then Vultr's in-stream error 503.
fn streaming_then_overloaded(pieces: &'static [&'static str]) -> Rule {
    Rule::new(move |body: &Value| {
        (body["model"] == ASKED).then(|| {
            let mut chunks = content_chunks(ASKED, pieces, false);
            chunks.push(json!({"error": {"message": "overloaded", "code": 503}}).to_string());
            Fault::Stream {
                chunks,
                interval: Duration::ZERO,
                then: StreamEnd::Done,
            }
        })
    })
}

#[tokio::test]
async fn no_fallback_once_part_of_the_answer_streamed() {
    let (_fake, faults, server) = behind(
        vec![streaming_then_overloaded(&["The answer ", "is "])],
        &[],
    )
    .await;
    let result = chat(&server, json!({"fallback_models": [KIMI]})).await;
    assert_contains(&err(&result), &["answered HTTP 503"]);
    assert_eq!(
        models_asked(&faults),
        [ASKED],
        "no answer stitched from two models"
    );
    server.stop().await;

    // The same failure before any token streamed falls back.
    let (_fake, faults, server) = behind(vec![streaming_then_overloaded(&[])], &[]).await;
    let reply = ok(&chat(&server, json!({"fallback_models": [KIMI]})).await);
    assert_eq!(reply["answered_by"], KIMI);
    assert_eq!(models_asked(&faults), [ASKED, KIMI]);
    server.stop().await;
}

#[tokio::test]
async fn errors_any_model_would_give_do_not_fall_back() {
    let (_fake, faults, server) = behind(vec![failing(ASKED, 400)], &[]).await;
    let result = chat(&server, json!({"fallback_models": [KIMI]})).await;
    assert_contains(&err(&result), &["HTTP 400"]);
    assert_eq!(models_asked(&faults), [ASKED]);
    server.stop().await;
}

#[tokio::test]
async fn the_callers_spend_limit_is_not_a_reason_to_try_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budgets.json");
    // Far below any worst case: every request is refused before it is sent.
    std::fs::write(&path, r#"{"*": {"per_call_usd": 0.0000001}}"#).unwrap();
    let (_fake, faults, server) = behind(
        vec![failing(ASKED, 503)],
        &[("VULTR_MCP_BUDGETS", path.to_str().unwrap())],
    )
    .await;
    let result = chat(&server, json!({"fallback_models": [KIMI]})).await;
    let message = err(&result);
    assert_contains(&message, &["refused before sending", ASKED]);
    assert!(!message.contains(KIMI), "{message}");
    assert!(faults.chat_bodies().is_empty(), "nothing reached Vultr");
    server.stop().await;
}

#[tokio::test]
async fn a_fallback_model_over_the_callers_limit_ends_the_call_with_that_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budgets.json");
    // kimi's worst case at 1,000 tokens (about $0.002) fits; glm-5.2's (about $0.003) does not.
    std::fs::write(&path, r#"{"*": {"per_call_usd": 0.0025}}"#).unwrap();
    let (_fake, faults, server) = behind(
        vec![failing(KIMI, 503)],
        &[("VULTR_MCP_BUDGETS", path.to_str().unwrap())],
    )
    .await;
    let result = server
        .call(
            "chat_completion",
            json!({"model": KIMI, "prompt": "hi", "max_tokens": 1000,
                   "fallback_models": [ASKED, PLAIN]}),
        )
        .await;
    let message = err(&result);
    assert_contains(
        &message,
        &["refused before sending", ASKED, "per-call limit"],
    );
    assert_eq!(models_asked(&faults), [KIMI], "no further model is tried");
    server.stop().await;
}

#[tokio::test]
async fn fallback_models_that_cannot_serve_the_request_are_passed_over_with_why() {
    let (_fake, faults, server) = behind(vec![failing(ASKED, 503)], &[]).await;
    let fallbacks = json!(["no-such-model", "qwen3-embedding-4b", PLAIN, KIMI]);

    // Tools: the model without tool calling is passed over.
    let reply = ok(&chat(
        &server,
        json!({"fallback_models": fallbacks, "tools": [weather_tool()]}),
    )
    .await);
    assert_eq!(reply["answered_by"], KIMI);
    let skipped: Vec<(String, String)> = reply["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["model"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            (ASKED.to_owned(), "HTTP 503 (model overloaded)".to_owned()),
            (
                "no-such-model".to_owned(),
                "not in the model catalog".to_owned()
            ),
            (
                "qwen3-embedding-4b".to_owned(),
                "not a chat model".to_owned()
            ),
            (PLAIN.to_owned(), "does not support tool calling".to_owned()),
        ]
    );
    let sent = faults.chat_bodies();
    assert_eq!(models_asked(&faults), [ASKED, KIMI]);
    assert_eq!(sent[1]["tools"], sent[0]["tools"], "the same request");
    assert_eq!(sent[1]["messages"], sent[0]["messages"], "the same request");

    // max_tokens above what a model generates.
    let reply = ok(&chat(
        &server,
        json!({"fallback_models": [PLAIN, KIMI], "max_tokens": 10000}),
    )
    .await);
    assert_eq!(reply["answered_by"], KIMI);
    assert_eq!(
        reply["skipped"][1]["reason"],
        "generates at most 8192 tokens, and max_tokens is 10000"
    );

    // A prompt larger than a model's context window (about 40,000 tokens > 32,768).
    let long = "word ".repeat(32_000);
    let reply = ok(&server
        .call(
            "chat_completion",
            json!({"model": ASKED, "prompt": long, "fallback_models": [PLAIN, KIMI]}),
        )
        .await);
    assert_eq!(reply["answered_by"], KIMI);
    let reason = reply["skipped"][1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("its context window (32768 tokens) is smaller than the request"),
        "{reason}"
    );
    server.stop().await;
}

#[tokio::test]
async fn when_no_model_can_answer_the_error_lists_each_with_why() {
    let (_fake, faults, server) = behind(vec![failing(ASKED, 503), failing(KIMI, 502)], &[]).await;
    let result = chat(
        &server,
        json!({"fallback_models": [PLAIN, KIMI], "tools": [weather_tool()]}),
    )
    .await;
    assert_eq!(
        err(&result),
        format!(
            "no model could answer: {ASKED} (HTTP 503 (model overloaded)); {PLAIN} (does not support tool calling); {KIMI} (HTTP 502 (model overloaded)). Try again in a while, or name other models in fallback_models (list_models shows them)."
        )
    );
    assert_eq!(models_asked(&faults), [ASKED, KIMI]);
    server.stop().await;
}

#[tokio::test]
async fn the_server_default_applies_unless_the_call_names_its_own_or_none() {
    let (_fake, faults, server) = behind(
        vec![failing(ASKED, 503)],
        &[("VULTR_MCP_FALLBACK_MODELS", " kimi-k2-instruct ,")],
    )
    .await;
    let reply = ok(&chat(&server, json!({})).await);
    assert_eq!(reply["answered_by"], KIMI);

    let result = chat(&server, json!({"fallback_models": []})).await;
    assert_contains(&err(&result), &["answered HTTP 503"]);
    assert_eq!(models_asked(&faults), [ASKED, KIMI, ASKED]);

    let reply = ok(&chat(&server, json!({"fallback_models": [PLAIN]})).await);
    assert_eq!(
        reply["answered_by"], PLAIN,
        "the call's list replaces the default"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_conversation_records_the_model_that_answered_each_turn() {
    let (_fake, faults, server) = behind(vec![failing(ASKED, 503)], &[]).await;
    let first = ok(&chat(&server, json!({"fallback_models": [KIMI]})).await);
    let id = first["conversation_id"].as_str().unwrap().to_owned();

    // The next turn asks for the conversation's model again, and falls back again.
    let second = ok(&server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "Go on", "fallback_models": [KIMI]}),
        )
        .await);
    assert_eq!(second["answered_by"], KIMI);
    assert_eq!(models_asked(&faults), [ASKED, KIMI, ASKED, KIMI]);

    let read = server
        .client
        .read_resource(ReadResourceRequestParams::new(format!(
            "vultr://conversations/{id}"
        )))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("a text transcript");
    };
    assert_contains(text, &[&format!("· model {ASKED} ·")]);
    assert_eq!(
        text.matches(&format!("## assistant ({KIMI})")).count(),
        2,
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_delegation_falls_back_and_runs_its_later_turns_on_the_model_that_answered() {
    let fake = FakeVultr::start().await;
    fake.script(|messages| match tool_result(messages, "c1") {
        None => tool_calls(&[("c1", "calc__add", r#"{"a": 2, "b": 3}"#)]),
        Some(sum) => answer(&format!("the sum is {sum}")),
    })
    .await;
    let faults =
        FaultServer::in_front_of(&fake.mock_server().uri(), vec![failing(ASKED, 503)]).await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let servers = downstreams.setting();
    let server = start(&through(
        &fake,
        &faults,
        &[
            ("VULTR_MCP_DELEGATE_SERVERS", servers.as_str()),
            ("VULTR_MCP_FALLBACK_MODELS", KIMI),
        ],
    ))
    .await;

    let result = server
        .call("delegate", json!({"task": "add 2 and 3", "model": ASKED}))
        .await;
    let delegation = ok(&result);
    assert_eq!(delegation["answer"], "the sum is 5");
    assert_eq!(delegation["model"], KIMI);
    assert_eq!(
        delegation["skipped"],
        json!([{"turn": 1, "model": ASKED, "reason": "HTTP 503 (model overloaded)"}])
    );
    assert_contains(
        &text(&result),
        &[&format!(
            "[turn 1: {ASKED} skipped (HTTP 503 (model overloaded)); the fallback model ran from then on]"
        )],
    );
    assert_eq!(
        models_asked(&faults),
        [ASKED, KIMI, KIMI],
        "turn 2 goes straight to the model that answered turn 1"
    );
    server.stop().await;
}
