//! OpenTelemetry traces from the real binary, received by a small OTLP/HTTP receiver that
//! decodes the protobuf: a `tools/call` span continuing the client's `traceparent` (from
//! `_meta` over stdio, from the HTTP header over HTTP), its upstream and delegate child
//! spans with their MCP and GenAI attributes, the last spans sent at exit, and no prompt
//! text, reply text or key anywhere in what is exported.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{Value, json};

use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::faults::{Fault, FaultServer};
use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};
use crate::support::fake_vultr::{ACCOUNT_KEY, DEFAULT_SUBSCRIPTION_KEY, FakeVultr};
use crate::support::http::HttpServer;
use crate::support::raw::{RawBuilder, RawServer, chat_request, stateless_meta};
use crate::support::session::overridden;

/// The client's trace and its span, as a W3C `traceparent`.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A prompt no span may carry (the fake's reply echoes it, so neither may the reply).
const PROMPT: &str = "PROMPT-MARK-zq81 the secret plans";

/// How long spans may take to arrive (batched every 100 ms, or at exit).
const ARRIVAL: Duration = Duration::from_secs(20);

const MODEL: &str = "kimi-k2-instruct";

/// What the receiver got: each request's raw body, decoded.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(Bytes, ExportTraceServiceRequest)>>>);

impl Received {
    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, request)| &request.resource_spans)
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| scope.spans.clone())
            .collect()
    }

    /// Every attribute of every resource received so far.
    fn resource_attributes(&self) -> Vec<KeyValue> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, request)| &request.resource_spans)
            .filter_map(|resource| resource.resource.as_ref())
            .flat_map(|resource| resource.attributes.clone())
            .collect()
    }

    /// Waits for a span named `name` with trace id `trace` (hex), and returns every span
    /// of that trace received by then.
    async fn trace_with(&self, name: &str, trace: &str) -> Vec<Span> {
        let found = tokio::time::timeout(ARRIVAL, async {
            loop {
                let spans: Vec<Span> = self
                    .spans()
                    .into_iter()
                    .filter(|span| hex(&span.trace_id) == trace)
                    .collect();
                if spans.iter().any(|span| span.name == name) {
                    return spans;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            let names: Vec<String> = self.spans().iter().map(|s| s.name.clone()).collect();
            panic!("no span {name:?} in trace {trace}; received: {names:?}")
        })
    }

    /// Checks no byte of any request received holds `secret`.
    fn assert_nowhere(&self, secret: &str) {
        for (body, _) in self.0.lock().unwrap().iter() {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret:?} was exported"
            );
        }
    }
}

/// Starts an OTLP/HTTP receiver on loopback: `POST /v1/traces` with a protobuf body.
async fn receiver() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(export))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

/// Keeps one export request; answers with an empty `ExportTraceServiceResponse`.
async fn export(
    State(received): State<Received>,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body.clone()).expect("an OTLP protobuf body");
    received.0.lock().unwrap().push((body, request));
    ([("content-type", "application/x-protobuf")], Vec::new())
}

/// The settings that export to `addr` every `delay_ms`.
fn otel_env(addr: SocketAddr, delay_ms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_BSP_SCHEDULE_DELAY", delay_ms.to_owned()),
    ]
}

/// A raw stdio server pointed at `fake`, exporting to `addr` every `delay_ms`.
fn raw_builder(fake: &FakeVultr, addr: SocketAddr, delay_ms: &str) -> RawBuilder {
    let mut builder = RawServer::builder();
    for (name, value) in fake.settings().iter().chain(&otel_env(addr, delay_ms)) {
        builder = builder.env(name, value);
    }
    builder
}

/// Lowercase hex of an id.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of attribute `key` of `span`, if set.
fn attribute<'s>(span: &'s Span, key: &str) -> Option<&'s AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value: &Any| value.value.as_ref())
}

fn string(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        AnyValue::StringValue(value) => Some(value.clone()),
        _ => None,
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        AnyValue::IntValue(value) => Some(*value),
        _ => None,
    }
}

