//! OpenTelemetry traces over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard `OTEL_*`
//! variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, ...): a span per tool call continuing the client's
//! `traceparent`, with a child span per upstream request to Vultr and per delegate step.
//!
//! Spans follow the MCP and GenAI semantic conventions. They hold names, models, token
//! counts, statuses and URL paths: never prompt or reply text, arguments, keys or tokens.
//! When no endpoint is set nothing of OpenTelemetry runs: every function here returns a
//! disabled span after one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::{Instrument, Metadata, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use super::{CallRecord, Outcome, Transport};
use crate::vultr::chat::ChatReply;
use crate::vultr::error::{Api, VultrError};

/// The target of every span exported; the exporting layer takes these spans and nothing
/// else (no log events, no library spans).
pub const TARGET: &str = "vultr_inference_mcp::trace";

/// The service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "vultr-inference-mcp";

/// `gen_ai.provider.name` of every model request.
const PROVIDER: &str = "vultr";

/// Whether spans are exported (set once, at start-up).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// How long the last spans may take to leave at exit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// Whether spans are made and exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The W3C trace context a request carried (in `_meta` or its HTTP headers).
#[derive(Debug, Clone, Default)]
pub struct TraceParent {
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// `tracestate`.
    pub tracestate: Option<String>,
}

/// The exporter of a process with traces on: shut it down at exit so the last spans leave.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Sends the spans still queued and stops the exporter; blocks for up to a few seconds,
    /// so call it outside the async runtime.
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_WAIT) {
            eprintln!("vultr-inference-mcp: could not send the last trace spans: {error}");
        }
    }
}

/// Whether the environment asks for traces: an OTLP endpoint is set, and neither
/// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns them off.
pub fn configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let is = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// The layer exporting this crate's spans, and the exporter to shut down at exit; `None`
/// when the environment asks for no traces. An exporter that cannot be built (a bad
/// endpoint URL) is an error naming why.
#[allow(clippy::type_complexity)]
pub fn layer<S>() -> Result<Option<(Box<dyn Layer<S> + Send + Sync>, Tracing)>, String>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if !configured() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("cannot export traces to the OTLP endpoint: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // A span is started when it closes or gets a child, not when first entered, so an
        // upstream request can still be named by its first attempt.
        .with_context_activation(false)
        .with_filter(OursOnly);
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((Box::new(layer), Tracing { provider })))
}

/// The resource of the environment (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), named
/// `vultr-inference-mcp` when it names no service.
fn resource() -> Resource {
    let service = opentelemetry::Key::from_static_str("service.name");
    let detected = Resource::builder().build();
    let named = detected
        .get(&service)
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let version = opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"));
    let builder = Resource::builder().with_attribute(version);
    if named {
        builder.build()
    } else {
        builder.with_service_name(DEFAULT_SERVICE_NAME).build()
    }
}

/// Lets through the spans of [`TARGET`] only: log events never become span events, and
/// the libraries' spans are not exported.
struct OursOnly;

impl<S> Filter<S> for OursOnly {
    fn enabled(&self, metadata: &Metadata<'_>, _context: &Context<'_, S>) -> bool {
        metadata.is_span() && metadata.target() == TARGET
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }
}

/// The client's span context in `parent`, when it is a valid W3C `traceparent`.
fn remote_parent(parent: &TraceParent) -> Option<opentelemetry::Context> {
    let traceparent = parent.traceparent.as_deref()?;
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(tracestate) = &parent.tracestate {
        carrier.insert("tracestate".to_owned(), tracestate.clone());
    }
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// The span of one tool call (`tools/call <tool>`, kind server), child of the client's
/// span when `parent` carries one.
pub fn call_span(tool: &'static str, transport: Transport, parent: &TraceParent) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "tools/call",
        otel.name = format!("tools/call {tool}"),
        otel.kind = "server",
        otel.status_code = Empty,
        mcp.method.name = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        network.transport = match transport {
            Transport::Stdio => "pipe",
            Transport::Http => "tcp",
        },
        network.protocol.name = match transport {
            Transport::Stdio => None,
            Transport::Http => Some("http"),
        },
        error.type = Empty,
        gen_ai.provider.name = Empty,
        gen_ai.request.model = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        vultr_mcp.outcome = Empty,
        vultr_mcp.cost_usd = Empty,
    );
    if let Some(context) = remote_parent(parent) {
        let _ = span.set_parent(context);
    }
    span
}

