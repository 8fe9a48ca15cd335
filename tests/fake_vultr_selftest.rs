//! Self-test of the fake Vultr server in `tests/support/fake_vultr/mod.rs`:
//! every route, the error bodies, and the scripted failures.

mod support;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::fake_vultr::{
    ACCOUNT_KEY, Catalog, DEFAULT_SUBSCRIPTION_ID, DEFAULT_SUBSCRIPTION_KEY, FakeVultr,
    Subscription, TOOL_CALL_ID,
};

/// Key of the default subscription.
const DEFAULT_KEY: &str = DEFAULT_SUBSCRIPTION_KEY;
/// Id of the default subscription.
const DEFAULT_ID: &str = DEFAULT_SUBSCRIPTION_ID;

/// Sends `GET url` with an optional bearer token; returns the status and the body as JSON (or a JSON string).
async fn get(url: &str, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = Client::new().get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    into_parts(request.send().await.expect("GET succeeds")).await
}

/// Sends `POST url` with a JSON body and an optional bearer token.
async fn post(url: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = Client::new().post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    into_parts(request.send().await.expect("POST succeeds")).await
}

/// Status plus body, parsed as JSON when possible, else wrapped as a JSON string.
async fn into_parts(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body is readable");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A chat request for `model` with one user message.
fn chat(model: &str, text: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": text }] })
}

/// A weather tool definition.
fn tool(name: &str) -> Value {
    json!({ "type": "function", "function": { "name": name, "parameters": { "type": "object" } } })
}

#[tokio::test]
async fn account_api_routes_and_auth() {
    let second = Subscription::new(
        "22222222-2222-2222-2222-222222222222",
        "second",
        "INFKEY-TWO",
    );
    let fake = FakeVultr::builder()
        .subscriptions(vec![
            Subscription::new(DEFAULT_ID, "main", DEFAULT_KEY),
            second.clone(),
        ])
        .start()
        .await;
    let base = fake.account_base_url();
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/v2"));
    let list_url = format!("{base}/inference");

    let unauthorized = json!({ "error": "Invalid API token.", "status": 401 });
    assert_eq!(
        get(&list_url, None).await,
        (StatusCode::UNAUTHORIZED, unauthorized.clone())
    );
    assert_eq!(
        get(&list_url, Some(DEFAULT_KEY)).await,
        (StatusCode::UNAUTHORIZED, unauthorized)
    );

    let (status, body) = get(&list_url, Some(ACCOUNT_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["subscriptions"][0],
        json!({ "id": DEFAULT_ID, "date_created": "2024-06-05T10:13:31+00:00", "label": "main", "api_key": DEFAULT_KEY })
    );
    assert_eq!(body["subscriptions"][1]["api_key"], "INFKEY-TWO");

    let (status, body) = get(&format!("{list_url}/{}", second.id), Some(ACCOUNT_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["subscription"]["label"], "second");

    let not_found = json!({ "error": "Subscription not found.", "status": 404 });
    assert_eq!(
        get(&format!("{list_url}/nope"), Some(ACCOUNT_KEY)).await,
        (StatusCode::NOT_FOUND, not_found.clone())
    );

    let (status, body) = get(&format!("{list_url}/{DEFAULT_ID}/usage"), Some(ACCOUNT_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["usage"]["chat_by_model"]["current_month"][1]["model"],
        "moonshotai/Kimi-K2.5"
    );
    assert_eq!(body["usage"]["image"]["megapixels"], 21.35);
    assert_eq!(body["usage"]["chat"]["overage"], Value::Null);

    let (status, body) = get(
        &format!("{list_url}/{}/usage", second.id),
        Some(ACCOUNT_KEY),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"usage":{"chat":{"current_tokens":654732,"monthly_allotment":50000000,"overage":0},"audio":{"tts_characters":5678,"tts_sm_characters":1234}}})
    );

    assert_eq!(
        get(&format!("{list_url}/nope/usage"), Some(ACCOUNT_KEY)).await,
        (StatusCode::NOT_FOUND, not_found)
    );
    let (status, _) = get(&format!("{list_url}/{DEFAULT_ID}/usage"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(fake.count("GET", "/v2/inference").await, 3);
    assert_eq!(fake.subscriptions()[1], second);
}

#[tokio::test]
async fn models_catalogs_are_public() {
    let fake = FakeVultr::start().await;
    let (status, body) = get(&format!("{}/models", fake.inference_base_url()), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data array")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "glm-5.2",
            "kimi-k2-instruct",
            "plain-chat-7b",
            "qwen3-embedding-4b",
            "qwen3-tts-12hz-1.7b",
            "z-image-turbo",
            "whisper-large-v3-turbo",
            "bge-reranker-v2-m3"
        ]
    );
    let glm = &body["data"][0];
    assert_eq!(glm["schema_version"], "2.4");
    let prompt_prices = glm["input_modalities"][0]["pricing"]
        .as_array()
        .expect("pricing");
    assert_eq!(prompt_prices.len(), 2, "discount window plus base rate");
    assert!(prompt_prices.iter().any(|p| p.get("utc_start").is_some()));
    assert!(
        prompt_prices
            .iter()
            .any(|p| p["cost_usd"] == "0.00000075" && p.get("utc_start").is_none())
    );
    assert_eq!(
        glm["output_modalities"][0]["supported_parameters"]["max_tokens"]["max"],
        131072
    );
    assert!(
        body["data"][2]["output_modalities"][0]["supported_parameters"]
            .get("tools")
            .is_none()
    );

    let fake = FakeVultr::builder()
        .catalog(Catalog::OpenAiList)
        .start()
        .await;
    let (_, body) = get(
        &format!("{}/models", fake.inference_base_url()),
        Some("any"),
    )
    .await;
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "llama-3.3-70b-instruct");
    let (status, body) = post(
        &format!("{}/chat/completions", fake.inference_base_url()),
        Some(DEFAULT_KEY),
        &chat("llama-3.3-70b-instruct", "hi"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["model"], "llama-3.3-70b-instruct");

    let raw = json!([{ "id": "only-model" }]);
    let fake = FakeVultr::builder()
        .catalog(Catalog::Raw(raw.clone()))
        .start()
        .await;
    let url = fake.inference_base_url();
    assert_eq!(
        get(&format!("{url}/models"), None).await,
        (StatusCode::OK, raw)
    );
    let (status, _) = post(
        &format!("{url}/chat/completions"),
        Some(DEFAULT_KEY),
        &chat("only-model", "x"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn chat_auth_and_unknown_model() {
    let fake = FakeVultr::builder()
        .extra_inference_key("ENV-KEY")
        .start()
        .await;
    let url = format!("{}/chat/completions", fake.inference_base_url());
    let request = chat("glm-5.2", "hello");

    let invalid =
        json!({"error":{"message":"Invalid API key","code":401,"type":"authentication_error"}});
    assert_eq!(
        post(&url, None, &request).await,
        (StatusCode::UNAUTHORIZED, invalid.clone())
    );
    assert_eq!(
        post(&url, Some(ACCOUNT_KEY), &request).await,
        (StatusCode::UNAUTHORIZED, invalid)
    );
    assert_eq!(
        post(&url, Some(DEFAULT_KEY), &request).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&url, Some("ENV-KEY"), &request).await.0,
        StatusCode::OK
    );

    assert_eq!(
        post(&url, Some(DEFAULT_KEY), &chat("gpt-4o", "hi")).await,
        (
            StatusCode::NOT_FOUND,
            json!({"error":{"message":"The model `gpt-4o` does not exist","code":"model_not_found","type":"invalid_request_error"}})
        )
    );
}

#[tokio::test]
async fn chat_echo_tool_call_and_tool_result() {
    let fake = FakeVultr::start().await;
    let url = format!("{}/chat/completions", fake.inference_base_url());

    // 1. Echo with usage: prompt 16 chars -> 4 tokens; reply "echo: " + 16 = 22 chars -> 5 tokens.
    let (status, body) = post(
        &url,
        Some(DEFAULT_KEY),
        &chat("kimi-k2-instruct", "What is 2 and 2?"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "id": "chatcmpl-fake-1", "object": "chat.completion", "created": 1788472794, "model": "kimi-k2-instruct",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "echo: What is 2 and 2?" }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9 }
        })
    );

    // Array-of-parts content; the last *user* message is echoed; tool_choice "none" disables tools.
    let request = json!({
        "model": "glm-5.2",
        "messages": [
            { "role": "system", "content": "be brief" },
            { "role": "user", "content": [{ "type": "text", "text": "Hello " }, { "type": "text", "text": "parts" }] },
        ],
        "tools": [tool("get_weather")],
        "tool_choice": "none",
    });
    let (_, body) = post(&url, Some(DEFAULT_KEY), &request).await;
    assert_eq!(body["id"], "chatcmpl-fake-2");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: Hello parts"
    );

    // 2. Tools: the first tool is called ...
    let mut request = chat("glm-5.2", "weather in Paris?");
    request["tools"] = json!([tool("get_weather"), tool("get_time")]);
    let (_, body) = post(&url, Some(DEFAULT_KEY), &request).await;
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        body["choices"][0]["message"],
        json!({ "role": "assistant", "content": null, "tool_calls": [{
            "id": TOOL_CALL_ID, "type": "function",
            "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } }] })
    );
    assert_eq!(body["usage"]["completion_tokens"], 10);

    // ... unless tool_choice names one.
    request["tool_choice"] = json!({ "type": "function", "function": { "name": "get_time" } });
    let (_, body) = post(&url, Some(DEFAULT_KEY), &request).await;
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_time"
    );

    // 3. A tool result as the last message ends the loop, even with tools present.
    let messages = request["messages"].as_array_mut().expect("messages");
    messages.push(json!({ "role": "assistant", "content": null, "tool_calls": [] }));
    messages.push(json!({ "role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "18C, sunny" }));
    let (_, body) = post(&url, Some(DEFAULT_KEY), &request).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Tool result received: 18C, sunny"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    let chats = fake.chat_requests().await;
    assert_eq!(chats.len(), 5);
    assert_eq!(chats[4], request);
}

#[tokio::test]
async fn chat_streaming_is_sse() {
    let fake = FakeVultr::start().await;
    let url = format!("{}/chat/completions", fake.inference_base_url());
    let mut request = chat("glm-5.2", "stream me");
    request["stream"] = json!(true);
    let response = Client::new()
        .post(&url)
        .bearer_auth(DEFAULT_KEY)
        .json(&request)
        .send()
        .await
        .expect("POST succeeds");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("body");
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("chunk is JSON"))
        .collect();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "echo: stream me");
    let last = chunks.last().expect("chunks");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["total_tokens"], 2 + 3);

    request["tools"] = json!([tool("get_weather")]);
    let (_, Value::String(text)) = post(&url, Some(DEFAULT_KEY), &request).await else {
        panic!("SSE body is not JSON");
    };
    let arguments: String = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(arguments, "{\"city\":\"Paris\"}");
}

#[tokio::test]
async fn catch_all_and_recording() {
    let fake = FakeVultr::start().await;
    let (status, body) = post(
        &format!("{}/no-such-route", fake.inference_base_url()),
        Some(DEFAULT_KEY),
        &json!({ "input": "x" }),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({ "error": "Not found", "status": 404 })
        )
    );
    let (status, _) = get(
        &format!("{}/inference?per_page=5", fake.account_base_url()),
        Some(ACCOUNT_KEY),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let requests = fake.requests().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/no-such-route");
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {DEFAULT_KEY}").as_str())
    );
    assert_eq!(requests[0].body, Some(json!({ "input": "x" })));
    assert_eq!(requests[1].path, "/v2/inference");
    assert_eq!(requests[1].body, None);
    assert_eq!(fake.count("get", "/v2/inference").await, 1);
}

#[tokio::test]
async fn scripted_failures_take_precedence_then_expire() {
    let fake = FakeVultr::start().await;
    let list_url = format!("{}/inference", fake.account_base_url());
    let rate_limited = r#"{"error":"Rate limit exceeded","status":429}"#;
    fake.fail_with_retry_after("GET", "/v2/inference", 429, rate_limited, 1, "0")
        .await;
    fake.fail("GET", "/v2/inference", 503, "upstream down", 1)
        .await;

    let response = Client::new()
        .get(&list_url)
        .bearer_auth(ACCOUNT_KEY)
        .send()
        .await
        .expect("GET succeeds");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "0");
    assert_eq!(
        into_parts(response).await.1,
        json!({"error":"Rate limit exceeded","status":429})
    );

    let response = Client::new()
        .get(&list_url)
        .bearer_auth(ACCOUNT_KEY)
        .send()
        .await
        .expect("GET");
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(
        into_parts(response).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Value::String("upstream down".into())
        )
    );
    assert_eq!(get(&list_url, Some(ACCOUNT_KEY)).await.0, StatusCode::OK);

    // Public route and chat route too; times == 0 is a no-op.
    let models_url = format!("{}/models", fake.inference_base_url());
    fake.fail("GET", "/v1/models", 500, "{}", 2).await;
    fake.fail("GET", "/v1/models", 418, "{}", 0).await;
    assert_eq!(
        get(&models_url, None).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        get(&models_url, None).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(get(&models_url, None).await.0, StatusCode::OK);
    assert_eq!(fake.count("GET", "/v1/models").await, 3);
}

#[tokio::test]
async fn stale_key_fails_and_rotation() {
    let fake = FakeVultr::start().await;
    let url = format!("{}/chat/completions", fake.inference_base_url());
    let request = chat("glm-5.2", "hi");
    let stale =
        r#"{"error":{"message":"Invalid API key","code":401,"type":"authentication_error"}}"#;
    fake.fail_for_key("POST", "/v1/chat/completions", DEFAULT_KEY, 401, stale, 1)
        .await;
    fake.rotate_key(DEFAULT_ID, "INFKEY-ROTATED").await;

    // Old key: scripted 401 first, then the normal 401 because it was rotated away.
    assert_eq!(
        post(&url, Some(DEFAULT_KEY), &request).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&url, Some(DEFAULT_KEY), &request).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&url, Some("INFKEY-ROTATED"), &request).await.0,
        StatusCode::OK
    );

    let (_, body) = get(
        &format!("{}/inference", fake.account_base_url()),
        Some(ACCOUNT_KEY),
    )
    .await;
    assert_eq!(body["subscriptions"][0]["api_key"], "INFKEY-ROTATED");
    let (_, body) = get(
        &format!("{}/inference/{DEFAULT_ID}", fake.account_base_url()),
        Some(ACCOUNT_KEY),
    )
    .await;
    assert_eq!(body["subscription"]["api_key"], "INFKEY-ROTATED");
    assert_eq!(
        fake.subscriptions()[0].api_key,
        DEFAULT_KEY,
        "configured snapshot"
    );

    // fail_for_key leaves other keys alone.
    fake.fail_for_key("POST", "/v1/chat/completions", "someone-else", 500, "{}", 1)
        .await;
    assert_eq!(
        post(&url, Some("INFKEY-ROTATED"), &request).await.0,
        StatusCode::OK
    );
    assert_eq!(fake.chat_requests().await.len(), 4);
}
