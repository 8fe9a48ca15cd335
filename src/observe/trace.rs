//! OpenTelemetry traces over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: a span
//! per tool call continuing the client's `traceparent`. (Skeleton: filled in by issue 19.)

use super::{CallRecord, Transport};

/// The W3C trace context a request carried (in `_meta` or its HTTP headers).
#[derive(Debug, Clone, Default)]
pub struct TraceParent {
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// `tracestate`.
    pub tracestate: Option<String>,
}

/// The span of one tool call.
pub fn call_span(
    _tool: &'static str,
    _transport: Transport,
    _parent: &TraceParent,
) -> tracing::Span {
    tracing::Span::none()
}

/// Sets what the call's span learned at its end (outcome, model, tokens).
pub fn end_call_span(_span: &tracing::Span, _record: &CallRecord) {}
