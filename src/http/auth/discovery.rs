//! Finding an OAuth issuer's keys: its metadata document (RFC 8414, or OpenID Connect
//! discovery) names the `jwks_uri`; fetched over HTTPS (plain HTTP only on loopback), with short
//! timeouts and a size cap.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// How long connecting to the issuer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one fetch from the issuer may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest metadata document or key set read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// The well-known documents tried, in order.
const WELL_KNOWN: [&str; 2] = ["oauth-authorization-server", "openid-configuration"];

/// Why an issuer's keys could not be found or fetched.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// The issuer URL cannot be used.
    #[error("the OAuth issuer `{issuer}` {problem}")]
    BadIssuer {
        /// The configured issuer.
        issuer: String,
        /// What is wrong with it, and what to do.
        problem: String,
    },
    /// The issuer's metadata or keys could not be fetched or read.
    #[error("{0}")]
    Fetch(String),
}

/// An issuer's URL, checked: HTTPS, or HTTP on a loopback host.
#[derive(Debug, Clone)]
pub struct Issuer {
    configured: String,
    url: Url,
}

impl Issuer {
    /// Checks the configured issuer URL.
    pub fn parse(configured: &str) -> Result<Self, DiscoveryError> {
        let bad = |problem: &str| DiscoveryError::BadIssuer {
            issuer: configured.to_owned(),
            problem: problem.to_owned(),
        };
        let url = Url::parse(configured).map_err(|e| {
            bad(&format!(
                "is not a URL ({e}); give it as https://host[/path]"
            ))
        })?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "has a query or fragment, which an issuer identifier may not have",
            ));
        }
        if !is_allowed_scheme(&url) {
            return Err(bad(
                "must use https (plain http is accepted only on a loopback host such as 127.0.0.1 or localhost)",
            ));
        }
        Ok(Self {
            configured: configured.to_owned(),
            url,
        })
    }

    /// The issuer exactly as configured, which tokens' `iss` and the metadata's `issuer` must equal.
    pub fn as_str(&self) -> &str {
        &self.configured
    }

    /// The metadata URLs to try, in order: for each well-known document, the RFC 8414 form
    /// (well-known segment before the issuer's path), then the appended form.
    pub fn metadata_urls(&self) -> Vec<Url> {
        let path = self.url.path().trim_end_matches('/');
        let mut urls: Vec<Url> = Vec::new();
        for document in WELL_KNOWN {
            for candidate in [
                format!("/.well-known/{document}{path}"),
                format!("{path}/.well-known/{document}"),
            ] {
                let mut url = self.url.clone();
                url.set_path(&candidate);
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
        urls
    }
}

/// Whether `url` is HTTPS, or HTTP to a loopback host.
fn is_allowed_scheme(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|host| {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<IpAddr>() {
                Ok(ip) => ip.is_loopback(),
                Err(_) => bare.eq_ignore_ascii_case("localhost"),
            }
        }),
        _ => false,
    }
}

/// The part of an issuer's metadata document we use.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// Fetches the issuer's metadata and key sets.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    http: reqwest::Client,
}

