//! The one fake Vultr of the tests, the benchmark and (through `examples/fake_vultr.rs`) the
//! Python interop run, on `127.0.0.1`.
//!
//! - [`FakeVultr`] (this module, built on `wiremock`): both APIs, their routes and error
//!   bodies, scripted failures by status, every request recorded.
//! - [`faults::FaultServer`]: the inference API spoken by hand over raw TCP, for what an
//!   HTTP library would refuse to do (resets, truncated or huge bodies, stalls, timed
//!   streams).
//!
//! Both serve the same catalog fixtures and share the paths, ids and keys below; tests use
//! these constants instead of typing them again.
//!
//! One [`MockServer`] on `127.0.0.1` (random port) serves both Vultr APIs:
//!
//! - the account API (Vultr API v2, Serverless Inference subscriptions) under `/v2`;
//! - the inference API (`/v1/models`, `/v1/chat/completions`) under `/v1`.
//!
//! Wire shapes, status codes and error bodies follow `/work/shared/vultr-api.md`
//! (Part A, Part B and Part C). Mock priorities:
//!
//! | priority | mocks |
//! |---|---|
//! | 1 | scripted failures ([`FakeVultr::fail`], [`FakeVultr::fail_for_key`], ...), limited with `up_to_n_times` |
//! | 5 | normal routes; responses are decided in [`Respond::respond`] from shared state |
//! | 255 | catch-all `404 {"error":"Not found","status":404}` |
//!
//! Every request, whichever mock answered it, is visible through [`FakeVultr::requests`].

pub mod audio;
pub mod faults;
pub mod images;
pub mod retrieval;
pub mod script;
pub mod vector_store;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use wiremock::matchers::{any, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Path of the inference API's chat completions.
pub const CHAT_PATH: &str = "/v1/chat/completions";
/// Path of the inference API's model catalog.
pub const MODELS_PATH: &str = "/v1/models";
/// Path of the account API's subscription list.
pub const SUBSCRIPTIONS_PATH: &str = "/v2/inference";

/// The only Vultr account API key (`VULTR_API_KEY`) the fake account API accepts.
pub const ACCOUNT_KEY: &str = "acct-KEY-0000-SECRET-ACCT";

/// `date_created` given to every subscription made by [`Subscription::new`].
pub const DATE_CREATED: &str = "2024-06-05T10:13:31+00:00";

/// Id of the default subscription.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "0c2e1a52-7a0e-4c8e-9a3e-111111111111";
/// Label of the default subscription.
pub const DEFAULT_SUBSCRIPTION_LABEL: &str = "main";
/// Inference API key of the default subscription.
pub const DEFAULT_SUBSCRIPTION_KEY: &str = "INFKEY-ONE-AAAA-BBBB-CCCC-1111";
/// Id of the second subscription (labelled `staging`) of the tests that add one.
pub const STAGING_SUBSCRIPTION_ID: &str = "5b9f0d3e-2222-4a4a-8b8b-222222222222";
/// Inference API key of the `staging` subscription.
pub const STAGING_SUBSCRIPTION_KEY: &str = "INFKEY-TWO-DDDD-EEEE-FFFF-2222";
/// An inference key tests configure with `VULTR_INFERENCE_API_KEY` (the fake accepts it
/// when built with `extra_inference_key`).
pub const CONFIGURED_KEY: &str = "CONFIGURED-INFERENCE-KEY-9999";

/// `created` timestamp of every fake chat completion.
const COMPLETION_CREATED: u64 = 1_788_472_794;
/// Arguments of every fake tool call.
const TOOL_CALL_ARGUMENTS: &str = "{\"city\":\"Paris\"}";
/// Id of every fake tool call.
pub const TOOL_CALL_ID: &str = "call_fake_1";
/// `completion_tokens` reported for a tool-call reply.
const TOOL_CALL_COMPLETION_TOKENS: u64 = 10;

/// Priority of scripted failures (wiremock: 1 is the highest).
const PRIORITY_SCRIPTED: u8 = 1;
/// Priority of the normal routes.
const PRIORITY_NORMAL: u8 = 5;
/// Priority of the catch-all 404.
const PRIORITY_CATCH_ALL: u8 = 255;

/// The Model Document 2.4 catalog fixture (`tests/fixtures/catalog-2.4.json`).
pub const CATALOG_DOCUMENT_24: &str = include_str!("../../fixtures/catalog-2.4.json");
/// The older OpenAI list catalog fixture (`tests/fixtures/catalog-openai.json`).
const CATALOG_OPENAI_LIST: &str = include_str!("../../fixtures/catalog-openai.json");

/// One Serverless Inference subscription as the account API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Subscription UUID (`inference-id` in the account API paths).
    pub id: String,
    /// User label.
    pub label: String,
    /// The inference API key of this subscription.
    pub api_key: String,
    /// Creation time, ISO-8601 with offset.
    pub date_created: String,
}