/// Sets what the call's span learned at its end (outcome, model, tokens).
pub fn end_call_span(span: &Span, record: &CallRecord) {
    if span.is_none() {
        return;
    }
    span.record("vultr_mcp.outcome", record.outcome.as_str());
    if let Some(kind) = error_type(record.outcome) {
        span.record("error.type", kind);
        span.record("otel.status_code", "error");
    }
    let models = record.models();
    if !models.is_empty() {
        let models = models.join(",");
        span.record("gen_ai.provider.name", PROVIDER);
        span.record("gen_ai.request.model", models.as_str());
        span.record("gen_ai.response.model", models.as_str());
        let (input, output) = record.tokens();
        span.record("gen_ai.usage.input_tokens", int(input));
        span.record("gen_ai.usage.output_tokens", int(output));
    }
    if let Some(usd) = record.cost_usd() {
        span.record("vultr_mcp.cost_usd", usd);
    }
}

/// `n` as the signed integer OTLP carries (`tracing-opentelemetry` sends a `u64` as text).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `error.type` of a call that ended with `outcome`: `tool_error` for an `isError` result
/// (as the MCP conventions say), the outcome's name for a refusal; `None` for success and
/// for a request for the user's input.
fn error_type(outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Ok | Outcome::InputRequired => None,
        Outcome::Error => Some("tool_error"),
        other => Some(other.as_str()),
    }
}

tokio::task_local! {
    /// The upstream request being sent by this task, while traces are on.
    static UPSTREAM: Upstream;
}

/// What the attempts of one upstream request tell its span.
#[derive(Default)]
struct Upstream {
    /// Attempts sent so far.
    attempts: AtomicU32,
    /// The status of the last answer.
    status: AtomicU16,
}

/// Runs `request` (one request to Vultr with its retries) inside its span (kind client),
/// a child of the call's: method, host and path from its first attempt
/// ([`upstream_attempt`]), then the last status, the resend count and the error it ended
/// with. When traces are off, just `request`.
pub async fn upstream<T>(
    api: Api,
    request: impl Future<Output = Result<T, VultrError>>,
) -> Result<T, VultrError> {
    if !enabled() {
        return request.await;
    }
    let span = upstream_span(api);
    let (result, attempts, status) = UPSTREAM
        .scope(Upstream::default(), async {
            let result = request.instrument(span.clone()).await;
            let (attempts, status) = UPSTREAM.with(|upstream| {
                (
                    upstream.attempts.load(Ordering::Relaxed),
                    upstream.status.load(Ordering::Relaxed),
                )
            });
            (result, attempts, status)
        })
        .await;
    if status != 0 {
        span.record("http.response.status_code", i64::from(status));
    }
    if attempts > 1 {
        span.record("http.request.resend_count", i64::from(attempts - 1));
    }
    if let Err(error) = &result {
        span.record("error.type", upstream_error_type(error).as_ref());
        span.record("otel.status_code", "error");
    }
    result
}

/// The span of an upstream request.
fn upstream_span(api: Api) -> Span {
    tracing::info_span!(
        target: TARGET,
        "upstream",
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
        vultr_mcp.api = match api {
            Api::Account => "account",
            Api::Inference => "inference",
        },
        http.request.method = Empty,
        url.path = Empty,
        server.address = Empty,
        server.port = Empty,
        http.response.status_code = Empty,
        http.request.resend_count = Empty,
        error.type = Empty,
        gen_ai.operation.name = Empty,
        gen_ai.provider.name = Empty,
    )
}

/// `error.type` of a failed upstream request: its status, or the kind of failure.
fn upstream_error_type(error: &VultrError) -> std::borrow::Cow<'static, str> {
    match error {
        VultrError::Status { status, .. } => status.to_string().into(),
        VultrError::Timeout { .. } | VultrError::NoFirstChunk { .. } => "timeout".into(),
        VultrError::Unreachable { .. } => "unreachable".into(),
        VultrError::Decode { .. } => "decode".into(),
        VultrError::TooLarge { .. } => "too_large".into(),
        _ => "_OTHER".into(),
    }
}

/// Counts an attempt of the upstream request being sent; on the first, records the
/// method, host and path (never the query) of `request` on its span. A chat completion
/// is also named as the GenAI `chat` operation.
pub fn upstream_attempt(request: &reqwest::RequestBuilder) {
    let first =
        UPSTREAM.try_with(|upstream| upstream.attempts.fetch_add(1, Ordering::Relaxed) == 0);
    if first != Ok(true) {
        return;
    }
    let Some(Ok(request)) = request.try_clone().map(reqwest::RequestBuilder::build) else {
        return;
    };
    let span = Span::current();
    let url = request.url();
    let method = request.method().as_str();
    span.record("http.request.method", method);
    span.record("url.path", url.path());
    if let Some(host) = url.host_str() {
        span.record("server.address", host);
    }
    if let Some(port) = url.port_or_known_default() {
        span.record("server.port", i64::from(port));
    }
    if url.path().ends_with("/chat/completions") {
        span.record("otel.name", "chat");
        span.record("gen_ai.operation.name", "chat");
        span.record("gen_ai.provider.name", PROVIDER);
    } else {
        span.record("otel.name", method);
    }
}

