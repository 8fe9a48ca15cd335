//! OAuth 2.1 access tokens: what is accepted, what is refused and why, scopes, key rotation.

use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use vultr_inference_mcp::http::auth::{AuthFailure, Authenticator};
use vultr_inference_mcp::principal::Principal;

use crate::support::assertions::assert_contains;
use crate::support::oauth_issuer::{Discovery, OAuthIssuer, unix_now};
use crate::{AUDIENCE, bearer, oauth_only};

async fn issuer_and_auth(scope: Option<&str>) -> (OAuthIssuer, Authenticator) {
    let issuer = OAuthIssuer::start(Discovery::OAuthAuthorizationServer).await;
    let auth = oauth_only(&issuer, scope).await;
    (issuer, auth)
}

/// Why `token` is refused as invalid.
async fn invalid_because(auth: &Authenticator, token: &str) -> String {
    match auth.authenticate(&bearer(token)).await {
        Err(AuthFailure::Invalid(reason)) => reason,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn alice() -> Principal {
    Principal::new("alice").unwrap()
}

#[tokio::test]
async fn rs256_and_es256_tokens_act_for_their_subject() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", AUDIENCE);
    assert_eq!(
        auth.authenticate(&bearer(&issuer.token(&claims))).await,
        Ok(alice())
    );
    assert_eq!(
        auth.authenticate(&bearer(&issuer.token_es256(&claims)))
            .await,
        Ok(alice())
    );
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "the keys are fetched once and cached"
    );
}

#[tokio::test]
async fn a_token_whose_subject_is_local_cannot_act_as_the_local_user() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let token = issuer.token(&issuer.claims("local", AUDIENCE));
    let reason = invalid_because(&auth, &token).await;
    assert!(reason.contains("reserved"), "{reason}");
}

#[tokio::test]
async fn an_audience_list_need_only_contain_ours() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let mut claims = issuer.claims("alice", AUDIENCE);
    claims["aud"] = json!(["https://other.example.com", AUDIENCE]);
    assert_eq!(
        auth.authenticate(&bearer(&issuer.token(&claims))).await,
        Ok(alice())
    );
}

#[tokio::test]
async fn expiry_is_checked_with_sixty_seconds_of_leeway() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let mut claims = issuer.claims("alice", AUDIENCE);
    claims["exp"] = json!(unix_now() - 20);
    assert_eq!(
        auth.authenticate(&bearer(&issuer.token(&claims))).await,
        Ok(alice()),
        "expired 20 s ago is within the leeway"
    );
    claims["exp"] = json!(unix_now() - 120);
    let reason = invalid_because(&auth, &issuer.token(&claims)).await;
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let mut claims = issuer.claims("alice", AUDIENCE);
    claims["nbf"] = json!(unix_now() + 20);
    assert_eq!(
        auth.authenticate(&bearer(&issuer.token(&claims))).await,
        Ok(alice()),
        "valid in 20 s is within the leeway"
    );
    claims["nbf"] = json!(unix_now() + 120);
    let reason = invalid_because(&auth, &issuer.token(&claims)).await;
    assert!(reason.contains("not valid yet"), "{reason}");
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let mut claims = issuer.claims("alice", AUDIENCE);
    claims["iss"] = json!("https://evil.example.com");
    let reason = invalid_because(&auth, &issuer.token(&claims)).await;
    assert!(reason.contains("not issued by"), "{reason}");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", "https://other.example.com/mcp");
    let reason = invalid_because(&auth, &issuer.token(&claims)).await;
    assert_contains(&reason, &["not for this server", AUDIENCE]);
}

#[tokio::test]
async fn required_claims_must_be_present() {
    let (issuer, auth) = issuer_and_auth(None).await;
    for claim in ["sub", "exp", "aud", "iss"] {
        let mut claims = issuer.claims("alice", AUDIENCE);
        claims.as_object_mut().unwrap().remove(claim);
        let reason = invalid_because(&auth, &issuer.token(&claims)).await;
        assert!(
            reason.contains(&format!("no `{claim}` claim")),
            "{claim}: {reason}"
        );
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", AUDIENCE);
    let reason = invalid_because(&auth, &issuer.token_bad_signature(&claims)).await;
    assert!(reason.contains("signature does not verify"), "{reason}");
}

#[tokio::test]
async fn alg_none_and_hmac_tokens_are_refused_without_fetching_keys() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", AUDIENCE);
    let reason = invalid_because(&auth, &issuer.token_alg_none(&claims)).await;
    assert!(reason.contains("accepted algorithm"), "{reason}");
    let reason = invalid_because(&auth, &issuer.token_hs256(&claims, b"some shared secret")).await;
    assert!(reason.contains("HS256 are not accepted"), "{reason}");
    assert_eq!(issuer.jwks_fetches(), 1, "only the fetch at start");
}

#[tokio::test]
async fn a_required_scope_is_read_from_scope_or_scp() {
    let (issuer, auth) = issuer_and_auth(Some("mcp:tools")).await;
    let mut claims = issuer.claims("alice", AUDIENCE);
    for carried in [
        json!({"scope": "openid mcp:tools"}),
        json!({"scp": ["profile", "mcp:tools"]}),
        json!({"scp": "mcp:tools"}),
    ] {
        let mut claims = claims.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(carried.as_object().unwrap().clone());
        assert_eq!(
            auth.authenticate(&bearer(&issuer.token(&claims))).await,
            Ok(alice()),
            "{carried}"
        );
    }
    claims["scope"] = json!("openid mcp:tool");
    let failure = auth
        .authenticate(&bearer(&issuer.token(&claims)))
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        AuthFailure::InsufficientScope {
            scope: "mcp:tools".to_owned()
        }
    );
    let response = failure.into_response(Some(
        "http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp",
    ));
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"vultr-inference-mcp\""),
        "{challenge}"
    );
    assert_contains(
        challenge,
        &["error=\"insufficient_scope\"", "scope=\"mcp:tools\""],
    );
}

