//! The one place requests to Vultr are sent and their answers checked.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::{Api, VultrError, error_message, snippet};

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the HTTP client shared by both APIs.
pub fn build_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends a request and decodes a JSON success body; every failure becomes a [`VultrError`].
pub async fn send_json<T: DeserializeOwned>(
    api: Api,
    base_url: &str,
    timeout: Duration,
    request: RequestBuilder,
) -> Result<T, VultrError> {
    let response = request
        .header(header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(api, base_url, timeout, &e))?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response
        .text()
        .await
        .map_err(|e| transport_error(api, base_url, timeout, &e))?;
    if !status.is_success() {
        return Err(VultrError::Status {
            api,
            status: status.as_u16(),
            message: error_message(&body).or_else(|| plain_text_message(&body)),
            retry_after,
        });
    }
    let body = if status == StatusCode::NO_CONTENT || body.trim().is_empty() {
        "null"
    } else {
        body.as_str()
    };
    serde_json::from_str(body).map_err(|e| VultrError::Decode {
        api,
        status: status.as_u16(),
        detail: e.to_string(),
        snippet: snippet(body, 200),
    })
}

/// A short non-JSON error body (a proxy's "Bad Gateway", say) is still worth showing.
fn plain_text_message(body: &str) -> Option<String> {
    let text = body.trim();
    let looks_like_text = !text.is_empty() && !text.starts_with('{') && !text.starts_with('<');
    looks_like_text.then(|| snippet(text, 200))
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn transport_error(
    api: Api,
    base_url: &str,
    timeout: Duration,
    error: &reqwest::Error,
) -> VultrError {
    if error.is_timeout() {
        return VultrError::Timeout {
            api,
            after: timeout,
        };
    }
    let detail = root_cause(error);
    if error.is_connect() {
        return VultrError::Unreachable {
            api,
            base_url: base_url.to_owned(),
            detail,
        };
    }
    VultrError::Transport { api, detail }
}

/// The innermost cause, which names the real problem ("connection refused"), without the URL.
fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.is_empty() {
        "unknown error".to_owned()
    } else {
        text
    }
}