/// Keeps the status of an attempt's answer for the upstream request's span.
pub fn upstream_status(status: u16) {
    let _ = UPSTREAM.try_with(|upstream| upstream.status.store(status, Ordering::Relaxed));
}

/// The span of one model turn of a delegation (`chat <model>`, kind client).
pub fn delegate_turn_span(turn: u32, model: Option<&str>) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        "chat",
        otel.name = model.map_or_else(|| "chat".to_owned(), |model| format!("chat {model}")),
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = PROVIDER,
        gen_ai.request.model = model,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.response.finish_reasons = Empty,
        error.type = Empty,
        vultr_mcp.delegate.turn = i64::from(turn),
    )
}

/// Sets the end of a model turn: the model that answered and its tokens, or that it failed.
pub fn end_delegate_turn<E>(span: &Span, reply: Result<&ChatReply, E>) {
    if span.is_none() {
        return;
    }
    match reply {
        Ok(reply) => {
            span.record("gen_ai.response.model", reply.model.as_str());
            if let Some(usage) = &reply.usage {
                if let Some(input) = usage.prompt_tokens {
                    span.record("gen_ai.usage.input_tokens", int(input));
                }
                if let Some(output) = usage.completion_tokens {
                    span.record("gen_ai.usage.output_tokens", int(output));
                }
            }
        }
        Err(_) => {
            span.record("error.type", "_OTHER");
            span.record("otel.status_code", "error");
        }
    }
}

/// The span of one downstream tool call of a delegation (`tools/call <tool>`, kind client):
/// `server` and `tool` only when they name a tool that was offered, else none.
pub fn delegate_step_span(n: usize, turn: u32, offered: Option<(&str, &str)>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let (server, tool) = offered.unzip();
    tracing::info_span!(
        target: TARGET,
        "tools/call",
        otel.name = tool.map_or_else(|| "tools/call".to_owned(), |tool| format!("tools/call {tool}")),
        otel.kind = "client",
        otel.status_code = Empty,
        mcp.method.name = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        error.type = Empty,
        vultr_mcp.delegate.server = server,
        vultr_mcp.delegate.step = int(n as u64),
        vultr_mcp.delegate.turn = i64::from(turn),
    )
}

/// Sets the end of the downstream tool call whose span is the current one: `tool_error`
/// when it failed.
pub fn end_delegate_step(is_error: bool) {
    if enabled() && is_error {
        let span = Span::current();
        span.record("error.type", "tool_error");
        span.record("otel.status_code", "error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_the_parent_and_a_broken_one_is_ignored() {
        let parent = TraceParent {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("rojo=00f067aa0ba902b7".into()),
        };
        let context = remote_parent(&parent).expect("a valid parent");
        let span = context.span();
        let span_context = span.span_context();
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span_context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span_context.is_remote());
        assert_eq!(
            span_context.trace_state().get("rojo"),
            Some("00f067aa0ba902b7")
        );
        for broken in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "not a traceparent",
            "",
        ] {
            let parent = TraceParent {
                traceparent: Some(broken.into()),
                tracestate: None,
            };
            assert!(remote_parent(&parent).is_none(), "{broken}");
        }
        assert!(remote_parent(&TraceParent::default()).is_none());
    }

    #[test]
    fn only_failures_and_refusals_have_an_error_type() {
        assert_eq!(error_type(Outcome::Ok), None);
        assert_eq!(error_type(Outcome::InputRequired), None);
        assert_eq!(error_type(Outcome::Error), Some("tool_error"));
        assert_eq!(error_type(Outcome::OverBudget), Some("over_budget"));
        assert_eq!(error_type(Outcome::Cancelled), Some("cancelled"));
    }

    #[test]
    fn off_by_default_every_span_is_disabled() {
        assert!(!enabled());
        assert!(call_span("chat_completion", Transport::Stdio, &TraceParent::default()).is_none());
        assert!(delegate_turn_span(1, Some("m")).is_none());
        assert!(delegate_step_span(1, 1, None).is_none());
    }
}
