//! What each tool call leaves for the operator: one [`CallRecord`] per call (tool,
//! principal, transport, model, tokens, cost, outcome, time), written to the audit log
//! (`audit.rs`), counted in the Prometheus metrics (`metrics.rs`) and traced as a span
//! (`trace.rs`). No prompt or reply text ever enters a record or a span.
//!
//! The tool layer starts a [`CallObservation`] when a call arrives and finishes it when
//! the result is known (for a task, when the task ends); the services below add what they
//! learn to the call's [`CallFacts`] (each priced request as a [`Charge`]).

pub mod audit;
pub mod metrics;
pub mod trace;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::principal::Principal;

/// How the call arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// MCP over stdin/stdout.
    Stdio,
    /// MCP over streamable HTTP.
    Http,
}

impl Transport {
    /// Its name in records and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A result.
    Ok,
    /// An `isError` result: invalid arguments, an upstream failure, ...
    Error,
    /// Refused: over the caller's calls per minute.
    RateLimited,
    /// Refused: over the caller's calls in flight.
    OverShare,
    /// Refused: over the caller's tasks.
    OverTasks,
    /// Refused: the call could exceed a spend limit.
    OverBudget,
    /// The user declined the call's cost, or could not be asked.
    NotConfirmed,
    /// Answered with a request for the user's input (2026-07-28 input-required result).
    InputRequired,
    /// Stopped by the caller or by the server shutting down.
    Cancelled,
}

impl Outcome {
    /// Its name in records and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::RateLimited => "rate_limited",
            Outcome::OverShare => "over_share",
            Outcome::OverTasks => "over_tasks",
            Outcome::OverBudget => "over_budget",
            Outcome::NotConfirmed => "not_confirmed",
            Outcome::InputRequired => "input_required",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One priced request a call made (a chat turn, a delegate step, an image, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The model that ran it.
    pub model: String,
    /// Prompt tokens, when counted.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, when counted.
    pub completion_tokens: Option<u64>,
    /// What it cost in USD, when priced and counted.
    pub usd: Option<f64>,
}

/// What a call's services learned while it ran, shared by the call and its observation.
#[derive(Debug, Clone, Default)]
pub struct CallFacts(Arc<Mutex<Facts>>);

/// The facts themselves.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Each priced request, in order.
    pub charges: Vec<Charge>,
    /// The conversation the call continued or created.
    pub conversation_id: Option<String>,
    /// The task the call became.
    pub task_id: Option<String>,
    /// Why the call was refused, when a service refused it (the tool layer reads this to
    /// tell a refusal from an ordinary error).
    pub refusal: Option<Outcome>,
}

impl CallFacts {
    fn with<T>(&self, f: impl FnOnce(&mut Facts) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds one priced request.
    pub fn charge(&self, charge: Charge) {
        self.with(|facts| facts.charges.push(charge));
    }

    /// Records the conversation the call continued or created.
    pub fn conversation(&self, id: &str) {
        self.with(|facts| facts.conversation_id = Some(id.to_owned()));
    }

    /// Records the task the call became.
    pub fn task(&self, id: &str) {
        self.with(|facts| facts.task_id = Some(id.to_owned()));
    }

    /// Records why a service refused the call.
    pub fn refused(&self, why: Outcome) {
        self.with(|facts| facts.refusal = Some(why));
    }

    /// A copy of the facts so far.
    pub fn snapshot(&self) -> Facts {
        self.with(|facts| facts.clone())
    }
}

/// Everything known of one finished call: what the audit log writes and the metrics count.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// When the call arrived.
    pub time: SystemTime,
    /// Who it acted for.
    pub principal: Principal,
    /// How it arrived.
    pub transport: Transport,
    /// The tool.
    pub tool: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, from arrival to result.
    pub duration: Duration,
    /// What the services learned (charges, conversation, task).
    pub facts: Facts,
}

