//! The Vultr inference API: the model catalog and chat completions.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use futures_util::StreamExt;
use reqwest::{Method, header};

use super::BaseUrl;
use super::chat::{ChatReply, ChatRequest};
use super::error::{Api, VultrError, snippet};
use super::http::{Endpoint, VultrHttp};
use super::models::{Model, parse_catalog};
use super::stream::{CutOff, StreamAssembler, StreamDeadlines, read_stream};
use crate::secret::ApiKey;
use crate::setting;

/// A client of the inference API; the key is given per request, since it may be discovered.
#[derive(Clone)]
pub struct InferenceClient {
    http: VultrHttp,
    base: BaseUrl,
    catalog_timeout: Duration,
    chat_timeout: Duration,
}

impl InferenceClient {
    /// The inference API within `timeout`.
    fn endpoint(&self, timeout: Duration) -> Endpoint<'_> {
        Endpoint {
            api: Api::Inference,
            base_url: self.base.as_str(),
            timeout,
        }
    }

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
        let mut request = self.http.client()?.get(self.base.join("/models"));
        if let Some(key) = key {
            request = request.bearer_auth(key.expose());
        }
        let body: Value = self
            .http
            .send_json(self.endpoint(self.catalog_timeout), request)
            .await?;
        parse_catalog(&body).map_err(|e| unexpected_shape(&body, e))
    }

    /// `POST /chat/completions` without streaming.
    pub async fn chat(&self, key: &ApiKey, request: &ChatRequest) -> Result<ChatReply, VultrError> {
        let http_request = self
            .http
            .client()?
            .post(self.base.join("/chat/completions"))
            .bearer_auth(key.expose())
            .json(request);
        let body: Value = self
            .http
            .send_json(self.endpoint(self.chat_timeout), http_request)
            .await?;
        ChatReply::from_response(&body, &request.model).map_err(|e| unexpected_shape(&body, e))
    }

    /// `POST /chat/completions` with `stream: true`: `on_chunk` sees the reply grow, and
    /// the reply comes back as [`InferenceClient::chat`]'s does, with the reason when a
    /// deadline cut it short.
    pub async fn chat_stream<F, Fut>(
        &self,
        key: &ApiKey,
        request: &ChatRequest,
        deadlines: StreamDeadlines,
        on_chunk: F,
    ) -> Result<(ChatReply, Option<CutOff>), VultrError>
    where
        F: FnMut(&StreamAssembler) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let http_request = self
            .http
            .client()?
            .post(self.base.join("/chat/completions"))
            .bearer_auth(key.expose())
            .json(&StreamingRequest {
                request,
                stream: true,
                stream_options: StreamOptions {
                    include_usage: true,
                },
            });
        // reqwest's own limit sits past the stream deadline, which ends the stream first
        // and keeps any partial answer.
        let transport_limit = deadlines.total + Duration::from_secs(5);
        let started = tokio::time::Instant::now();
        let opened = tokio::time::timeout_at(
            started + deadlines.first_chunk.min(deadlines.total),
            self.http
                .send_streaming(self.endpoint(transport_limit), http_request),
        )
        .await;
        let response = opened.map_err(|_| deadlines.no_first_chunk())??;
        let is_event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        if !is_event_stream {
            // Vultr answered in one piece after all: read it as a plain completion.
            let body: Value = self
                .http
                .read_json(self.endpoint(transport_limit), response)
                .await?;
            let reply = ChatReply::from_response(&body, &request.model)
                .map_err(|e| unexpected_shape(&body, e))?;
            return Ok((reply, None));
        }
        let limit = self.http.max_response_bytes();
        let mut received = 0usize;
        let bytes = response.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(StreamBodyError::Transport)?;
            received += chunk.len();
            if received > limit {
                return Err(StreamBodyError::TooLarge(limit));
            }
            Ok(chunk)
        });
        let end = read_stream(
            sse_stream::SseByteStream::new(bytes),
            deadlines,
            started,
            &request.model,
            on_chunk,
        )
        .await?;
        Ok((end.reply, end.cut_off))
    }
}

/// How long a request of the other inference endpoints may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// A read or small write (collections, voices): the catalog's time limit.
    Quick,
    /// A model run or an upload (speech, images, transcription, RAG chat): the chat
    /// completion's time limit.
    Long,
}

/// A response read as raw bytes (speech): the body and its `Content-Type`, if any.
#[derive(Debug, Clone)]
pub struct Bytes {
    /// The body.
    pub body: Vec<u8>,
    /// The `Content-Type` header as sent.
    pub content_type: Option<String>,
}

