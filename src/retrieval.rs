//! Rerank and embeddings as a service: the model of the kind picked from the catalog, the
//! arguments checked against its parameters before anything is sent, the call, its cost,
//! and for embeddings the cosine similarity of every pair of inputs.

use std::sync::Arc;

use crate::keys::{InferenceKeys, KeyError};
use crate::kind_call::{Cost, check_choice, check_number, estimated_tokens, quote, with_key_held};
use crate::models::{ModelKind, Models, PickError};
use crate::spend::{CallSpend, SpendError, Used};
use crate::vultr::error::VultrError;
use crate::vultr::inference::InferenceClient;
use crate::vultr::retrieval::{self, EmbeddingsRequest, Encoding, Ranked, RerankRequest};

/// Why a rerank or embeddings call failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// The arguments make no sense for the model; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// No model of the kind could be chosen.
    #[error(transparent)]
    Model(#[from] PickError),
    /// The call was not allowed to spend.
    #[error(transparent)]
    Spend(#[from] SpendError),
    /// No inference key could be had.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Vultr failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
}

/// What to rerank.
#[derive(Debug, Clone)]
pub struct RerankInput {
    /// The model, or the catalog's only rerank model.
    pub model: Option<String>,
    /// What the documents are ranked against.
    pub query: String,
    /// The documents.
    pub documents: Vec<String>,
    /// How many of the best to keep (all when absent, within the catalog's maximum).
    pub top_n: Option<usize>,
}

/// Documents ranked.
#[derive(Debug, Clone)]
pub struct Reranked {
    /// The model that ranked them.
    pub model: String,
    /// The best `top_n`, best first.
    pub results: Vec<Ranked>,
    /// Tokens Vultr counted, when it said.
    pub tokens: Option<u64>,
    /// What it cost.
    pub cost: Cost,
}

/// What to embed.
#[derive(Debug, Clone)]
pub struct EmbedInput {
    /// The model, or the catalog's only embeddings model.
    pub model: Option<String>,
    /// The texts.
    pub input: Vec<String>,
    /// The vector length asked for.
    pub dimensions: Option<u32>,
    /// `search_query` or `search_document`.
    pub input_type: Option<String>,
    /// How the vectors are asked for on the wire (and shown).
    pub encoding: Encoding,
}

/// Texts embedded.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The model that embedded them.
    pub model: String,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The cosine similarity of every pair, for 2 to [`MAX_MATRIX_TEXTS`] inputs.
    pub similarity: Option<Vec<Vec<f64>>>,
    /// Tokens Vultr counted, when it said.
    pub tokens: Option<u64>,
    /// What it cost.
    pub cost: Cost,
}

/// Rerank and embeddings calls, built once by `App`.
pub struct Retrieval {
    models: Models,
    keys: Arc<InferenceKeys>,
    inference: InferenceClient,
}

impl Retrieval {
    /// The service over the catalog of `models`, with keys from `keys`.
    pub fn new(models: Models, keys: Arc<InferenceKeys>, inference: InferenceClient) -> Self {
        Self {
            models,
            keys,
            inference,
        }
    }

    /// Ranks `input.documents` against `input.query`.
    pub async fn rerank(
        &self,
        input: RerankInput,
        spend: &CallSpend,
    ) -> Result<Reranked, RetrievalError> {
        let query = input.query.trim();
        if query.is_empty() {
            return Err(invalid(
                "`query` is empty: give the text the documents are ranked against",
            ));
        }
        check_texts("documents", &input.documents)?;
        let model = self
            .models
            .pick(ModelKind::Rerank, input.model.as_deref())
            .await?;
        let top_n = match input.top_n {
            Some(0) => return Err(invalid("`top_n` must be at least 1")),
            Some(n) => {
                check_number(&model, "top_n", n as f64).map_err(RetrievalError::Invalid)?;
                n
            }
            None => model
                .spec
                .parameter("top_n")
                .and_then(|p| p.max)
                .map_or(usize::MAX, |max| max as usize),
        }
        .min(input.documents.len());
        let request = RerankRequest {
            model: &model.id,
            query,
            documents: &input.documents,
            top_n,
            return_documents: false,
        };
        let request = &request;
        let tokens = estimated_tokens(
            std::iter::once(query).chain(input.documents.iter().map(String::as_str)),
        );
        let mut hold = spend.hold(quote(&model, "token", tokens)).await?;
        let mut reply =
            with_key_held::<_, RetrievalError, _, _>(&self.keys, &mut hold, |key| async move {
                retrieval::rerank(&self.inference, &key, request).await
            })
            .await?;
        reply.results.truncate(top_n);
        let cost = Cost::of(&model, "token", reply.tokens.map(|t| t as f64));
        hold.settle(Used {
            usd: cost.usd(),
            prompt_tokens: reply.tokens,
            completion_tokens: None,
        })
        .await;
        Ok(Reranked {
            cost,
            model: model.id,
            results: reply.results,
            tokens: reply.tokens,
        })
    }

