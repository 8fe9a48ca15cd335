//! Who is calling: static bearer tokens and OAuth 2.1 access tokens (JWT), read from the
//! `Authorization: Bearer` header only. The HTTP layer calls [`Authenticator::authenticate`]
//! per request and answers a failure with [`AuthFailure::into_response`].

mod discovery;
mod jwks;
mod oauth;
mod tokens;

use std::path::PathBuf;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

pub use discovery::DiscoveryError;
pub use oauth::OAuthSettings;
pub use tokens::{HashTokenError, StaticTokens, TokensFileError, hash_token_line};

use crate::principal::Principal;
use oauth::OAuthVerifier;

/// The realm named in every `WWW-Authenticate` challenge.
const REALM: &str = "vultr-inference-mcp";

/// How requests are authenticated: static tokens, OAuth, both, or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// The tokens file, if static tokens are accepted.
    pub tokens_file: Option<PathBuf>,
    /// The OAuth issuer and what its tokens must carry, if OAuth tokens are accepted.
    pub oauth: Option<OAuthSettings>,
}

/// Why authentication cannot be set up; the server should not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The tokens file cannot be read or has a bad line.
    #[error(transparent)]
    TokensFile(#[from] TokensFileError),
    /// The OAuth settings cannot be used.
    #[error(transparent)]
    OAuth(#[from] DiscoveryError),
}

/// Why a request is not let in. Its text never holds the token or a claim that could be secret.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    #[error("no credentials: send `Authorization: Bearer <token>`")]
    Missing,
    /// An `Authorization` header that is not one `Bearer <token>`.
    #[error("malformed Authorization header: send exactly one `Authorization: Bearer <token>`")]
    Malformed,
    /// A bearer token that is not accepted.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token without the required scope.
    #[error("the token lacks the required scope `{scope}`; request a token with that scope")]
    InsufficientScope {
        /// The scope (space-separated scopes) required.
        scope: String,
    },
    /// The token cannot be checked now: the OAuth issuer's keys are unavailable, or the token
    /// names a key not fetched yet and the keys may not be fetched again before `retry_after_secs`.
    #[error("{reason}")]
    Unavailable {
        /// What went wrong and when to retry, in words.
        reason: String,
        /// Seconds until the keys may be fetched again (the `Retry-After` value, at least 1).
        retry_after_secs: u64,
    },
}

