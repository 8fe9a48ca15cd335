//! Image generation (`POST /images/generations`): the request, and the one lenient reading
//! of the answer. Vultr does not document the answer: the OpenAI shape `{data:[{b64_json
//! | url}]}` is a guess (one community SDK), kept in [`parse_images`] so a live check
//! changes only it.

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::error::{Api, VultrError, snippet};
use super::inference::{InferenceClient, Patience};
use crate::secret::ApiKey;

/// The body of `POST /images/generations`.
#[derive(Debug, Serialize)]
pub struct ImageRequest<'a> {
    /// The image model.
    pub model: &'a str,
    /// What to draw.
    pub prompt: &'a str,
    /// How many images.
    pub n: u32,
    /// `WIDTHxHEIGHT`.
    pub size: &'a str,
    /// `b64_json` or `url`.
    pub response_format: &'a str,
    /// Denoising steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    /// How closely to follow the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance_scale: Option<f64>,
    /// Seed, for a repeatable image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

/// One image of the answer: its bytes, or where to fetch them.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageData {
    /// Decoded from `b64_json`.
    Bytes(Vec<u8>),
    /// A `url` to fetch.
    Url(String),
}

/// `POST /images/generations`.
pub async fn generate(
    client: &InferenceClient,
    key: &ApiKey,
    request: &ImageRequest<'_>,
) -> Result<Vec<ImageData>, VultrError> {
    let body = client
        .post_json(key, "/images/generations", request, Patience::Long)
        .await?;
    parse_images(&body).map_err(|problem| VultrError::Decode {
        api: Api::Inference,
        status: 200,
        detail: problem,
        snippet: snippet(&body.to_string(), 200),
    })
}

/// Reads an image answer: `data` (or `images`) of `{b64_json}` or `{url}` (a bare string
/// is read as base64, or a URL when it starts with `http`). No image at all is refused.
pub fn parse_images(body: &Value) -> Result<Vec<ImageData>, String> {
    let entries = body
        .get("data")
        .or_else(|| body.get("images"))
        .and_then(Value::as_array)
        .ok_or("no `data` array")?;
    let images = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| image(entry).map_err(|problem| format!("image {i}: {problem}")))
        .collect::<Result<Vec<_>, _>>()?;
    if images.is_empty() {
        return Err("no image in `data`".to_owned());
    }
    Ok(images)
}

/// One entry of `data`.
fn image(entry: &Value) -> Result<ImageData, String> {
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    let encoded = text("b64_json")
        .or_else(|| text("b64"))
        .or_else(|| match entry {
            Value::String(s) if !s.starts_with("http") => Some(s.as_str()),
            _ => None,
        });
    if let Some(encoded) = encoded {
        return base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(ImageData::Bytes)
            .map_err(|e| format!("`b64_json` is not base64: {e}"));
    }
    match text("url").or_else(|| entry.as_str()) {
        Some(url) => Ok(ImageData::Url(url.to_owned())),
        None => Err("neither `b64_json` nor `url`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_come_as_base64_or_urls() {
        let body = json!({"created":1,"data":[{"b64_json":"iVBORw=="},{"url":"https://x/y.png"}]});
        assert_eq!(
            parse_images(&body).unwrap(),
            [
                ImageData::Bytes(vec![0x89, b'P', b'N', b'G']),
                ImageData::Url("https://x/y.png".to_owned())
            ]
        );
        let bare = json!({"images":["iVBORw==", "http://x/z.png"]});
        assert_eq!(parse_images(&bare).unwrap().len(), 2);
    }

    #[test]
    fn answers_without_images_are_refused_saying_why() {
        let cases = [
            (json!({"output":[]}), "no `data`"),
            (json!({"data":[]}), "no image"),
            (json!({"data":[{"revised_prompt":"x"}]}), "neither"),
            (json!({"data":[{"b64_json":"%%"}]}), "not base64"),
        ];
        for (body, expected) in cases {
            let problem = parse_images(&body).unwrap_err();
            assert!(problem.contains(expected), "{body}: {problem}");
        }
    }

    #[test]
    fn the_request_leaves_out_what_is_not_set() {
        let request = ImageRequest {
            model: "m",
            prompt: "a cat",
            n: 1,
            size: "512x512",
            response_format: "b64_json",
            steps: None,
            guidance_scale: Some(2.5),
            seed: None,
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"model":"m","prompt":"a cat","n":1,"size":"512x512","response_format":"b64_json","guidance_scale":2.5})
        );
    }
}