/// The one span of `spans` named `name`.
fn named<'s>(spans: &'s [Span], name: &str) -> &'s Span {
    let found: Vec<&Span> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?} in {spans:#?}");
    found[0]
}

/// The spans of `spans` whose parent is `parent`.
fn children<'s>(spans: &'s [Span], parent: &Span) -> Vec<&'s Span> {
    spans
        .iter()
        .filter(|span| span.parent_span_id == parent.span_id)
        .collect()
}

/// Checks the `tools/call chat_completion` span of `spans`: the client's child, with the
/// MCP and GenAI attributes, and a `chat` child for the upstream request.
fn assert_chat_call(spans: &[Span], transport: &str) {
    let call = named(spans, "tools/call chat_completion");
    assert_eq!(
        hex(&call.parent_span_id),
        CLIENT_SPAN_ID,
        "the client's span is the parent"
    );
    assert_eq!(call.kind, SpanKind::Server as i32);
    assert_eq!(
        string(call, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        string(call, "gen_ai.tool.name").as_deref(),
        Some("chat_completion")
    );
    assert_eq!(
        string(call, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(
        string(call, "network.transport").as_deref(),
        Some(transport)
    );
    assert_eq!(string(call, "vultr_mcp.outcome").as_deref(), Some("ok"));
    assert_eq!(
        string(call, "gen_ai.provider.name").as_deref(),
        Some("vultr")
    );
    assert_eq!(
        string(call, "gen_ai.response.model").as_deref(),
        Some(MODEL)
    );
    assert!(
        int(call, "gen_ai.usage.input_tokens").is_some_and(|n| n > 0),
        "{call:#?}"
    );
    assert!(
        int(call, "gen_ai.usage.output_tokens").is_some_and(|n| n > 0),
        "{call:#?}"
    );
    assert_eq!(string(call, "error.type"), None);

    let upstream: Vec<&Span> = children(spans, call)
        .into_iter()
        .filter(|span| span.name == "chat")
        .collect();
    assert_eq!(
        upstream.len(),
        1,
        "one upstream chat request under the call: {spans:#?}"
    );
    let upstream = upstream[0];
    assert_eq!(upstream.kind, SpanKind::Client as i32);
    assert_eq!(
        string(upstream, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        string(upstream, "url.path").as_deref(),
        Some("/v1/chat/completions")
    );
    assert_eq!(
        string(upstream, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(int(upstream, "http.response.status_code"), Some(200));
    assert_eq!(
        string(upstream, "gen_ai.operation.name").as_deref(),
        Some("chat")
    );
    assert!(upstream.start_time_unix_nano >= call.start_time_unix_nano);
    assert!(upstream.end_time_unix_nano <= call.end_time_unix_nano);
}

/// Checks no span received has an attribute twice.
fn assert_unique_keys(received: &Received) {
    for span in received.spans() {
        let mut keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        keys.sort_unstable();
        let count = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), count, "an attribute set twice: {span:#?}");
    }
}

/// Checks nothing exported holds the prompt, the reply or a key, and no attribute is
/// set twice.
fn assert_no_content(received: &Received) {
    assert_unique_keys(received);
    for secret in [
        PROMPT,
        "PROMPT-MARK-zq81",
        ACCOUNT_KEY,
        DEFAULT_SUBSCRIPTION_KEY,
    ] {
        received.assert_nowhere(secret);
    }
}

#[tokio::test]
async fn a_stdio_call_continues_the_traceparent_in_its_meta_and_the_last_spans_leave_at_exit() {
    let fake = FakeVultr::start().await;
    let (addr, received) = receiver().await;
    // A long batch delay: the spans only leave because the exporter is flushed at exit.
    let mut raw = raw_builder(&fake, addr, "600000")
        .env("OTEL_SERVICE_NAME", "bridge-under-test")
        .start()
        .await;
    raw.send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "chat_completion",
                   "arguments": {"model": MODEL, "prompt": PROMPT},
                   "_meta": {"traceparent": format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"),
                             "tracestate": "rojo=00f067aa0ba902b7"}}
    }))
    .await;
    // Every stdout line is a JSON-RPC message (the harness fails on anything else).
    let (_, answer) = raw.until_response(1).await;
    assert_eq!(answer.value["result"]["isError"], false, "{}", answer.value);
    raw.stop().await;

    let spans = received
        .trace_with("tools/call chat_completion", TRACE_ID)
        .await;
    assert_chat_call(&spans, "pipe");
    let call = named(&spans, "tools/call chat_completion");
    assert_eq!(call.trace_state, "rojo=00f067aa0ba902b7");
    let service: Vec<String> = received
        .resource_attributes()
        .into_iter()
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value?.value? {
            AnyValue::StringValue(name) => Some(name),
            _ => None,
        })
        .collect();
    assert!(
        !service.is_empty() && service.iter().all(|name| name == "bridge-under-test"),
        "{service:?}"
    );
    assert_no_content(&received);
}

