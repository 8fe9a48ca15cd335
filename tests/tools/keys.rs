//! Which inference key `chat_completion` sends: the configured `VULTR_INFERENCE_API_KEY`,
//! or one discovered from the account's subscriptions (with `VULTR_API_KEY`) on first use,
//! chosen by `VULTR_INFERENCE_SUBSCRIPTION` or the `subscription` argument, cached, and
//! read again once when the inference API refuses it.
//!
//! Observed through the `Authorization` header the fake records on
//! `POST /v1/chat/completions`.

use rmcp::model::CallToolResult;
use serde_json::json;

use crate::support::assertions::assert_contains;
use crate::support::in_process::Server;
use crate::support::{fake_vultr::*, session::*};

const MAIN_ID: &str = DEFAULT_SUBSCRIPTION_ID;
const MAIN_KEY: &str = DEFAULT_SUBSCRIPTION_KEY;
const STAGING_ID: &str = STAGING_SUBSCRIPTION_ID;
const STAGING_KEY: &str = STAGING_SUBSCRIPTION_KEY;
const ROTATED_KEY: &str = "INFKEY-ROTATED-XXXX-YYYY-7777";

fn two_subscriptions() -> Vec<Subscription> {
    vec![
        Subscription::new(MAIN_ID, "main", MAIN_KEY),
        Subscription::new(STAGING_ID, "staging", STAGING_KEY),
    ]
}

/// The fake with [`two_subscriptions`] and a server pointed at it with `extra` settings.
async fn two(extra: &[(&str, &str)]) -> (FakeVultr, Server) {
    let fake = FakeVultr::builder()
        .subscriptions(two_subscriptions())
        .start()
        .await;
    let server = Server::with_fake(&fake, extra).await;
    (fake, server)
}

/// A fake that also accepts [`CONFIGURED_KEY`] for inference.
async fn fake_accepting_configured_key() -> FakeVultr {
    FakeVultr::builder()
        .extra_inference_key(CONFIGURED_KEY)
        .start()
        .await
}

/// Asserts that `VULTR_INFERENCE_SUBSCRIPTION=choice`, on an account of two, makes the chat
/// use staging's key.
async fn assert_the_setting_chooses_staging(choice: &str) {
    let (fake, server) = two(&[("VULTR_INFERENCE_SUBSCRIPTION", choice)]).await;

    assert_answered(&server.chat_hi().await);

    assert_eq!(
        chat_authorizations(&fake).await,
        vec![bearer(STAGING_KEY)],
        "VULTR_INFERENCE_SUBSCRIPTION={choice}"
    );
    server.stop().await;
}

/// Makes the inference API refuse the main subscription's key, as after a revocation.
async fn refuse_the_main_key(fake: &FakeVultr) {
    fake.fail_for_key(
        "POST",
        CHAT_PATH,
        MAIN_KEY,
        401,
        r#"{"error":{"message":"Invalid API key","code":401,"type":"authentication_error"}}"#,
        10,
    )
    .await;
}

/// The default chat call with the `subscription` argument.
async fn chat_in(server: &Server, subscription: &str) -> CallToolResult {
    server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi", "subscription": subscription}),
        )
        .await
}

/// Asserts the fake model's answer to "hi".
fn assert_answered(result: &CallToolResult) {
    assert_eq!(ok(result)["content"], "echo: hi", "{}", text(result));
}

/// The `Authorization` header of every chat completion request, in order.
async fn chat_authorizations(fake: &FakeVultr) -> Vec<String> {
    fake.requests()
        .await
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == CHAT_PATH)
        .map(|r| r.authorization.unwrap_or_default())
        .collect()
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn the_only_subscriptions_key_is_used() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    assert_answered(&server.chat_hi().await);

    assert_eq!(chat_authorizations(&fake).await, vec![bearer(MAIN_KEY)]);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn vultr_inference_subscription_chooses_a_subscription_by_label() {
    assert_the_setting_chooses_staging("staging").await;
}

#[tokio::test]
async fn vultr_inference_subscription_chooses_a_subscription_by_id() {
    assert_the_setting_chooses_staging(STAGING_ID).await;
}

#[tokio::test]
async fn vultr_inference_subscription_matches_a_label_regardless_of_case() {
    assert_the_setting_chooses_staging("Staging").await;
}