/// The building blocks of every inference endpoint beyond the catalog and chat: each sends
/// through the one HTTP client (retries, size cap, timeouts, errors), with the key given.
/// Paths are relative to the inference base URL (`/vector_store`, `/audio/speech`, ...);
/// put ids into them with [`path_segment`].
impl InferenceClient {
    /// A request of `method` to `path` with `key`.
    fn to(
        &self,
        method: Method,
        key: &ApiKey,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, VultrError> {
        Ok(self
            .http
            .client()?
            .request(method, self.base.join(path))
            .bearer_auth(key.expose()))
    }

    fn timeout(&self, patience: Patience) -> Duration {
        match patience {
            Patience::Quick => self.catalog_timeout,
            Patience::Long => self.chat_timeout,
        }
    }

    /// `GET path?query` read as JSON (a 204 or empty body reads as `null`).
    pub async fn get_json(
        &self,
        key: &ApiKey,
        path: &str,
        query: &[(&str, &str)],
        patience: Patience,
    ) -> Result<Value, VultrError> {
        let mut path = path.to_owned();
        for (i, (name, value)) in query.iter().enumerate() {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(&path_segment(name));
            path.push('=');
            path.push_str(&path_segment(value));
        }
        let request = self.to(Method::GET, key, &path)?;
        self.http
            .send_json(self.endpoint(self.timeout(patience)), request)
            .await
    }

    /// `POST path` with a JSON body, read as JSON.
    pub async fn post_json(
        &self,
        key: &ApiKey,
        path: &str,
        body: &(impl Serialize + ?Sized),
        patience: Patience,
    ) -> Result<Value, VultrError> {
        let request = self.to(Method::POST, key, path)?.json(body);
        self.http
            .send_json(self.endpoint(self.timeout(patience)), request)
            .await
    }

    /// `POST path` with a JSON body that writes something that must not be written twice
    /// (an item, a collection): retried only when Vultr says it was not carried out.
    pub async fn post_write(
        &self,
        key: &ApiKey,
        path: &str,
        body: &(impl Serialize + ?Sized),
        patience: Patience,
    ) -> Result<Value, VultrError> {
        let request = self.to(Method::POST, key, path)?.json(body);
        self.http
            .send_json_write(self.endpoint(self.timeout(patience)), request)
            .await
    }

    /// `DELETE path`, its answer read as JSON (a 204 reads as `null`).
    pub async fn delete(
        &self,
        key: &ApiKey,
        path: &str,
        patience: Patience,
    ) -> Result<Value, VultrError> {
        let request = self.to(Method::DELETE, key, path)?;
        self.http
            .send_json(self.endpoint(self.timeout(patience)), request)
            .await
    }

    /// `POST path` with the multipart form `form` makes (called once per attempt, since a
    /// form is consumed by sending it), read as JSON. For a transcription, say; an upload
    /// that stores something goes through [`InferenceClient::post_multipart_write`].
    pub async fn post_multipart(
        &self,
        key: &ApiKey,
        path: &str,
        form: impl Fn() -> reqwest::multipart::Form,
        patience: Patience,
    ) -> Result<Value, VultrError> {
        self.multipart(key, path, form, patience, false).await
    }

    /// [`InferenceClient::post_multipart`] for an upload that stores something (a document
    /// in a collection): retried only when Vultr says it was not carried out.
    pub async fn post_multipart_write(
        &self,
        key: &ApiKey,
        path: &str,
        form: impl Fn() -> reqwest::multipart::Form,
        patience: Patience,
    ) -> Result<Value, VultrError> {
        self.multipart(key, path, form, patience, true).await
    }

    async fn multipart(
        &self,
        key: &ApiKey,
        path: &str,
        form: impl Fn() -> reqwest::multipart::Form,
        patience: Patience,
        write: bool,
    ) -> Result<Value, VultrError> {
        let client = self.http.client()?;
        let request = || {
            client
                .post(self.base.join(path))
                .bearer_auth(key.expose())
                .multipart(form())
        };
        self.http
            .send_json_built(self.endpoint(self.timeout(patience)), request, write)
            .await
    }

    /// `POST path` with the multipart form `form` makes (once per attempt), the answer read
    /// as raw bytes (within the size cap): for answers that may not be JSON (transcriptions).
    pub async fn post_multipart_for_bytes(
        &self,
        key: &ApiKey,
        path: &str,
        form: impl Fn() -> reqwest::multipart::Form,
        patience: Patience,
    ) -> Result<Bytes, VultrError> {
        let client = self.http.client()?;
        let request = || {
            client
                .post(self.base.join(path))
                .bearer_auth(key.expose())
                .multipart(form())
        };
        self.http
            .send_bytes_built(self.endpoint(self.timeout(patience)), request)
            .await
    }

    /// `POST path` with a JSON body, the answer read as raw bytes (within the size cap).
    pub async fn post_for_bytes(
        &self,
        key: &ApiKey,
        path: &str,
        body: &(impl Serialize + ?Sized),
        patience: Patience,
    ) -> Result<Bytes, VultrError> {
        let request = self.to(Method::POST, key, path)?.json(body);
        self.http
            .send_bytes(self.endpoint(self.timeout(patience)), request)
            .await
    }
}

impl InferenceClient {
    /// Whether `url` is on the inference API's own origin (scheme, host and port), the
    /// only place a URL an answer names may be fetched from, with the key.
    pub fn is_own_origin(&self, url: &str) -> bool {
        let origin = |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin());
        matches!((origin(url), origin(self.base.as_str())), (Some(a), Some(b)) if a == b && a.is_tuple())
    }

