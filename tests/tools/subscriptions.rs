//! `list_subscriptions` and `get_subscription`: the account's Serverless Inference
//! subscriptions and their usage, read through the account API with `VULTR_API_KEY`.
//! Keys are only ever shown as a hint (`…` and their last four characters).

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::assertions::{assert_contains, assert_lacks};
use crate::support::in_process::Server;
use crate::support::{fake_vultr::*, session::*};

const MAIN_ID: &str = DEFAULT_SUBSCRIPTION_ID;
const MAIN_KEY: &str = DEFAULT_SUBSCRIPTION_KEY;
const STAGING_ID: &str = STAGING_SUBSCRIPTION_ID;
const STAGING_KEY: &str = STAGING_SUBSCRIPTION_KEY;
const LAB_ID: &str = "9d7c6b5a-3333-4c4c-9c9c-333333333333";
const LAB_KEY: &str = "INFKEY-THREE-GGGG-HHHH-3333";

/// `main` (the fake's default), `staging`, and `Research Lab` created on another date.
fn three_subscriptions() -> Vec<Subscription> {
    vec![
        Subscription::new(MAIN_ID, "main", MAIN_KEY),
        Subscription::new(STAGING_ID, "staging", STAGING_KEY),
        Subscription {
            date_created: "2025-01-02T03:04:05+00:00".to_owned(),
            ..Subscription::new(LAB_ID, "Research Lab", LAB_KEY)
        },
    ]
}

/// The fake with [`three_subscriptions`] and a server pointed at it.
async fn three() -> (FakeVultr, Server) {
    let fake = FakeVultr::builder()
        .subscriptions(three_subscriptions())
        .start()
        .await;
    let server = Server::with_fake(&fake, &[]).await;
    (fake, server)
}

/// The fake with these `subscriptions` only and a server pointed at it.
async fn only(subscriptions: Vec<Subscription>) -> (FakeVultr, Server) {
    let fake = FakeVultr::builder()
        .subscriptions(subscriptions)
        .start()
        .await;
    let server = Server::with_fake(&fake, &[]).await;
    (fake, server)
}

/// `list_subscriptions`.
async fn list(server: &Server) -> CallToolResult {
    server.call("list_subscriptions", json!({})).await
}

/// `get_subscription` of `wanted` (an id or a label).
async fn get(server: &Server, wanted: &str) -> CallToolResult {
    server
        .call("get_subscription", json!({"subscription": wanted}))
        .await
}

/// How many times the usage of subscription `id` was read.
async fn usage_reads(fake: &FakeVultr, id: &str) -> usize {
    fake.count("GET", &format!("/v2/inference/{id}/usage"))
        .await
}

/// Makes the fake refuse the account key once, as Vultr does a wrong one.
async fn refuse_account_key_once(fake: &FakeVultr) {
    fake.fail(
        "GET",
        SUBSCRIPTIONS_PATH,
        401,
        r#"{"error":"Invalid API token.","status":401}"#,
        1,
    )
    .await;
}

/// The number at a JSON pointer, whether serialized as an integer or a float.
fn number_at(value: &Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {value}"))
}

/// Asserts the number at each JSON pointer, naming the pointer on failure.
fn assert_numbers(value: &Value, expected: &[(&str, f64)]) {
    for (pointer, number) in expected {
        assert_eq!(
            number_at(value, pointer),
            *number,
            "at {pointer} in {value}"
        );
    }
}

/// Fails when `secret` appears anywhere in the result: its text or its structured content.
fn assert_nowhere(result: &CallToolResult, secret: &str) {
    let text = text(result);
    assert!(!text.contains(secret), "`{secret}` leaked in text: {text}");
    let structured = result
        .structured_content
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(
        !structured.contains(secret),
        "`{secret}` leaked in structured content: {structured}"
    );
}

