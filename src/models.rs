//! The model catalog as a service: every model, or those matching a query and a
//! capability, read with whatever inference key is at hand (none is needed).

use std::sync::Arc;

use serde::Deserialize;

use crate::catalog::ModelCatalog;
use crate::keys::InferenceKeys;
use crate::vultr::error::VultrError;
use crate::vultr::models::Model;

/// What a model can do, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Outputs text (chat_completion works).
    Chat,
    /// Chat with tool calling.
    Tools,
    /// Text output that can stream.
    Streaming,
    /// Accepts reasoning_effort.
    Reasoning,
    /// Embeddings.
    Embeddings,
    /// Text to speech.
    Speech,
    /// Speech to text.
    Transcription,
    /// Image generation.
    Image,
    /// Video generation.
    Video,
    /// Reranking.
    Rerank,
}

impl Capability {
    /// Whether `model` can do this.
    pub fn matches(self, model: &Model) -> bool {
        let outputs = |kind: &str| model.outputs.iter().any(|o| o == kind);
        match self {
            Capability::Chat => model.is_chat(),
            Capability::Tools => model.is_chat() && model.tools == Some(true),
            Capability::Streaming => model.is_chat() && model.streaming == Some(true),
            Capability::Reasoning => model
                .reasoning_efforts
                .as_ref()
                .is_some_and(|e| !e.is_empty()),
            Capability::Embeddings => outputs("embeddings"),
            Capability::Speech => outputs("speech") || outputs("audio"),
            Capability::Transcription => outputs("transcription"),
            Capability::Image => outputs("image"),
            Capability::Video => outputs("video"),
            Capability::Rerank => outputs("rerank"),
        }
    }
}

/// A kind of model other than chat, each served by its own tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Embeddings (`embed`).
    Embeddings,
    /// Reranking (`rerank`).
    Rerank,
    /// Text to speech (`speak`, `list_voices`).
    Speech,
    /// Speech to text (`transcribe`).
    Transcription,
    /// Image generation (`generate_image`).
    Image,
}

impl ModelKind {
    /// The catalog's output type of this kind.
    pub fn output(self) -> &'static str {
        match self {
            ModelKind::Embeddings => "embeddings",
            ModelKind::Rerank => "rerank",
            ModelKind::Speech => "speech",
            ModelKind::Transcription => "transcription",
            ModelKind::Image => "image",
        }
    }

    /// The matching `capability` of `list_models`.
    fn capability(self) -> Capability {
        match self {
            ModelKind::Embeddings => Capability::Embeddings,
            ModelKind::Rerank => Capability::Rerank,
            ModelKind::Speech => Capability::Speech,
            ModelKind::Transcription => Capability::Transcription,
            ModelKind::Image => Capability::Image,
        }
    }

    /// A readable name: "text-to-speech", "image generation", ...
    pub fn describe(self) -> &'static str {
        match self {
            ModelKind::Embeddings => "embeddings",
            ModelKind::Rerank => "rerank",
            ModelKind::Speech => "text-to-speech",
            ModelKind::Transcription => "transcription",
            ModelKind::Image => "image generation",
        }
    }
}

/// Why no model of a kind could be chosen for a call.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// The catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] VultrError),
    /// The catalog offers no model of the kind.
    #[error(
        "the Vultr catalog offers no {kind} model to this account, so this tool cannot run; list_models with capability `{capability}` shows when one appears",
        kind = .kind.describe(), capability = .kind.output()
    )]
    NoneOfKind {
        /// The kind asked for.
        kind: ModelKind,
    },
    /// No model was named and the catalog has several of the kind.
    #[error(
        "the catalog has several {kind} models: {candidates}; name one as `model`",
        kind = .kind.describe(), candidates = .candidates.join(", ")
    )]
    Ambiguous {
        /// The kind asked for.
        kind: ModelKind,
        /// Their ids.
        candidates: Vec<String>,
    },
    /// The model named is not in the catalog.
    #[error(
        "unknown model `{id}`: the catalog's {kind} models are {candidates}",
        kind = .kind.describe(), candidates = candidates_or_none(.candidates)
    )]
    Unknown {
        /// The id asked for.
        id: String,
        /// The kind asked for.
        kind: ModelKind,
        /// The ids of the kind.
        candidates: Vec<String>,
    },
    /// The model named is of another kind.
    #[error(
        "`{id}` is not a {kind} model (it outputs {outputs}); the catalog's {kind} models are {candidates}",
        kind = .kind.describe(), outputs = .outputs.join(", "), candidates = candidates_or_none(.candidates)
    )]
    WrongKind {
        /// The id asked for.
        id: String,
        /// What it outputs.
        outputs: Vec<String>,
        /// The kind asked for.
        kind: ModelKind,
        /// The ids of the kind.
        candidates: Vec<String>,
    },
}

fn candidates_or_none(candidates: &[String]) -> String {
    if candidates.is_empty() {
        "none (list_models shows the catalog)".to_owned()
    } else {
        candidates.join(", ")
    }
}

/// Which models to find.
#[derive(Debug, Default)]
pub struct ModelQuery {
    /// Case-insensitive substring of the id or name; blank matches every model.
    pub text: Option<String>,
    /// Only models that can do this.
    pub capability: Option<Capability>,
}

