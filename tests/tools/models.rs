//! `list_models`: the live catalog from `GET /v1/models`, normalised from the Model
//! Document 2.4 shape or the older OpenAI list shape, filtered by `capability` and
//! `query`, cached, and readable without any key.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::assertions::assert_contains;
use crate::support::in_process::Server;
use crate::support::{fake_vultr::*, session::*};

/// Every model id of the 2.4 fixture, in catalog order.
const FIXTURE_IDS: [&str; 8] = [
    "glm-5.2",
    "kimi-k2-instruct",
    "plain-chat-7b",
    "qwen3-embedding-4b",
    "qwen3-tts-12hz-1.7b",
    "z-image-turbo",
    "whisper-large-v3-turbo",
    "bge-reranker-v2-m3",
];

/// Starts a server that has only the two base URLs: no key of any kind.
async fn keyless_server(fake: &FakeVultr) -> Server {
    Server::start(&overridden(&fake.base_urls(), &[])).await
}

async fn list_models(server: &Server, arguments: Value) -> CallToolResult {
    server.call("list_models", arguments).await
}

/// The ids of a successful list_models result, in order.
fn ids(result: &CallToolResult) -> Vec<String> {
    ok(result)["models"]
        .as_array()
        .expect("`models` is an array")
        .iter()
        .map(|m| m["id"].as_str().expect("every model has an id").to_owned())
        .collect()
}

/// The model with this id in a successful list_models result.
fn model(result: &CallToolResult, id: &str) -> Value {
    ok(result)["models"]
        .as_array()
        .expect("`models` is an array")
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no model `{id}` in {}", text(result)))
        .clone()
}

