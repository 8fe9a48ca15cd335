//! Prometheus metrics, served at `/metrics` on their own listener
//! (`VULTR_MCP_METRICS_ADDR`, see `crate::http::metrics`) in the Prometheus text format.
//!
//! One [`Metrics`] per process, made by [`install`] when the address is set. The call
//! record feeds it through [`Metrics::record_call`]; code far from the call (the Vultr
//! client, the stream reader, HTTP sessions, tasks, stores, delegate servers) reports
//! through the free functions below, each a no-op costing one atomic load when metrics
//! are off.
//!
//! Cardinality is bounded: tools and outcomes are fixed sets; model ids, delegate server
//! names and (only with `VULTR_MCP_METRICS_PRINCIPALS`) principal names each take at most
//! a fixed number of label values, the rest counted under `other`.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{CallRecord, Outcome};
use crate::vultr::error::{Api, VultrError};

/// The `Content-Type` of a scrape: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The prefix of every metric name.
pub const PREFIX: &str = "vultr_mcp";

/// Distinct model ids used as label values; later ones are counted as [`OTHER`].
pub const MAX_MODELS: usize = 64;

/// Distinct principal names used as label values (when enabled); later ones are [`OTHER`].
pub const MAX_PRINCIPALS: usize = 256;

/// Distinct delegate server names used as label values; later ones are [`OTHER`].
pub const MAX_SERVERS: usize = 64;

/// The label value standing for every value past a cap.
pub const OTHER: &str = "other";

/// The longest label value kept; a longer one is counted as [`OTHER`].
const MAX_LABEL_CHARS: usize = 128;

/// A metric's labels: fixed names, values known only at run time.
type Labels = Vec<(&'static str, String)>;

/// A histogram maker, so a family can make one per label set.
type MakeHistogram = fn() -> Histogram;

/// The one set of metrics of this process, when metrics are on.
static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Turns metrics on for this process (idempotent) and returns them: the call records of
/// every [`super::Observer`] and the hooks below count into this one registry.
pub fn install(principals: bool) -> Arc<Metrics> {
    GLOBAL
        .get_or_init(|| Arc::new(Metrics::new(principals)))
        .clone()
}

/// The metrics of this process, when on.
pub fn global() -> Option<&'static Arc<Metrics>> {
    GLOBAL.get()
}

/// Runs `count` on the metrics when they are on.
fn with(count: impl FnOnce(&Metrics)) {
    if let Some(metrics) = GLOBAL.get() {
        count(metrics);
    }
}

/// One attempt of a request to Vultr got its answer's head (or failed) after `elapsed`.
pub fn upstream_request(api: Api, elapsed: Duration, error: Option<&VultrError>) {
    with(|m| m.upstream_request(api, elapsed, error));
}

/// A failed request to Vultr is tried again.
pub fn upstream_retry(api: Api) {
    with(|m| {
        m.retries
            .get_or_create(&vec![("api", api_label(api))])
            .inc();
    });
}

/// The first token of a streamed reply from `model` came `elapsed` after the request.
pub fn first_token(model: &str, elapsed: Duration) {
    with(|m| {
        let model = m.models.label(model);
        m.first_token
            .get_or_create(&vec![("model", model)])
            .observe(elapsed.as_secs_f64());
    });
}

/// `open` HTTP sessions are open on this process now.
pub fn sessions_open(open: usize) {
    with(|m| {
        m.sessions_open.set(i64::try_from(open).unwrap_or(i64::MAX));
    });
}

/// A call became a task.
pub fn task_created() {
    with(|m| {
        m.tasks_created.inc();
        m.tasks_running.inc();
    });
}

/// A task of this process ended in `state` (`completed`, `failed`, `cancelled`).
pub fn task_ended(state: &'static str) {
    with(|m| {
        m.tasks_running.dec();
        m.tasks_ended
            .get_or_create(&vec![("state", state.to_owned())])
            .inc();
    });
}

/// A store failed (`store`: `sqlite`, `postgres`, or `unavailable` for a call refused
/// because the store could not be opened).
pub fn store_error(store: &'static str) {
    with(|m| {
        m.store_errors
            .get_or_create(&vec![("store", store.to_owned())])
            .inc();
    });
}