/// The models found, and how many the catalog has.
pub struct Found {
    catalog: Arc<Vec<Model>>,
    matching: Vec<usize>,
}

impl Found {
    /// The models that match, in catalog order.
    pub fn models(&self) -> Vec<&Model> {
        self.matching.iter().map(|&i| &self.catalog[i]).collect()
    }

    /// How many models the catalog has in all.
    pub fn total(&self) -> usize {
        self.catalog.len()
    }
}

/// The live catalog, cached, read with the key at hand.
pub struct Models {
    keys: Arc<InferenceKeys>,
    catalog: Arc<ModelCatalog>,
}

impl Models {
    /// The models of `catalog`, read with a key of `keys` when one is at hand.
    pub fn new(keys: Arc<InferenceKeys>, catalog: Arc<ModelCatalog>) -> Self {
        Self { keys, catalog }
    }

    /// The model of `kind` a call runs on: `asked` when it is one, else the catalog's only
    /// model of the kind (ready ones first); otherwise an error naming the candidates.
    pub async fn pick(&self, kind: ModelKind, asked: Option<&str>) -> Result<Model, PickError> {
        let key = self.keys.at_hand().await;
        let catalog = self.catalog.models(key.as_ref()).await?;
        choose(&catalog, kind, asked)
    }

    /// The models matching `query`.
    pub async fn find(&self, query: &ModelQuery) -> Result<Found, VultrError> {
        let key = self.keys.at_hand().await;
        let catalog = self.catalog.models(key.as_ref()).await?;
        let text = query
            .text
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let matching = catalog
            .iter()
            .enumerate()
            .filter(|(_, m)| query.capability.is_none_or(|c| c.matches(m)))
            .filter(|(_, m)| {
                text.as_deref().is_none_or(|q| {
                    m.id.to_lowercase().contains(q)
                        || m.name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase().contains(q))
                })
            })
            .map(|(i, _)| i)
            .collect();
        Ok(Found { catalog, matching })
    }
}

/// [`Models::pick`] over a catalog already read.
fn choose(catalog: &[Model], kind: ModelKind, asked: Option<&str>) -> Result<Model, PickError> {
    let of_kind: Vec<&Model> = catalog
        .iter()
        .filter(|m| kind.capability().matches(m))
        .collect();
    let candidates = || of_kind.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    match asked.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => match catalog.iter().find(|m| m.id == id) {
            Some(model) if kind.capability().matches(model) => Ok(model.clone()),
            Some(model) => Err(PickError::WrongKind {
                id: id.to_owned(),
                outputs: model.outputs.clone(),
                kind,
                candidates: candidates(),
            }),
            None => Err(PickError::Unknown {
                id: id.to_owned(),
                kind,
                candidates: candidates(),
            }),
        },
        None => {
            let ready: Vec<&Model> = of_kind.iter().copied().filter(|m| m.ready).collect();
            match (ready.as_slice(), of_kind.as_slice()) {
                ([only], _) | ([], [only]) => Ok((*only).clone()),
                (_, []) => Err(PickError::NoneOfKind { kind }),
                _ => Err(PickError::Ambiguous {
                    kind,
                    candidates: candidates(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vultr::models::parse_catalog;
    use serde_json::json;

    fn catalog() -> Vec<Model> {
        parse_catalog(&json!([
            {"id":"chat","output_modalities":[{"type":"text"}]},
            {"id":"tts","output_modalities":[{"type":"speech"}]},
            {"id":"rerank-a","output_modalities":[{"type":"rerank"}]},
            {"id":"rerank-b","output_modalities":[{"type":"rerank"}]},
            {"id":"img-old","is_ready":false,"output_modalities":[{"type":"image"}]},
            {"id":"img","output_modalities":[{"type":"image"}]},
        ]))
        .unwrap()
    }

    #[test]
    fn without_a_model_the_only_one_of_the_kind_is_used() {
        let model = choose(&catalog(), ModelKind::Speech, None).unwrap();
        assert_eq!(model.id, "tts");
        let model = choose(&catalog(), ModelKind::Image, Some(" ")).unwrap();
        assert_eq!(model.id, "img", "the only ready one");
    }

    #[test]
    fn several_of_the_kind_are_listed_and_none_is_named_as_missing() {
        let error = choose(&catalog(), ModelKind::Rerank, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the catalog has several rerank models: rerank-a, rerank-b; name one as `model`"
        );
        let error = choose(&catalog(), ModelKind::Transcription, None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the Vultr catalog offers no transcription model"),
            "{error}"
        );
    }

    #[test]
    fn a_model_of_another_kind_or_none_at_all_is_refused_naming_the_candidates() {
        assert_eq!(
            choose(&catalog(), ModelKind::Rerank, Some("rerank-b"))
                .unwrap()
                .id,
            "rerank-b"
        );
        let error = choose(&catalog(), ModelKind::Speech, Some("chat")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`chat` is not a text-to-speech model (it outputs text); the catalog's text-to-speech models are tts"
        );
        let error = choose(&catalog(), ModelKind::Embeddings, Some("nope")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown model `nope`: the catalog's embeddings models are none (list_models shows the catalog)"
        );
    }
}
