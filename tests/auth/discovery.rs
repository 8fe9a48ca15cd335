//! Finding the issuer's keys: both well-known documents, issuers with a path, a document that
//! names another issuer, plain HTTP off loopback, and an issuer that is down.

use http::StatusCode;
use vultr_inference_mcp::http::auth::{AuthFailure, AuthSetupError, Authenticator};
use vultr_inference_mcp::principal::Principal;

use crate::support::assertions::assert_contains;
use crate::support::oauth_issuer::{Discovery, OAuthIssuer};
use crate::{AUDIENCE, bearer, oauth_at, oauth_only, oauth_settings};

/// Whether a token from `issuer` is accepted by an authenticator set up for it.
async fn accepts_its_tokens(issuer: &OAuthIssuer) {
    let auth = oauth_only(issuer, None).await;
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    assert_eq!(
        auth.authenticate(&bearer(&token)).await,
        Ok(Principal::new("alice").unwrap()),
        "issuer {}",
        issuer.issuer()
    );
    assert_eq!(issuer.metadata_fetches(), 1);
}

/// How `auth` failed `token` for being unable to check it just now, and why; fails the
/// test on any other outcome.
async fn unavailable(auth: &Authenticator, token: &str) -> (AuthFailure, String) {
    let failure = auth.authenticate(&bearer(token)).await.unwrap_err();
    let AuthFailure::Unavailable { reason, .. } = &failure else {
        panic!("expected unavailable, got {failure:?}");
    };
    let reason = reason.to_string();
    (failure, reason)
}

#[tokio::test]
async fn keys_are_found_through_either_well_known_document() {
    for discovery in [
        Discovery::OAuthAuthorizationServer,
        Discovery::OpenIdConfiguration,
    ] {
        accepts_its_tokens(&OAuthIssuer::start(discovery).await).await;
    }
}

#[tokio::test]
async fn an_issuer_with_a_path_is_found_by_inserting_or_appending_the_well_known_segment() {
    // RFC 8414 inserts `/.well-known/oauth-authorization-server` before the path;
    // OpenID Connect appends `/.well-known/openid-configuration` to it.
    for discovery in [
        Discovery::OAuthAuthorizationServer,
        Discovery::OpenIdConfiguration,
    ] {
        accepts_its_tokens(&OAuthIssuer::start_at(discovery, "/realms/team").await).await;
    }
}

#[tokio::test]
async fn a_document_naming_another_issuer_is_not_used() {
    let issuer = OAuthIssuer::start(Discovery::OAuthAuthorizationServer).await;
    // Same server, named differently: its document says `http://127.0.0.1:PORT`.
    let aliased = issuer.issuer().replace("127.0.0.1", "localhost");
    let auth = oauth_at(&aliased)
        .await
        .expect("a discovery failure is not a start-up error");
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    let (failure, reason) = unavailable(&auth, &token).await;
    assert_contains(&reason, &["names the issuer", issuer.issuer()]);
    assert_eq!(issuer.jwks_fetches(), 0);
    assert_eq!(
        failure.into_response(None).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn plain_http_issuers_are_refused_off_loopback() {
    let Err(error) = oauth_at("http://id.example.com").await else {
        panic!("a plain HTTP issuer off loopback was accepted");
    };
    assert!(matches!(error, AuthSetupError::OAuth(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("must use https"), "{message}");
}

#[tokio::test]
async fn an_issuer_down_at_start_is_tried_again_when_a_token_needs_it() {
    let issuer = OAuthIssuer::start(Discovery::OpenIdConfiguration).await;
    issuer.set_available(false);
    let auth = oauth_only(&issuer, None).await;
    assert!(auth.oauth().is_some());
    issuer.set_available(true);
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    assert_eq!(
        auth.authenticate(&bearer(&token)).await,
        Ok(Principal::new("alice").unwrap())
    );
}

#[tokio::test]
async fn while_the_issuer_is_down_requests_fail_clearly_and_do_not_hammer_it() {
    let issuer = OAuthIssuer::start(Discovery::OpenIdConfiguration).await;
    issuer.set_available(false);
    let auth = oauth_only(&issuer, None).await;
    let fetches_at_start = issuer.metadata_fetches();
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    for _ in 0..3 {
        let (_, reason) = unavailable(&auth, &token).await;
        assert_contains(&reason, &["503", "retry"]);
    }
    assert_eq!(fetches_at_start, 1);
    assert_eq!(
        issuer.metadata_fetches(),
        2,
        "one attempt at start and one for the first request; the others wait for the minute"
    );
}

#[tokio::test]
async fn the_settings_are_kept_for_the_protected_resource_metadata() {
    let issuer = OAuthIssuer::start(Discovery::OAuthAuthorizationServer).await;
    let auth = oauth_only(&issuer, Some("mcp:tools")).await;
    assert!(auth.is_configured());
    assert_eq!(
        auth.oauth(),
        Some(&oauth_settings(&issuer, Some("mcp:tools")))
    );
}

#[tokio::test]
async fn an_unreachable_issuer_is_reported_after_one_attempt_not_one_per_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let auth = oauth_at(&format!("http://127.0.0.1:{port}/realms/team"))
        .await
        .expect("an unreachable issuer is not a start-up error");
    // A well-signed token from another issuer: checking it needs the unreachable one's keys.
    let other = OAuthIssuer::start(Discovery::OAuthAuthorizationServer).await;
    let token = other.token(&other.claims("alice", AUDIENCE));
    let (_, reason) = unavailable(&auth, &token).await;
    assert_eq!(reason.matches("cannot connect").count(), 1, "{reason}");
    assert!(
        reason.contains("oauth-authorization-server/realms/team"),
        "{reason}"
    );
}