impl Subscription {
    /// A subscription with `date_created` `"2024-06-05T10:13:31+00:00"`.
    pub fn new(id: &str, label: &str, api_key: &str) -> Self {
        Self {
            id: id.to_owned(),
            label: label.to_owned(),
            api_key: api_key.to_owned(),
            date_created: DATE_CREATED.to_owned(),
        }
    }

    /// The `inference-subscription` JSON object (spec field order).
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "date_created": self.date_created,
            "label": self.label,
            "api_key": self.api_key,
        })
    }
}

/// Which body `GET /v1/models` returns.
#[derive(Debug, Clone)]
pub enum Catalog {
    /// `tests/fixtures/catalog-2.4.json`: `{"data":[ModelDocument 2.4, ...]}`.
    Document24,
    /// `tests/fixtures/catalog-openai.json`: `{"object":"list","data":[{"id",...}]}`.
    OpenAiList,
    /// Any JSON body, returned verbatim; model ids are read from `data[].id` (or a bare array).
    Raw(Value),
}

impl Catalog {
    /// The JSON body served for this catalog.
    fn to_json(&self) -> Value {
        match self {
            Catalog::Document24 => serde_json::from_str(CATALOG_DOCUMENT_24)
                .expect("tests/fixtures/catalog-2.4.json is valid JSON"),
            Catalog::OpenAiList => serde_json::from_str(CATALOG_OPENAI_LIST)
                .expect("tests/fixtures/catalog-openai.json is valid JSON"),
            Catalog::Raw(value) => value.clone(),
        }
    }
}

/// Model ids of a catalog body: `data[].id`, or `[].id` for a bare array.
fn catalog_model_ids(catalog: &Value) -> Vec<String> {
    let entries = catalog
        .get("data")
        .and_then(Value::as_array)
        .or_else(|| catalog.as_array());
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// HTTP method, upper case (`"GET"`, `"POST"`, ...).
    pub method: String,
    /// URL path without the query string, e.g. `"/v2/inference"`.
    pub path: String,
    /// The raw `Authorization` header, e.g. `"Bearer acct-..."`, if sent.
    pub authorization: Option<String>,
    /// The body parsed as JSON; `None` when empty or not JSON.
    pub body: Option<Value>,
}

impl From<&Request> for Recorded {
    fn from(request: &Request) -> Self {
        Self {
            method: request.method.as_str().to_owned(),
            path: request.url.path().to_owned(),
            authorization: request
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body: serde_json::from_slice(&request.body).ok(),
        }
    }
}

/// Mutable state shared between [`FakeVultr`] and its responders.
#[derive(Debug)]
struct State {
    /// Subscriptions with their current (possibly rotated) keys, in list order.
    subscriptions: Vec<Subscription>,
    /// Extra keys the inference API accepts besides the subscriptions' keys.
    extra_inference_keys: Vec<String>,
    /// Ids of the models in the served catalog.
    model_ids: Vec<String>,
    /// Number of chat completions answered so far (drives `chatcmpl-fake-N`).
    completions: u64,
    /// Whether the fake model answers in text even when it must call a tool.
    ignores_tools: bool,
    /// Every transcription request, as parsed.
    transcriptions: Vec<audio::TranscriptionSeen>,
}