    /// Embeds `input.input`, with the similarity of every pair.
    pub async fn embed(
        &self,
        input: EmbedInput,
        spend: &CallSpend,
    ) -> Result<Embedded, RetrievalError> {
        check_texts("input", &input.input)?;
        let model = self
            .models
            .pick(ModelKind::Embeddings, input.model.as_deref())
            .await?;
        if let Some(dimensions) = input.dimensions {
            check_number(&model, "dimensions", f64::from(dimensions))
                .map_err(RetrievalError::Invalid)?;
        }
        if let Some(input_type) = &input.input_type {
            check_choice(&model, "input_type", input_type).map_err(RetrievalError::Invalid)?;
        }
        check_choice(&model, "encoding_format", input.encoding.name())
            .map_err(RetrievalError::Invalid)?;
        let request = EmbeddingsRequest {
            model: &model.id,
            input: &input.input,
            dimensions: input.dimensions,
            input_type: input.input_type.as_deref(),
            encoding_format: input.encoding,
        };
        let request = &request;
        let tokens = estimated_tokens(input.input.iter().map(String::as_str));
        let mut hold = spend.hold(quote(&model, "token", tokens)).await?;
        let reply =
            with_key_held::<_, RetrievalError, _, _>(&self.keys, &mut hold, |key| async move {
                retrieval::embeddings(&self.inference, &key, request).await
            })
            .await?;
        let cost = Cost::of(&model, "token", reply.tokens.map(|t| t as f64));
        hold.settle(Used {
            usd: cost.usd(),
            prompt_tokens: reply.tokens,
            completion_tokens: None,
        })
        .await;
        let similarity = (2..=MAX_MATRIX_TEXTS)
            .contains(&reply.vectors.len())
            .then(|| similarity_matrix(&reply.vectors));
        Ok(Embedded {
            cost,
            model: model.id,
            vectors: reply.vectors,
            similarity,
            tokens: reply.tokens,
        })
    }
}

fn invalid(message: &str) -> RetrievalError {
    RetrievalError::Invalid(message.to_owned())
}

/// Refuses no texts, or a blank one, naming it.
fn check_texts(field: &str, texts: &[String]) -> Result<(), RetrievalError> {
    if texts.is_empty() {
        return Err(RetrievalError::Invalid(format!(
            "`{field}` is empty: give at least one text"
        )));
    }
    if texts.len() > MAX_TEXTS {
        return Err(RetrievalError::Invalid(format!(
            "`{field}` has {} texts; at most {MAX_TEXTS} go in one call: split them over several calls",
            texts.len()
        )));
    }
    match texts.iter().position(|t| t.trim().is_empty()) {
        Some(i) => Err(RetrievalError::Invalid(format!(
            "`{field}[{i}]` is blank: every text must have content"
        ))),
        None => Ok(()),
    }
}

/// Most texts one rerank or embed call takes.
pub const MAX_TEXTS: usize = 256;

/// Most texts whose similarity matrix an embed call computes (it grows with the square).
pub const MAX_MATRIX_TEXTS: usize = 32;

/// The cosine similarity of every pair of `vectors` (1 on the diagonal of non-zero ones).
pub fn similarity_matrix(vectors: &[Vec<f32>]) -> Vec<Vec<f64>> {
    vectors
        .iter()
        .map(|a| vectors.iter().map(|b| cosine(a, b)).collect())
        .collect()
}

/// The cosine of the angle between `a` and `b`; 0 when either is zero (or lengths differ).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    dot / (aa.sqrt() * bb.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_similarity_of_known_vectors() {
        let cases: [(&[f32], &[f32], f64); 5] = [
            (&[1.0, 0.0], &[1.0, 0.0], 1.0),
            (&[1.0, 0.0], &[0.0, 2.0], 0.0),
            (&[1.0, 1.0], &[-1.0, -1.0], -1.0),
            (&[3.0, 4.0], &[4.0, 3.0], 24.0 / 25.0),
            (&[0.0, 0.0], &[1.0, 0.0], 0.0),
        ];
        for (a, b, expected) in cases {
            assert!(
                (cosine(a, b) - expected).abs() < 1e-9,
                "{a:?}·{b:?} = {}",
                cosine(a, b)
            );
        }
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0, "lengths differ");
    }

    #[test]
    fn the_matrix_is_symmetric_with_ones_on_the_diagonal() {
        let vectors = vec![vec![1.0, 2.0], vec![2.0, 1.0], vec![0.5, 0.5]];
        let matrix = similarity_matrix(&vectors);
        for (i, row) in matrix.iter().enumerate() {
            assert!((row[i] - 1.0).abs() < 1e-9);
            for (j, value) in row.iter().enumerate() {
                assert_eq!(*value, matrix[j][i]);
            }
        }
    }

    #[test]
    fn no_texts_or_a_blank_one_is_refused_naming_it() {
        assert!(check_texts("input", &["a".into()]).is_ok());
        let empty = check_texts("input", &[]).unwrap_err().to_string();
        assert!(empty.contains("`input` is empty"), "{empty}");
        let blank = check_texts("documents", &["a".into(), " ".into()])
            .unwrap_err()
            .to_string();
        assert!(blank.contains("`documents[1]` is blank"), "{blank}");
    }
}
