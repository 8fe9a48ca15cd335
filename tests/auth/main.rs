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
use vultr_inference_mcp::http::auth::{AuthSettings, Authenticator, OAuthSettings};

/// The audience the server under test expects (its public URL).
const AUDIENCE: &str = "https://mcp.example.com/mcp";

/// OAuth settings for tokens from `issuer`, requiring `scope` if given.
fn oauth_settings(issuer: &OAuthIssuer, scope: Option<&str>) -> OAuthSettings {
    OAuthSettings {
        issuer: issuer.issuer().to_owned(),
        audience: AUDIENCE.to_owned(),
        scope: scope.map(str::to_owned),
    }
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