/// Handle to the shared state.
type Shared = Arc<Mutex<State>>;

/// Locks the shared state, ignoring poisoning (a panicking test must not cascade).
fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bearer token of a request, if it has `Authorization: Bearer <token>`.
fn bearer(request: &Request) -> Option<&str> {
    request
        .headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// A JSON response.
fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// Account API (v2) error body: `{"error": message, "status": status}`.
fn account_error(status: u16, message: &str) -> ResponseTemplate {
    json_response(status, json!({ "error": message, "status": status }))
}

/// Inference API error body: `{"error":{"message","code","type"}}`.
fn inference_error(status: u16, message: &str, code: Value, kind: &str) -> ResponseTemplate {
    json_response(
        status,
        json!({ "error": { "message": message, "code": code, "type": kind } }),
    )
}

/// Which account API route a responder serves.
#[derive(Debug, Clone, Copy)]
enum AccountRoute {
    /// `GET /v2/inference`
    List,
    /// `GET /v2/inference/{id}`
    Get,
    /// `GET /v2/inference/{id}/usage`
    Usage,
}

/// Responder for the account API routes.
struct AccountResponder {
    /// Shared state (subscriptions).
    state: Shared,
    /// The route this responder is mounted on.
    route: AccountRoute,
}

impl Respond for AccountResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if bearer(request) != Some(ACCOUNT_KEY) {
            return account_error(401, "Invalid API token.");
        }
        let state = lock(&self.state);
        // Path segments: ["", "v2", "inference", id, "usage"?]
        let id = request.url.path().split('/').nth(3).unwrap_or_default();
        match self.route {
            AccountRoute::List => {
                let subscriptions: Vec<Value> = state
                    .subscriptions
                    .iter()
                    .map(Subscription::to_json)
                    .collect();
                json_response(200, json!({ "subscriptions": subscriptions }))
            }
            AccountRoute::Get => match state.subscriptions.iter().find(|s| s.id == id) {
                Some(subscription) => {
                    json_response(200, json!({ "subscription": subscription.to_json() }))
                }
                None => account_error(404, "Subscription not found."),
            },
            AccountRoute::Usage => match state.subscriptions.iter().position(|s| s.id == id) {
                Some(0) => json_response(200, current_usage()),
                Some(_) => json_response(200, legacy_usage()),
                None => account_error(404, "Subscription not found."),
            },
        }
    }
}

/// The current usage shape (spec example, vultr-api.md A.2).
fn current_usage() -> Value {
    json!({"usage": {
        "chat_by_model": {
            "current_month": [
                {"model": "MiniMaxAI/MiniMax-M2.5", "tokens": 1000000, "input_tokens": 500000, "output_price": 120, "input_price": 30},
                {"model": "moonshotai/Kimi-K2.5", "tokens": 1234567, "input_tokens": 500000, "output_price": 275, "input_price": 55}
            ],
            "previous_month": [
                {"model": "moonshotai/Kimi-K2.5", "tokens": 6543210, "input_tokens": 12425821, "output_price": 275, "input_price": 55}
            ]
        },
        "audio": {"tts_characters": 45678, "tts_sm_characters": 23456},
        "image": {"megapixels": 21.35, "sm_megapixels": 6.55},
        "chat": {
            "completion_tokens": 56782401, "cost": 156.16, "input_tokens": 10380472, "input_cost": 5.71,
            "current_tokens": null, "monthly_allotment": null, "overage": null
        }
    }})
}

/// The older (2024) usage shape from the govultr tests.
fn legacy_usage() -> Value {
    json!({"usage": {
        "chat": {"current_tokens": 654732, "monthly_allotment": 50000000, "overage": 0},
        "audio": {"tts_characters": 5678, "tts_sm_characters": 1234}
    }})
}

/// Text of a message `content`: a string, or the `text` parts of an array joined with "".
pub fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// What the fake model answers.
enum Reply {
    /// A plain assistant text message.
    Text(String),
    /// One tool call to the named function.
    ToolCall(String),
}

