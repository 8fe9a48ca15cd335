//! The audit log: one JSON line per tool call (`VULTR_MCP_AUDIT_LOG`, a 0600 file or
//! `stderr`), with no prompt text, keys or tokens. (Skeleton: filled in by issue 19.)

use super::CallRecord;

/// Where audit lines go.
pub struct AuditLog {}

impl AuditLog {
    /// Writes the line of `record`.
    pub fn write(&self, _record: &CallRecord) {}
}