#[tokio::test]
async fn several_subscriptions_without_a_choice_is_an_error_listing_their_labels() {
    let (fake, server) = two(&[]).await;

    let message = err(&server.chat_hi().await);

    assert_contains(
        &message,
        &[
            &format!(
                "this account has 2 inference subscriptions: main ({MAIN_ID}), staging ({STAGING_ID})"
            ),
            "VULTR_INFERENCE_SUBSCRIPTION",
            "`subscription` argument",
        ],
    );
    assert!(chat_authorizations(&fake).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_vultr_inference_subscription_is_an_error_naming_what_exists() {
    let (fake, server) = two(&[("VULTR_INFERENCE_SUBSCRIPTION", "prod")]).await;

    let message = err(&server.chat_hi().await);

    assert_contains(
        &message,
        &[
            "`prod`",
            &format!("main ({MAIN_ID}), staging ({STAGING_ID})"),
            "VULTR_INFERENCE_SUBSCRIPTION",
        ],
    );
    assert!(chat_authorizations(&fake).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_account_without_subscriptions_is_an_error_saying_to_create_one() {
    let fake = FakeVultr::builder().subscriptions(vec![]).start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&server.chat_hi().await);

    assert_contains(
        &message,
        &[
            "no Serverless Inference subscription",
            "Create one",
            "Products > Serverless Inference",
        ],
    );
    assert!(chat_authorizations(&fake).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_subscription_argument_overrides_vultr_inference_subscription() {
    let (fake, server) = two(&[("VULTR_INFERENCE_SUBSCRIPTION", "main")]).await;

    let chosen = chat_in(&server, "staging").await;
    let default = server.chat_hi().await;

    assert_answered(&chosen);
    assert_answered(&default);
    assert_eq!(
        chat_authorizations(&fake).await,
        vec![bearer(STAGING_KEY), bearer(MAIN_KEY)]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_subscription_argument_resolves_an_ambiguous_account() {
    let (fake, server) = two(&[]).await;

    let result = chat_in(&server, STAGING_ID).await;

    assert_answered(&result);
    assert_eq!(chat_authorizations(&fake).await, vec![bearer(STAGING_KEY)]);
    server.stop().await;
}

#[tokio::test]
async fn the_subscription_argument_overrides_a_configured_inference_key() {
    let fake = FakeVultr::builder()
        .subscriptions(two_subscriptions())
        .extra_inference_key(CONFIGURED_KEY)
        .start()
        .await;
    let server = Server::with_fake(&fake, &[("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY)]).await;

    let result = chat_in(&server, "staging").await;

    assert_answered(&result);
    assert_eq!(chat_authorizations(&fake).await, vec![bearer(STAGING_KEY)]);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn the_subscription_argument_without_vultr_api_key_is_an_error_naming_it() {
    let fake = fake_accepting_configured_key().await;
    let inference = fake.inference_base_url();
    let server = Server::start(&[
        ("VULTR_INFERENCE_BASE_URL", inference.as_str()),
        ("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY),
    ])
    .await;

    let result = chat_in(&server, "staging").await;

    let message = err(&result);
    assert_contains(&message, &["`staging`", "VULTR_API_KEY"]);
    assert!(chat_authorizations(&fake).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_configured_inference_key_is_used_without_touching_the_account_api() {
    let fake = fake_accepting_configured_key().await;
    let server = Server::with_fake(&fake, &[("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY)]).await;

    assert_answered(&server.chat_hi().await);
    assert_answered(&server.chat_hi().await);

    assert_eq!(
        chat_authorizations(&fake).await,
        vec![bearer(CONFIGURED_KEY), bearer(CONFIGURED_KEY)]
    );
    let account_requests: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path.starts_with("/v2/"))
        .collect();
    assert!(account_requests.is_empty(), "{account_requests:?}");
    server.stop().await;
}

#[tokio::test]
async fn without_any_key_chat_is_an_error_naming_both_variables_while_list_models_works() {
    let fake = FakeVultr::start().await;
    let server = Server::start(&overridden(&fake.base_urls(), &[])).await;

    let message = err(&server.chat_hi().await);
    let models = server.call("list_models", json!({})).await;

    assert_contains(&message, &["VULTR_INFERENCE_API_KEY", "VULTR_API_KEY"]);
    assert_eq!(ok(&models)["total_in_catalog"], 8);
    assert!(chat_authorizations(&fake).await.is_empty());
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn keys_are_discovered_lazily_not_at_startup_or_on_tools_list() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let tools = server
        .client
        .list_all_tools()
        .await
        .expect("tools/list succeeds");

    assert!(tools.iter().any(|t| t.name == "chat_completion"));
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 0);
    assert!(fake.requests().await.is_empty());

    assert_answered(&server.chat_hi().await);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_discovered_key_is_cached_across_calls() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    assert_answered(&server.chat_hi().await);
    assert_answered(&server.chat_hi().await);
    assert_answered(&server.chat_hi().await);

    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 1);
    assert_eq!(
        chat_authorizations(&fake).await,
        vec![bearer(MAIN_KEY), bearer(MAIN_KEY), bearer(MAIN_KEY)]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_discovered_key_that_is_refused_is_read_again_once_and_the_call_succeeds() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    assert_answered(&server.chat_hi().await);

    // The key is rotated in the portal: the old one now gets 401 from the inference API.
    fake.rotate_key(MAIN_ID, ROTATED_KEY).await;
    let result = server.chat_hi().await;

    assert_answered(&result);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
    assert_eq!(
        chat_authorizations(&fake).await,
        vec![bearer(MAIN_KEY), bearer(MAIN_KEY), bearer(ROTATED_KEY)]
    );
    // The fresh key is cached in turn.
    assert_answered(&server.chat_hi().await);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
    assert_eq!(
        chat_authorizations(&fake).await.last(),
        Some(&bearer(ROTATED_KEY))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refused_key_read_before_any_chat_is_replaced_within_the_same_call() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    // An unknown model fails at the catalog check, after the key was discovered and cached.
    let unknown = server
        .call(
            "chat_completion",
            json!({"model": "no-such-model", "prompt": "hi"}),
        )
        .await;
    err(&unknown);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 1);

    fake.rotate_key(MAIN_ID, ROTATED_KEY).await;
    assert_answered(&server.chat_hi().await);

    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
    assert_eq!(fake.count("POST", CHAT_PATH).await, 2);
    assert_eq!(
        chat_authorizations(&fake).await,
        vec![bearer(MAIN_KEY), bearer(ROTATED_KEY)]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_discovered_key_refused_again_after_the_fresh_read_is_an_error_without_more_retries() {
    let fake = FakeVultr::start().await;
    refuse_the_main_key(&fake).await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&server.chat_hi().await);

    assert_contains(&message, &["HTTP 401", "Invalid API key"]);
    assert!(!message.contains(MAIN_KEY), "{message}");
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 2);
    assert_eq!(fake.count("POST", CHAT_PATH).await, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_discovered_key_is_not_blamed_on_an_unset_vultr_inference_api_key() {
    let fake = FakeVultr::start().await;
    refuse_the_main_key(&fake).await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&server.chat_hi().await);

    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!message.contains("VULTR_INFERENCE_API_KEY"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn a_refused_configured_inference_key_is_an_error_naming_it_and_is_not_retried() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY)]).await;

    let message = err(&server.chat_hi().await);

    assert_contains(
        &message,
        &["HTTP 401", "Invalid API key", "VULTR_INFERENCE_API_KEY"],
    );
    assert!(!message.contains(CONFIGURED_KEY), "{message}");
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_blank_vultr_inference_api_key_counts_as_unset() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_INFERENCE_API_KEY", ""),
            ("VULTR_INFERENCE_SUBSCRIPTION", " "),
        ],
    )
    .await;

    assert_answered(&server.chat_hi().await);

    assert_eq!(chat_authorizations(&fake).await, vec![bearer(MAIN_KEY)]);
    server.stop().await;
}

#[tokio::test]
async fn the_catalog_is_read_with_the_discovered_key() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    assert_answered(&server.chat_hi().await);

    let catalog: Vec<Option<String>> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v1/models")
        .map(|r| r.authorization)
        .collect();
    assert_eq!(catalog, vec![Some(bearer(MAIN_KEY))]);
    server.stop().await;
}
