//! The `retrieval` toolset: `rerank` and `embed` against the fake's rerank and embeddings
//! (`fake_vultr/retrieval.rs`): the model of the kind chosen when none is named, arguments
//! checked against the catalog before anything is sent, the lenient answer shapes, cost,
//! the similarity matrix, and vectors cut to the result size limit with a note.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::fake_vultr::retrieval::{
    DEFAULT_DIMENSIONS, EMBEDDINGS_PATH, RERANK_PATH, fake_embedding,
};
use crate::support::fake_vultr::{
    DEFAULT_SUBSCRIPTION_ID, DEFAULT_SUBSCRIPTION_KEY, FakeVultr, SUBSCRIPTIONS_PATH,
};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

const RERANKER: &str = "bge-reranker-v2-m3";
const EMBEDDER: &str = "qwen3-embedding-4b";
/// USD per token of each, as the fixture prices them.
const RERANK_USD_PER_TOKEN: f64 = 0.000_000_05;
const EMBED_USD_PER_TOKEN: f64 = 0.000_000_02;

async fn retrieval(extra: &[(&str, &str)]) -> (FakeVultr, Server) {
    let fake = FakeVultr::start().await;
    let mut settings = vec![("VULTR_MCP_TOOLSETS", "retrieval")];
    settings.extend_from_slice(extra);
    let server = Server::with_fake(&fake, &settings).await;
    (fake, server)
}

fn documents() -> Value {
    json!([
        "The sky is blue today.",
        "A recipe for apple pie with red apples.",
        "Red cars drive fast.",
    ])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn rerank_lists_the_documents_best_first_with_index_score_and_cost() {
    let (fake, server) = retrieval(&[]).await;
    let result = server
        .call(
            "rerank",
            json!({"query": "red apple pie", "documents": documents()}),
        )
        .await;
    let body = ok(&result);
    let indexes: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 0], "{body}");
    assert_eq!(body["model"], RERANKER, "the only rerank model");
    assert_eq!(body["results"][0]["score"], 1.0);
    assert_eq!(body["results"][0]["rank"], 1);
    assert_eq!(
        body["results"][0]["document"],
        "A recipe for apple pie with red apples."
    );
    let tokens = body["tokens"].as_u64().expect("the fake counts tokens");
    let cost = body["cost_usd"].as_f64().expect("the reranker is priced");
    assert!(close(cost, tokens as f64 * RERANK_USD_PER_TOKEN), "{body}");
    let shown = text(&result);
    assert!(
        shown.contains("1. [index 1] score 1.0000: A recipe for apple pie"),
        "{shown}"
    );
    assert!(shown.contains(&format!("cost ${cost}")), "{shown}");
    let sent = fake.posted_bodies(RERANK_PATH).await;
    assert_eq!(
        sent,
        [
            json!({"model": RERANKER, "query": "red apple pie", "documents": documents(),
                "top_n": 3, "return_documents": false})
        ]
    );
}

#[tokio::test]
async fn rerank_keeps_the_best_top_n_and_reads_the_lenient_shape() {
    let (fake, server) = retrieval(&[]).await;
    fake.answer_retrieval_leniently().await;
    let body = ok(&server
        .call(
            "rerank",
            json!({"query": "red apple pie", "documents": documents(), "top_n": 2, "model": RERANKER}),
        )
        .await);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(results[0]["index"], 1, "sorted best first: {body}");
    assert_eq!(results[1]["index"], 2);
    assert_eq!(fake.posted_bodies(RERANK_PATH).await[0]["top_n"], 2);
}

