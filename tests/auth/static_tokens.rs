//! Static bearer tokens from a tokens file, alone and beside OAuth.

use std::path::PathBuf;

use vultr_inference_mcp::http::auth::{
    AuthFailure, AuthSettings, AuthSetupError, Authenticator, hash_token_line,
};
use vultr_inference_mcp::principal::Principal;

use crate::support::assertions::assert_contains;
use crate::support::oauth_issuer::{Discovery, OAuthIssuer};
use crate::{AUDIENCE, bearer, oauth_settings};

/// A tokens file with `text`, kept alive with its directory.
fn tokens_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

async fn with_tokens(path: PathBuf) -> Result<Authenticator, AuthSetupError> {
    Authenticator::new(AuthSettings {
        tokens_file: Some(path),
        oauth: None,
    })
    .await
}

fn principal(name: &str) -> Principal {
    Principal::new(name).unwrap()
}

#[tokio::test]
async fn lines_made_by_hash_token_let_their_tokens_in() {
    let text = format!(
        "# team tokens\n{}\n\n{}\n{}\n",
        hash_token_line("alice", "alice-laptop-token").unwrap(),
        hash_token_line("alice", "alice-ci-token").unwrap(),
        hash_token_line("bob", "bob-token").unwrap(),
    );
    let (_dir, path) = tokens_file(&text);
    let auth = with_tokens(path).await.unwrap();
    assert!(auth.is_configured());
    assert!(auth.oauth().is_none());
    for (token, name) in [
        ("alice-laptop-token", "alice"),
        ("alice-ci-token", "alice"),
        ("bob-token", "bob"),
    ] {
        assert_eq!(auth.authenticate(&bearer(token)).await, Ok(principal(name)));
    }
    assert!(matches!(
        auth.authenticate(&bearer("bob-token-2")).await,
        Err(AuthFailure::Invalid(_))
    ));
    assert_eq!(
        auth.authenticate(&http::HeaderMap::new()).await,
        Err(AuthFailure::Missing)
    );
    let debug = format!("{auth:?}");
    let digest = hash_token_line("bob", "bob-token").unwrap();
    let digest = digest.split(' ').nth(1).unwrap();
    assert!(!debug.contains(&digest[..12]), "{debug}");
}

#[tokio::test]
async fn a_bad_line_stops_start_up_naming_file_and_line_but_not_its_text() {
    let good = hash_token_line("alice", "alice-token").unwrap();
    let (_dir, path) = tokens_file(&format!(
        "{good}\n# next: a pasted raw token\nraw-secret-token\n"
    ));
    let error = with_tokens(path.clone()).await.unwrap_err();
    assert!(matches!(error, AuthSetupError::TokensFile(_)), "{error:?}");
    let message = error.to_string();
    assert_contains(
        &message,
        &[&path.display().to_string(), "line 3", "hash-token NAME"],
    );
    assert!(!message.contains("raw-secret"), "{message}");
}

#[tokio::test]
async fn a_missing_tokens_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let error = with_tokens(dir.path().join("absent")).await.unwrap_err();
    assert!(
        error.to_string().contains("cannot read the tokens file"),
        "{error}"
    );
}

#[tokio::test]
async fn beside_oauth_a_static_token_wins_and_other_tokens_must_be_jwts() {
    let issuer = OAuthIssuer::start(Discovery::OAuthAuthorizationServer).await;
    let (_dir, path) = tokens_file(&hash_token_line("ci", "ci-token").unwrap());
    let auth = Authenticator::new(AuthSettings {
        tokens_file: Some(path),
        oauth: Some(oauth_settings(&issuer, None)),
    })
    .await
    .unwrap();
    assert_eq!(
        auth.authenticate(&bearer("ci-token")).await,
        Ok(principal("ci"))
    );
    let jwt = issuer.token(&issuer.claims("alice", AUDIENCE));
    assert_eq!(
        auth.authenticate(&bearer(&jwt)).await,
        Ok(principal("alice"))
    );
    let Err(AuthFailure::Invalid(reason)) = auth.authenticate(&bearer("guessed-token")).await
    else {
        panic!("an unknown token should be invalid");
    };
    assert!(
        reason.contains("not a static token and not a JWT"),
        "{reason}"
    );
}
