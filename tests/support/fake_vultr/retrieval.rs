//! The fake's rerank (`POST /v1/rerank`) and embeddings (`POST /v1/embeddings`).
//! Vultr documents neither answer; the fake speaks the guessed shapes the bridge reads
//! (`results` of `{index, relevance_score}`; OpenAI `data` of `{embedding, index}` with
//! `usage`), and, after [`FakeVultr::answer_retrieval_leniently`], the other shapes the
//! bridge accepts (`data` of `{index, score}`, 201, embeddings out of order).
//!
//! Deterministic: a document's rerank score is the share of the query's words it holds;
//! an embedding counts the text's words into buckets chosen by a hash of each word (so
//! texts sharing words are similar), `dimensions` long (default [`DEFAULT_DIMENSIONS`]),
//! base64 of little-endian f32 when `encoding_format` is `base64`.

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{FakeVultr, Shared, bearer, inference_error, json_response, lock};

/// Path of the inference API's rerank.
pub const RERANK_PATH: &str = "/v1/rerank";
/// Path of the inference API's embeddings.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";
/// Length of a fake embedding when `dimensions` is not sent.
pub const DEFAULT_DIMENSIONS: usize = 64;

/// Priority of the lenient variants: above the normal routes, below scripted failures.
const PRIORITY_VARIANT: u8 = 3;

/// Which shape the answers take.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `results` of `{index, relevance_score}`, embeddings in order, 200.
    Usual,
    /// `data` of `{index, score}`, embeddings in reverse order, 201.
    Lenient,
}

/// Whether `request` carries a key the fake's inference API accepts.
pub(super) fn authorized(state: &Shared, request: &Request) -> bool {
    let state = lock(state);
    bearer(request).is_some_and(|key| {
        state.subscriptions.iter().any(|s| s.api_key == key)
            || state.extra_inference_keys.iter().any(|k| k == key)
    })
}

/// The request's JSON body and its `model`, checked: the key, JSON, a known model.
pub(super) fn checked_body(
    state: &Shared,
    request: &Request,
) -> Result<Value, Box<ResponseTemplate>> {
    if !authorized(state, request) {
        return Err(Box::new(inference_error(
            401,
            "Invalid API key",
            json!(401),
            "authentication_error",
        )));
    }
    let body: Value = serde_json::from_slice(&request.body).map_err(|_| {
        Box::new(inference_error(
            400,
            "Request body is not valid JSON",
            json!(400),
            "invalid_request_error",
        ))
    })?;
    let model = body["model"].as_str().unwrap_or_default();
    if !lock(state).model_ids.iter().any(|id| id == model) {
        return Err(Box::new(inference_error(
            404,
            &format!("The model `{model}` does not exist"),
            json!("model_not_found"),
            "invalid_request_error",
        )));
    }
    Ok(body)
}

/// The lower-case words of `text`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// FNV-1a, stable across runs and platforms.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The share of `query`'s distinct words found in `document`.
pub fn overlap_score(query: &str, document: &str) -> f64 {
    let mut query = words(query);
    query.sort();
    query.dedup();
    if query.is_empty() {
        return 0.0;
    }
    let document = words(document);
    let shared = query.iter().filter(|w| document.contains(w)).count();
    shared as f64 / query.len() as f64
}

/// The fake embedding of `text`: word counts in hashed buckets, `dimensions` long.
pub fn fake_embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0.0f32; dimensions.max(1)];
    for word in words(text) {
        let bucket = (fnv(&word) % vector.len() as u64) as usize;
        vector[bucket] += 1.0;
    }
    vector
}

/// A rough token count: one per word.
fn tokens(texts: &[&str]) -> usize {
    texts.iter().map(|t| words(t).len()).sum::<usize>().max(1)
}

/// Answers `POST /v1/rerank`.
struct Rerank {
    state: Shared,
    shape: Shape,
}

