//! The `list_models` tool: the live catalog, filtered.

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{InvalidArguments, Parameters};
use super::error::ToolError;
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
    fn matches(self, model: &Model) -> bool {
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

/// Arguments of `list_models`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListModelsArgs {
    /// Case-insensitive substring of the id or name.
    #[serde(default)]
    query: Option<String>,
    /// Only models that can do this.
    #[serde(default)]
    capability: Option<Capability>,
}

#[derive(Serialize)]
struct ModelList<'a> {
    models: Vec<&'a Model>,
    total_in_catalog: usize,
}

#[tool_router(router = models_router, vis = "pub(super)")]
impl VultrServer {
    /// The live Vultr model catalog: id, outputs, context window, max output tokens, tool support, streaming, reasoning efforts, USD per 1M prompt/completion tokens. No key needed.
    #[tool(
        input_schema = super::args::input_schema::<ListModelsArgs>(),
        annotations(read_only_hint = true, open_world_hint = true))]
    async fn list_models(&self, Parameters(args): Parameters<ListModelsArgs>) -> CallToolResult {
        self.respond(self.list_models_inner(args).await)
    }
}

impl VultrServer {
    async fn list_models_inner(
        &self,
        args: Result<ListModelsArgs, InvalidArguments>,
    ) -> Result<CallToolResult, ToolError> {
        let args = args?;
        let key = self.app.keys.at_hand().await;
        let catalog = self.app.catalog.models(key.as_ref()).await?;
        let query = args
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let models: Vec<&Model> = catalog
            .iter()
            .filter(|m| args.capability.is_none_or(|c| c.matches(m)))
            .filter(|m| {
                query.as_deref().is_none_or(|q| {
                    m.id.to_lowercase().contains(q)
                        || m.name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase().contains(q))
                })
            })
            .collect();
        let text = render(&models, catalog.len());
        Ok(self.success(
            text,
            ModelList {
                models,
                total_in_catalog: catalog.len(),
            },
        ))
    }
}

fn render(models: &[&Model], total: usize) -> String {
    if models.is_empty() {
        return format!(
            "No model matches ({total} models in the catalog). Try without `query` or `capability`."
        );
    }
    let mut text = format!("{} of {total} models:\n", models.len());
    for model in models {
        let _ = writeln!(text, "- {}", line(model));
    }
    text
}

fn line(model: &Model) -> String {
    let mut parts = vec![model.outputs.join("+")];
    if let Some(c) = model.context_window {
        parts.push(format!("context {c}"));
    }
    if let Some(m) = model.max_output_tokens {
        parts.push(format!("max output {m}"));
    }
    if model.is_chat() {
        match model.tools {
            Some(true) => parts.push("tools".to_owned()),
            Some(false) => parts.push("no tools".to_owned()),
            None => {}
        }
        if model.streaming == Some(true) {
            parts.push("streaming".to_owned());
        }
    }
    if let Some(efforts) = model.reasoning_efforts.as_ref().filter(|e| !e.is_empty()) {
        parts.push(format!("reasoning {}", efforts.join("/")));
    }
    match (model.prompt_usd_per_1m, model.completion_usd_per_1m) {
        (Some(p), Some(c)) => parts.push(format!("${p}/${c} per 1M prompt/completion tokens")),
        (Some(p), None) => parts.push(format!("${p} per 1M prompt tokens")),
        (None, Some(c)) => parts.push(format!("${c} per 1M completion tokens")),
        (None, None) => {}
    }
    if !model.ready {
        parts.push("not ready".to_owned());
    }
    let name = match &model.name {
        Some(n) if n != &model.id => format!(" ({n})"),
        _ => String::new(),
    };
    format!("{}{}: {}", model.id, name, parts.join(", "))
}
