//! The audit log: one JSON line per tool call (`VULTR_MCP_AUDIT_LOG`, a 0600 file or
//! `stderr`), with no prompt text, keys or tokens: a [`CallRecord`] holds none (no
//! arguments, no replies), so none can be written.
//!
//! A file is created 0600 and appended to; an existing file that group or others may read
//! or write is refused at start-up. Each line goes out in one `write` on a file opened for
//! appending, so lines of concurrent processes sharing the file do not interleave. A line
//! that cannot be written is logged and counted (`vultr_mcp_audit_write_errors_total`);
//! the call it records is not failed for it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{CallRecord, ObserveError};
use crate::settings::AuditTarget;

/// Where audit lines go.
pub struct AuditLog {
    sink: Sink,
}

/// The open destination.
enum Sink {
    /// Standard error, among the logs.
    Stderr,
    /// A file opened for appending.
    File {
        /// The file.
        file: File,
        /// Its path, for the log when a write fails.
        path: PathBuf,
    },
}

impl AuditLog {
    /// Opens `target`: a file is created 0600 if missing, and refused if it is not a
    /// regular file or group or others may read or write it.
    pub fn open(target: &AuditTarget) -> Result<AuditLog, ObserveError> {
        let sink = match target {
            AuditTarget::Stderr => Sink::Stderr,
            AuditTarget::File(path) => Sink::File {
                file: open_file(path).map_err(|source| ObserveError::AuditLog {
                    path: path.clone(),
                    source,
                })?,
                path: path.clone(),
            },
        };
        Ok(AuditLog { sink })
    }

    /// Writes the line of `record`.
    pub fn write(&self, record: &CallRecord) {
        let mut line = line(record).to_string();
        line.push('\n');
        let written = match &self.sink {
            Sink::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            Sink::File { file, .. } => write_once(file, line.as_bytes()),
        };
        if let Err(error) = written {
            super::metrics::audit_write_failed();
            match &self.sink {
                Sink::File { path, .. } => {
                    tracing::warn!(%error, path = %path.display(), "could not write a line of the audit log");
                }
                Sink::Stderr => {
                    tracing::warn!(%error, "could not write a line of the audit log to stderr");
                }
            }
        }
    }
}

/// Writes `line` in one `write` call: with `O_APPEND` it lands whole at the end of the
/// file, never interleaved with another process's line.
fn write_once(mut file: &File, line: &[u8]) -> io::Result<()> {
    let written = file.write(line)?;
    if written == line.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "only {written} of {} bytes were written (disk full?)",
                line.len()
            ),
        ))
    }
}

/// Opens `path` for appending, creating it 0600.
fn open_file(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::other(
            "it is not a regular file; name a file, or set `stderr`",
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "group or others may read or write it (mode {mode:04o}); run `chmod 600` on it, or name a new file (created 0600)"
                ),
            ));
        }
    }
    Ok(file)
}

/// The JSON line of `record`: time (RFC 3339, UTC), principal, transport, tool, model (one
/// id, a list when several ran, or null), tokens, cost, outcome, milliseconds, and the
/// conversation and task ids.
fn line(record: &CallRecord) -> Value {
    let time: DateTime<Utc> = record.time.into();
    let models = record.models();
    let model = match models.as_slice() {
        [] => Value::Null,
        [one] => json!(one),
        several => json!(several),
    };
    let counted = |tokens: fn(&super::Charge) -> Option<u64>| {
        record
            .facts
            .charges
            .iter()
            .any(|charge| tokens(charge).is_some())
    };
    let (prompt, completion) = record.tokens();
    json!({
        "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "principal": record.principal.as_str(),
        "transport": record.transport.as_str(),
        "tool": record.tool,
        "model": model,
        "prompt_tokens": counted(|c| c.prompt_tokens).then_some(prompt),
        "completion_tokens": counted(|c| c.completion_tokens).then_some(completion),
        "cost_usd": record.cost_usd(),
        "outcome": record.outcome.as_str(),
        "ms": u64::try_from(record.duration.as_millis()).unwrap_or(u64::MAX),
        "conversation_id": record.facts.conversation_id,
        "task_id": record.facts.task_id,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::observe::{Charge, Facts, Outcome, Transport};
    use crate::principal::Principal;

    fn record(charges: Vec<Charge>) -> CallRecord {
        CallRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_000_123),
            principal: Principal::new("alice").unwrap(),
            transport: Transport::Http,
            tool: "delegate",
            outcome: Outcome::Ok,
            duration: Duration::from_millis(1500),
            facts: Facts {
                charges,
                conversation_id: Some("conv_1".to_owned()),
                task_id: None,
                refusal: None,
            },
        }
    }

    fn charge(model: &str, usd: Option<f64>) -> Charge {
        Charge {
            model: model.to_owned(),
            prompt_tokens: Some(10),
            completion_tokens: Some(5),
            usd,
        }
    }

    #[test]
    fn a_line_has_every_field_and_lists_models_when_several_ran() {
        let line = line(&record(vec![
            charge("a", Some(0.5)),
            charge("b", None),
            charge("a", Some(0.25)),
        ]));
        assert_eq!(
            line,
            json!({
                "time": "2025-12-06T05:46:40.123Z",
                "principal": "alice",
                "transport": "http",
                "tool": "delegate",
                "model": ["a", "b"],
                "prompt_tokens": 30,
                "completion_tokens": 15,
                "cost_usd": 0.75,
                "outcome": "ok",
                "ms": 1500,
                "conversation_id": "conv_1",
                "task_id": null,
            })
        );
    }

    #[test]
    fn a_call_that_ran_no_model_has_nulls_not_zeros() {
        let line = line(&record(vec![]));
        assert_eq!(line["model"], Value::Null);
        assert_eq!(line["prompt_tokens"], Value::Null);
        assert_eq!(line["cost_usd"], Value::Null);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_created_0600_and_a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).unwrap();
        log.write(&record(vec![charge("a", Some(0.5))]));
        log.write(&record(vec![]));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let Err(error) = AuditLog::open(&AuditTarget::File(path.clone())) else {
            panic!("a file others can read was accepted");
        };
        let said = error.to_string();
        assert!(
            said.contains("chmod 600") && said.contains("VULTR_MCP_AUDIT_LOG"),
            "{said}"
        );
    }
}
