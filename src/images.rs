//! Image generation as a service: the image model picked from the catalog, size, count,
//! steps and guidance checked against its parameters before anything is sent, images
//! given as URLs fetched only from the inference host, and the cost per megapixel.

use std::sync::Arc;

use crate::keys::{InferenceKeys, KeyError};
use crate::kind_call::{Cost, check_choice, check_number, quote, with_key, with_key_held};
use crate::models::{ModelKind, Models, PickError};
use crate::spend::{CallSpend, SpendError, Used};
use crate::vultr::error::VultrError;
use crate::vultr::images::{self, ImageData, ImageRequest};
use crate::vultr::inference::{InferenceClient, Patience};
use crate::vultr::models::Model;

/// The most images one call may ask for, whatever the catalog says.
pub const MAX_IMAGES: u32 = 4;

/// Why an image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
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
    /// Vultr gave an image as a URL on another host, which is never fetched.
    #[error(
        "Vultr answered with an image URL on another host ({host}); this server fetches image URLs only from the inference API's own host, so your key and requests go nowhere else. Nothing was fetched. Try again; if it persists, Vultr now serves images elsewhere and this server needs an update."
    )]
    ForeignUrl {
        /// The host the URL named.
        host: String,
    },
}

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct ImageInput {
    /// The model, or the catalog's only image model.
    pub model: Option<String>,
    /// What to draw.
    pub prompt: String,
    /// `WIDTHxHEIGHT`; the catalog's default, else its first size, when absent.
    pub size: Option<String>,
    /// How many images (1 when absent).
    pub n: Option<u32>,
    /// Denoising steps.
    pub steps: Option<u32>,
    /// How closely to follow the prompt.
    pub guidance_scale: Option<f64>,
    /// Seed, for a repeatable image.
    pub seed: Option<i64>,
}

/// One image made.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its MIME type, read from its first bytes (else the answer's `Content-Type`).
    pub mime: String,
}

/// The images made.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The model that made them.
    pub model: String,
    /// The size asked for.
    pub size: String,
    /// The images, in the order Vultr gave them.
    pub images: Vec<Image>,
    /// Megapixels of all the images together.
    pub megapixels: f64,
    /// What they cost.
    pub cost: Cost,
}

/// Image generation, built once by `App`.
pub struct Images {
    models: Models,
    keys: Arc<InferenceKeys>,
    inference: InferenceClient,
}

impl Images {
    /// The service over the catalog of `models`, with keys from `keys`.
    pub fn new(models: Models, keys: Arc<InferenceKeys>, inference: InferenceClient) -> Self {
        Self {
            models,
            keys,
            inference,
        }
    }

    /// Makes the images `input` asks for.
    pub async fn generate(
        &self,
        input: ImageInput,
        spend: &CallSpend,
    ) -> Result<Generated, ImageError> {
        let prompt = input.prompt.trim();
        if prompt.is_empty() {
            return Err(ImageError::Invalid(
                "`prompt` is empty: describe the image to make".to_owned(),
            ));
        }
        let model = self
            .models
            .pick(ModelKind::Image, input.model.as_deref())
            .await?;
        let checked = check(&model, &input).map_err(ImageError::Invalid)?;
        let request = ImageRequest {
            model: &model.id,
            prompt,
            n: checked.n,
            size: &checked.size,
            response_format: checked.response_format,
            steps: input.steps,
            guidance_scale: input.guidance_scale,
            seed: input.seed,
        };
        let request = &request;
        let asked_megapixels = checked.megapixels * f64::from(checked.n);
        let mut hold = spend
            .hold(quote(&model, "megapixel", asked_megapixels))
            .await?;
        let answer =
            with_key_held::<_, ImageError, _, _>(&self.keys, &mut hold, |key| async move {
                images::generate(&self.inference, &key, request).await
            })
            .await?;
        // Vultr made (and charges for) the images, whatever happens to them here.
        let megapixels = checked.megapixels * answer.len() as f64;
        let cost = Cost::of(&model, "megapixel", Some(megapixels));
        hold.settle(Used {
            usd: cost.usd(),
            ..Used::default()
        })
        .await;
        if let Some(foreign) = answer.iter().find_map(|data| match data {
            ImageData::Url(url) if !self.inference.is_own_origin(url) => Some(host_of(url)),
            _ => None,
        }) {
            return Err(ImageError::ForeignUrl { host: foreign });
        }
        let mut images = Vec::with_capacity(answer.len());
        for data in answer {
            images.push(self.image_of(data).await?);
        }
        Ok(Generated {
            cost,
            model: model.id,
            size: checked.size,
            images,
            megapixels,
        })
    }

    /// The bytes of one image of the answer: decoded, or fetched from the inference host
    /// (whose origin was checked).
    async fn image_of(&self, data: ImageData) -> Result<Image, ImageError> {
        let (bytes, content_type) = match data {
            ImageData::Bytes(bytes) => (bytes, None),
            ImageData::Url(url) => {
                let url = &url;
                let fetched = with_key::<_, ImageError, _, _>(&self.keys, |key| async move {
                    self.inference
                        .get_own_bytes(&key, url, Patience::Long)
                        .await
                })
                .await?;
                (fetched.body, fetched.content_type)
            }
        };
        let mime = sniff_image(&bytes)
            .map(str::to_owned)
            .or(content_type.filter(|c| c.starts_with("image/")))
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        Ok(Image { bytes, mime })
    }
}

/// The host `url` names, for a message (never the whole URL, which may carry a token).
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "an unreadable URL".to_owned())
}

/// The request's values once checked against the catalog.
#[derive(Debug, PartialEq)]
struct Checked {
    size: String,
    n: u32,
    megapixels: f64,
    response_format: &'static str,
}

