//! `chat_completion` when the inference API fails: every failure is an `isError` result
//! with the HTTP status and Vultr's own message, no key ever appears in it, and the
//! server keeps serving (the next call succeeds).

use std::net::TcpListener;

use serde_json::json;

use crate::support::assertions::assert_contains;
use crate::support::in_process::Server;
use crate::support::{fake_vultr::*, session::*};

const MAIN_KEY: &str = DEFAULT_SUBSCRIPTION_KEY;

/// The error text of the next chat call, after checking it shows no key.
async fn chat_error(server: &Server) -> String {
    let message = err(&server.chat_hi().await);
    for secret in [MAIN_KEY, CONFIGURED_KEY, ACCOUNT_KEY] {
        assert!(!message.contains(secret), "a key leaked: {message}");
    }
    message
}

/// The server still answers: a plain chat call succeeds.
async fn assert_still_serving(server: &Server) {
    let result = server.chat_hi().await;
    assert_eq!(ok(&result)["content"], "echo: hi", "{}", text(&result));
}

/// Retries are off here: these tests are about how a failure reads (the retry module
/// covers retrying).
const NO_RETRIES: (&str, &str) = ("VULTR_MCP_MAX_RETRIES", "0");

/// The one chat failure scripted on the fake, then the error text of one chat call.
async fn error_for(status: u16, body: &str) -> (FakeVultr, Server, String) {
    let fake = FakeVultr::start().await;
    fake.fail("POST", CHAT_PATH, status, body, 1).await;
    let server = Server::with_fake(&fake, &[NO_RETRIES]).await;
    let message = chat_error(&server).await;
    (fake, server, message)
}

