//! Keys never leak: not in tool results (text or structured content), not in error
//! messages (even when Vultr's own message quotes a key), not in the server's logs at
//! the most verbose level, not in `--help`. The one exception is opt-in:
//! `VULTR_MCP_REVEAL_KEYS=true` shows the full key in `get_subscription`.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::fake_vultr::{
    ACCOUNT_KEY, CHAT_PATH, CONFIGURED_KEY, DEFAULT_SUBSCRIPTION_KEY, FakeVultr, MODELS_PATH,
    SUBSCRIPTIONS_PATH, Subscription, TOOL_CALL_ID, weather_tool,
};
use crate::support::mcp::{Home, Server, server_command};
use crate::support::session::{err, ok, text};

const ALPHA_ID: &str = "a1a1a1a1-0000-4000-8000-aaaaaaaaaaaa";
const ALPHA_KEY: &str = "sk-canary-ALPHA-Q7W3E9R1T5Y2U8I4O6P0";
const BRAVO_ID: &str = "b2b2b2b2-0000-4000-8000-bbbbbbbbbbbb";
const BRAVO_KEY: &str = "sk-canary-BRAVO-Z4X8C2V6B0N3M7L1K5J9";
const KEYS: [&str; 3] = [ACCOUNT_KEY, ALPHA_KEY, BRAVO_KEY];

async fn fake_with_alpha_and_bravo() -> FakeVultr {
    FakeVultr::builder()
        .subscriptions(vec![
            Subscription::new(ALPHA_ID, "alpha", ALPHA_KEY),
            Subscription::new(BRAVO_ID, "bravo", BRAVO_KEY),
        ])
        .start()
        .await
}

/// Every part of `key` long enough to matter (8 characters; a hint shows 4).
fn fragments(key: &str) -> Vec<&str> {
    (0..=key.len() - 8).map(|i| &key[i..i + 8]).collect()
}

/// Fails the test if any key, or any 8-character part of one, is in `haystack`.
fn assert_no_key_in(what: &str, haystack: &str) {
    for key in KEYS {
        for fragment in fragments(key) {
            assert!(
                !haystack.contains(fragment),
                "{what} shows part of a key (`{fragment}` of `{key}`):\n{haystack}"
            );
        }
    }
}

/// The whole result as the client received it: content blocks, structured content, flags.
fn serialized(result: &CallToolResult) -> String {
    serde_json::to_string(result).expect("a result serializes")
}