/// A call to a downstream (delegate) server ended with `outcome` (`ok`, `tool_error`,
/// `error`).
pub fn delegate_call(server: &str, outcome: &'static str) {
    with(|m| {
        let server = m.servers.label(server);
        m.delegate_calls
            .get_or_create(&vec![("server", server), ("outcome", outcome.to_owned())])
            .inc();
    });
}

/// A line of the audit log could not be written.
pub fn audit_write_failed() {
    with(|m| {
        m.audit_write_errors.inc();
    });
}

/// Label values of one kind, at most `max` distinct ones; past that, [`OTHER`].
struct Capped {
    seen: Mutex<HashSet<String>>,
    max: usize,
}

impl Capped {
    fn new(max: usize) -> Self {
        Self {
            seen: Mutex::new(HashSet::new()),
            max,
        }
    }

    /// The label value for `value`: itself while there is room, else [`OTHER`].
    fn label(&self, value: &str) -> String {
        if value.chars().count() > MAX_LABEL_CHARS {
            return OTHER.to_owned();
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() >= self.max {
            return OTHER.to_owned();
        }
        seen.insert(value.to_owned());
        value.to_owned()
    }
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// Whether tool calls and USD carry a `principal` label.
    principals: bool,
    models: Capped,
    principal_names: Capped,
    servers: Capped,
    tool_calls: Family<Labels, Counter>,
    tool_call_duration: Family<Labels, Histogram, MakeHistogram>,
    refusals: Family<Labels, Counter>,
    tokens: Family<Labels, Counter>,
    cost: Family<Labels, Counter<f64, AtomicU64>>,
    upstream_duration: Family<Labels, Histogram, MakeHistogram>,
    upstream_errors: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    first_token: Family<Labels, Histogram, MakeHistogram>,
    sessions_open: Gauge,
    tasks_created: Counter,
    tasks_running: Gauge,
    tasks_ended: Family<Labels, Counter>,
    store_errors: Family<Labels, Counter>,
    delegate_calls: Family<Labels, Counter>,
    audit_write_errors: Counter,
}

/// Buckets of call and request durations, in seconds: 10 ms to about 4 minutes.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.5, 12))
}

