//! Authentication, tested in process: the `Authenticator` the HTTP layer uses, against a real
//! OAuth issuer on loopback (`support::oauth_issuer`) and real tokens files. One module per
//! way in: OAuth access tokens, issuer discovery, static tokens.

#[path = "../support/mod.rs"]
mod support;

mod discovery;
mod oauth;
mod static_tokens;

use http::{HeaderMap, HeaderValue, header};
use support::oauth_issuer::OAuthIssuer;
use vultr_inference_mcp::http::auth::{AuthSettings, AuthSetupError, Authenticator, OAuthSettings};

/// The audience the server under test expects (its public URL).
const AUDIENCE: &str = "https://mcp.example.com/mcp";

/// OAuth settings for tokens from `issuer`, requiring `scope` if given.
fn oauth_settings(issuer: &OAuthIssuer, scope: Option<&str>) -> OAuthSettings {
    settings_for(issuer.issuer(), scope)
}

/// OAuth settings for the issuer at `issuer_url` and [`AUDIENCE`].
fn settings_for(issuer_url: &str, scope: Option<&str>) -> OAuthSettings {
    OAuthSettings {
        issuer: issuer_url.to_owned(),
        audience: AUDIENCE.to_owned(),
        scope: scope.map(str::to_owned),
    }
}

/// An authenticator for OAuth tokens from the issuer at `issuer_url` only, or its set-up
/// error.
async fn oauth_at(issuer_url: &str) -> Result<Authenticator, AuthSetupError> {
    Authenticator::new(AuthSettings {
        tokens_file: None,
        oauth: Some(settings_for(issuer_url, None)),
    })
    .await
}

/// An authenticator accepting OAuth tokens from `issuer` only.
async fn oauth_only(issuer: &OAuthIssuer, scope: Option<&str>) -> Authenticator {
    Authenticator::new(AuthSettings {
        tokens_file: None,
        oauth: Some(oauth_settings(issuer, scope)),
    })
    .await
    .expect("the OAuth settings should be accepted")
}

/// Request headers carrying `Authorization: Bearer <token>`.
fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}
