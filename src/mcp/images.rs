//! The `images` toolset: `generate_image`, each image as MCP `image` content when it fits
//! the inline cap and a `vultr://media/{id}` link to each (kept for their owner), and the
//! size, megapixels and cost in the text.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::{Deserialize, Serialize};

use std::future::Future;

use base64::Engine as _;
use std::time::Duration;

use tokio::time::Instant;

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::progress::CallProgress;
use super::registry::{Behaviour, Call, ToolEntry, cancelled};
use crate::chat::{ProgressSink, ProgressUpdate};
use crate::images::{Generated, Image, ImageError, ImageInput, MAX_IMAGES};
use crate::media::NewMedia;
use crate::principal::Principal;
use crate::settings::Toolset;

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
            "Generate 1 to {MAX_IMAGES} images from a prompt with a Vultr image model: each image as image content (within the inline size cap) and a vultr://media link for resources/read, the size and the cost per megapixel. Sizes, steps and guidance_scale are checked against the model's catalog entry."
        ),
        input_schema: input_schema::<GenerateImageArgs>,
        // Long, may become a task, keeps the images: writes, destroys nothing.
        behaviour: Behaviour::MODEL_RUN,
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
            ImageError::Spend(error) => ToolError::Spend(error),
            foreign @ ImageError::ForeignUrl { .. } => ToolError::Internal(foreign.to_string()),
        }
    }
}

/// One image as the structured result describes it.
#[derive(Serialize)]
struct ImageInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
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
            progress,
            spend,
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
        let n = input.n.unwrap_or(1);
        let waiting = format!(
            "waiting for Vultr to make {n} image{}",
            if n == 1 { "" } else { "s" }
        );
        let generate =
            with_waiting_progress(progress, waiting, self.app.images.generate(input, &spend));
        let generated = tokio::select! {
            generated = generate => generated,
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
        let Generated {
            model,
            size,
            images,
            megapixels,
            cost,
        } = generated;
        let count = images.len();
        let mut blocks = Vec::with_capacity(2 * count);
        let mut infos = Vec::with_capacity(count);
        let mut not_kept = None;
        for (k, image) in images.into_iter().enumerate() {
            let (info, image_blocks, problem) = self.image_blocks(owner, &model, k, image).await;
            infos.push(info);
            blocks.extend(image_blocks);
            not_kept = not_kept.or(problem);
        }
        let mut text = format!(
            "{count} image{} ({size}) made by {model}: {megapixels} megapixels; {}.",
            if count == 1 { "" } else { "s" },
            cost.describe()
        );
        match &not_kept {
            None => text.push_str(
                " Each is also kept as a vultr://media link (resources/read) for a while.",
            ),
            Some(problem) => text.push_str(&format!(
                " The images could not be kept as vultr://media links ({problem}); those within the inline cap are below, the others are lost."
            )),
        }
        let structured = ImagesResult {
            model: &model,
            size: &size,
            images: infos,
            megapixels,
            cost_usd: cost.usd(),
            cost_note: cost.describe(),
        };
        let mut result = self.success(text, structured);
        result.content.extend(blocks);
        Ok(result)
    }

    /// The content blocks of image `k` of `model`: kept as the owner's media, inline
    /// `image` content when it fits the inline cap, and a link to it. When it cannot be
    /// kept (it is paid for already) it comes inline only, if it fits, with the reason.
    async fn image_blocks(
        &self,
        owner: &Principal,
        model: &str,
        k: usize,
        image: Image,
    ) -> (ImageInfo, Vec<ContentBlock>, Option<String>) {
        let extension = image
            .mime
            .strip_prefix("image/")
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("bin")
            .to_owned();
        let new = NewMedia {
            mime: image.mime,
            name: format!("{model}-{}.{extension}", k + 1),
            bytes: image.bytes,
        };
        match self.app.media.keep(owner, new.clone()).await {
            Ok(kept) => {
                let blocks = self.media_blocks(&kept, &new.bytes);
                let info = ImageInfo {
                    uri: Some(kept.uri),
                    mime_type: kept.mime,
                    bytes: kept.size,
                };
                (info, blocks, None)
            }
            Err(error) => {
                let problem = self.app.known_keys.redact(&error.to_string());
                tracing::warn!(error = %problem, "a generated image could not be kept");
                let fits = new.bytes.len() <= self.app.media.inline_max();
                let blocks = if fits && new.mime.starts_with("image/") {
                    let data = base64::engine::general_purpose::STANDARD.encode(&new.bytes);
                    vec![ContentBlock::image(data, new.mime.clone())]
                } else {
                    Vec::new()
                };
                let info = ImageInfo {
                    uri: None,
                    mime_type: new.mime,
                    bytes: new.bytes.len(),
                };
                (info, blocks, Some(problem))
            }
        }
    }
}

/// Quiet for calls that end within this.
const PROGRESS_GRACE: Duration = Duration::from_secs(1);
/// Time between two updates while waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs `work`, telling `progress` (when the caller asked for it) every second after the
/// first that it still waits: the seconds so far as the progress value. No update follows
/// the end of `work`.
async fn with_waiting_progress<F: Future>(
    progress: Option<CallProgress>,
    waiting: String,
    work: F,
) -> F::Output {
    let Some(progress) = progress else {
        return work.await;
    };
    let started = Instant::now();
    let ticker = async {
        let mut every = tokio::time::interval_at(started + PROGRESS_GRACE, PROGRESS_EVERY);
        loop {
            every.tick().await;
            let seconds = started.elapsed().as_secs();
            let update = ProgressUpdate {
                tokens: seconds,
                message: format!("{waiting}: {seconds} s"),
            };
            progress.clone().send(update).await;
        }
    };
    tokio::select! {
        biased;
        output = work => output,
        never = ticker => never,
    }
}