#[tokio::test]
async fn every_model_of_the_catalog_is_listed_in_catalog_order() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    assert_eq!(ids(&result), FIXTURE_IDS);
    assert_eq!(ok(&result)["total_in_catalog"], 8);
    let text = text(&result);
    assert!(text.starts_with("8 of 8 models:"), "{text}");
    for id in FIXTURE_IDS {
        assert!(
            text.contains(&format!("- {id} (")),
            "no line for {id}: {text}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_model_document_gives_limits_tools_streaming_reasoning_and_base_prices() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    // Prices are the base rate (USD per 1M tokens), not the weekend discount window.
    assert_eq!(
        model(&result, "glm-5.2"),
        json!({
            "id": "glm-5.2",
            "name": "GLM 5.2",
            "outputs": ["text"],
            "context_window": 1048576,
            "max_output_tokens": 131072,
            "tools": true,
            "streaming": true,
            "reasoning_efforts": ["high", "medium", "low"],
            "prompt_usd_per_1m": 0.75,
            "completion_usd_per_1m": 3.0,
        })
    );
    let text = text(&result);
    assert!(
        text.contains(
            "- glm-5.2 (GLM 5.2): text, context 1048576, max output 131072, tools, streaming, \
             reasoning high/medium/low, $0.75/$3 per 1M prompt/completion tokens"
        ),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn models_of_other_kinds_show_their_prices_per_unit_in_the_text() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    let text = text(&result);
    for line in [
        "- qwen3-tts-12hz-1.7b (Qwen3 TTS 1.7B): speech, $0.000015 per character",
        "- z-image-turbo (Z-Image Turbo): image, $0.003 per megapixel",
        "- whisper-large-v3-turbo (Whisper Large v3 Turbo): transcription, $0.00001111 per second",
    ] {
        assert!(text.contains(line), "no `{line}` in {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_tool_calling_model_without_reasoning_has_no_reasoning_efforts() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    assert_eq!(
        model(&result, "kimi-k2-instruct"),
        json!({
            "id": "kimi-k2-instruct",
            "name": "Kimi K2 Instruct",
            "outputs": ["text"],
            "context_window": 131072,
            "max_output_tokens": 16384,
            "tools": true,
            "streaming": true,
            "prompt_usd_per_1m": 0.5,
            "completion_usd_per_1m": 2.0,
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn a_chat_model_without_the_tools_parameter_has_tools_false_and_no_prices() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    assert_eq!(
        model(&result, "plain-chat-7b"),
        json!({
            "id": "plain-chat-7b",
            "name": "Plain Chat 7B",
            "outputs": ["text"],
            "context_window": 32768,
            "max_output_tokens": 8192,
            "tools": false,
            "streaming": false,
        })
    );
    let text = text(&result);
    assert!(
        text.contains(
            "- plain-chat-7b (Plain Chat 7B): text, context 32768, max output 8192, no tools\n"
        ),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn models_that_do_not_output_text_show_their_output_kind_and_no_chat_fields() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    assert_eq!(
        model(&result, "qwen3-embedding-4b"),
        json!({
            "id": "qwen3-embedding-4b",
            "name": "Qwen3 Embedding 4B",
            "outputs": ["embeddings"],
            "context_window": 32768,
            "prompt_usd_per_1m": 0.02,
        })
    );
    // Per-character and per-megapixel prices are not per-token prices: none is shown.
    assert_eq!(
        model(&result, "qwen3-tts-12hz-1.7b"),
        json!({"id": "qwen3-tts-12hz-1.7b", "name": "Qwen3 TTS 1.7B", "outputs": ["speech"]})
    );
    assert_eq!(
        model(&result, "z-image-turbo"),
        json!({"id": "z-image-turbo", "name": "Z-Image Turbo", "outputs": ["image"]})
    );
    server.stop().await;
}

#[tokio::test]
async fn capability_chat_keeps_the_models_that_output_text() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({"capability": "chat"})).await;

    assert_eq!(
        ids(&result),
        ["glm-5.2", "kimi-k2-instruct", "plain-chat-7b"]
    );
    assert_eq!(ok(&result)["total_in_catalog"], 8);
    assert!(
        text(&result).starts_with("3 of 8 models:"),
        "{}",
        text(&result)
    );
    server.stop().await;
}

#[tokio::test]
async fn capability_tools_keeps_the_chat_models_that_accept_tools() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({"capability": "tools"})).await;

    assert_eq!(ids(&result), ["glm-5.2", "kimi-k2-instruct"]);
    server.stop().await;
}

#[tokio::test]
async fn capability_embeddings_speech_image_transcription_and_rerank_each_keep_their_one_model() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    for (capability, expected) in [
        ("embeddings", "qwen3-embedding-4b"),
        ("speech", "qwen3-tts-12hz-1.7b"),
        ("image", "z-image-turbo"),
        ("transcription", "whisper-large-v3-turbo"),
        ("rerank", "bge-reranker-v2-m3"),
    ] {
        let result = list_models(&server, json!({"capability": capability})).await;
        assert_eq!(ids(&result), [expected], "capability {capability}");
    }
    server.stop().await;
}

#[tokio::test]
async fn capability_streaming_and_reasoning_keep_the_models_that_can() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let streaming = list_models(&server, json!({"capability": "streaming"})).await;
    let reasoning = list_models(&server, json!({"capability": "reasoning"})).await;

    assert_eq!(ids(&streaming), ["glm-5.2", "kimi-k2-instruct"]);
    assert_eq!(ids(&reasoning), ["glm-5.2"]);
    server.stop().await;
}

#[tokio::test]
async fn a_capability_no_model_has_gives_an_empty_list_that_says_so() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({"capability": "video"})).await;

    assert_eq!(ok(&result), json!({"models": [], "total_in_catalog": 8}));
    assert_eq!(
        text(&result),
        "No model matches (8 models in the catalog). Try without `query` or `capability`."
    );
    server.stop().await;
}

#[tokio::test]
async fn query_is_a_case_insensitive_substring_of_the_id() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({"query": "QWEN3"})).await;

    assert_eq!(ids(&result), ["qwen3-embedding-4b", "qwen3-tts-12hz-1.7b"]);
    assert_eq!(ok(&result)["total_in_catalog"], 8);
    server.stop().await;
}

#[tokio::test]
async fn query_also_matches_the_display_name() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    // "glm 5.2" is in the name "GLM 5.2" but not in the id "glm-5.2".
    let result = list_models(&server, json!({"query": "glm 5.2"})).await;

    assert_eq!(ids(&result), ["glm-5.2"]);
    server.stop().await;
}

#[tokio::test]
async fn query_and_capability_combine() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let tools_kimi = list_models(&server, json!({"query": "Kimi", "capability": "tools"})).await;
    let chat_qwen = list_models(&server, json!({"query": "qwen", "capability": "chat"})).await;
    let chat_b = list_models(&server, json!({"query": "7B", "capability": "chat"})).await;

    assert_eq!(ids(&tools_kimi), ["kimi-k2-instruct"]);
    assert!(ids(&chat_qwen).is_empty(), "{}", text(&chat_qwen));
    assert_eq!(ids(&chat_b), ["plain-chat-7b"]);
    server.stop().await;
}

