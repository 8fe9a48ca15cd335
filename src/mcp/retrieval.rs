//! The `retrieval` toolset: `rerank` (documents in ranked order with their scores) and
//! `embed` (vectors, their dimensions and the cosine similarity of every pair).

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry, cancelled};
use crate::retrieval::{
    EmbedInput, Embedded, MAX_MATRIX_TEXTS, RerankInput, Reranked, RetrievalError,
};
use crate::setting;
use crate::settings::Toolset;
use crate::vultr::retrieval::{Encoding, encode_base64_f32};

/// Characters of each document shown in the ranking text.
const DOCUMENT_EXCERPT: usize = 160;

/// Arguments of `rerank`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RerankArgs {
    /// What the documents are ranked against.
    query: String,
    /// The documents to rank, as plain strings.
    documents: Vec<String>,
    /// How many of the best to return (default: all of them).
    #[serde(default)]
    top_n: Option<usize>,
    /// A rerank model (list_models with capability `rerank`); default: the catalog's only one.
    #[serde(default)]
    model: Option<String>,
}

/// What `input_type` an embedding is for.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// The text is a search query.
    SearchQuery,
    /// The text is a document to be searched.
    SearchDocument,
}

/// One text or several.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Texts {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
}

/// Arguments of `embed`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EmbedArgs {
    /// The text, or a list of texts, to embed.
    input: Texts,
    /// An embeddings model (list_models with capability `embeddings`); default: the catalog's only one.
    #[serde(default)]
    model: Option<String>,
    /// Vector length, within the model's range (list_models shows the catalog); default: the model's.
    #[serde(default)]
    dimensions: Option<u32>,
    /// What the texts are for: search_query or search_document.
    #[serde(default)]
    input_type: Option<InputType>,
    /// How the vectors are returned: float (default) or base64 (little-endian float32, about half the size).
    #[serde(default)]
    encoding_format: Option<Encoding>,
}

/// The `rerank` entry.
pub(super) fn rerank() -> ToolEntry {
    ToolEntry {
        name: "rerank",
        toolset: Toolset::Retrieval,
        description: "Rank documents (plain strings) by relevance to a query with a Vultr rerank model: the documents best first, each with its index in your list and its score, and the cost.".to_owned(),
        input_schema: input_schema::<RerankArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- rerank: order `documents` by relevance to `query` (best first, with index and score); `top_n` keeps the best few.\n".to_owned(),
        handler: |server, call| Box::pin(server.rerank(call)),
    }
}

/// The `embed` entry.
pub(super) fn embed() -> ToolEntry {
    ToolEntry {
        name: "embed",
        toolset: Toolset::Retrieval,
        description: "Embed one or more texts with a Vultr embeddings model: the vector dimensions and, for two or more texts, their cosine similarity matrix; the vectors are in the structured content (cut to the result size limit, with a note).".to_owned(),
        input_schema: input_schema::<EmbedArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- embed: vectors of `input` (one text or a list); for several texts the text shows their cosine similarity matrix, the vectors are in the structured content.\n".to_owned(),
        handler: |server, call| Box::pin(server.embed(call)),
    }
}

impl From<RetrievalError> for ToolError {
    fn from(error: RetrievalError) -> Self {
        match error {
            RetrievalError::Invalid(message) => ToolError::Invalid(message),
            RetrievalError::Model(error) => ToolError::Model(error),
            RetrievalError::Key(error) => ToolError::Key(error),
            RetrievalError::Upstream(error) => ToolError::Upstream(error),
            RetrievalError::Spend(error) => ToolError::Spend(error),
        }
    }
}

/// One ranked document as the structured result shows it.
#[derive(Serialize)]
struct RankedDocument<'a> {
    rank: usize,
    index: usize,
    score: f64,
    document: &'a str,
}

/// The structured result of `rerank`.
#[derive(Serialize)]
struct RerankResult<'a> {
    model: &'a str,
    results: Vec<RankedDocument<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<u64>,
    cost_usd: Option<f64>,
    cost_note: String,
}

