//! The `list_models` tool: the live catalog, filtered.

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry};
use crate::models::{Capability, ModelQuery};
use crate::settings::Toolset;
use crate::vultr::models::Model;

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

/// The `list_models` entry.
pub(super) fn list_models() -> ToolEntry {
    ToolEntry {
        name: "list_models",
        toolset: Toolset::Core,
        description: "The live Vultr model catalog: id, outputs, context window, max output tokens, tool support, streaming, reasoning efforts, USD per 1M prompt/completion tokens. No key needed.".to_owned(),
        input_schema: input_schema::<ListModelsArgs>,
        behaviour: Behaviour::CATALOG_READ,
        guide: "- list_models: the live catalog (ids, context window, max output, tool support, prices). Use it to pick a `model`; filter with `capability` (chat, tools, ...) or `query`.\n".to_owned(),
        handler: |server, call| Box::pin(server.list_models(call)),
    }
}

impl VultrServer {
    async fn list_models(&self, call: Call) -> CallToolResult {
        let found = async {
            let args = decode::<ListModelsArgs>(call.arguments)?;
            let query = ModelQuery {
                text: args.query,
                capability: args.capability,
            };
            Ok::<_, ToolError>(self.app.models.find(&query).await?)
        };
        self.respond(found.await.map(|found| {
            let models = found.models();
            let total = found.total();
            self.success(
                render(&models, total),
                ModelList {
                    models,
                    total_in_catalog: total,
                },
            )
        }))
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
    // Models of other kinds are priced per second of audio, per megapixel, per character...
    for price in model.spec.prices.iter().filter(|p| p.unit != "token") {
        parts.push(format!("${} per {}", price.usd_per_unit, price.unit));
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