    /// `GET url` (a URL an answer named) read as raw bytes; refused without a request
    /// unless it is on the inference API's own origin, so the key never goes elsewhere.
    pub async fn get_own_bytes(
        &self,
        key: &ApiKey,
        url: &str,
        patience: Patience,
    ) -> Result<Bytes, VultrError> {
        if !self.is_own_origin(url) {
            return Err(VultrError::Transport {
                api: Api::Inference,
                detail: "a URL off the inference API's host is never fetched".to_owned(),
            });
        }
        let request = self.http.client()?.get(url).bearer_auth(key.expose());
        self.http
            .send_bytes(self.endpoint(self.timeout(patience)), request)
            .await
    }
}

/// What [`path_segment`] encodes: everything but RFC 3986's unreserved characters
/// (letters, digits, `-`, `.`, `_`, `~`), so ids such as `my-docs_1` are sent as they are.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `id` as one path segment (or query value): percent-encoded, so an id can never reach
/// another path; `.` and `..` alone are encoded too.
pub fn path_segment(id: &str) -> String {
    match id {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => percent_encoding::utf8_percent_encode(id, SEGMENT).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn ids_keep_their_unreserved_characters_and_cannot_leave_their_segment() {
        assert_eq!(path_segment("my-docs_1.v2~x"), "my-docs_1.v2~x");
        assert_eq!(path_segment("a/../b"), "a%2F..%2Fb");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("a b?c#d"), "a%20b%3Fc%23d");
    }
}

/// The body of a streamed `POST /chat/completions`: the request, asking for a stream
/// that ends with the token counts.
#[derive(Serialize)]
struct StreamingRequest<'a> {
    #[serde(flatten)]
    request: &'a ChatRequest,
    stream: bool,
    stream_options: StreamOptions,
}

/// `stream_options` of a streamed request.
#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// A JSON success body that is not the shape expected of it.
fn unexpected_shape(body: &Value, problem: impl std::fmt::Display) -> VultrError {
    VultrError::Decode {
        api: Api::Inference,
        status: 200,
        detail: problem.to_string(),
        snippet: snippet(&body.to_string(), 200),
    }
}

/// Why the bytes of a stream stopped coming.
#[derive(Debug, thiserror::Error)]
enum StreamBodyError {
    /// The connection failed.
    #[error("{0}")]
    Transport(reqwest::Error),
    /// The stream grew past the size cap.
    #[error(
        "the answer grew past the limit of {0} bytes ({setting}); ask for less, e.g. a lower max_tokens",
        setting = setting::MAX_RESPONSE_BYTES
    )]
    TooLarge(usize),
}

#[cfg(test)]
mod own_origin_tests {
    use super::*;
    use crate::vultr::http::HttpLimits;

    #[test]
    fn only_urls_on_the_inference_apis_own_scheme_host_and_port_are_its_own() {
        let base: BaseUrl = "https://api.vultrinference.com/v1".parse().unwrap();
        let client = InferenceClient::new(
            VultrHttp::new(HttpLimits {
                connect_timeout: Duration::from_secs(1),
                max_retries: 0,
                retry_after_cap: Duration::from_secs(1),
                max_response_bytes: 1024,
            }),
            base,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let cases = [
            ("https://api.vultrinference.com/v1/images/a.png", true),
            ("https://API.vultrinference.com/files/a.png?x=1", true),
            ("https://api.vultrinference.com:443/a.png", true),
            ("http://api.vultrinference.com/a.png", false),
            ("https://api.vultrinference.com:8443/a.png", false),
            ("https://cdn.vultrinference.com/a.png", false),
            ("https://api.vultrinference.com.evil.test/a.png", false),
            ("https://user@evil.test/api.vultrinference.com/a.png", false),
            ("/relative/a.png", false),
            ("data:image/png;base64,AAAA", false),
        ];
        for (url, own) in cases {
            assert_eq!(client.is_own_origin(url), own, "{url}");
        }
    }
}