/// The structured result of `embed`.
#[derive(Serialize)]
struct EmbedResult<'a> {
    model: &'a str,
    dimensions: usize,
    encoding_format: &'static str,
    /// The vectors that fit, in input order from the first.
    vectors: Vec<Value>,
    vectors_omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    similarity: Option<&'a [Vec<f64>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<u64>,
    cost_usd: Option<f64>,
    cost_note: String,
}

impl VultrServer {
    async fn rerank(&self, call: Call) -> CallToolResult {
        let Call {
            arguments,
            cancel,
            spend,
            ..
        } = call;
        let args = match decode::<RerankArgs>(arguments) {
            Ok(args) => args,
            Err(error) => return self.failure(error.into()),
        };
        let input = RerankInput {
            model: args.model,
            query: args.query,
            documents: args.documents,
            top_n: args.top_n,
        };
        let documents = input.documents.clone();
        let ranked = tokio::select! {
            ranked = self.app.retrieval.rerank(input, &spend) => ranked,
            () = cancel.cancelled() => return cancelled(),
        };
        match ranked {
            Ok(ranked) => self.render_rerank(&ranked, &documents),
            Err(error) => self.failure(error.into()),
        }
    }

    fn render_rerank(&self, ranked: &Reranked, documents: &[String]) -> CallToolResult {
        let mut text = format!(
            "{} of {} documents ranked by {} (best first); {}\n",
            ranked.results.len(),
            documents.len(),
            ranked.model,
            ranked.cost.describe()
        );
        for (rank, result) in ranked.results.iter().enumerate() {
            let document = documents.get(result.index).map_or("", String::as_str);
            let _ = writeln!(
                text,
                "{}. [index {}] score {:.4}: {}",
                rank + 1,
                result.index,
                result.score,
                excerpt(document, DOCUMENT_EXCERPT)
            );
        }
        let results = ranked
            .results
            .iter()
            .enumerate()
            .map(|(rank, r)| RankedDocument {
                rank: rank + 1,
                index: r.index,
                score: r.score,
                document: documents.get(r.index).map_or("", String::as_str),
            })
            .collect();
        self.success(
            text,
            RerankResult {
                model: &ranked.model,
                results,
                tokens: ranked.tokens,
                cost_usd: ranked.cost.usd(),
                cost_note: ranked.cost.describe(),
            },
        )
    }

    async fn embed(&self, call: Call) -> CallToolResult {
        let Call {
            arguments,
            cancel,
            spend,
            ..
        } = call;
        let args = match decode::<EmbedArgs>(arguments) {
            Ok(args) => args,
            Err(error) => return self.failure(error.into()),
        };
        let encoding = args.encoding_format.unwrap_or(Encoding::Float);
        let input = EmbedInput {
            model: args.model,
            input: match args.input {
                Texts::One(text) => vec![text],
                Texts::Many(texts) => texts,
            },
            dimensions: args.dimensions,
            input_type: args.input_type.map(|t| {
                match t {
                    InputType::SearchQuery => "search_query",
                    InputType::SearchDocument => "search_document",
                }
                .to_owned()
            }),
            encoding,
        };
        let embedded = tokio::select! {
            embedded = self.app.retrieval.embed(input, &spend) => embedded,
            () = cancel.cancelled() => return cancelled(),
        };
        match embedded {
            Ok(embedded) => self.render_embed(&embedded, encoding),
            Err(error) => self.failure(error.into()),
        }
    }

