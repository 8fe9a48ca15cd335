//! Rerank (`POST /rerank`) and embeddings (`POST /embeddings`): the requests, and the one
//! lenient reading of each answer. Neither answer is documented by Vultr: what is read
//! here is a guess (Cohere/Jina-style rerank results, OpenAI-style embeddings), kept in
//! [`parse_rerank`] and [`parse_embeddings`] so a live check changes only them.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Api, VultrError, snippet};
use super::inference::{InferenceClient, Patience};
use crate::secret::ApiKey;

/// The body of `POST /rerank`.
#[derive(Debug, Serialize)]
pub struct RerankRequest<'a> {
    /// The rerank model.
    pub model: &'a str,
    /// What the documents are ranked against.
    pub query: &'a str,
    /// The documents, as plain strings.
    pub documents: &'a [String],
    /// How many of the best to return.
    pub top_n: usize,
    /// Whether to echo each document's text.
    pub return_documents: bool,
}

/// One ranked document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// Its position in the documents sent (0-based).
    pub index: usize,
    /// Its relevance score (higher is more relevant).
    pub score: f64,
}

/// What `POST /rerank` answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankReply {
    /// The documents in ranked order, best first.
    pub results: Vec<Ranked>,
    /// Tokens counted, when the answer says.
    pub tokens: Option<u64>,
}

/// How embeddings are asked to be encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Arrays of numbers.
    Float,
    /// Base64 of little-endian `f32`s.
    Base64,
}

impl Encoding {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Float => "float",
            Encoding::Base64 => "base64",
        }
    }
}

/// The body of `POST /embeddings`.
#[derive(Debug, Serialize)]
pub struct EmbeddingsRequest<'a> {
    /// The embeddings model.
    pub model: &'a str,
    /// The texts.
    pub input: &'a [String],
    /// The vector length asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// `search_query` or `search_document`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_type: Option<&'a str>,
    /// How the vectors come back.
    pub encoding_format: Encoding,
}

/// What `POST /embeddings` answered: one vector per input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsReply {
    /// The vectors, decoded to `f32` whatever the wire encoding.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens counted, when the answer says.
    pub tokens: Option<u64>,
}

/// `POST /rerank`.
pub async fn rerank(
    client: &InferenceClient,
    key: &ApiKey,
    request: &RerankRequest<'_>,
) -> Result<RerankReply, VultrError> {
    let body = client
        .post_json(key, "/rerank", request, Patience::Long)
        .await?;
    parse_rerank(&body, request.documents.len()).map_err(|problem| unexpected(&body, &problem))
}

/// `POST /embeddings`.
pub async fn embeddings(
    client: &InferenceClient,
    key: &ApiKey,
    request: &EmbeddingsRequest<'_>,
) -> Result<EmbeddingsReply, VultrError> {
    let body = client
        .post_json(key, "/embeddings", request, Patience::Long)
        .await?;
    parse_embeddings(&body, request.input.len()).map_err(|problem| unexpected(&body, &problem))
}

/// A success body of a shape not understood.
fn unexpected(body: &Value, problem: &str) -> VultrError {
    VultrError::Decode {
        api: Api::Inference,
        status: 200,
        detail: problem.to_owned(),
        snippet: snippet(&body.to_string(), 200),
    }
}

/// Reads a rerank answer: `results` or `data` (or a bare array) of `{index,
/// relevance_score | score}`, sorted best first whatever order they came in. `documents`
/// is how many were sent: an index past it is refused.
pub fn parse_rerank(body: &Value, documents: usize) -> Result<RerankReply, String> {
    let entries = body
        .get("results")
        .or_else(|| body.get("data"))
        .unwrap_or(body)
        .as_array()
        .ok_or("no `results` or `data` array")?;
    let mut results = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let index = entry
            .get("index")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("result {i} has no `index`"))?;
        let index = usize::try_from(index)
            .ok()
            .filter(|&n| n < documents)
            .ok_or_else(|| format!("result {i} names document {index} of {documents}"))?;
        let score = ["relevance_score", "score"]
            .iter()
            .find_map(|name| entry.get(*name).and_then(Value::as_f64))
            .ok_or_else(|| format!("result {i} has no `relevance_score` or `score`"))?;
        results.push(Ranked { index, score });
    }
    results.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(RerankReply {
        results,
        tokens: tokens(body),
    })
}

/// Reads an embeddings answer: `data` (or `embeddings`, or a bare array) of `{embedding,
/// index}` (or of bare vectors), each embedding an array of numbers or base64 of
/// little-endian `f32`s; put in `index` order. `inputs` is how many texts were sent:
/// the answer must have one vector for each.
pub fn parse_embeddings(body: &Value, inputs: usize) -> Result<EmbeddingsReply, String> {
    let entries = body
        .get("data")
        .or_else(|| body.get("embeddings"))
        .unwrap_or(body)
        .as_array()
        .ok_or("no `data` array")?;
    let mut indexed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let index = entry
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(i);
        let embedding = entry.get("embedding").unwrap_or(entry);
        let vector = vector(embedding).map_err(|problem| format!("embedding {i}: {problem}"))?;
        indexed.push((index, vector));
    }
    indexed.sort_by_key(|(index, _)| *index);
    if indexed.len() != inputs
        || indexed
            .iter()
            .enumerate()
            .any(|(i, (index, _))| i != *index)
    {
        return Err(format!(
            "{} embeddings for {inputs} inputs (indexes {:?})",
            indexed.len(),
            indexed.iter().map(|(index, _)| index).collect::<Vec<_>>()
        ));
    }
    Ok(EmbeddingsReply {
        vectors: indexed.into_iter().map(|(_, vector)| vector).collect(),
        tokens: tokens(body),
    })
}