impl Reply {
    /// Decides the reply from the request's `messages`, `tools` and `tool_choice`.
    fn decide(request: &Value, messages: &[Value]) -> Reply {
        let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_owned);
        if let Some(last) = messages.last()
            && role(last).as_deref() == Some("tool")
        {
            let result = content_text(last.get("content"));
            return Reply::Text(format!("Tool result received: {result}"));
        }
        let tools = request
            .get("tools")
            .and_then(Value::as_array)
            .filter(|tools| !tools.is_empty());
        let tool_choice = request.get("tool_choice");
        if let Some(tools) = tools
            && tool_choice.and_then(Value::as_str) != Some("none")
        {
            let forced = tool_choice
                .and_then(|choice| choice.pointer("/function/name"))
                .and_then(Value::as_str);
            let first = tools[0].pointer("/function/name").and_then(Value::as_str);
            let name = forced.or(first).unwrap_or_default();
            return Reply::ToolCall(name.to_owned());
        }
        let last_user = messages
            .iter()
            .rev()
            .find(|m| role(m).as_deref() == Some("user"))
            .map(|m| content_text(m.get("content")))
            .unwrap_or_default();
        Reply::Text(format!("echo: {last_user}"))
    }

    /// `finish_reason` of this reply.
    fn finish_reason(&self) -> &'static str {
        match self {
            Reply::Text(_) => "stop",
            Reply::ToolCall(_) => "tool_calls",
        }
    }

    /// `completion_tokens` of this reply.
    fn completion_tokens(&self) -> u64 {
        match self {
            Reply::Text(text) => (char_count(text) / 4).max(1),
            Reply::ToolCall(_) => TOOL_CALL_COMPLETION_TOKENS,
        }
    }

    /// The complete assistant `message` object.
    fn message(&self) -> Value {
        match self {
            Reply::Text(text) => json!({ "role": "assistant", "content": text }),
            Reply::ToolCall(name) => json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": TOOL_CALL_ID,
                    "type": "function",
                    "function": { "name": name, "arguments": TOOL_CALL_ARGUMENTS },
                }],
            }),
        }
    }

    /// The `delta` objects of a streamed reply, after the initial role delta.
    fn deltas(&self) -> Vec<Value> {
        match self {
            Reply::Text(text) => {
                let (head, tail) = split_half(text);
                vec![json!({ "content": head }), json!({ "content": tail })]
            }
            Reply::ToolCall(name) => {
                let (head, tail) = split_half(TOOL_CALL_ARGUMENTS);
                vec![
                    json!({ "tool_calls": [{ "index": 0, "id": TOOL_CALL_ID, "type": "function",
                        "function": { "name": name, "arguments": "" } }] }),
                    json!({ "tool_calls": [{ "index": 0, "function": { "arguments": head } }] }),
                    json!({ "tool_calls": [{ "index": 0, "function": { "arguments": tail } }] }),
                ]
            }
        }
    }
}

/// Number of characters (not bytes) in `text`.
fn char_count(text: &str) -> u64 {
    u64::try_from(text.chars().count()).unwrap_or(u64::MAX)
}

/// Splits `text` into two halves on a character boundary.
fn split_half(text: &str) -> (&str, &str) {
    let middle = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(index, _)| index);
    text.split_at(middle)
}

/// Responder for `POST /v1/chat/completions`.
struct ChatResponder {
    /// Shared state (keys, model ids, completion counter).
    state: Shared,
}