#[tokio::test]
async fn a_blank_query_filters_nothing() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({"query": "  "})).await;

    assert_eq!(ids(&result), FIXTURE_IDS);
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_capability_is_an_error_naming_the_field_and_the_choices() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&list_models(&server, json!({"capability": "telepathy"})).await);

    assert_contains(&message, &["`capability`", "telepathy"]);
    assert!(
        message.contains("`chat`") && message.contains("`embeddings`"),
        "{message}"
    );
    assert_eq!(fake.count("GET", MODELS_PATH).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_argument_is_an_error_naming_it_and_the_arguments_there_are() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&list_models(&server, json!({"filter": "chat"})).await);

    assert_eq!(
        message,
        "invalid arguments: unknown argument `filter`; this tool takes: capability, query"
    );
    assert_eq!(fake.count("GET", MODELS_PATH).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn the_older_openai_list_catalog_gives_ids_as_chat_models() {
    let fake = FakeVultr::builder()
        .catalog(Catalog::OpenAiList)
        .start()
        .await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;
    let chat = list_models(&server, json!({"capability": "chat"})).await;

    assert_eq!(
        ok(&result),
        json!({
            "models": [
                {"id": "llama-3.3-70b-instruct", "outputs": ["text"]},
                {"id": "kimi-k2-instruct", "outputs": ["text"]},
            ],
            "total_in_catalog": 2,
        })
    );
    assert_eq!(ids(&chat), ["llama-3.3-70b-instruct", "kimi-k2-instruct"]);
    let text = text(&result);
    assert_contains(
        &text,
        &[
            "- llama-3.3-70b-instruct: text\n",
            "- kimi-k2-instruct: text\n",
        ],
    );
    server.stop().await;
}

#[tokio::test]
async fn a_raw_catalog_with_a_model_marked_not_ready_says_so() {
    let fake = FakeVultr::builder()
        .catalog(Catalog::Raw(json!({"data": [
            {"id": "warming-up", "is_ready": false, "output_modalities": [{"type": "text"}]},
        ]})))
        .start()
        .await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list_models(&server, json!({})).await;

    assert_eq!(model(&result, "warming-up")["ready"], false);
    assert!(text(&result).contains("not ready"), "{}", text(&result));
    server.stop().await;
}

#[tokio::test]
async fn the_catalog_is_fetched_once_and_cached() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let first = list_models(&server, json!({})).await;
    let filtered = list_models(&server, json!({"capability": "tools"})).await;

    assert_eq!(ids(&first).len(), 8);
    assert_eq!(ids(&filtered).len(), 2);
    assert_eq!(fake.count("GET", MODELS_PATH).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn list_models_needs_no_key_and_sends_none() {
    let fake = FakeVultr::start().await;
    let server = keyless_server(&fake).await;

    let result = list_models(&server, json!({})).await;

    assert_eq!(ids(&result), FIXTURE_IDS);
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, MODELS_PATH);
    assert_eq!(requests[0].authorization, None);
    server.stop().await;
}

#[tokio::test]
async fn list_models_does_not_discover_a_key_through_the_account_api() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    ok(&list_models(&server, json!({})).await);

    assert_eq!(fake.count("GET", "/v2/inference").await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_failing_catalog_is_an_error_with_the_status_and_the_next_call_works() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "GET",
        MODELS_PATH,
        503,
        r#"{"error":{"message":"Service temporarily unavailable","code":503,"type":"server_error"}}"#,
        1,
    )
    .await;
    // Retries off: this is about the failure and the recovery, not retrying.
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_RETRIES", "0")]).await;

    let failed = list_models(&server, json!({})).await;
    let message = err(&failed);
    assert_contains(
        &message,
        &[
            "HTTP 503",
            "Service temporarily unavailable",
            "inference API",
        ],
    );

    // The failure is not cached: the next call fetches the catalog again.
    let result = list_models(&server, json!({})).await;
    assert_eq!(ids(&result), FIXTURE_IDS);
    assert_eq!(fake.count("GET", MODELS_PATH).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_catalog_of_an_unknown_shape_is_an_error_that_says_so() {
    let fake = FakeVultr::builder()
        .catalog(Catalog::Raw(json!({"object": "list"})))
        .start()
        .await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&list_models(&server, json!({})).await);

    assert_contains(&message, &["HTTP 200", "unknown shape", "no `data` array"]);
    server.stop().await;
}