#[tokio::test]
async fn list_subscriptions_shows_every_subscription_with_id_label_date_and_key_hint() {
    let (_fake, server) = three().await;

    let result = list(&server).await;

    assert_eq!(
        ok(&result),
        json!({"subscriptions": [
            {"id": MAIN_ID, "label": "main", "date_created": "2024-06-05T10:13:31+00:00", "key_hint": "…1111"},
            {"id": STAGING_ID, "label": "staging", "date_created": "2024-06-05T10:13:31+00:00", "key_hint": "…2222"},
            {"id": LAB_ID, "label": "Research Lab", "date_created": "2025-01-02T03:04:05+00:00", "key_hint": "…3333"},
        ]})
    );
    let text = text(&result);
    assert!(text.starts_with("3 inference subscription(s):"), "{text}");
    for line in [
        format!("- main (id {MAIN_ID}), created 2024-06-05T10:13:31+00:00, key …1111"),
        format!("- staging (id {STAGING_ID}), created 2024-06-05T10:13:31+00:00, key …2222"),
        format!("- Research Lab (id {LAB_ID}), created 2025-01-02T03:04:05+00:00, key …3333"),
    ] {
        assert!(text.contains(&line), "missing `{line}` in: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn list_subscriptions_never_shows_a_full_inference_key_or_the_account_key() {
    let (_fake, server) = three().await;

    let result = list(&server).await;

    ok(&result);
    for secret in [MAIN_KEY, STAGING_KEY, LAB_KEY, ACCOUNT_KEY] {
        assert_nowhere(&result, secret);
    }
    server.stop().await;
}

#[tokio::test]
async fn list_subscriptions_reads_the_account_api_with_the_account_key() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    ok(&list(&server).await);

    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/v2/inference");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {ACCOUNT_KEY}").as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_key_too_short_to_hide_gets_a_hint_without_any_of_its_characters() {
    let (_fake, server) = only(vec![Subscription::new(MAIN_ID, "main", "SHORTKEY99")]).await;

    let result = list(&server).await;

    assert_eq!(ok(&result)["subscriptions"][0]["key_hint"], "…");
    assert_nowhere(&result, "SHORTKEY99");
    assert_nowhere(&result, "EY99");
    server.stop().await;
}

#[tokio::test]
async fn a_subscription_without_a_label_is_listed_as_having_none() {
    let (_fake, server) = only(vec![Subscription::new(MAIN_ID, "", MAIN_KEY)]).await;

    let result = list(&server).await;

    assert_eq!(ok(&result)["subscriptions"][0]["label"], "");
    assert!(
        text(&result).contains(&format!("- (no label) (id {MAIN_ID})")),
        "{}",
        text(&result)
    );
    server.stop().await;
}

#[tokio::test]
async fn an_account_without_subscriptions_lists_none_and_says_how_to_create_one() {
    let (_fake, server) = only(vec![]).await;

    let result = list(&server).await;

    assert_eq!(ok(&result), json!({"subscriptions": []}));
    let text = text(&result);
    assert_contains(
        &text,
        &[
            "No Serverless Inference subscriptions on this account",
            "Products > Serverless Inference",
        ],
    );
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_by_id_gives_the_subscription_and_its_current_usage() {
    let (fake, server) = three().await;

    let result = get(&server, MAIN_ID).await;

    let detail = ok(&result);
    assert_eq!(
        detail["subscription"],
        json!({"id": MAIN_ID, "label": "main", "date_created": "2024-06-05T10:13:31+00:00", "key_hint": "…1111"})
    );
    assert!(detail.get("usage_error").is_none(), "{detail}");
    let usage = &detail["usage"];
    let this_month = usage["chat_by_model"]["current_month"]
        .as_array()
        .expect("current_month is an array");
    assert_eq!(this_month.len(), 2, "{usage}");
    assert_eq!(this_month[0]["model"], "MiniMaxAI/MiniMax-M2.5");
    assert!(
        this_month[0].get("input_price").is_none(),
        "prices are shown in one unit only (USD): {usage}"
    );
    assert_eq!(this_month[1]["model"], "moonshotai/Kimi-K2.5");
    let last_month = usage["chat_by_model"]["previous_month"]
        .as_array()
        .expect("previous_month is an array");
    assert_eq!(last_month.len(), 1, "{usage}");
    assert_eq!(last_month[0]["model"], "moonshotai/Kimi-K2.5");
    assert_numbers(
        usage,
        &[
            ("/chat_by_model/current_month/0/output_tokens", 1_000_000.0),
            ("/chat_by_model/current_month/0/input_tokens", 500_000.0),
            ("/chat_by_model/current_month/0/input_usd_per_1m", 0.30),
            ("/chat_by_model/current_month/0/output_usd_per_1m", 1.20),
            ("/chat_by_model/current_month/1/output_tokens", 1_234_567.0),
            ("/chat_by_model/current_month/1/input_tokens", 500_000.0),
            ("/chat_by_model/current_month/1/input_usd_per_1m", 0.55),
            ("/chat_by_model/current_month/1/output_usd_per_1m", 2.75),
            ("/chat_by_model/previous_month/0/output_tokens", 6_543_210.0),
            ("/chat_by_model/previous_month/0/input_tokens", 12_425_821.0),
            ("/audio/tts_characters", 45_678.0),
            ("/audio/tts_sm_characters", 23_456.0),
            ("/image/megapixels", 21.35),
            ("/image/sm_megapixels", 6.55),
        ],
    );
    // The deprecated totals keep their values; the fields Vultr now sends as null are dropped.
    assert_eq!(
        usage["chat"],
        json!({"completion_tokens": 56782401, "cost": 156.16, "input_tokens": 10380472, "input_cost": 5.71})
    );

    let text = text(&result);
    for expected in [
        format!("Subscription main (id {MAIN_ID}), created 2024-06-05T10:13:31+00:00, key …1111"),
        "This month:".to_owned(),
        "- MiniMaxAI/MiniMax-M2.5: 500000 input + 1000000 output tokens ($0.3/$1.2 per 1M input/output tokens)".to_owned(),
        "- moonshotai/Kimi-K2.5: 500000 input + 1234567 output tokens ($0.55/$2.75 per 1M input/output tokens)".to_owned(),
        "Last month:".to_owned(),
        "- moonshotai/Kimi-K2.5: 12425821 input + 6543210 output tokens ($0.55/$2.75 per 1M input/output tokens)".to_owned(),
        "Text-to-speech: 45678 characters (HD), 23456 characters (basic)".to_owned(),
        "Images: 21.35 megapixels, 6.55 megapixels (small model)".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing `{expected}` in:\n{text}");
    }
    assert_eq!(usage_reads(&fake, MAIN_ID).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_by_label_finds_the_same_subscription() {
    let (fake, server) = three().await;

    let result = get(&server, "staging").await;

    let detail = ok(&result);
    assert_eq!(detail["subscription"]["id"], STAGING_ID);
    assert_eq!(detail["subscription"]["label"], "staging");
    assert_eq!(detail["subscription"]["key_hint"], "…2222");
    assert_eq!(usage_reads(&fake, STAGING_ID).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_matches_a_label_regardless_of_case() {
    let (_fake, server) = three().await;

    let upper = get(&server, "STAGING").await;
    let mixed = get(&server, "research lab").await;

    assert_eq!(ok(&upper)["subscription"]["id"], STAGING_ID);
    assert_eq!(ok(&mixed)["subscription"]["id"], LAB_ID);
    assert_eq!(ok(&mixed)["subscription"]["label"], "Research Lab");
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_reads_the_older_usage_shape_as_legacy_totals() {
    let (_fake, server) = three().await;

    let result = get(&server, "staging").await;

    let usage = ok(&result)["usage"].clone();
    assert!(usage.get("chat_by_model").is_none(), "{usage}");
    assert!(usage.get("image").is_none(), "{usage}");
    assert_eq!(
        usage["chat"],
        json!({"current_tokens": 654732, "monthly_allotment": 50000000, "overage": 0})
    );
    assert_numbers(
        &usage,
        &[
            ("/audio/tts_characters", 5_678.0),
            ("/audio/tts_sm_characters", 1_234.0),
        ],
    );

    let text = text(&result);
    assert_contains(
        &text,
        &[
            "Totals (legacy): current_tokens 654732, monthly_allotment 50000000, overage 0",
            "Text-to-speech: 5678 characters (HD), 1234 characters (basic)",
        ],
    );
    assert_lacks(&text, &["This month", "Images:"]);
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_never_shows_the_full_key() {
    let (_fake, server) = three().await;

    for wanted in [MAIN_ID, "staging", "Research Lab"] {
        let result = get(&server, wanted).await;
        ok(&result);
        for secret in [MAIN_KEY, STAGING_KEY, LAB_KEY, ACCOUNT_KEY] {
            assert_nowhere(&result, secret);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_subscription_is_an_error_naming_the_ones_that_exist() {
    let (fake, server) = three().await;

    let result = get(&server, "production").await;

    let message = err(&result);
    assert_contains(
        &message,
        &[
            "`production`",
            &format!("Known: main ({MAIN_ID}), staging ({STAGING_ID}), Research Lab ({LAB_ID})"),
        ],
    );
    assert_eq!(fake.count("GET", "/v2/inference").await, 1);
    assert!(
        !fake
            .requests()
            .await
            .iter()
            .any(|r| r.path.ends_with("/usage")),
        "no usage is read for a subscription that does not exist"
    );
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_without_the_subscription_argument_says_what_to_pass_and_where_to_look() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = server.call("get_subscription", json!({})).await;

    let message = err(&result);
    assert_eq!(
        message,
        "invalid arguments: `subscription` is required: Subscription id or label; list_subscriptions shows them."
    );
    assert!(fake.requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn subscription_tools_without_vultr_api_key_are_errors_naming_it() {
    let fake = FakeVultr::start().await;
    let server = Server::start(&overridden(&fake.base_urls(), &[])).await;

    let listed = list(&server).await;
    let got = get(&server, "main").await;

    for result in [&listed, &got] {
        let message = err(result);
        assert_contains(&message, &["VULTR_API_KEY", "account API"]);
    }
    assert!(fake.requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_rejected_account_key_is_an_error_with_the_status_vultrs_message_and_what_to_check() {
    let fake = FakeVultr::start().await;
    refuse_account_key_once(&fake).await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = list(&server).await;

    let message = err(&result);
    assert_contains(
        &message,
        &["HTTP 401", "Invalid API token.", "VULTR_API_KEY"],
    );
    assert!(!message.contains(ACCOUNT_KEY), "{message}");
    // The failure was a one-off: the next call reads the subscriptions.
    assert_eq!(ok(&list(&server).await)["subscriptions"][0]["id"], MAIN_ID);
    server.stop().await;
}

#[tokio::test]
async fn get_subscription_with_a_rejected_account_key_is_an_error_naming_vultr_api_key() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_API_KEY", "acct-WRONG-KEY-0000-0000")]).await;

    let result = get(&server, "main").await;

    let message = err(&result);
    assert_contains(
        &message,
        &["HTTP 401", "Invalid API token.", "VULTR_API_KEY"],
    );
    assert!(!message.contains("acct-WRONG-KEY-0000-0000"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn usage_that_cannot_be_read_still_shows_the_subscription_and_says_why() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "GET",
        &format!("/v2/inference/{MAIN_ID}/usage"),
        500,
        r#"{"error":"Internal error.","status":500}"#,
        1,
    )
    .await;
    // Retries off: this is about reporting the failure, not retrying.
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_RETRIES", "0")]).await;

    let result = get(&server, "main").await;

    let detail = ok(&result);
    assert_eq!(detail["subscription"]["id"], MAIN_ID);
    assert!(detail.get("usage").is_none(), "{detail}");
    let usage_error = detail["usage_error"].as_str().expect("usage_error is text");
    assert_contains(usage_error, &["HTTP 500", "Internal error."]);
    let text = text(&result);
    assert_contains(&text, &["Usage could not be read", "HTTP 500"]);
    server.stop().await;
}

#[tokio::test]
async fn vultrs_message_ending_in_a_full_stop_is_not_followed_by_a_second_one() {
    let fake = FakeVultr::start().await;
    refuse_account_key_once(&fake).await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = err(&list(&server).await);

    assert!(!message.contains(".."), "{message}");
    server.stop().await;
}
