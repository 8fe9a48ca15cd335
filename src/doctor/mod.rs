//! `vultr-inference-mcp doctor`: checks every setting the server would run with, in the
//! order a problem is best found (settings, account key, subscription, inference API, the
//! optional paid chat, the store, HTTP, delegate servers, toolsets, team controls), each `ok`, `warn`,
//! `fail` or `skipped`, with what it found and what to do. A check that needs a failed one
//! is skipped, saying which. Nothing here serves MCP; the only write is the store's probe
//! conversation, deleted again. Every text is scrubbed of the keys the run came across.
//!
//! `environment.rs` (the settings seen), `vultr.rs` (account, subscription, catalog,
//! chat), `store.rs`, `serving.rs` (HTTP, delegate servers, toolsets), `render.rs` (text
//! and JSON).

mod environment;
mod operator;
mod render;
mod serving;
mod store;
mod vultr;

use std::sync::Arc;

use serde::Serialize;

pub use environment::Environment;
pub use render::{json, text};

use crate::secret::KnownKeys;
use crate::settings::Settings;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works, but something is worth fixing.
    Warn,
    /// Does not work: the server would fail here.
    Fail,
    /// Not run: not asked for, not configured, or it needs a check that failed.
    Skipped,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `account key`.
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// What it found.
    pub found: String,
    /// What to do when it is not ok; empty when there is nothing to do.
    pub fix: String,
}

impl Check {
    /// A check that passed.
    pub fn ok(name: &str, found: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, found, "")
    }

    /// A check that passed with something worth fixing.
    pub fn warn(name: &str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, found, fix)
    }

    /// A check that failed.
    pub fn fail(name: &str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, found, fix)
    }

    /// A check that was not run, and why.
    pub fn skipped(name: &str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Skipped, found, fix)
    }

    /// A check skipped because `needed` failed.
    pub fn needs(name: &str, needed: &str) -> Self {
        Self::skipped(name, format!("skipped: needs {needed}"), "")
    }

    fn new(name: &str, status: Status, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            status,
            found: found.into(),
            fix: fix.into(),
        }
    }
}

/// Every check, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// True when no check failed (warnings allowed): the exit code is 0.
    pub ok: bool,
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        let ok = checks.iter().all(|check| check.status != Status::Fail);
        Self { checks, ok }
    }

    /// Replaces every key in `known` wherever it appears, as a last guard.
    fn redact(mut self, known: &KnownKeys) -> Self {
        for check in &mut self.checks {
            known.redact_in_place(&mut check.found);
            known.redact_in_place(&mut check.fix);
        }
        self
    }
}

/// What to check beyond the settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Make one small paid chat completion.
    pub live: bool,
}

/// Runs every check against `settings`, seeing the process environment as `environment`.
pub async fn run(settings: Settings, environment: &Environment, options: Options) -> Report {
    let known = Arc::new(KnownKeys::default());
    for key in [&settings.vultr.api_key, &settings.vultr.inference_api_key]
        .into_iter()
        .flatten()
    {
        known.remember(key);
    }
    let mut checks = vec![environment::check(environment, &settings)];
    checks.extend(vultr::checks(&settings, known.clone(), options).await);
    checks.push(store::check(&settings.store).await);
    checks.push(serving::http(settings.http.as_ref()).await);
    checks.extend(serving::delegates(&settings.delegate).await);
    checks.push(serving::toolsets(&settings));
    checks.push(operator::check(&settings.operator));
    Report::new(checks).redact(&known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_ok_unless_a_check_failed() {
        let warned = Report::new(vec![
            Check::ok("a", "fine"),
            Check::warn("b", "meh", "do x"),
            Check::needs("c", "a"),
        ]);
        assert!(warned.ok);
        let failed = Report::new(vec![Check::ok("a", "fine"), Check::fail("b", "no", "do y")]);
        assert!(!failed.ok);
    }

    #[test]
    fn known_keys_are_scrubbed_from_every_check() {
        let known = KnownKeys::default();
        let key = crate::secret::ApiKey::new("SECRET-KEY-0000-ABCD").unwrap();
        known.remember(&key);
        let report = Report::new(vec![Check::fail(
            "x",
            "got SECRET-KEY-0000-ABCD back",
            "not SECRET-KEY-0000-ABCD",
        )])
        .redact(&known);
        let shown = serde_json::to_string(&report).unwrap();
        assert!(!shown.contains("SECRET-KEY-0000-ABCD"), "{shown}");
        assert!(shown.contains("…ABCD"), "{shown}");
    }
}