/// Buckets of the time to the first token, in seconds: 50 ms to about 100 s.
fn first_token_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Metrics {
    /// Every metric at zero, registered; with `principals`, tool calls and USD carry a
    /// `principal` label.
    pub fn new(principals: bool) -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix(PREFIX),
            principals,
            models: Capped::new(MAX_MODELS),
            principal_names: Capped::new(MAX_PRINCIPALS),
            servers: Capped::new(MAX_SERVERS),
            tool_calls: Family::default(),
            tool_call_duration: Family::new_with_constructor(latency),
            refusals: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            upstream_duration: Family::new_with_constructor(latency),
            upstream_errors: Family::default(),
            retries: Family::default(),
            first_token: Family::new_with_constructor(first_token_latency),
            sessions_open: Gauge::default(),
            tasks_created: Counter::default(),
            tasks_running: Gauge::default(),
            tasks_ended: Family::default(),
            store_errors: Family::default(),
            delegate_calls: Family::default(),
            audit_write_errors: Counter::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "tool_calls",
            "Tool calls by tool and outcome",
            self.tool_calls.clone(),
        );
        r.register_with_unit(
            "tool_call_duration",
            "Time from a tool call's arrival to its result, by tool",
            Unit::Seconds,
            self.tool_call_duration.clone(),
        );
        r.register(
            "refusals",
            "Tool calls refused before running, by reason (rate_limited, over_share, over_tasks, over_budget, not_confirmed)",
            self.refusals.clone(),
        );
        r.register(
            "tokens",
            "Tokens used, by model and type (prompt, completion)",
            self.tokens.clone(),
        );
        r.register(
            "cost_usd",
            "Cost of priced requests in USD at catalog prices, by model",
            self.cost.clone(),
        );
        r.register_with_unit(
            "upstream_request_duration",
            "Time from sending one request attempt to Vultr to its answer's status, by API",
            Unit::Seconds,
            self.upstream_duration.clone(),
        );
        r.register(
            "upstream_errors",
            "Failed request attempts to Vultr, by API and status (an HTTP status, or timeout, unreachable, transport)",
            self.upstream_errors.clone(),
        );
        r.register(
            "upstream_retries",
            "Requests to Vultr tried again, by API",
            self.retries.clone(),
        );
        r.register_with_unit(
            "time_to_first_token",
            "Time from sending a streamed chat request to its first token, by model",
            Unit::Seconds,
            self.first_token.clone(),
        );
        r.register(
            "http_sessions_open",
            "Legacy (2025-era) MCP sessions open on this process",
            self.sessions_open.clone(),
        );
        r.register(
            "tasks_created",
            "Calls that became MCP tasks on this process",
            self.tasks_created.clone(),
        );
        r.register(
            "tasks_running",
            "MCP tasks running on this process",
            self.tasks_running.clone(),
        );
        r.register(
            "tasks_ended",
            "MCP tasks of this process ended, by state (completed, failed, cancelled)",
            self.tasks_ended.clone(),
        );
        r.register(
            "store_errors",
            "Store failures, by store (sqlite, postgres; unavailable: a call refused because the store could not be opened)",
            self.store_errors.clone(),
        );
        r.register(
            "delegate_calls",
            "Calls to downstream (delegate) MCP servers, by server and outcome (ok, tool_error, error)",
            self.delegate_calls.clone(),
        );
        r.register(
            "audit_write_errors",
            "Audit log lines that could not be written",
            self.audit_write_errors.clone(),
        );
    }

    /// Counts a finished call: by tool and outcome, its latency, and the tokens and USD of
    /// each model it ran.
    pub fn record_call(&self, record: &CallRecord) {
        let principal = self
            .principals
            .then(|| self.principal_names.label(record.principal.as_str()));
        let mut labels = vec![
            ("tool", record.tool.to_owned()),
            ("outcome", record.outcome.as_str().to_owned()),
        ];
        if let Some(principal) = &principal {
            labels.push(("principal", principal.clone()));
        }
        self.tool_calls.get_or_create(&labels).inc();
        self.tool_call_duration
            .get_or_create(&vec![("tool", record.tool.to_owned())])
            .observe(record.duration.as_secs_f64());
        if let Some(reason) = refusal(record.outcome) {
            self.refusals
                .get_or_create(&vec![("reason", reason.to_owned())])
                .inc();
        }
        for charge in &record.facts.charges {
            let model = self.models.label(&charge.model);
            for (kind, tokens) in [
                ("prompt", charge.prompt_tokens),
                ("completion", charge.completion_tokens),
            ] {
                if let Some(tokens) = tokens {
                    self.tokens
                        .get_or_create(&vec![("model", model.clone()), ("type", kind.to_owned())])
                        .inc_by(tokens);
                }
            }
            if let Some(usd) = charge.usd.filter(|usd| usd.is_finite() && *usd > 0.0) {
                let mut labels = vec![("model", model)];
                if let Some(principal) = &principal {
                    labels.push(("principal", principal.clone()));
                }
                self.cost.get_or_create(&labels).inc_by(usd);
            }
        }
    }

    fn upstream_request(&self, api: Api, elapsed: Duration, error: Option<&VultrError>) {
        self.upstream_duration
            .get_or_create(&vec![("api", api_label(api))])
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            let status = match error {
                VultrError::Status { status, .. } => status.to_string(),
                VultrError::Timeout { .. } => "timeout".to_owned(),
                VultrError::Unreachable { .. } => "unreachable".to_owned(),
                _ => "transport".to_owned(),
            };
            self.upstream_errors
                .get_or_create(&vec![("api", api_label(api)), ("status", status)])
                .inc();
        }
    }

    /// The scrape: every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// The reason label of a refused call, or `None` for a call that ran.
fn refusal(outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::RateLimited
        | Outcome::OverShare
        | Outcome::OverTasks
        | Outcome::OverBudget
        | Outcome::NotConfirmed => Some(outcome.as_str()),
        Outcome::Ok | Outcome::Error | Outcome::InputRequired | Outcome::Cancelled => None,
    }
}