/// One embedding: an array of numbers, or base64 of little-endian `f32`s.
fn vector(embedding: &Value) -> Result<Vec<f32>, String> {
    match embedding {
        Value::Array(numbers) => numbers
            .iter()
            .map(|n| {
                n.as_f64()
                    .map(|f| f as f32)
                    .ok_or("a value is not a number")
            })
            .collect::<Result<_, _>>()
            .map_err(str::to_owned),
        Value::String(encoded) => decode_base64_f32(encoded),
        _ => Err("neither an array of numbers nor a base64 string".to_owned()),
    }
}

/// Base64 of little-endian `f32`s, decoded.
pub fn decode_base64_f32(encoded: &str) -> Result<Vec<f32>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "{} bytes are not a whole number of f32s",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// `vector` as base64 of little-endian `f32`s (what `encoding_format: base64` means).
pub fn encode_base64_f32(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The tokens an answer counted: `usage.total_tokens`, `usage.prompt_tokens`,
/// `usage.tokens` or `meta.billed_units.input_tokens`, the first present.
fn tokens(body: &Value) -> Option<u64> {
    let usage = body.get("usage");
    ["total_tokens", "prompt_tokens", "tokens", "input_tokens"]
        .iter()
        .find_map(|name| usage?.get(*name)?.as_u64())
        .or_else(|| body.pointer("/meta/billed_units/input_tokens")?.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rerank_answers_are_read_from_results_or_data_and_sorted() {
        let cases = [
            json!({"results":[{"index":1,"relevance_score":0.9},{"index":0,"relevance_score":0.1}],
                   "usage":{"total_tokens":12}}),
            json!({"data":[{"index":0,"score":0.1},{"index":1,"score":0.9,"document":{"text":"b"}}],
                   "meta":{"billed_units":{"input_tokens":12}}}),
            json!([{"index":0,"score":0.1},{"index":1,"score":0.9}]),
        ];
        for body in cases {
            let reply = parse_rerank(&body, 2).unwrap();
            assert_eq!(
                reply.results,
                [
                    Ranked {
                        index: 1,
                        score: 0.9
                    },
                    Ranked {
                        index: 0,
                        score: 0.1
                    }
                ],
                "{body}"
            );
        }
        assert_eq!(
            parse_rerank(&json!({"results":[],"usage":{"total_tokens":12}}), 2)
                .unwrap()
                .tokens,
            Some(12)
        );
    }

    #[test]
    fn rerank_answers_of_another_shape_are_refused_saying_why() {
        let cases = [
            (json!({"ranking":[]}), "no `results`"),
            (json!({"results":[{"score":1.0}]}), "no `index`"),
            (
                json!({"results":[{"index":5,"score":1.0}]}),
                "document 5 of 2",
            ),
            (json!({"results":[{"index":0}]}), "no `relevance_score`"),
        ];
        for (body, expected) in cases {
            let problem = parse_rerank(&body, 2).unwrap_err();
            assert!(problem.contains(expected), "{body}: {problem}");
        }
    }

    #[test]
    fn embeddings_are_read_as_floats_or_base64_in_index_order() {
        let encoded = encode_base64_f32(&[0.5, -1.0]);
        let body = json!({"object":"list","data":[
            {"object":"embedding","index":1,"embedding":encoded},
            {"object":"embedding","index":0,"embedding":[1.0, 0.25]}],
            "usage":{"prompt_tokens":7,"total_tokens":7}});
        let reply = parse_embeddings(&body, 2).unwrap();
        assert_eq!(reply.vectors, [vec![1.0, 0.25], vec![0.5, -1.0]]);
        assert_eq!(reply.tokens, Some(7));
        let bare = json!({"embeddings":[[1.0],[2.0]]});
        assert_eq!(
            parse_embeddings(&bare, 2).unwrap().vectors,
            [vec![1.0], vec![2.0]]
        );
    }

    #[test]
    fn embeddings_that_do_not_match_the_inputs_are_refused() {
        let cases = [
            (
                json!({"data":[{"embedding":[1.0]}]}),
                2,
                "1 embeddings for 2",
            ),
            (json!({"data":[{"embedding":"@@"}]}), 1, "not base64"),
            (json!({"data":[{"embedding":"AAA="}]}), 1, "whole number"),
            (json!({"data":[{"embedding":[1, "x"]}]}), 1, "not a number"),
            (
                json!({"data":[{"index":0,"embedding":[1.0]},{"index":0,"embedding":[1.0]}]}),
                2,
                "indexes",
            ),
            (json!({"vectors":[]}), 0, "no `data`"),
        ];
        for (body, inputs, expected) in cases {
            let problem = parse_embeddings(&body, inputs).unwrap_err();
            assert!(problem.contains(expected), "{body}: {problem}");
        }
    }

    #[test]
    fn base64_round_trips_little_endian_f32() {
        let vector = [1.0f32, -2.5, 3.25e-3];
        assert_eq!(
            decode_base64_f32(&encode_base64_f32(&vector)).unwrap(),
            vector
        );
        assert_eq!(
            encode_base64_f32(&[1.0]),
            "AACAPw==",
            "1.0f32 little-endian"
        );
    }
}