/// `input` checked against `model`'s catalog parameters, with the defaults filled in.
fn check(model: &Model, input: &ImageInput) -> Result<Checked, String> {
    let sizes = model
        .spec
        .parameter("size")
        .map(|p| p.values.clone())
        .unwrap_or_default();
    let size = match &input.size {
        Some(size) => size.trim().to_owned(),
        None => model
            .spec
            .parameter("size")
            .and_then(|p| p.default.as_ref())
            .and_then(|d| d.as_str().map(str::to_owned))
            .or_else(|| sizes.first().cloned())
            .unwrap_or_else(|| "1024x1024".to_owned()),
    };
    check_choice(model, "size", &size)?;
    let (width, height) = parse_size(&size)
        .ok_or_else(|| format!("`size` \"{size}\" is not WIDTHxHEIGHT (e.g. 1024x1024)"))?;
    let n = input.n.unwrap_or(1);
    if !(1..=MAX_IMAGES).contains(&n) {
        return Err(format!(
            "`n` {n} is out of range: ask for 1 to {MAX_IMAGES} images"
        ));
    }
    check_number(model, "n", f64::from(n))?;
    if let Some(steps) = input.steps {
        check_number(model, "steps", f64::from(steps))?;
    }
    if let Some(scale) = input.guidance_scale {
        if !scale.is_finite() {
            return Err("`guidance_scale` must be a number".to_owned());
        }
        check_number(model, "guidance_scale", scale)?;
    }
    let formats = model.spec.parameter("response_format");
    let response_format = match formats {
        Some(p) if !p.values.is_empty() && !p.values.iter().any(|v| v == "b64_json") => "url",
        _ => "b64_json",
    };
    Ok(Checked {
        size,
        n,
        megapixels: f64::from(width) * f64::from(height) / 1e6,
        response_format,
    })
}

/// `WIDTHxHEIGHT` as numbers.
fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (width, height) = size.split_once(['x', 'X', '*'])?;
    let width = width.trim().parse().ok().filter(|w| *w > 0)?;
    let height = height.trim().parse().ok().filter(|h| *h > 0)?;
    Some((width, height))
}

/// The MIME type of an image, from its first bytes.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF8") {
        Some("image/gif")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vultr::models::parse_catalog;
    use serde_json::json;

    fn z_image() -> Model {
        parse_catalog(
            &json!([{"id":"z-image-turbo","output_modalities":[{"type":"image",
            "supported_parameters":{
                "n":{"type":"integer","min":1,"max":4},
                "size":{"type":"enum","values":["512x512","768x768","1024x1024"]},
                "response_format":{"type":"enum","values":["b64_json","url"]},
                "steps":{"type":"integer","min":1,"max":50,"default":8},
                "guidance_scale":{"type":"range","min":0,"max":20}},
            "pricing":[{"type":"completion","unit":"megapixel","cost_usd":"0.003"}]}]}]),
        )
        .unwrap()
        .remove(0)
    }

    fn asking(change: impl FnOnce(&mut ImageInput)) -> ImageInput {
        let mut input = ImageInput {
            prompt: "a lighthouse".to_owned(),
            ..ImageInput::default()
        };
        change(&mut input);
        input
    }

    #[test]
    fn defaults_are_the_first_size_one_image_and_base64() {
        let checked = check(&z_image(), &asking(|_| {})).unwrap();
        assert_eq!(
            checked,
            Checked {
                size: "512x512".to_owned(),
                n: 1,
                megapixels: 0.262144,
                response_format: "b64_json",
            }
        );
    }

    #[test]
    fn out_of_range_arguments_are_refused_naming_the_field() {
        let cases: Vec<(ImageInput, &str)> = vec![
            (
                asking(|i| i.size = Some("640x480".into())),
                "`size` \"640x480\"",
            ),
            (asking(|i| i.n = Some(5)), "`n` 5"),
            (asking(|i| i.n = Some(0)), "`n` 0"),
            (asking(|i| i.steps = Some(51)), "`steps` 51"),
            (
                asking(|i| i.guidance_scale = Some(-1.0)),
                "`guidance_scale` -1",
            ),
            (
                asking(|i| i.guidance_scale = Some(f64::NAN)),
                "must be a number",
            ),
        ];
        for (input, expected) in cases {
            let problem = check(&z_image(), &input).unwrap_err();
            assert!(problem.contains(expected), "{input:?}: {problem}");
        }
        let ok = asking(|i| {
            i.size = Some("1024x1024".into());
            i.n = Some(4);
            i.steps = Some(50);
            i.guidance_scale = Some(20.0);
        });
        assert_eq!(check(&z_image(), &ok).unwrap().megapixels, 1.048576);
    }

    #[test]
    fn a_model_without_stated_sizes_takes_any_well_formed_one() {
        let bare = parse_catalog(&json!([{"id":"img","output_modalities":[{"type":"image"}]}]))
            .unwrap()
            .remove(0);
        assert_eq!(
            check(&bare, &asking(|_| {})).unwrap().size,
            "1024x1024",
            "nothing stated: a common size"
        );
        let problem = check(&bare, &asking(|i| i.size = Some("big".into()))).unwrap_err();
        assert!(problem.contains("not WIDTHxHEIGHT"), "{problem}");
    }

    #[test]
    fn images_are_recognised_by_their_first_bytes() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"<html>"), None);
    }

    #[test]
    fn only_the_host_of_a_foreign_url_is_named() {
        assert_eq!(
            host_of("https://cdn.example.com/i.png?token=secret"),
            "cdn.example.com"
        );
    }
}