#[tokio::test]
async fn rerank_arguments_out_of_the_catalog_range_or_a_wrong_model_are_refused_before_sending() {
    let (fake, server) = retrieval(&[]).await;
    let cases = [
        (
            json!({"query": "q", "documents": documents(), "top_n": 101}),
            "`top_n` 101 is out of range for bge-reranker-v2-m3: the catalog allows from 1 to 100",
        ),
        (
            json!({"query": "q", "documents": documents(), "top_n": 0}),
            "`top_n` must be at least 1",
        ),
        (
            json!({"query": " ", "documents": documents()}),
            "`query` is empty",
        ),
        (
            json!({"query": "q", "documents": []}),
            "`documents` is empty",
        ),
        (
            json!({"query": "q", "documents": ["a", ""]}),
            "`documents[1]` is blank",
        ),
        (
            json!({"query": "q", "documents": ["a"], "model": EMBEDDER}),
            "`qwen3-embedding-4b` is not a rerank model (it outputs embeddings); the catalog's rerank models are bge-reranker-v2-m3",
        ),
        (
            json!({"query": "q", "documents": ["a"], "model": "nope"}),
            "unknown model `nope`",
        ),
    ];
    for (arguments, expected) in cases {
        let message = err(&server.call("rerank", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    assert_eq!(fake.count("POST", RERANK_PATH).await, 0, "nothing was sent");
}

#[tokio::test]
async fn embed_one_text_gives_its_dimensions_and_vector_without_a_matrix() {
    let (fake, server) = retrieval(&[]).await;
    let result = server.call("embed", json!({"input": "red apple"})).await;
    let body = ok(&result);
    assert_eq!(body["model"], EMBEDDER);
    assert_eq!(body["dimensions"], DEFAULT_DIMENSIONS);
    assert_eq!(
        body["vectors"],
        json!([fake_embedding("red apple", DEFAULT_DIMENSIONS)])
    );
    assert_eq!(body["vectors_omitted"], 0);
    assert!(body.get("similarity").is_none(), "{body}");
    let cost = body["cost_usd"].as_f64().expect("priced");
    assert!(close(cost, 2.0 * EMBED_USD_PER_TOKEN), "two words: {body}");
    let shown = text(&result);
    assert!(
        shown.starts_with(&format!(
            "1 text embedded by {EMBEDDER}: {DEFAULT_DIMENSIONS} dimensions each; cost $"
        )),
        "{shown}"
    );
    assert!(!shown.contains("Cosine"), "{shown}");
    assert_eq!(
        fake.posted_bodies(EMBEDDINGS_PATH).await,
        [json!({"model": EMBEDDER, "input": ["red apple"], "encoding_format": "float"})]
    );
}

#[tokio::test]
async fn embed_several_texts_shows_their_cosine_similarity_matrix() {
    let (_fake, server) = retrieval(&[]).await;
    let texts = ["red apple pie", "red apple pie", "blue ocean waves"];
    let result = server
        .call("embed", json!({"input": texts, "dimensions": 256}))
        .await;
    let body = ok(&result);
    let matrix = body["similarity"].as_array().expect("a matrix");
    assert_eq!(matrix.len(), 3);
    assert!(
        close(matrix[0][1].as_f64().unwrap(), 1.0),
        "same text: {body}"
    );
    let (a, c) = (fake_embedding(texts[0], 256), fake_embedding(texts[2], 256));
    let dot: f32 = a.iter().zip(&c).map(|(x, y)| x * y).sum();
    let expected = f64::from(dot)
        / (f64::from(a.iter().map(|x| x * x).sum::<f32>()).sqrt()
            * f64::from(c.iter().map(|x| x * x).sum::<f32>()).sqrt());
    assert!(close(matrix[0][2].as_f64().unwrap(), expected), "{body}");
    let shown = text(&result);
    assert!(
        shown.contains("3 texts embedded by qwen3-embedding-4b: 256 dimensions each"),
        "{shown}"
    );
    assert!(
        shown.contains("         [0]    [1]    [2]\n  [0]  1.000  1.000"),
        "{shown}"
    );
}

#[tokio::test]
async fn embed_sends_the_options_asked_and_returns_base64_vectors_when_asked() {
    let (fake, server) = retrieval(&[]).await;
    fake.answer_retrieval_leniently().await;
    let body = ok(&server
        .call(
            "embed",
            json!({"input": ["alpha", "beta"], "dimensions": 32, "input_type": "search_query",
                   "encoding_format": "base64", "model": EMBEDDER}),
        )
        .await);
    assert_eq!(
        fake.posted_bodies(EMBEDDINGS_PATH).await,
        [
            json!({"model": EMBEDDER, "input": ["alpha", "beta"], "dimensions": 32,
                "input_type": "search_query", "encoding_format": "base64"})
        ]
    );
    assert_eq!(body["encoding_format"], "base64");
    for (i, word) in ["alpha", "beta"].iter().enumerate() {
        let encoded = body["vectors"][i].as_str().expect("a base64 string");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let vector: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(
            vector,
            fake_embedding(word, 32),
            "input order kept though the answer came reversed"
        );
    }
}

#[tokio::test]
async fn embed_arguments_out_of_the_catalog_range_or_a_wrong_model_are_refused_before_sending() {
    let (fake, server) = retrieval(&[]).await;
    let cases = [
        (
            json!({"input": "a", "dimensions": 16}),
            "`dimensions` 16 is out of range for qwen3-embedding-4b: the catalog allows from 32 to 2560",
        ),
        (json!({"input": []}), "`input` is empty"),
        (json!({"input": "a", "input_type": "query"}), "input_type"),
        (
            json!({"input": "a", "model": RERANKER}),
            "`bge-reranker-v2-m3` is not a",
        ),
        (
            json!({"input": "a", "model": "kimi-k2-instruct"}),
            "(it outputs text)",
        ),
    ];
    for (arguments, expected) in cases {
        let message = err(&server.call("embed", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    assert_eq!(fake.count("POST", EMBEDDINGS_PATH).await, 0);
}

#[tokio::test]
async fn vectors_past_the_result_size_limit_are_cut_with_a_note() {
    let (_fake, server) = retrieval(&[("VULTR_MCP_MAX_RESULT_CHARS", "4000")]).await;
    let texts: Vec<String> = (0..6).map(|i| format!("text number {i}")).collect();
    let result = server
        .call("embed", json!({"input": texts, "dimensions": 128}))
        .await;
    let body = ok(&result);
    let kept = body["vectors"].as_array().unwrap().len();
    assert!(kept < 6 && kept > 0, "{kept} vectors kept");
    assert_eq!(body["vectors_omitted"], 6 - kept);
    let note = body["note"].as_str().expect("a note");
    assert!(
        note.contains(&format!("{kept} of 6 are included"))
            && note.contains("VULTR_MCP_MAX_RESULT_CHARS")
            && note.contains("encoding_format base64"),
        "{note}"
    );
    assert!(text(&result).contains(note));
    let structured = serde_json::to_string(&body).unwrap();
    assert!(structured.len() <= 4000, "{} characters", structured.len());
    assert_eq!(
        body["similarity"].as_array().unwrap().len(),
        6,
        "the matrix is whole"
    );
}

#[tokio::test]
async fn upstream_failures_come_back_as_errors_saying_what_vultr_said() {
    let (fake, server) = retrieval(&[]).await;
    fake.fail(
        "POST",
        EMBEDDINGS_PATH,
        400,
        r#"{"error":{"message":"context_length_exceeded","code":400,"type":"invalid_request_error"}}"#,
        1,
    )
    .await;
    let message = err(&server.call("embed", json!({"input": "a"})).await);
    assert!(
        message.contains("HTTP 400") && message.contains("context_length_exceeded"),
        "{message}"
    );
}

#[tokio::test]
async fn the_retrieval_tools_are_listed_only_with_their_toolset() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let tools = server.client.list_all_tools().await.unwrap();
    assert!(
        !tools
            .iter()
            .any(|t| t.name == "rerank" || t.name == "embed"),
        "off by default"
    );
    let refused = server
        .try_call("embed", json!({"input": "a"}))
        .await
        .expect_err("not listed");
    assert!(
        refused.to_string().contains("toolset `retrieval`"),
        "{refused}"
    );
    let (_fake, on) = retrieval(&[]).await;
    let tools = on.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["rerank", "embed"]);
    for tool in &tools {
        let annotations = tool.annotations.as_ref().unwrap();
        assert_eq!(annotations.read_only_hint, Some(true), "{}", tool.name);
    }
}

#[tokio::test]
async fn a_refused_discovered_key_is_read_again_once_and_the_call_succeeds() {
    let (fake, server) = retrieval(&[]).await;
    ok(&server.call("embed", json!({"input": "a"})).await);
    fake.rotate_key(DEFAULT_SUBSCRIPTION_ID, "INFKEY-ROTATED-0000-1111")
        .await;
    ok(&server
        .call("rerank", json!({"query": "a", "documents": ["a"]}))
        .await);
    let keys = fake.authorizations(&[RERANK_PATH, EMBEDDINGS_PATH]).await;
    assert_eq!(
        keys,
        [
            Some(format!("Bearer {DEFAULT_SUBSCRIPTION_KEY}")),
            Some(format!("Bearer {DEFAULT_SUBSCRIPTION_KEY}")),
            Some("Bearer INFKEY-ROTATED-0000-1111".to_owned()),
        ]
    );
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
}

#[tokio::test]
async fn a_similarity_matrix_too_large_for_the_structured_content_is_only_in_the_text() {
    let (_fake, server) = retrieval(&[("VULTR_MCP_MAX_RESULT_CHARS", "1500")]).await;
    let texts: Vec<String> = (0..12).map(|i| format!("sentence {i} about tea")).collect();
    let result = server
        .call("embed", json!({"input": texts, "dimensions": 32}))
        .await;
    let body = ok(&result);
    assert!(body.get("similarity").is_none(), "{body}");
    let note = body["note"].as_str().expect("a note");
    assert!(
        note.contains("similarity matrix of 12 texts is too large")
            && note.contains("of 12 are included"),
        "{note}"
    );
    assert!(serde_json::to_string(&body).unwrap().len() <= 1500);
    let shown = text(&result);
    assert!(
        shown.find(note).unwrap() < shown.find("Cosine similarity").unwrap(),
        "the note comes before the matrix, which the text limit may cut: {shown}"
    );
}

#[tokio::test]
async fn many_texts_are_bounded_and_a_large_set_gets_no_similarity_matrix() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_TOOLSETS", "retrieval")]).await;
    let texts = |n: usize| (0..n).map(|i| format!("text {i}")).collect::<Vec<_>>();

    let refused = err(&server.call("embed", json!({"input": texts(257)})).await);
    assert!(refused.contains("at most 256 go in one call"), "{refused}");
    let refused = err(&server
        .call("rerank", json!({"query": "q", "documents": texts(257)}))
        .await);
    assert!(refused.contains("at most 256 go in one call"), "{refused}");

    let result = server
        .call("embed", json!({"input": texts(33), "dimensions": 32}))
        .await;
    let body = text(&result);
    assert!(
        body.contains("No similarity matrix: it is shown for at most 32 texts."),
        "{body}"
    );
    assert!(ok(&result).get("similarity").is_none_or(Value::is_null));
    let result = server
        .call("embed", json!({"input": texts(32), "dimensions": 32}))
        .await;
    assert!(text(&result).contains("Cosine similarity"));
}
