//! Who gets in over HTTP, and what each principal sees: static tokens (hashed in a file
//! made with `hash-token`), OAuth access tokens from a test issuer on loopback, and each
//! principal's conversations and sessions kept apart.

use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::http::{Generation, HttpServer, post_initialize, tokens_file};
use crate::support::oauth_issuer::{Discovery, OAuthIssuer};
use crate::support::session::{err, ok, overridden};

const ALICE_TOKEN: &str = "alice-token-5d1f0c7e9b2a";
const BOB_TOKEN: &str = "bob-token-8e3a61c4f7d9";
const AUDIENCE: &str = "https://mcp.example.test/mcp";

/// A server that accepts alice's and bob's static tokens, and its tokens file (removed
/// when dropped).
async fn server_with_tokens(
    fake: &FakeVultr,
    extra: &[(&str, &str)],
) -> (HttpServer, tempfile::TempPath) {
    let file = tokens_file(&[("alice", ALICE_TOKEN), ("bob", BOB_TOKEN)]).await;
    let path = file.to_str().unwrap().to_owned();
    let settings = fake.settings();
    let mut env = overridden(&settings, extra);
    env.push(("VULTR_MCP_AUTH_TOKENS", &path));
    (HttpServer::start(&env).await, file)
}

/// A fake, an issuer found by `discovery`, and a server pointed at the fake that accepts
/// the issuer's access tokens for [`AUDIENCE`], with `extra` settings.
async fn oauth_server(
    discovery: Discovery,
    extra: &[(&str, &str)],
) -> (FakeVultr, OAuthIssuer, HttpServer) {
    let fake = FakeVultr::start().await;
    let issuer = OAuthIssuer::start(discovery).await;
    let settings = fake.settings();
    let mut env = overridden(
        &settings,
        &[
            ("VULTR_MCP_OAUTH_ISSUER", issuer.issuer()),
            ("VULTR_MCP_OAUTH_AUDIENCE", AUDIENCE),
        ],
    );
    env.extend_from_slice(extra);
    let server = HttpServer::start(&env).await;
    (fake, issuer, server)
}

/// The `WWW-Authenticate` challenge of a request without a token, after checking it is
/// refused with 401.
async fn challenge_without_token(server: &HttpServer) -> String {
    let missing = post(server.url(), None).await;
    assert_eq!(missing.status(), 401);
    missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A raw MCP POST to `server` with `token` as its bearer token.
async fn post_bearer(server: &HttpServer, token: &str) -> reqwest::Response {
    post(server.url(), Some(&format!("Bearer {token}"))).await
}

/// A raw MCP POST to `url` with `authorization`, if any.
async fn post(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("authorization", value))
        .into_iter()
        .collect();
    post_initialize(url, &headers).await
}

#[tokio::test]
async fn static_tokens_let_in_only_their_holders_and_never_reach_the_logs() {
    let fake = FakeVultr::start().await;
    let (server, _tokens) = server_with_tokens(&fake, &[("RUST_LOG", "debug")]).await;

    let challenge = challenge_without_token(&server).await;
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        !challenge.contains("resource_metadata"),
        "no OAuth, no metadata: {challenge}"
    );

    let wrong = post(server.url(), Some("Bearer not-a-known-token")).await;
    assert_eq!(wrong.status(), 401);
    let in_query = post(
        &format!("{}?access_token={ALICE_TOKEN}", server.url()),
        None,
    )
    .await;
    assert_eq!(
        in_query.status(),
        401,
        "a token in the query string is not read"
    );
    let health = reqwest::get(server.at("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "health checks need no token");

    for generation in Generation::BOTH {
        assert!(
            server.try_connect(generation, None).await.is_err(),
            "{generation:?} without a token"
        );
        let alice = server.connect(generation, Some(ALICE_TOKEN)).await;
        ok(&alice.call("list_models", json!({})).await);
        alice.client.cancel().await.ok();
    }

    let (status, stderr) = server.terminate().await;
    assert!(status.success());
    assert!(stderr.contains("principal=\"alice\""), "{stderr}");
    for secret in [ALICE_TOKEN, BOB_TOKEN, "not-a-known-token"] {
        assert!(
            !stderr.contains(secret),
            "a token reached the log: {stderr}"
        );
    }
}

#[tokio::test]
async fn one_principal_never_sees_anothers_conversations_in_either_generation() {
    let fake = FakeVultr::start().await;
    let (server, _tokens) = server_with_tokens(&fake, &[]).await;
    for generation in Generation::BOTH {
        let alice = server.connect(generation, Some(ALICE_TOKEN)).await;
        let bob = server.connect(generation, Some(BOB_TOKEN)).await;
        let started = alice.chat_hi().await;
        let id = started.structured_content.as_ref().unwrap()["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let never = "c-00000000000000000000000000000000";

        let continue_with = |id: &str| json!({"model": "kimi-k2-instruct", "prompt": "what did I say?", "conversation_id": id});
        let theirs = err(&bob.call("chat_completion", continue_with(&id)).await);
        let nobodys = err(&bob.call("chat_completion", continue_with(never)).await);
        assert_eq!(
            theirs.replace(&id, "ID"),
            nobodys.replace(never, "ID"),
            "{generation:?}"
        );

        let theirs = err(&bob
            .call("delete_conversation", json!({"conversation_id": id}))
            .await);
        let nobodys = err(&bob
            .call("delete_conversation", json!({"conversation_id": never}))
            .await);
        assert_eq!(
            theirs.replace(&id, "ID"),
            nobodys.replace(never, "ID"),
            "{generation:?}"
        );

        let listed = bob.client.list_all_resources().await.unwrap();
        assert!(
            listed.iter().all(|resource| !resource.uri.contains(&id)),
            "{generation:?}: bob lists alice's conversation: {listed:?}"
        );
        let read = bob
            .client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
                "vultr://conversations/{id}"
            )))
            .await;
        assert!(read.is_err(), "{generation:?}: bob read alice's transcript");

        // Alice's conversation is intact and still hers.
        ok(&alice.call("chat_completion", continue_with(&id)).await);
        alice.client.cancel().await.ok();
        bob.client.cancel().await.ok();
    }
    server.terminate().await;
}