impl Respond for ChatResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.state);
        let authorized = bearer(request).is_some_and(|key| {
            state.subscriptions.iter().any(|s| s.api_key == key)
                || state.extra_inference_keys.iter().any(|k| k == key)
        });
        if !authorized {
            return inference_error(401, "Invalid API key", json!(401), "authentication_error");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return inference_error(
                400,
                "Request body is not valid JSON",
                json!(400),
                "invalid_request_error",
            );
        };
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return inference_error(
                400,
                "`messages` is required",
                json!(400),
                "invalid_request_error",
            );
        };
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !state.model_ids.iter().any(|id| id == model) {
            return inference_error(
                404,
                &format!("The model `{model}` does not exist"),
                json!("model_not_found"),
                "invalid_request_error",
            );
        }

        state.completions += 1;
        let id = format!("chatcmpl-fake-{}", state.completions);
        let ignores_tools = state.ignores_tools;
        drop(state);

        let reply = if ignores_tools {
            Reply::Text("I would rather not use tools.".to_owned())
        } else {
            Reply::decide(&body, messages)
        };
        let prompt_chars: u64 = messages
            .iter()
            .map(|m| char_count(&content_text(m.get("content"))))
            .sum();
        let prompt_tokens = (prompt_chars / 4).max(1);
        let completion_tokens = reply.completion_tokens();
        let usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        });

        if body.get("stream").and_then(Value::as_bool) == Some(true) {
            return stream_response(&id, model, &reply, usage);
        }
        json_response(
            200,
            json!({
                "id": id,
                "object": "chat.completion",
                "created": COMPLETION_CREATED,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": reply.message(),
                    "finish_reason": reply.finish_reason(),
                }],
                "usage": usage,
            }),
        )
    }
}

/// The `text/event-stream` answer to a `"stream": true` request.
///
/// Chunks: a role delta, the content (or tool call) deltas, a final chunk with
/// `finish_reason` and `usage`, then `data: [DONE]`.
fn stream_response(id: &str, model: &str, reply: &Reply, usage: Value) -> ResponseTemplate {
    let chunk = |delta: Value, finish_reason: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": COMPLETION_CREATED,
            "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
        })
    };
    let mut chunks = vec![chunk(json!({ "role": "assistant" }), Value::Null)];
    chunks.extend(
        reply
            .deltas()
            .into_iter()
            .map(|delta| chunk(delta, Value::Null)),
    );
    let mut last = chunk(json!({}), json!(reply.finish_reason()));
    last["usage"] = usage;
    chunks.push(last);

    let mut body: String = chunks
        .iter()
        .map(|chunk| format!("data: {chunk}\n\n"))
        .collect();
    body.push_str("data: [DONE]\n\n");
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// Configures and starts a [`FakeVultr`].
#[derive(Debug, Clone)]
pub struct FakeVultrBuilder {
    /// Subscriptions served by the account API, in list order.
    subscriptions: Vec<Subscription>,
    /// Catalog served by `GET /v1/models`.
    catalog: Catalog,
    /// Extra keys the inference API accepts.
    extra_inference_keys: Vec<String>,
    ignores_tools: bool,
    /// The shapes the vector store answers with.
    vector_store: vector_store::Variant,
}

impl Default for FakeVultrBuilder {
    fn default() -> Self {
        Self {
            subscriptions: vec![Subscription::new(
                DEFAULT_SUBSCRIPTION_ID,
                DEFAULT_SUBSCRIPTION_LABEL,
                DEFAULT_SUBSCRIPTION_KEY,
            )],
            catalog: Catalog::Document24,
            extra_inference_keys: Vec::new(),
            ignores_tools: false,
            vector_store: vector_store::Variant::default(),
        }
    }
}

impl FakeVultrBuilder {
    /// Replaces the subscriptions (default: one, `main` with key `INFKEY-ONE-AAAA-BBBB-CCCC-1111`).
    pub fn subscriptions(mut self, subs: Vec<Subscription>) -> Self {
        self.subscriptions = subs;
        self
    }

    /// Chooses the `GET /v1/models` catalog (default [`Catalog::Document24`]).
    pub fn catalog(mut self, c: Catalog) -> Self {
        self.catalog = c;
        self
    }

    /// Adds a key the inference API accepts that belongs to no subscription; may be called repeatedly.
    pub fn extra_inference_key(mut self, key: &str) -> Self {
        self.extra_inference_keys.push(key.to_owned());
        self
    }

    /// Makes the fake model answer in text even when `tool_choice` requires a tool call,
    /// as a model with broken tool calling would.
    pub fn ignoring_tools(mut self) -> Self {
        self.ignores_tools = true;
        self
    }

