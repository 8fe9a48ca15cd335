//! Who is calling: static bearer tokens and OAuth 2.1 access tokens (JWT).
//! TEMPORARY STUB while the auth branch is built; replaced at merge.

use std::path::PathBuf;

use crate::principal::Principal;

/// Which credentials the server accepts.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// The static tokens file.
    pub tokens_file: Option<PathBuf>,
    /// OAuth access tokens.
    pub oauth: Option<OAuthSettings>,
}

/// OAuth settings.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// Issuer URL.
    pub issuer: String,
    /// Required audience.
    pub audience: String,
    /// Required scope.
    pub scope: Option<String>,
}

/// Authenticates requests.
pub struct Authenticator {
    settings: AuthSettings,
}

/// Setup failure.
#[derive(Debug, thiserror::Error)]
#[error("auth setup failed")]
pub struct AuthSetupError;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// No token.
    #[error("missing")]
    Missing,
}

impl Authenticator {
    /// Builds it.
    pub async fn new(settings: AuthSettings) -> Result<Self, AuthSetupError> {
        Ok(Self { settings })
    }
    /// Whether any credential is configured.
    pub fn is_configured(&self) -> bool {
        self.settings.tokens_file.is_some() || self.settings.oauth.is_some()
    }
    /// OAuth settings.
    pub fn oauth(&self) -> Option<&OAuthSettings> {
        self.settings.oauth.as_ref()
    }
    /// Authenticates.
    pub async fn authenticate(&self, _headers: &http::HeaderMap) -> Result<Principal, AuthFailure> {
        Err(AuthFailure::Missing)
    }
}

impl AuthFailure {
    /// The response.
    pub fn into_response(self, _resource_metadata: Option<&str>) -> axum::response::Response {
        let mut response = axum::response::Response::new(axum::body::Body::from("unauthorized"));
        *response.status_mut() = http::StatusCode::UNAUTHORIZED;
        response
    }
}