impl Respond for Rerank {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = match checked_body(&self.state, request) {
            Ok(body) => body,
            Err(refusal) => return *refusal,
        };
        let query = body["query"].as_str().unwrap_or_default();
        let Some(documents) = body["documents"].as_array() else {
            return inference_error(
                400,
                "`documents` must be an array of strings",
                json!(400),
                "invalid_request_error",
            );
        };
        let documents: Vec<&str> = documents.iter().filter_map(Value::as_str).collect();
        let mut scored: Vec<(usize, f64)> = documents
            .iter()
            .enumerate()
            .map(|(i, d)| (i, overlap_score(query, d)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top_n = body["top_n"].as_u64().map_or(scored.len(), |n| n as usize);
        scored.truncate(top_n);
        let mut texts = documents.clone();
        texts.push(query);
        let usage = json!({"total_tokens": tokens(&texts)});
        match self.shape {
            Shape::Usual => {
                let results: Vec<Value> = scored
                    .iter()
                    .map(|(i, s)| json!({"index": i, "relevance_score": s, "document": {"text": documents[*i]}}))
                    .collect();
                json_response(
                    200,
                    json!({"id": "rerank-fake", "model": body["model"], "results": results, "usage": usage}),
                )
            }
            Shape::Lenient => {
                // Worst first: the bridge sorts by score whatever the order.
                let data: Vec<Value> = scored
                    .iter()
                    .rev()
                    .map(|(i, s)| json!({"index": i, "score": s}))
                    .collect();
                json_response(201, json!({"data": data, "usage": usage}))
            }
        }
    }
}

/// Answers `POST /v1/embeddings`.
struct Embeddings {
    state: Shared,
    shape: Shape,
}

impl Respond for Embeddings {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = match checked_body(&self.state, request) {
            Ok(body) => body,
            Err(refusal) => return *refusal,
        };
        let inputs: Vec<&str> = match &body["input"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => {
                return inference_error(
                    400,
                    "`input` must be a string or an array of strings",
                    json!(400),
                    "invalid_request_error",
                );
            }
        };
        let dimensions = body["dimensions"]
            .as_u64()
            .map_or(DEFAULT_DIMENSIONS, |d| d as usize);
        let base64 = body["encoding_format"].as_str() == Some("base64");
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let vector = fake_embedding(text, dimensions);
                let embedding = if base64 {
                    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(vector)
                };
                json!({"object": "embedding", "index": i, "embedding": embedding})
            })
            .collect();
        let used = tokens(&inputs);
        let status = match self.shape {
            Shape::Usual => 200,
            Shape::Lenient => {
                data.reverse();
                201
            }
        };
        json_response(
            status,
            json!({"object": "list", "data": data, "model": body["model"],
                   "usage": {"prompt_tokens": used, "total_tokens": used}}),
        )
    }
}

/// Mounts both routes, answering in the usual shape.
pub(super) async fn mount(server: &MockServer, state: &Shared, priority: u8) {
    mount_shape(server, state, priority, Shape::Usual).await;
}

async fn mount_shape(server: &MockServer, state: &Shared, priority: u8, shape: Shape) {
    Mock::given(method("POST"))
        .and(path(RERANK_PATH))
        .respond_with(Rerank {
            state: state.clone(),
            shape,
        })
        .with_priority(priority)
        .named(format!("inference rerank ({shape:?})"))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(EMBEDDINGS_PATH))
        .respond_with(Embeddings {
            state: state.clone(),
            shape,
        })
        .with_priority(priority)
        .named(format!("inference embeddings ({shape:?})"))
        .mount(server)
        .await;
}

impl FakeVultr {
    /// From now on rerank answers `data` of `{index, score}` worst first, embeddings come
    /// in reverse order, and both with 201: shapes the bridge must accept too.
    pub async fn answer_retrieval_leniently(&self) {
        mount_shape(&self.server, &self.state, PRIORITY_VARIANT, Shape::Lenient).await;
    }

    /// JSON bodies of every request to `path` so far (e.g. [`RERANK_PATH`]).
    pub async fn posted_bodies(&self, path: &str) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .filter_map(|r| r.body)
            .collect()
    }
}