    /// Makes the vector store answer with the other shapes a client must accept (201,
    /// bare objects, `data` lists) instead of the reported ones.
    pub fn lenient_vector_store(mut self) -> Self {
        self.vector_store = vector_store::Variant::Lenient;
        self
    }

    /// Starts the server on 127.0.0.1 with a random port and mounts every route.
    pub async fn start(self) -> FakeVultr {
        let catalog = self.catalog.to_json();
        let state: Shared = Arc::new(Mutex::new(State {
            subscriptions: self.subscriptions.clone(),
            extra_inference_keys: self.extra_inference_keys,
            model_ids: catalog_model_ids(&catalog),
            completions: 0,
            ignores_tools: self.ignores_tools,
            transcriptions: Vec::new(),
        }));
        let server = MockServer::start().await;

        let account_routes = [
            ("^/v2/inference$", AccountRoute::List),
            ("^/v2/inference/[^/]+$", AccountRoute::Get),
            ("^/v2/inference/[^/]+/usage$", AccountRoute::Usage),
        ];
        for (pattern, route) in account_routes {
            Mock::given(method("GET"))
                .and(path_regex(pattern))
                .respond_with(AccountResponder {
                    state: Arc::clone(&state),
                    route,
                })
                .with_priority(PRIORITY_NORMAL)
                .named(format!("account {route:?}"))
                .mount(&server)
                .await;
        }

        Mock::given(method("GET"))
            .and(path(MODELS_PATH))
            .respond_with(json_response(200, catalog))
            .with_priority(PRIORITY_NORMAL)
            .named("inference models")
            .mount(&server)
            .await;

        Mock::given(method("POST"))
            .and(path(CHAT_PATH))
            .respond_with(ChatResponder {
                state: Arc::clone(&state),
            })
            .with_priority(PRIORITY_NORMAL)
            .named("inference chat completions")
            .mount(&server)
            .await;

        audio::mount(&server, &state).await;
        let vector_store = vector_store::mount(&server, &state, self.vector_store).await;
        retrieval::mount(&server, &state, PRIORITY_NORMAL).await;
        images::mount(&server, &state, PRIORITY_NORMAL).await;

        Mock::given(any())
            .respond_with(account_error(404, "Not found"))
            .with_priority(PRIORITY_CATCH_ALL)
            .named("catch-all 404")
            .mount(&server)
            .await;

        FakeVultr {
            server,
            state,
            subscriptions: self.subscriptions,
            vector_store,
        }
    }
}

/// A running fake Vultr server (account API under `/v2`, inference API under `/v1`).
pub struct FakeVultr {
    /// The underlying wiremock server.
    server: MockServer,
    /// State shared with the responders.
    state: Shared,
    /// The subscriptions as configured at start.
    subscriptions: Vec<Subscription>,
    /// The vector store's collections.
    vector_store: vector_store::SharedStore,
}

impl FakeVultr {
    /// A builder with the defaults (one subscription, the 2.4 catalog, no extra key).
    pub fn builder() -> FakeVultrBuilder {
        FakeVultrBuilder::default()
    }

    /// Starts a fake with the builder defaults.
    pub async fn start() -> FakeVultr {
        Self::builder().start().await
    }

    /// Base URL of the account API, `http://127.0.0.1:PORT/v2`.
    pub fn account_base_url(&self) -> String {
        format!("{}/v2", self.server.uri())
    }