    fn render_embed(&self, embedded: &Embedded, encoding: Encoding) -> CallToolResult {
        let count = embedded.vectors.len();
        let dimensions = embedded.vectors.first().map_or(0, Vec::len);
        let mut text = format!(
            "{count} text{} embedded by {}: {dimensions} dimensions each; {}\n",
            if count == 1 { "" } else { "s" },
            embedded.model,
            embedded.cost.describe()
        );
        let limit = self.app.max_result_chars;
        // The matrix goes into the structured content when it takes at most half of it.
        let matrix_chars = embedded
            .similarity
            .as_ref()
            .map_or(0, |m| serde_json::to_string(m).map_or(0, |s| s.len()));
        let matrix_fits = matrix_chars <= limit / 2;
        let (vectors, mut note) = self.vectors_within_limit(
            embedded,
            encoding,
            if matrix_fits { matrix_chars } else { 0 },
        );
        if !matrix_fits {
            let left_out = format!(
                "The similarity matrix of {count} texts is too large for the structured content ({}): it is only in this text.",
                setting::MAX_RESULT_CHARS
            );
            note = Some(match note {
                Some(note) => format!("{note} {left_out}"),
                None => left_out,
            });
        }
        let omitted = count - vectors.len();
        match &note {
            Some(note) => {
                let _ = writeln!(text, "{note}");
            }
            None => text.push_str("The vectors are in the structured content (`vectors`).\n"),
        }
        match &embedded.similarity {
            Some(matrix) => {
                text.push_str("Cosine similarity (row i, column j = texts i and j):\n");
                text.push_str(&matrix_text(matrix));
            }
            None if count > MAX_MATRIX_TEXTS => {
                let _ = writeln!(
                    text,
                    "No similarity matrix: it is shown for at most {MAX_MATRIX_TEXTS} texts."
                );
            }
            None => {}
        }
        self.success(
            text,
            EmbedResult {
                model: &embedded.model,
                dimensions,
                encoding_format: encoding.name(),
                vectors,
                vectors_omitted: omitted,
                note,
                similarity: embedded.similarity.as_deref().filter(|_| matrix_fits),
                tokens: embedded.tokens,
                cost_usd: embedded.cost.usd(),
                cost_note: embedded.cost.describe(),
            },
        )
    }

    /// The vectors, in the encoding asked for, from the first as long as they fit the
    /// result size limit beside `matrix_chars` of similarity; a note when some are left out.
    fn vectors_within_limit(
        &self,
        embedded: &Embedded,
        encoding: Encoding,
        matrix_chars: usize,
    ) -> (Vec<Value>, Option<String>) {
        let limit = self.app.max_result_chars;
        // Room for everything but the vectors: the matrix, names, figures, the note.
        let room_for_rest = matrix_chars + 800;
        let mut budget = limit.saturating_sub(room_for_rest);
        let mut kept = Vec::new();
        for vector in &embedded.vectors {
            let value = match encoding {
                Encoding::Float => Value::from(vector.clone()),
                Encoding::Base64 => Value::from(encode_base64_f32(vector)),
            };
            let size = value.to_string().len() + 1;
            if size > budget {
                break;
            }
            budget -= size;
            kept.push(value);
        }
        let total = embedded.vectors.len();
        let note = (kept.len() < total).then(|| {
            format!(
                "Vectors cut: {} of {total} are included, the rest would pass the result size limit of {limit} characters ({}). Ask for fewer texts at once, a lower `dimensions`{}.",
                kept.len(),
                setting::MAX_RESULT_CHARS,
                match encoding {
                    Encoding::Float => ", or encoding_format base64 (about half the size)",
                    Encoding::Base64 => "",
                }
            )
        });
        (kept, note)
    }
}

/// The first `max` characters of `text` on one line, with `…` when cut.
fn excerpt(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max).collect();
    cut.push('…');
    cut
}

/// The matrix as aligned rows of three decimals.
fn matrix_text(matrix: &[Vec<f64>]) -> String {
    let mut text = String::from("     ");
    for j in 0..matrix.len() {
        let _ = write!(text, " {:>6}", format!("[{j}]"));
    }
    text.push('\n');
    for (i, row) in matrix.iter().enumerate() {
        let _ = write!(text, "{:>5}", format!("[{i}]"));
        for value in row {
            let _ = write!(text, " {value:>6.3}");
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_printed_in_aligned_rows() {
        let text = matrix_text(&[vec![1.0, 0.25], vec![0.25, 1.0]]);
        assert_eq!(
            text,
            "         [0]    [1]\n  [0]  1.000  0.250\n  [1]  0.250  1.000\n"
        );
    }

    #[test]
    fn excerpts_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(excerpt("a\n b", 10), "a b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
