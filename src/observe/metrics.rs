//! Prometheus metrics, served at `/metrics` on their own listener
//! (`VULTR_MCP_METRICS_ADDR`). (Skeleton: filled in by issue 19.)

use super::CallRecord;

/// Every metric of the process.
#[derive(Default)]
pub struct Metrics {}

impl Metrics {
    /// Counts a finished call: by tool and outcome, its latency, and the tokens and USD of
    /// each model it ran.
    pub fn record_call(&self, _record: &CallRecord) {}
}
