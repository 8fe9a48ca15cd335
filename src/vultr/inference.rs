//! The Vultr inference API: the model catalog and chat completions.

use std::time::Duration;

use serde_json::Value;

use super::chat::{ChatReply, ChatRequest};
use super::error::{Api, VultrError, snippet};
use super::http::send_json;
use super::models::{Model, parse_catalog};
use crate::config::BaseUrl;
use crate::secret::ApiKey;

/// How long reading the model catalog may take.
pub const CATALOG_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one chat completion may take.
pub const CHAT_TIMEOUT: Duration = Duration::from_secs(300);

/// A client of the inference API; the key is given per request, since it may be discovered.
#[derive(Clone)]
pub struct InferenceClient {
    http: reqwest::Client,
    base: BaseUrl,
}

impl InferenceClient {
    /// A client for the inference API at `base`.
    pub fn new(http: reqwest::Client, base: BaseUrl) -> Self {
        Self { http, base }
    }

    /// `GET /models`: the catalog, which is public; a key is sent when one is at hand.
    pub async fn models(&self, key: Option<&ApiKey>) -> Result<Vec<Model>, VultrError> {
        let mut request = self.http.get(self.base.join("/models"));
        if let Some(key) = key {
            request = request.bearer_auth(key.expose());
        }
        let body: Value =
            send_json(Api::Inference, self.base.as_str(), CATALOG_TIMEOUT, request).await?;
        parse_catalog(&body).map_err(|e| VultrError::Decode {
            api: Api::Inference,
            status: 200,
            detail: e.to_string(),
            snippet: snippet(&body.to_string(), 200),
        })
    }

    /// `POST /chat/completions` without streaming.
    pub async fn chat(&self, key: &ApiKey, request: &ChatRequest) -> Result<ChatReply, VultrError> {
        let http_request = self
            .http
            .post(self.base.join("/chat/completions"))
            .bearer_auth(key.expose())
            .json(request);
        let body: Value = send_json(
            Api::Inference,
            self.base.as_str(),
            CHAT_TIMEOUT,
            http_request,
        )
        .await?;
        ChatReply::from_response(&body, &request.model).map_err(|e| VultrError::Decode {
            api: Api::Inference,
            status: 200,
            detail: e.to_string(),
            snippet: snippet(&body.to_string(), 200),
        })
    }
}