impl IssuerClient {
    /// A client with short timeouts that follows no redirects.
    pub fn new() -> Result<Self, DiscoveryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DiscoveryError::Fetch(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http })
    }

    /// The issuer's `jwks_uri`, from the first metadata document found.
    pub async fn discover_jwks_uri(&self, issuer: &Issuer) -> Result<Url, DiscoveryError> {
        let mut tried = Vec::new();
        for url in issuer.metadata_urls() {
            let body = match self.fetch(&url).await {
                Ok(Some(body)) => body,
                Ok(None) => {
                    tried.push(format!("{url} (not found)"));
                    continue;
                }
                Err(problem) => {
                    tried.push(format!("{url} ({})", problem.text));
                    // The other URLs are on the same host: do not wait for each in turn.
                    if problem.unreachable {
                        break;
                    }
                    continue;
                }
            };
            let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| {
                DiscoveryError::Fetch(format!(
                    "the issuer's metadata at {url} is not usable JSON with `issuer` and `jwks_uri`: {e}"
                ))
            })?;
            if metadata.issuer != issuer.as_str() {
                return Err(DiscoveryError::Fetch(format!(
                    "the metadata at {url} names the issuer `{}`, not the configured `{}`; set the OAuth issuer to exactly the identity provider's issuer",
                    metadata.issuer,
                    issuer.as_str()
                )));
            }
            let jwks_uri = Url::parse(&metadata.jwks_uri)
                .ok()
                .filter(is_allowed_scheme)
                .ok_or_else(|| {
                    DiscoveryError::Fetch(format!(
                        "the metadata at {url} gives a jwks_uri that is not an https URL (or http on loopback)"
                    ))
                })?;
            return Ok(jwks_uri);
        }
        Err(DiscoveryError::Fetch(format!(
            "no metadata document for the OAuth issuer `{}`; tried {}",
            issuer.as_str(),
            tried.join(", ")
        )))
    }

    /// The key set at `jwks_uri`, as JSON.
    pub async fn fetch_jwks(&self, jwks_uri: &Url) -> Result<serde_json::Value, DiscoveryError> {
        let body = match self.fetch(jwks_uri).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return Err(DiscoveryError::Fetch(format!(
                    "the issuer's key set at {jwks_uri} was not found (404)"
                )));
            }
            Err(problem) => {
                return Err(DiscoveryError::Fetch(format!(
                    "cannot fetch the issuer's key set at {jwks_uri}: {}",
                    problem.text
                )));
            }
        };
        serde_json::from_slice(&body).map_err(|e| {
            DiscoveryError::Fetch(format!(
                "the issuer's key set at {jwks_uri} is not JSON: {e}"
            ))
        })
    }

    /// The body at `url`; `None` for 404 or 410.
    async fn fetch(&self, url: &Url) -> Result<Option<Vec<u8>>, FetchProblem> {
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(FetchProblem::from)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(FetchProblem::answered(format!("HTTP {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchProblem::from)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchProblem::answered(format!(
                    "larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

/// Why one fetch failed, in a few words.
struct FetchProblem {
    text: String,
    /// The host did not answer at all (cannot connect, or timed out).
    unreachable: bool,
}

impl FetchProblem {
    /// The host answered, but not with what we need.
    fn answered(text: String) -> Self {
        Self {
            text,
            unreachable: false,
        }
    }
}

impl From<reqwest::Error> for FetchProblem {
    fn from(error: reqwest::Error) -> Self {
        let (text, unreachable) = if error.is_timeout() {
            ("timed out".to_owned(), true)
        } else if error.is_connect() {
            ("cannot connect".to_owned(), true)
        } else {
            (error.to_string(), false)
        };
        Self { text, unreachable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        Issuer::parse(issuer)
            .unwrap()
            .metadata_urls()
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn an_issuer_without_a_path_has_one_url_per_document() {
        assert_eq!(
            urls("https://id.example.com"),
            [
                "https://id.example.com/.well-known/oauth-authorization-server",
                "https://id.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://id.example.com/"),
            urls("https://id.example.com")
        );
    }

    #[test]
    fn an_issuer_with_a_path_tries_the_rfc8414_form_before_appending() {
        assert_eq!(
            urls("https://id.example.com/tenant/1"),
            [
                "https://id.example.com/.well-known/oauth-authorization-server/tenant/1",
                "https://id.example.com/tenant/1/.well-known/oauth-authorization-server",
                "https://id.example.com/.well-known/openid-configuration/tenant/1",
                "https://id.example.com/tenant/1/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn plain_http_is_accepted_only_on_loopback() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:8080",
            "http://127.5.0.1",
            "http://[::1]:9000/x",
            "http://localhost:1234",
        ] {
            assert!(Issuer::parse(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://id.example.com",
            "http://10.0.0.1",
            "http://localhost.example.com",
            "ftp://id.example.com",
            "https://id.example.com/?tenant=1",
            "not a url",
        ] {
            assert!(
                matches!(
                    Issuer::parse(refused),
                    Err(DiscoveryError::BadIssuer { .. })
                ),
                "{refused}"
            );
        }
        let message = Issuer::parse("http://id.example.com")
            .unwrap_err()
            .to_string();
        assert!(message.contains("must use https"), "{message}");
    }
}