#[cfg(unix)]
#[tokio::test]
async fn an_http_call_continues_the_traceparent_header_under_the_default_service_name() {
    let fake = FakeVultr::start().await;
    let (addr, received) = receiver().await;
    let otel = otel_env(addr, "100");
    let otel: Vec<(&str, &str)> = otel.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = fake.settings();
    let server = HttpServer::start(&overridden(&settings, &otel)).await;
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "chat_completion",
                   "arguments": {"model": MODEL, "prompt": PROMPT},
                   "_meta": stateless_meta("traced", json!({}))}
    });
    let response = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "chat_completion")
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"))
        .body(body.to_string())
        .send()
        .await
        .expect("an answer");
    let text = response.text().await.unwrap();
    assert!(text.contains("\"isError\":false"), "{text}");

    let spans = received
        .trace_with("tools/call chat_completion", TRACE_ID)
        .await;
    assert_chat_call(&spans, "tcp");
    let services: Vec<KeyValue> = received
        .resource_attributes()
        .into_iter()
        .filter(|kv| kv.key == "service.name")
        .collect();
    assert!(
        services.iter().all(|kv| matches!(
            kv.value.as_ref().and_then(|v| v.value.as_ref()),
            Some(AnyValue::StringValue(name)) if name == "vultr-inference-mcp"
        )) && !services.is_empty(),
        "{services:?}"
    );
    assert_no_content(&received);
    server.terminate().await;
}

#[tokio::test]
async fn a_delegation_has_a_span_per_model_turn_and_per_downstream_call() {
    let fake = FakeVultr::start().await;
    fake.script(|messages: &[Value]| match tool_result(messages, "t") {
        None => tool_calls(&[("t", "calc__env", "{\"mark\": \"PROMPT-MARK-zq81\"}")]),
        Some(_) => answer("done"),
    })
    .await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let setting = downstreams.setting();
    let (addr, received) = receiver().await;
    let mut raw = raw_builder(&fake, addr, "100")
        .env("VULTR_MCP_DELEGATE_SERVERS", &setting)
        .start()
        .await;
    raw.send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "delegate",
                   "arguments": {"task": PROMPT, "model": MODEL},
                   "_meta": {"traceparent": format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01")}}
    }))
    .await;
    let (_, answer) = raw.until_response(1).await;
    let result = &answer.value["result"];
    assert_eq!(result["isError"], false, "{result}");

    let spans = received.trace_with("tools/call delegate", TRACE_ID).await;
    let call = named(&spans, "tools/call delegate");
    assert_eq!(hex(&call.parent_span_id), CLIENT_SPAN_ID);
    let turns: Vec<&Span> = children(&spans, call)
        .into_iter()
        .filter(|span| span.name == format!("chat {MODEL}"))
        .collect();
    assert_eq!(
        turns.len(),
        2,
        "a model turn asking for the tool, then the answer"
    );
    for turn in &turns {
        assert_eq!(
            string(turn, "gen_ai.operation.name").as_deref(),
            Some("chat")
        );
        assert_eq!(string(turn, "gen_ai.request.model").as_deref(), Some(MODEL));
        assert_eq!(
            string(turn, "gen_ai.response.model").as_deref(),
            Some(MODEL)
        );
        assert!(int(turn, "gen_ai.usage.input_tokens").is_some_and(|n| n > 0));
        let upstream = children(&spans, turn);
        assert!(
            upstream.iter().any(|span| span.name == "chat"
                && string(span, "url.path").as_deref() == Some("/v1/chat/completions")),
            "the turn's upstream request is its child: {spans:#?}"
        );
    }
    let step = named(&spans, "tools/call env");
    assert_eq!(step.parent_span_id, call.span_id);
    assert_eq!(step.kind, SpanKind::Client as i32);
    assert_eq!(string(step, "gen_ai.tool.name").as_deref(), Some("env"));
    assert_eq!(
        string(step, "vultr_mcp.delegate.server").as_deref(),
        Some("calc")
    );
    assert_eq!(int(step, "vultr_mcp.delegate.turn"), Some(1));
    raw.stop().await;
    assert_no_content(&received);
}