impl CallRecord {
    /// The models that ran, in order of first use.
    pub fn models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = Vec::new();
        for charge in &self.facts.charges {
            if !models.contains(&charge.model.as_str()) {
                models.push(&charge.model);
            }
        }
        models
    }

    /// Prompt and completion tokens over every charge (counted ones only).
    pub fn tokens(&self) -> (u64, u64) {
        self.facts.charges.iter().fold((0, 0), |(p, c), charge| {
            (
                p + charge.prompt_tokens.unwrap_or(0),
                c + charge.completion_tokens.unwrap_or(0),
            )
        })
    }

    /// USD over every charge that was priced, or `None` when none was.
    pub fn cost_usd(&self) -> Option<f64> {
        self.facts
            .charges
            .iter()
            .filter_map(|charge| charge.usd)
            .reduce(|a, b| a + b)
    }
}

/// Where the records of every call go: built once per process (by `App`).
#[derive(Default)]
pub struct Observer {
    /// The audit log, when one is set.
    pub(crate) audit: Option<audit::AuditLog>,
    /// The metrics, when a metrics address is set.
    pub(crate) metrics: Option<Arc<metrics::Metrics>>,
}

/// Why the audit log or the metrics cannot be set up: start-up stops.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The audit log file cannot be opened.
    #[error("cannot open the audit log {path} ({setting}): {source}", setting = crate::setting::AUDIT_LOG)]
    AuditLog {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Observer {
    /// The observer `operator` asks for: an audit log and metrics when set.
    pub fn new(operator: &crate::settings::OperatorSettings) -> Result<Observer, ObserveError> {
        let audit = match &operator.audit_log {
            Some(target) => Some(audit::AuditLog::open(target)?),
            None => None,
        };
        let metrics = operator
            .metrics_addr
            .map(|_| metrics::install(operator.metrics_principals));
        Ok(Observer { audit, metrics })
    }

    /// Starts observing a call of `tool` for `principal`, continuing the client's trace
    /// when `parent` carries one.
    pub fn start(
        self: &Arc<Self>,
        tool: &'static str,
        principal: Principal,
        transport: Transport,
        parent: &trace::TraceParent,
    ) -> CallObservation {
        CallObservation {
            observer: self.clone(),
            span: trace::call_span(tool, transport, parent),
            tool,
            principal,
            transport,
            time: SystemTime::now(),
            started: Instant::now(),
            facts: CallFacts::default(),
            finished: false,
        }
    }

    fn record(&self, record: &CallRecord) {
        if let Some(audit) = &self.audit {
            audit.write(record);
        }
        if let Some(metrics) = &self.metrics {
            metrics.record_call(record);
        }
    }
}

/// One call being observed: finish it with its outcome; one dropped unfinished (its task
/// was dropped, the server stopped) is recorded as cancelled.
pub struct CallObservation {
    observer: Arc<Observer>,
    span: tracing::Span,
    tool: &'static str,
    principal: Principal,
    transport: Transport,
    time: SystemTime,
    started: Instant,
    facts: CallFacts,
    finished: bool,
}

impl CallObservation {
    /// The call's facts, for the services it runs.
    pub fn facts(&self) -> CallFacts {
        self.facts.clone()
    }

    /// The call's span: the call runs inside it, so the upstream requests and delegate
    /// steps it makes are its children.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Records the call as ended with `outcome` (a refusal a service recorded in the facts
    /// takes the place of a plain `Error`).
    pub fn finish(mut self, outcome: Outcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        let facts = self.facts.snapshot();
        let outcome = match (outcome, facts.refusal) {
            (Outcome::Error, Some(refusal)) => refusal,
            (outcome, _) => outcome,
        };
        let record = CallRecord {
            time: self.time,
            principal: self.principal.clone(),
            transport: self.transport,
            tool: self.tool,
            outcome,
            duration: self.started.elapsed(),
            facts,
        };
        trace::end_call_span(&self.span, &record);
        self.observer.record(&record);
    }
}

impl Drop for CallObservation {
    fn drop(&mut self) {
        self.end(Outcome::Cancelled);
    }
}
