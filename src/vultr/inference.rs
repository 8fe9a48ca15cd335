//! The Vultr inference API: the model catalog and chat completions.

use std::time::Duration;

use serde_json::Value;

use super::chat::{ChatReply, ChatRequest};
use super::error::{Api, VultrError, snippet};
use super::http::VultrHttp;
use super::models::{Model, parse_catalog};
use crate::config::BaseUrl;
use crate::secret::ApiKey;

/// A client of the inference API; the key is given per request, since it may be discovered.
#[derive(Clone)]
pub struct InferenceClient {
    http: VultrHttp,
    base: BaseUrl,
    catalog_timeout: Duration,
    chat_timeout: Duration,
}

impl InferenceClient {
    /// A client for the inference API at `base` with the time limits for catalog reads
    /// and chat completions.
    pub fn new(
        http: VultrHttp,
        base: BaseUrl,
        catalog_timeout: Duration,
        chat_timeout: Duration,
    ) -> Self {
        Self {
            http,
            base,
            catalog_timeout,
            chat_timeout,
        }
    }

    /// `GET /models`: the catalog, which is public; a key is sent when one is at hand.
    pub async fn models(&self, key: Option<&ApiKey>) -> Result<Vec<Model>, VultrError> {
        let mut request = self.http.client().get(self.base.join("/models"));
        if let Some(key) = key {
            request = request.bearer_auth(key.expose());
        }
        let body: Value = self
            .http
            .send_json(
                Api::Inference,
                self.base.as_str(),
                self.catalog_timeout,
                request,
            )
            .await?;
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
            .client()
            .post(self.base.join("/chat/completions"))
            .bearer_auth(key.expose())
            .json(request);
        let body: Value = self
            .http
            .send_json(
                Api::Inference,
                self.base.as_str(),
                self.chat_timeout,
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
