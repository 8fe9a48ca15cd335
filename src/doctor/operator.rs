//! The team controls: the budgets file parsed as the server parses it, the confirmation
//! threshold and admins, the metrics address bound and let go, and the audit log file's
//! place and permissions (never created here).

use std::path::Path;

use super::Check;
use crate::setting;
use crate::settings::{AuditTarget, OperatorSettings};
use crate::spend::Budgets;

/// The check's name.
const NAME: &str = "team controls";

/// Checks `operator`: fails as start-up would (a bad budgets file, a metrics address that
/// cannot be bound, an audit log that cannot be kept private).
pub(super) fn check(operator: &OperatorSettings) -> Check {
    let mut found = Vec::new();
    let mut fixes = Vec::new();
    match &operator.budgets_file {
        Some(path) => match Budgets::load(path) {
            Ok(budgets) => found.push(format!(
                "spend limits from {} ({})",
                path.display(),
                budgets.describe()
            )),
            Err(error) => {
                found.push(error.to_string());
                fixes.push(format!(
                    "correct {} or unset {}; the server would not start",
                    path.display(),
                    setting::BUDGETS
                ));
            }
        },
        None => found.push("no spend limits".to_owned()),
    }
    if let Some(usd) = operator.confirm_above_usd {
        found.push(format!("the user is asked above ${usd} a call"));
    }
    if !operator.admins.is_empty() {
        found.push(format!(
            "admins (see everyone's spending): {}",
            operator.admins.join(", ")
        ));
    }
    if let Some(addr) = operator.metrics_addr {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => found.push(format!(
                "metrics at http://{addr}/metrics{}",
                if operator.metrics_principals {
                    ", labelled with principals"
                } else {
                    ""
                }
            )),
            Err(error) => {
                found.push(format!("cannot listen for metrics on {addr}: {error}"));
                fixes.push(format!(
                    "choose a free address in {}; the server would not start",
                    setting::METRICS_ADDR
                ));
            }
        }
    }
    match &operator.audit_log {
        Some(AuditTarget::Stderr) => found.push("audit log on stderr".to_owned()),
        Some(AuditTarget::File(path)) => match audit_file_problem(path) {
            None => found.push(format!("audit log {}", path.display())),
            Some((what, fix)) => {
                found.push(what);
                fixes.push(fix);
            }
        },
        None => {}
    }
    if fixes.is_empty() {
        Check::ok(NAME, found.join("; "))
    } else {
        Check::fail(NAME, found.join("; "), fixes.join("; "))
    }
}

/// Why the audit log at `path` could not be kept as the server keeps it: a file only its
/// owner may read, in a folder that exists.
fn audit_file_problem(path: &Path) -> Option<(String, String)> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => Some((
            format!("the audit log {} is not a regular file", path.display()),
            format!("name a file in {}, or `stderr`", setting::AUDIT_LOG),
        )),
        Ok(metadata) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = metadata.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Some((
                        format!(
                            "the audit log {} may be read or written by group or others (mode {mode:04o})",
                            path.display()
                        ),
                        format!(
                            "run `chmod 600 {}`; the server would not start",
                            path.display()
                        ),
                    ));
                }
            }
            let _ = metadata;
            None
        }
        Err(_) => {
            let folder = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if folder.is_dir() {
                None
            } else {
                Some((
                    format!("the audit log's folder {} does not exist", folder.display()),
                    format!(
                        "create it (mode 0700) or name another file in {}",
                        setting::AUDIT_LOG
                    ),
                ))
            }
        }
    }
}
