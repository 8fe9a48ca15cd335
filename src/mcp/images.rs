//! The `images` toolset: `generate_image`, each image as MCP `image` content when it fits
//! the inline cap, and the size, megapixels and cost in the text.

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock};
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, Effect, ToolEntry, cancelled};
use crate::images::{Generated, ImageError, ImageInput, MAX_IMAGES};
use crate::principal::Principal;
use crate::settings::Toolset;

/// Runs a model upstream and keeps what it made: writes, destroys nothing.
const MODEL_MAKES_MEDIA: Behaviour = Behaviour {
    effect: Effect::Writes {
        destructive: false,
        idempotent: false,
    },
    open_world: true,
    upstream: true,
    runs_as_task: false,
};

/// Arguments of `generate_image`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GenerateImageArgs {
    /// What to draw.
    prompt: String,
    /// An image model (list_models with capability `image`); default: the catalog's only one.
    #[serde(default)]
    model: Option<String>,
    /// WIDTHxHEIGHT among the model's sizes (e.g. 1024x1024); default: the model's smallest listed.
    #[serde(default)]
    size: Option<String>,
    /// How many images, 1 to 4 (default 1).
    #[serde(default)]
    n: Option<u32>,
    /// Denoising steps, within the model's range.
    #[serde(default)]
    steps: Option<u32>,
    /// How closely to follow the prompt, within the model's range.
    #[serde(default)]
    guidance_scale: Option<f64>,
    /// Seed, for a repeatable image.
    #[serde(default)]
    seed: Option<i64>,
}

/// The `generate_image` entry.
pub(super) fn generate_image() -> ToolEntry {
    ToolEntry {
        name: "generate_image",
        toolset: Toolset::Images,
        description: format!(
            "Generate 1 to {MAX_IMAGES} images from a prompt with a Vultr image model: each image as image content, the size and the cost per megapixel. Sizes, steps and guidance_scale are checked against the model's catalog entry."
        ),
        input_schema: input_schema::<GenerateImageArgs>,
        behaviour: MODEL_MAKES_MEDIA,
        guide: "- generate_image: images from `prompt` (`size`, `n` 1-4, `steps`, `guidance_scale`, `seed`); each comes back as image content with its cost.\n".to_owned(),
        handler: |server, call| Box::pin(server.generate_image(call)),
    }
}

impl From<ImageError> for ToolError {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::Invalid(message) => ToolError::Invalid(message),
            ImageError::Model(error) => ToolError::Model(error),
            ImageError::Key(error) => ToolError::Key(error),
            ImageError::Upstream(error) => ToolError::Upstream(error),
            foreign @ ImageError::ForeignUrl { .. } => ToolError::Internal(foreign.to_string()),
        }
    }
}

/// One image as the structured result describes it.
#[derive(Serialize)]
struct ImageInfo {
    mime_type: String,
    bytes: usize,
}

/// The structured result of `generate_image`.
#[derive(Serialize)]
struct ImagesResult<'a> {
    model: &'a str,
    size: &'a str,
    images: Vec<ImageInfo>,
    megapixels: f64,
    cost_usd: Option<f64>,
    cost_note: String,
}

impl VultrServer {
    async fn generate_image(&self, call: Call) -> CallToolResult {
        let Call {
            owner,
            arguments,
            cancel,
            ..
        } = call;
        let args = match decode::<GenerateImageArgs>(arguments) {
            Ok(args) => args,
            Err(error) => return self.failure(error.into()),
        };
        let input = ImageInput {
            model: args.model,
            prompt: args.prompt,
            size: args.size,
            n: args.n,
            steps: args.steps,
            guidance_scale: args.guidance_scale,
            seed: args.seed,
        };
        let generated = tokio::select! {
            generated = self.app.images.generate(input) => generated,
            () = cancel.cancelled() => return cancelled(),
        };
        let rendered = match generated {
            Ok(generated) => self.render_images(&owner, generated).await,
            Err(error) => Err(error.into()),
        };
        self.respond(rendered)
    }

    async fn render_images(
        &self,
        owner: &Principal,
        generated: Generated,
    ) -> Result<CallToolResult, ToolError> {
        let count = generated.images.len();
        let text = format!(
            "{count} image{} ({}) made by {}: {} megapixels; {}",
            if count == 1 { "" } else { "s" },
            generated.size,
            generated.model,
            generated.megapixels,
            generated.cost.describe()
        );
        let structured = ImagesResult {
            model: &generated.model,
            size: &generated.size,
            images: generated
                .images
                .iter()
                .map(|image| ImageInfo {
                    mime_type: image.mime.clone(),
                    bytes: image.bytes.len(),
                })
                .collect(),
            megapixels: generated.megapixels,
            cost_usd: generated.cost.usd(),
            cost_note: generated.cost.describe(),
        };
        let mut result = self.success(text, structured);
        for image in &generated.images {
            result
                .content
                .extend(self.image_blocks(owner, &image.mime, &image.bytes).await?);
        }
        Ok(result)
    }

    /// The content blocks of one image: inline `image` content.
    async fn image_blocks(
        &self,
        _owner: &Principal,
        mime: &str,
        bytes: &[u8],
    ) -> Result<Vec<ContentBlock>, ToolError> {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(vec![ContentBlock::image(data, mime.to_owned())])
    }
}