/// A chat completion body whose answer is `content`.
fn completion_saying(content: &str) -> String {
    json!({
        "id": "chatcmpl-canary",
        "object": "chat.completion",
        "created": 1,
        "model": "kimi-k2-instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string()
}

/// Records every result of a session, to be searched for keys at the end.
struct Transcript<'a> {
    server: &'a Server,
    seen: Vec<(String, String)>,
}

impl<'a> Transcript<'a> {
    async fn call(&mut self, label: &str, tool: &str, arguments: Value) -> CallToolResult {
        let outcome = self.server.try_call(tool, arguments).await;
        let shown = match &outcome {
            Ok(result) => serialized(result),
            Err(error) => format!("{error:?} / {error}"),
        };
        self.seen.push((label.to_owned(), shown));
        outcome.unwrap_or_else(|e| panic!("{label}: protocol error {e}"))
    }
}

#[tokio::test]
async fn no_key_appears_in_any_result_error_or_log_line_across_the_whole_tool_surface() {
    let fake = fake_with_alpha_and_bravo().await;
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_INFERENCE_SUBSCRIPTION", "alpha"),
            ("RUST_LOG", "trace"),
        ],
    )
    .await;
    let mut session = Transcript {
        server: &server,
        seen: Vec::new(),
    };
    let chat = |prompt: &str| json!({"model": "kimi-k2-instruct", "prompt": prompt});

    // Everything working.
    let listed = session
        .call("list_subscriptions", "list_subscriptions", json!({}))
        .await;
    assert_eq!(ok(&listed)["subscriptions"][1]["key_hint"], "…K5J9");
    for label in ["alpha", "bravo"] {
        let got = session
            .call(
                "get_subscription",
                "get_subscription",
                json!({"subscription": label}),
            )
            .await;
        assert_eq!(ok(&got)["subscription"]["label"], label);
    }
    ok(&session.call("list_models", "list_models", json!({})).await);
    let answered = session.call("chat", "chat_completion", chat("hi")).await;
    assert_eq!(ok(&answered)["content"], "echo: hi");
    let by_argument = session
        .call(
            "chat with the subscription argument",
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi", "subscription": "bravo"}),
        )
        .await;
    assert_eq!(ok(&by_argument)["content"], "echo: hi");

    // A tool-calling round trip.
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});
    let asked = session
        .call(
            "tool call",
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "messages": [question], "tools": [weather_tool()]}),
        )
        .await;
    let assistant = ok(&asked)["assistant_message"].clone();
    let tool_result =
        json!({"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "18°C and sunny"});
    let answered = session
        .call(
            "tool result",
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "messages": [question, assistant, tool_result], "tools": [weather_tool()]}),
        )
        .await;
    assert_eq!(ok(&answered)["finish_reason"], "stop");

    // Vultr quoting keys back, in errors and in an answer.
    fake.fail(
        "POST",
        CHAT_PATH,
        400,
        &format!(
            r#"{{"error":{{"message":"key {ALPHA_KEY} may not use this model","code":400}}}}"#
        ),
        1,
    )
    .await;
    let refused = err(&session
        .call("400 quoting the key", "chat_completion", chat("hi"))
        .await);
    assert!(refused.contains("may not use this model"), "{refused}");

    fake.fail(
        "POST",
        CHAT_PATH,
        401,
        &format!(
            r#"{{"error":{{"message":"Invalid API key {ALPHA_KEY}","code":401,"type":"authentication_error"}}}}"#
        ),
        2,
    )
    .await;
    err(&session
        .call("401 quoting the key", "chat_completion", chat("hi"))
        .await);

    fake.fail(
        "POST",
        CHAT_PATH,
        200,
        &format!("{{not json, the proxy says {BRAVO_KEY} and {ACCOUNT_KEY}"),
        1,
    )
    .await;
    err(&session
        .call("body that is not JSON", "chat_completion", chat("hi"))
        .await);

    fake.fail(
        "POST",
        CHAT_PATH,
        200,
        &completion_saying(&format!(
            "Sure, the keys are {BRAVO_KEY} and {ACCOUNT_KEY}."
        )),
        1,
    )
    .await;
    let echoed = session
        .call("an answer quoting keys", "chat_completion", chat("hi"))
        .await;
    assert!(
        ok(&echoed)["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Sure, the keys are")),
        "{}",
        text(&echoed)
    );

    fake.fail(
        "POST",
        CHAT_PATH,
        503,
        &format!(r#"{{"error":{{"message":"overloaded for {ALPHA_KEY}","code":503}}}}"#),
        3,
    )
    .await;
    err(&session
        .call("503 after retries", "chat_completion", chat("hi"))
        .await);

    fake.fail(
        "GET",
        SUBSCRIPTIONS_PATH,
        401,
        &format!(r#"{{"error":"Invalid API token {ACCOUNT_KEY}.","status":401}}"#),
        1,
    )
    .await;
    err(&session
        .call(
            "account 401 quoting the account key",
            "list_subscriptions",
            json!({}),
        )
        .await);

    fake.fail(
        "GET",
        &format!("{SUBSCRIPTIONS_PATH}/{ALPHA_ID}/usage"),
        400,
        &format!(r#"{{"error":"usage of {ALPHA_KEY} / {BRAVO_KEY} unavailable","status":400}}"#),
        1,
    )
    .await;
    let usage_failed = session
        .call(
            "usage error quoting keys",
            "get_subscription",
            json!({"subscription": "alpha"}),
        )
        .await;
    assert!(ok(&usage_failed)["usage_error"].is_string());

    fake.fail(
        "GET",
        SUBSCRIPTIONS_PATH,
        400,
        &format!(
            r#"{{"error":"bad request; your subscriptions use {ALPHA_KEY} and {BRAVO_KEY}","status":400}}"#
        ),
        1,
    )
    .await;
    err(&session
        .call(
            "account 400 quoting both keys",
            "get_subscription",
            json!({"subscription": "bravo"}),
        )
        .await);

    // Mistakes of the caller.
    err(&session
        .call(
            "unknown subscription",
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi", "subscription": "charlie"}),
        )
        .await);
    err(&session
        .call(
            "unknown model",
            "chat_completion",
            json!({"model": "no-such-model", "prompt": "hi"}),
        )
        .await);
    err(&session
        .call(
            "unknown subscription in get_subscription",
            "get_subscription",
            json!({"subscription": "charlie"}),
        )
        .await);
    let unknown_tool = server.try_call("no_such_tool", json!({})).await;
    assert!(unknown_tool.is_err());
    session
        .seen
        .push(("unknown tool".to_owned(), format!("{unknown_tool:?}")));

    // The keys were in play: both went upstream.
    let authorizations: Vec<String> = fake
        .requests()
        .await
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect();
    for key in KEYS {
        assert!(
            authorizations.contains(&format!("Bearer {key}")),
            "{key} was never used"
        );
    }

    for (label, shown) in &session.seen {
        assert_no_key_in(label, shown);
    }
    // Let the last log lines reach the capture.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stderr = server.stderr();
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "RUST_LOG=trace gave no verbose logs: {stderr}"
    );
    assert_no_key_in("stderr (RUST_LOG=trace)", &stderr);
    server.stop().await;
}

#[tokio::test]
async fn a_catalog_error_quoting_the_key_is_not_written_to_the_log() {
    let fake = fake_with_alpha_and_bravo().await;
    fake.fail(
        "GET",
        MODELS_PATH,
        401,
        &format!(
            r#"{{"error":{{"message":"Invalid API key {ALPHA_KEY}","code":401,"type":"authentication_error"}}}}"#
        ),
        1,
    )
    .await;
    let server = Server::with_fake(
        &fake,
        &[
            ("VULTR_INFERENCE_SUBSCRIPTION", "alpha"),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;

    let result = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi"}),
        )
        .await;

    // The catalog is only a check: the call still goes through.
    assert_eq!(ok(&result)["content"], "echo: hi", "{}", text(&result));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_no_key_in("stderr", &server.stderr());
    server.stop().await;
}

#[tokio::test]
async fn help_and_usage_errors_never_print_the_keys_in_the_environment() {
    for args in [&["--help"][..], &["--version"], &["--no-such-flag"]] {
        let home = Home::new();
        let output = server_command(&home)
            .args(args)
            .env("VULTR_API_KEY", ACCOUNT_KEY)
            .env("VULTR_INFERENCE_API_KEY", ALPHA_KEY)
            .env("VULTR_INFERENCE_SUBSCRIPTION", "alpha")
            .output()
            .await
            .expect("the binary runs");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!printed.trim().is_empty(), "{args:?} printed nothing");
        assert_no_key_in(&format!("`{}`", args.join(" ")), &printed);
    }
}

#[tokio::test]
async fn vultr_mcp_reveal_keys_shows_the_full_key_in_get_subscription_only() {
    let fake = fake_with_alpha_and_bravo().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_REVEAL_KEYS", "true")]).await;

    let got = server
        .call("get_subscription", json!({"subscription": "bravo"}))
        .await;
    let detail = ok(&got);
    assert_eq!(detail["subscription"]["api_key"], BRAVO_KEY);
    assert!(text(&got).contains(BRAVO_KEY), "{}", text(&got));
    assert!(
        !serialized(&got).contains(ALPHA_KEY),
        "only the subscription asked for is revealed"
    );

    let listed = server.call("list_subscriptions", json!({})).await;
    let subscriptions = ok(&listed)["subscriptions"].clone();
    for (subscription, hint) in subscriptions
        .as_array()
        .expect("a list")
        .iter()
        .zip(["…O6P0", "…K5J9"])
    {
        assert_eq!(subscription["key_hint"], hint, "{subscription}");
        assert!(subscription.get("api_key").is_none(), "{subscription}");
    }
    assert_no_key_in("list_subscriptions", &serialized(&listed));
    server.stop().await;
}

#[tokio::test]
async fn by_default_get_subscription_has_no_api_key_field_and_shows_only_the_hint() {
    let fake = fake_with_alpha_and_bravo().await;
    let server = Server::with_fake(&fake, &[]).await;

    let got = server
        .call("get_subscription", json!({"subscription": "bravo"}))
        .await;

    let detail = ok(&got);
    assert!(detail["subscription"].get("api_key").is_none(), "{detail}");
    assert_eq!(detail["subscription"]["key_hint"], "…K5J9");
    assert!(text(&got).contains("…K5J9"), "{}", text(&got));
    assert_no_key_in("get_subscription", &serialized(&got));
    server.stop().await;
}

#[tokio::test]
async fn vultr_mcp_reveal_keys_false_is_the_same_as_unset() {
    let fake = fake_with_alpha_and_bravo().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_REVEAL_KEYS", "false")]).await;

    let got = server
        .call("get_subscription", json!({"subscription": "alpha"}))
        .await;

    assert!(ok(&got)["subscription"].get("api_key").is_none());
    assert_no_key_in("get_subscription", &serialized(&got));
    server.stop().await;
}

#[tokio::test]
async fn no_error_text_ever_contains_the_inference_key_or_the_account_key() {
    const MAIN_KEY: &str = DEFAULT_SUBSCRIPTION_KEY;
    let chat = json!({"model": "kimi-k2-instruct", "prompt": "hi"});
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_RETRIES", "0")]).await;
    let quoting = format!(r#"{{"subscription":{{"id":"x","api_key":"{MAIN_KEY}"}}}}"#);
    let failures: [(u16, &str); 8] = [
        (
            400,
            r#"{"error":{"message":"bad request","code":400,"type":"invalid_request_error"}}"#,
        ),
        (403, r#"{"message":"Forbidden"}"#),
        (422, r#"{"error":{"message":"unprocessable","code":422}}"#),
        (429, r#"{"error":"slow down"}"#),
        (500, "<html>500</html>"),
        (503, "Service Unavailable"),
        (200, "not json"),
        // A body quoting a subscription record: its api_key is blanked in the quote.
        (200, &quoting),
    ];

    for (status, body) in failures {
        fake.fail("POST", CHAT_PATH, status, body, 1).await;
        let message = err(&server.call("chat_completion", chat.clone()).await);
        for secret in [MAIN_KEY, CONFIGURED_KEY, ACCOUNT_KEY] {
            assert!(!message.contains(secret), "a key leaked: {message}");
        }
        assert!(
            message.contains(&format!("HTTP {status}")),
            "{status}: {message}"
        );
    }
    let result = server.call("chat_completion", chat).await;
    assert_eq!(ok(&result)["content"], "echo: hi", "{}", text(&result));
    let stderr = server.stderr();
    for secret in [MAIN_KEY, ACCOUNT_KEY] {
        assert!(!stderr.contains(secret), "a key leaked to stderr: {stderr}");
    }
    server.stop().await;
}