#[tokio::test]
async fn a_session_opened_by_one_principal_is_unknown_to_another() {
    let fake = FakeVultr::start().await;
    let (server, _tokens) = server_with_tokens(&fake, &[]).await;
    let opened = post(server.url(), Some(&format!("Bearer {ALICE_TOKEN}"))).await;
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let list = |token: &str| {
        reqwest::Client::new()
            .post(server.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .header("authorization", format!("Bearer {token}"))
            .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
            .send()
    };
    let hijack = list(BOB_TOKEN).await.unwrap();
    assert_eq!(hijack.status(), 404, "bob used alice's session");
    let own = list(ALICE_TOKEN).await.unwrap();
    assert_ne!(own.status(), 404, "alice lost her own session");
    server.terminate().await;
}

#[tokio::test]
async fn oauth_access_tokens_from_the_issuer_are_accepted_and_the_metadata_points_to_it() {
    let (_fake, issuer, server) = oauth_server(
        Discovery::OAuthAuthorizationServer,
        &[("VULTR_MCP_OAUTH_SCOPE", "mcp:use")],
    )
    .await;

    let challenge = challenge_without_token(&server).await;
    let metadata_url = server.at("/.well-known/oauth-protected-resource/mcp");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let document: serde_json::Value = reqwest::get(server.at(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(document["resource"], server.url(), "{document}");
        assert_eq!(document["authorization_servers"], json!([issuer.issuer()]));
        assert_eq!(document["scopes_supported"], json!(["mcp:use"]));
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }

    let mut claims = issuer.claims("carol@example.test", AUDIENCE);
    claims["scope"] = json!("openid mcp:use");
    let token = issuer.token(&claims);
    for generation in Generation::BOTH {
        let carol = server.connect(generation, Some(&token)).await;
        ok(&carol.call("list_models", json!({})).await);
        carol.client.cancel().await.ok();
    }

    let mut unscoped = issuer.claims("carol@example.test", AUDIENCE);
    unscoped["scope"] = json!("openid");
    let refused = post_bearer(&server, &issuer.token(&unscoped)).await;
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("mcp:use"),
        "{challenge}"
    );

    let mut elsewhere = issuer.claims("carol@example.test", "https://other.example.test/mcp");
    elsewhere["scope"] = json!("mcp:use");
    let refused = post_bearer(&server, &issuer.token(&elsewhere)).await;
    assert_eq!(refused.status(), 401, "a token for another audience");
    let refused = post_bearer(&server, &issuer.token_alg_none(&claims)).await;
    assert_eq!(refused.status(), 401, "alg none");
    server.terminate().await;
}

#[tokio::test]
async fn a_key_rotated_right_after_an_unknown_kid_probe_gets_503_with_retry_after_not_401() {
    let (_fake, issuer, server) = oauth_server(Discovery::OpenIdConfiguration, &[]).await;
    let claims = issuer.claims("carol@example.test", AUDIENCE);
    let probe = post_bearer(&server, &issuer.token_unknown_kid(&claims)).await;
    assert_eq!(probe.status(), 401, "the probe's kid is not published");

    issuer.rotate();
    let rotated = post_bearer(&server, &issuer.token(&claims)).await;
    assert_eq!(
        rotated.status(),
        503,
        "a key rotated in during the cool-down is not refused as invalid"
    );
    let retry_after: u64 = rotated.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = rotated.text().await.unwrap();
    assert!(body.contains("retry in"), "{body}");
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "one fetch at start, one for the probe"
    );
    server.terminate().await;
}