#[tokio::test]
async fn an_invalid_token_gets_401_with_the_resource_metadata_and_no_token_in_it() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let mut claims = issuer.claims("alice", AUDIENCE);
    claims["exp"] = json!(unix_now() - 3600);
    let token = issuer.token(&claims);
    let failure = auth.authenticate(&bearer(&token)).await.unwrap_err();
    let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    let response = failure.into_response(Some(metadata));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_contains(
        &challenge,
        &[
            "error=\"invalid_token\"",
            &format!("resource_metadata=\"{metadata}\""),
        ],
    );
    let signature = token.rsplit('.').next().unwrap();
    assert!(!challenge.contains(signature), "{challenge}");
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.contains("expired"), "{body}");
    assert!(!body.contains(signature), "{body}");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_accepted() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", AUDIENCE);
    let old = issuer.token(&claims);
    issuer.rotate();
    let new = issuer.token(&claims);
    assert_eq!(auth.authenticate(&bearer(&new)).await, Ok(alice()));
    assert_eq!(auth.authenticate(&bearer(&new)).await, Ok(alice()));
    assert_eq!(auth.authenticate(&bearer(&old)).await, Ok(alice()));
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "one fetch at start, one for the new kid"
    );
}

/// The seconds to wait given by a token that cannot be checked yet (its `Retry-After`).
async fn retry_after(auth: &Authenticator, token: &str) -> u64 {
    let failure = auth.authenticate(&bearer(token)).await.unwrap_err();
    let AuthFailure::Unavailable {
        reason,
        retry_after_secs,
    } = &failure
    else {
        panic!("expected a token that cannot be checked yet, got {failure:?}");
    };
    assert!(reason.contains("retry in"), "{reason}");
    let response = failure.clone().into_response(None);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::RETRY_AFTER],
        retry_after_secs.to_string()
    );
    *retry_after_secs
}

#[tokio::test]
async fn unknown_kids_refetch_the_keys_at_most_once_a_minute() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", AUDIENCE);
    let reason = invalid_because(&auth, &issuer.token_unknown_kid(&claims)).await;
    assert!(reason.contains("does not publish"), "{reason}");
    // Within the minute the kid might be a key rotated in since: retry when a fetch is allowed.
    for _ in 0..3 {
        let wait = retry_after(&auth, &issuer.token_unknown_kid(&claims)).await;
        assert!((50..=60).contains(&wait), "{wait}");
    }
    assert_eq!(issuer.jwks_fetches(), 2, "one fetch at start, one refetch");
}

#[tokio::test]
async fn a_key_rotated_after_an_unknown_kid_probe_gets_503_then_is_accepted_at_the_next_refetch() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let claims = issuer.claims("alice", AUDIENCE);
    let reason = invalid_because(&auth, &issuer.token_unknown_kid(&claims)).await;
    assert!(reason.contains("does not publish"), "{reason}");

    issuer.rotate();
    let new = issuer.token(&claims);
    let wait = retry_after(&auth, &new).await;
    assert!((50..=60).contains(&wait), "{wait}");
    assert_eq!(issuer.jwks_fetches(), 2, "no refetch during the cool-down");

    // Jump over the cool-down (the issuer still answers over real HTTP afterwards).
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(wait)).await;
    tokio::time::resume();
    assert_eq!(auth.authenticate(&bearer(&new)).await, Ok(alice()));
    assert_eq!(auth.authenticate(&bearer(&new)).await, Ok(alice()));
    assert_eq!(
        issuer.jwks_fetches(),
        3,
        "one refetch picked the rotation up"
    );
    // And the cool-down protects the issuer again: a probe now waits instead of fetching.
    retry_after(&auth, &issuer.token_unknown_kid(&claims)).await;
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn concurrent_tokens_with_a_new_kid_share_one_refetch() {
    let (issuer, auth) = issuer_and_auth(None).await;
    issuer.rotate();
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    let headers = bearer(&token);
    let results = futures_util::future::join_all((0..8).map(|_| auth.authenticate(&headers))).await;
    assert!(results.iter().all(|r| r == &Ok(alice())), "{results:?}");
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_token_in_the_query_string_is_not_looked_at() {
    let (issuer, auth) = issuer_and_auth(None).await;
    let token = issuer.token(&issuer.claims("alice", AUDIENCE));
    let request = http::Request::get(format!("/mcp?access_token={token}"))
        .body(())
        .unwrap();
    assert_eq!(
        auth.authenticate(request.headers()).await,
        Err(AuthFailure::Missing)
    );
    assert_eq!(
        auth.authenticate(&HeaderMap::new()).await,
        Err(AuthFailure::Missing)
    );
}

#[tokio::test]
async fn a_non_bearer_authorization_is_malformed() {
    let (_issuer, auth) = issuer_and_auth(None).await;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        "Basic YWxpY2U6c2VjcmV0".parse().unwrap(),
    );
    let failure = auth.authenticate(&headers).await.unwrap_err();
    assert_eq!(failure, AuthFailure::Malformed);
    let response = failure.into_response(None);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
}