#[tokio::test]
async fn a_400_shows_vultrs_message_and_says_to_fix_the_request() {
    let (fake, server, message) = error_for(
        400,
        r#"{"error":{"message":"context_length_exceeded: too long","code":400,"type":"invalid_request_error"}}"#,
    )
    .await;

    assert_contains(
        &message,
        &[
            "HTTP 400",
            "context_length_exceeded: too long",
            "invalid_request_error",
            "Vultr rejected the request",
        ],
    );
    // A 400 is not retried.
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_422_shows_vultrs_message() {
    let (fake, server, message) = error_for(
        422,
        r#"{"error":{"message":"reasoning_effort 'ultra' is not supported","code":422,"type":"invalid_request_error"}}"#,
    )
    .await;

    assert_contains(
        &message,
        &["HTTP 422", "reasoning_effort 'ultra' is not supported"],
    );
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_429_says_the_call_was_rate_limited() {
    let (_fake, server, message) = error_for(
        429,
        r#"{"error":{"message":"Too many requests","code":429,"type":"rate_limit_error"}}"#,
    )
    .await;

    assert_contains(&message, &["HTTP 429", "Too many requests"]);
    assert!(message.to_lowercase().contains("rate limited"), "{message}");
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_says_how_long_to_wait() {
    let fake = FakeVultr::start().await;
    fake.fail_with_retry_after(
        "POST",
        CHAT_PATH,
        429,
        r#"{"error":{"message":"Too many requests","code":429,"type":"rate_limit_error"}}"#,
        1,
        "7",
    )
    .await;
    let server = Server::with_fake(&fake, &[NO_RETRIES]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &["HTTP 429", "wait 7s"]);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_500_is_reported_as_an_internal_error_on_vultrs_side() {
    let (_fake, server, message) = error_for(
        500,
        r#"{"error":{"message":"Internal server error","code":500,"type":"server_error"}}"#,
    )
    .await;

    assert_contains(
        &message,
        &["HTTP 500", "Internal server error", "try again"],
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_502_says_the_model_or_service_is_unavailable() {
    let (_fake, server, message) = error_for(
        502,
        r#"{"error":{"message":"Upstream model unavailable","code":502,"type":"server_error"}}"#,
    )
    .await;

    assert_contains(
        &message,
        &[
            "HTTP 502",
            "Upstream model unavailable",
            "The model or service is unavailable",
        ],
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_502_with_a_plain_text_body_quotes_it() {
    let (_fake, server, message) = error_for(502, "Bad Gateway").await;

    assert!(message.contains("HTTP 502: Bad Gateway"), "{message}");
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_200_with_a_body_that_is_not_json_gives_the_status_and_how_the_body_began() {
    let (_fake, server, message) =
        error_for(200, "upstream proxy says hello, this is not JSON at all").await;

    assert_contains(&message, &["HTTP 200", "upstream proxy says hello"]);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_200_json_body_without_choices_says_what_is_missing() {
    let (_fake, server, message) =
        error_for(200, r#"{"id":"chatcmpl-x","object":"chat.completion"}"#).await;

    assert_contains(&message, &["HTTP 200", "`choices`", "chatcmpl-x"]);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_top_level_message_body_is_shown() {
    // With a configured key, a 401 is final: no second look at the subscriptions.
    let fake = FakeVultr::builder()
        .extra_inference_key(CONFIGURED_KEY)
        .start()
        .await;
    fake.fail(
        "POST",
        CHAT_PATH,
        401,
        r#"{"message":"No API key provided"}"#,
        1,
    )
    .await;
    let server = Server::with_fake(&fake, &[("VULTR_INFERENCE_API_KEY", CONFIGURED_KEY)]).await;

    let message = chat_error(&server).await;

    assert_contains(
        &message,
        &["HTTP 401", "No API key provided", "VULTR_INFERENCE_API_KEY"],
    );
    assert_eq!(fake.count("POST", CHAT_PATH).await, 1);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_top_level_message_body_on_another_status_is_shown_too() {
    let (_fake, server, message) = error_for(403, r#"{"message":"No API key provided"}"#).await;

    assert_contains(&message, &["HTTP 403", "No API key provided"]);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_model_the_inference_api_does_not_know_is_reported_with_its_message() {
    // The catalog check passes (the model is listed); Vultr then refuses it.
    let (_fake, server, message) = error_for(
        404,
        r#"{"error":{"message":"The model `kimi-k2-instruct` does not exist","code":"model_not_found","type":"invalid_request_error"}}"#,
    )
    .await;

    assert_contains(
        &message,
        &[
            "HTTP 404",
            "The model `kimi-k2-instruct` does not exist",
            "model_not_found",
        ],
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_inference_api_is_an_error_naming_the_url_and_the_variable() {
    let fake = FakeVultr::start().await;
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        listener.local_addr().expect("a bound address").port()
    };
    let dead = format!("http://127.0.0.1:{port}/v1");
    let server = Server::with_fake(&fake, &[("VULTR_INFERENCE_BASE_URL", dead.as_str())]).await;

    let message = chat_error(&server).await;

    assert_contains(
        &message,
        &[&dead, "VULTR_INFERENCE_BASE_URL", "could not reach"],
    );
    // The account API (same fake, other base URL) is unaffected, and the server still answers.
    let listed = server.call("list_subscriptions", json!({})).await;
    assert_eq!(ok(&listed)["subscriptions"][0]["label"], "main");
    let again = chat_error(&server).await;
    assert!(again.contains(&dead), "{again}");
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_account_api_during_key_discovery_names_vultr_api_base_url() {
    let fake = FakeVultr::start().await;
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        listener.local_addr().expect("a bound address").port()
    };
    let dead = format!("http://127.0.0.1:{port}/v2");
    let server = Server::with_fake(&fake, &[("VULTR_API_BASE_URL", dead.as_str())]).await;

    let message = chat_error(&server).await;

    assert_contains(&message, &[&dead, "VULTR_API_BASE_URL", "subscriptions"]);
    assert_eq!(fake.count("POST", CHAT_PATH).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_upstream_message_that_echoes_the_key_does_not_show_it() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "POST",
        CHAT_PATH,
        400,
        &format!(
            r#"{{"error":{{"message":"key {MAIN_KEY} is not allowed to use this model","code":400}}}}"#
        ),
        1,
    )
    .await;
    let server = Server::with_fake(&fake, &[]).await;

    // chat_error fails the test when the key appears.
    let message = chat_error(&server).await;

    assert!(message.contains("HTTP 400"), "{message}");
    server.stop().await;
}
