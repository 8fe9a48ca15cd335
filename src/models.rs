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