#[tokio::test]
async fn with_the_sdk_disabled_nothing_is_exported() {
    let fake = FakeVultr::start().await;
    let (addr, received) = receiver().await;
    let mut raw = raw_builder(&fake, addr, "100")
        .env("OTEL_SDK_DISABLED", "true")
        .start()
        .await;
    raw.send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "chat_completion",
                   "arguments": {"model": MODEL, "prompt": "hi"},
                   "_meta": {"traceparent": format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01")}}
    }))
    .await;
    let (_, answer) = raw.until_response(1).await;
    assert_eq!(answer.value["result"]["isError"], false, "{}", answer.value);
    // The exporter would flush at exit: after the exit, nothing came.
    raw.stop().await;
    assert!(received.spans().is_empty(), "{:#?}", received.spans());
}

#[tokio::test]
async fn an_upstream_request_counts_its_resends_and_a_failure_is_an_error_of_both_spans() {
    let (addr, received) = receiver().await;
    let busy = Fault::Status {
        status: 429,
        headers: vec![("Retry-After".to_owned(), "0".to_owned())],
        body: "{}".to_owned(),
    };
    let refused = Fault::Status {
        status: 400,
        headers: Vec::new(),
        body: r#"{"error": {"message": "bad request"}}"#.to_owned(),
    };
    let faults = FaultServer::start(vec![busy, Fault::Normal, refused]).await;
    let mut builder = RawServer::builder().faults(&faults);
    for (name, value) in otel_env(addr, "100") {
        builder = builder.env(name, &value);
    }
    let mut raw = builder.start().await;
    let traces = [
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
    ];
    for (id, trace) in (1..).zip(traces) {
        let mut request = chat_request(id);
        request["params"]["_meta"] =
            json!({"traceparent": format!("00-{trace}-{CLIENT_SPAN_ID}-01")});
        raw.send(request).await;
        raw.until_response(id).await;
    }

    let retried = received
        .trace_with("tools/call chat_completion", traces[0])
        .await;
    let call = named(&retried, "tools/call chat_completion");
    assert_eq!(string(call, "vultr_mcp.outcome").as_deref(), Some("ok"));
    let upstream = named(&retried, "chat");
    assert_eq!(upstream.parent_span_id, call.span_id);
    assert_eq!(
        int(upstream, "http.request.resend_count"),
        Some(1),
        "{upstream:#?}"
    );
    assert_eq!(int(upstream, "http.response.status_code"), Some(200));
    assert_eq!(string(upstream, "error.type"), None);

    let failed = received
        .trace_with("tools/call chat_completion", traces[1])
        .await;
    let call = named(&failed, "tools/call chat_completion");
    assert_eq!(string(call, "vultr_mcp.outcome").as_deref(), Some("error"));
    assert_eq!(string(call, "error.type").as_deref(), Some("tool_error"));
    assert_eq!(
        call.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    let upstream = named(&failed, "chat");
    assert_eq!(int(upstream, "http.response.status_code"), Some(400));
    assert_eq!(string(upstream, "error.type").as_deref(), Some("400"));
    assert_eq!(
        upstream.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(int(upstream, "http.request.resend_count"), None);
    assert_unique_keys(&received);
    raw.stop().await;
}