    /// Base URL of the inference API, `http://127.0.0.1:PORT/v1`.
    pub fn inference_base_url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    /// The settings that point a server at this fake without any key: both base URLs.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VULTR_API_BASE_URL", self.account_base_url()),
            ("VULTR_INFERENCE_BASE_URL", self.inference_base_url()),
        ]
    }

    /// The settings that point a server at this fake: both base URLs and the account key.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = self.base_urls();
        settings.push(("VULTR_API_KEY", ACCOUNT_KEY.to_owned()));
        settings
    }

    /// The subscriptions as configured at start (keys as they were before any [`Self::rotate_key`]).
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// The underlying wiremock server, for mounting ad-hoc mocks in a test.
    pub fn mock_server(&self) -> &MockServer {
        &self.server
    }

    /// Every request received so far, in arrival order.
    pub async fn requests(&self) -> Vec<Recorded> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(Recorded::from)
            .collect()
    }

    /// JSON bodies of every `POST /v1/chat/completions` received so far, in order (non-JSON bodies are skipped).
    pub async fn chat_requests(&self) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == CHAT_PATH)
            .filter_map(|r| r.body)
            .collect()
    }

    /// Every `POST /v1/audio/transcriptions` received so far, as parsed, in order.
    pub fn transcriptions(&self) -> Vec<audio::TranscriptionSeen> {
        lock(&self.state).transcriptions.clone()
    }

    /// The vector store's collections as they are now.
    pub fn collections(&self) -> Vec<vector_store::FakeCollection> {
        self.vector_store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .collections
            .clone()
    }

    /// The `Authorization` header of each request to one of `paths` (exact, no query), in
    /// the order they came.
    pub async fn authorizations(&self, paths: &[&str]) -> Vec<Option<String>> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| paths.contains(&r.path.as_str()))
            .map(|r| r.authorization)
            .collect()
    }

    /// Number of requests received with this method (case-insensitive) and exact path (no query).
    pub async fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .count()
    }

    /// Scripted failure: the next `times` requests matching method+path get this status and body (body JSON if it parses, else raw text), then normal behaviour resumes.
    pub async fn fail(&self, method: &str, path: &str, status: u16, body: &str, times: u64) {
        self.mount_failure(method, path, None, status, body, times, None)
            .await;
    }

    /// Like [`Self::fail`], but the failure responses also carry `Retry-After: <retry_after>`.
    pub async fn fail_with_retry_after(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &str,
        times: u64,
        retry_after: &str,
    ) {
        self.mount_failure(method, path, None, status, body, times, Some(retry_after))
            .await;
    }

    /// Like fail(), but only for requests carrying this bearer token (so a stale key can get 401 while the fresh one works).
    pub async fn fail_for_key(
        &self,
        method: &str,
        path: &str,
        key: &str,
        status: u16,
        body: &str,
        times: u64,
    ) {
        self.mount_failure(method, path, Some(key), status, body, times, None)
            .await;
    }

    /// Replace a subscription's api_key from now on (simulates a rotated key); panics on an unknown id.
    pub async fn rotate_key(&self, subscription_id: &str, new_key: &str) {
        let mut state = lock(&self.state);
        let subscription = state
            .subscriptions
            .iter_mut()
            .find(|s| s.id == subscription_id)
            .unwrap_or_else(|| panic!("rotate_key: no subscription with id {subscription_id}"));
        subscription.api_key = new_key.to_owned();
    }

    /// Mounts a scripted failure at the highest priority; `times == 0` mounts nothing.
    #[allow(clippy::too_many_arguments)]
    async fn mount_failure(
        &self,
        http_method: &str,
        url_path: &str,
        key: Option<&str>,
        status: u16,
        body: &str,
        times: u64,
        retry_after: Option<&str>,
    ) {
        if times == 0 {
            return;
        }
        let mut response = match serde_json::from_str::<Value>(body) {
            Ok(json) => ResponseTemplate::new(status).set_body_json(json),
            Err(_) => ResponseTemplate::new(status).set_body_string(body),
        };
        if let Some(seconds) = retry_after {
            response = response.insert_header("Retry-After", seconds);
        }
        let key = key.map(str::to_owned);
        Mock::given(method(http_method))
            .and(path(url_path))
            .and(move |request: &Request| key.as_deref().is_none_or(|k| bearer(request) == Some(k)))
            .respond_with(response)
            .up_to_n_times(times)
            .with_priority(PRIORITY_SCRIPTED)
            .named(format!("scripted {status} for {http_method} {url_path}"))
            .mount(&self.server)
            .await;
    }
}

/// The `get_weather` function tool, as a caller offers it; the fake model calls it.
pub fn weather_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }
    })
}

/// The roles of a request's `messages`, in order.
pub fn roles(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["role"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