/// The `api` label value of `api`.
fn api_label(api: Api) -> String {
    match api {
        Api::Account => "account",
        Api::Inference => "inference",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::observe::{Charge, Facts, Transport};
    use crate::principal::Principal;

    fn record(principal: &str, outcome: Outcome, charges: Vec<Charge>) -> CallRecord {
        CallRecord {
            time: SystemTime::now(),
            principal: Principal::new(principal).unwrap(),
            transport: Transport::Http,
            tool: "chat_completion",
            outcome,
            duration: Duration::from_millis(120),
            facts: Facts {
                charges,
                ..Facts::default()
            },
        }
    }

    fn charge(model: &str) -> Charge {
        Charge {
            model: model.to_owned(),
            prompt_tokens: Some(7),
            completion_tokens: Some(3),
            usd: Some(0.25),
        }
    }

    #[test]
    fn a_call_counts_by_tool_outcome_model_and_refusal() {
        let metrics = Metrics::new(false);
        metrics.record_call(&record(
            "alice",
            Outcome::Ok,
            vec![charge("m1"), charge("m1")],
        ));
        metrics.record_call(&record("alice", Outcome::OverBudget, vec![]));
        let text = metrics.encode();
        for line in [
            "vultr_mcp_tool_calls_total{tool=\"chat_completion\",outcome=\"ok\"} 1",
            "vultr_mcp_tool_calls_total{tool=\"chat_completion\",outcome=\"over_budget\"} 1",
            "vultr_mcp_refusals_total{reason=\"over_budget\"} 1",
            "vultr_mcp_tokens_total{model=\"m1\",type=\"prompt\"} 14",
            "vultr_mcp_tokens_total{model=\"m1\",type=\"completion\"} 6",
            "vultr_mcp_cost_usd_total{model=\"m1\"} 0.5",
            "vultr_mcp_tool_call_duration_seconds_count{tool=\"chat_completion\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(!text.contains("alice"), "{text}");
    }

    #[test]
    fn principals_are_labels_only_when_asked_for() {
        let metrics = Metrics::new(true);
        metrics.record_call(&record("alice", Outcome::Ok, vec![charge("m1")]));
        let text = metrics.encode();
        assert!(
            text.contains(
                "vultr_mcp_tool_calls_total{tool=\"chat_completion\",outcome=\"ok\",principal=\"alice\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("vultr_mcp_cost_usd_total{model=\"m1\",principal=\"alice\"} 0.25"),
            "{text}"
        );
    }

    #[test]
    fn made_up_model_ids_cannot_grow_the_registry_past_the_cap() {
        let metrics = Metrics::new(false);
        for n in 0..(MAX_MODELS + 50) {
            metrics.record_call(&record(
                "alice",
                Outcome::Ok,
                vec![charge(&format!("m{n}"))],
            ));
        }
        let text = metrics.encode();
        let models: HashSet<&str> = text
            .lines()
            .filter(|line| line.starts_with("vultr_mcp_tokens_total{"))
            .filter_map(|line| line.split("model=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(models.len(), MAX_MODELS + 1, "{models:?}");
        assert!(models.contains(OTHER));
        assert!(
            text.contains("vultr_mcp_tokens_total{model=\"other\",type=\"prompt\"} 350"),
            "{text}"
        );
    }

    #[test]
    fn upstream_failures_are_counted_by_status() {
        let metrics = Metrics::new(false);
        let error = VultrError::Status {
            api: Api::Inference,
            status: 503,
            message: None,
            retry_after: None,
        };
        metrics.upstream_request(Api::Inference, Duration::from_millis(30), Some(&error));
        metrics.upstream_request(Api::Inference, Duration::from_millis(30), None);
        let text = metrics.encode();
        assert!(
            text.contains("vultr_mcp_upstream_errors_total{api=\"inference\",status=\"503\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vultr_mcp_upstream_request_duration_seconds_count{api=\"inference\"} 2"),
            "{text}"
        );
    }
}