impl AuthFailure {
    /// The HTTP status: 401, 403 for a missing scope, 503 when the token cannot be checked now.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Malformed | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The HTTP answer: the status, a `WWW-Authenticate: Bearer` challenge (RFC 6750, with the
    /// RFC 9728 `resource_metadata` URL when given; for 503 `Retry-After` instead) and a short
    /// plain-text body saying what to do.
    pub fn into_response(self, resource_metadata: Option<&str>) -> Response {
        let status = self.status();
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        let error = match &self {
            Self::Missing | Self::Unavailable { .. } => None,
            Self::Malformed => Some("invalid_request"),
            Self::Invalid(_) => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
        };
        if let Some(error) = error {
            challenge.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                quoted(&self.to_string())
            ));
        }
        if let Self::InsufficientScope { scope } = &self {
            challenge.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        if let Some(url) = resource_metadata {
            challenge.push_str(&format!(", resource_metadata=\"{}\"", quoted(url)));
        }
        let retry_after = match &self {
            Self::Unavailable {
                retry_after_secs, ..
            } => Some((*retry_after_secs).max(1)),
            _ => None,
        };
        let mut response = (status, format!("{self}\n")).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Text made safe for an RFC 7230 quoted-string: visible ASCII and spaces, no `"` or `\`.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' ' | '!'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// Fetches the OAuth `issuer`'s metadata and key set as the server does at start: the
/// key set's URL and how many keys it holds (for `doctor`).
pub async fn check_issuer(issuer: &str) -> Result<(String, usize), DiscoveryError> {
    let issuer = discovery::Issuer::parse(issuer)?;
    let client = discovery::IssuerClient::new()?;
    let jwks_uri = client.discover_jwks_uri(&issuer).await?;
    let document = client.fetch_jwks(&jwks_uri).await?;
    let keys = jwks::KeySet::from_json(&document).map_err(DiscoveryError::Fetch)?;
    Ok((jwks_uri.to_string(), keys.len()))
}

/// Decides who a request acts for, from its bearer token.
#[derive(Debug)]
pub struct Authenticator {
    tokens: Option<StaticTokens>,
    oauth: Option<OAuthVerifier>,
}

impl Authenticator {
    /// Reads the tokens file and checks the OAuth settings, trying once to fetch the issuer's
    /// keys (a failure there is logged and retried when a token needs them).
    pub async fn new(settings: AuthSettings) -> Result<Self, AuthSetupError> {
        let tokens = match &settings.tokens_file {
            Some(path) => Some(StaticTokens::load(path)?),
            None => None,
        };
        let oauth = match settings.oauth {
            Some(oauth) => Some(OAuthVerifier::new(oauth).await?),
            None => None,
        };
        Ok(Self { tokens, oauth })
    }

    /// Whether any authentication is configured (static tokens or OAuth).
    pub fn is_configured(&self) -> bool {
        self.tokens.is_some() || self.oauth.is_some()
    }

    /// The OAuth settings, when OAuth tokens are accepted (for the RFC 9728 metadata).
    pub fn oauth(&self) -> Option<&OAuthSettings> {
        self.oauth.as_ref().map(OAuthVerifier::settings)
    }

    /// Who the request acts for. A static token wins; otherwise the token must be a valid OAuth
    /// access token. With no authentication configured every request acts for `local`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
        if !self.is_configured() {
            return Ok(Principal::local());
        }
        let token = bearer_token(headers)?;
        if let Some(principal) = self.tokens.as_ref().and_then(|t| t.principal_for(token)) {
            return Ok(principal);
        }
        match &self.oauth {
            Some(oauth) => oauth.verify(token).await,
            None => Err(AuthFailure::Invalid(
                "the token is not one of the server's tokens".to_owned(),
            )),
        }
    }
}

/// The token of the one `Authorization: Bearer <token>` header (scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthFailure::Missing)?;
    if values.next().is_some() {
        return Err(AuthFailure::Malformed);
    }
    let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(AuthFailure::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_bearer_token_is_read_from_one_authorization_header() {
        assert_eq!(bearer_token(&headers(&["Bearer abc.def"])), Ok("abc.def"));
        assert_eq!(bearer_token(&headers(&["bearer  abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER abc "])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(AuthFailure::Missing));
        for bad in [
            &["Basic YWxpY2U6cHc="][..],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a b"],
            &["Token abc"],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(
                bearer_token(&headers(bad)),
                Err(AuthFailure::Malformed),
                "{bad:?}"
            );
        }
    }

    fn challenge(failure: AuthFailure, metadata: Option<&str>) -> (StatusCode, String) {
        let response = failure.into_response(metadata);
        let value = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        (response.status(), value)
    }

    #[test]
    fn a_missing_token_gets_a_bare_challenge_with_the_metadata_url() {
        assert_eq!(
            challenge(AuthFailure::Missing, None),
            (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"vultr-inference-mcp\"".to_owned()
            )
        );
        let url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            challenge(AuthFailure::Missing, Some(url)).1,
            format!("Bearer realm=\"vultr-inference-mcp\", resource_metadata=\"{url}\"")
        );
    }

    #[test]
    fn an_invalid_token_is_described_in_a_safe_quoted_string() {
        let (status, value) = challenge(
            AuthFailure::Invalid("the \"aud\" is wrong\n".to_owned()),
            None,
        );
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            value,
            "Bearer realm=\"vultr-inference-mcp\", error=\"invalid_token\", \
             error_description=\"invalid token: the 'aud' is wrong?\""
        );
    }

    #[test]
    fn a_missing_scope_is_forbidden_and_names_the_scope() {
        let (status, value) = challenge(
            AuthFailure::InsufficientScope {
                scope: "mcp:tools".to_owned(),
            },
            None,
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(value.contains("error=\"insufficient_scope\""), "{value}");
        assert!(value.contains("scope=\"mcp:tools\""), "{value}");
    }

    #[test]
    fn a_token_that_cannot_be_checked_now_gets_503_and_when_to_retry() {
        let response = AuthFailure::Unavailable {
            reason: "the issuer is down".to_owned(),
            retry_after_secs: 42,
        }
        .into_response(None);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn without_configured_auth_everyone_is_local() {
        let auth = Authenticator::new(AuthSettings::default()).await.unwrap();
        assert!(!auth.is_configured());
        assert!(auth.oauth().is_none());
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await,
            Ok(Principal::local())
        );
    }
}
