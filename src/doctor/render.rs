//! The report as a person reads it (one line per check, the fix indented under it) and
//! as one JSON document: `{"checks":[{"name","status","found","fix"}],"ok":bool}`.

use super::{Report, Status};

/// The report as text: one line per check with its marker, the fix indented below.
pub fn text(report: &Report) -> String {
    let mut out = String::from("vultr-inference-mcp doctor\n");
    for check in &report.checks {
        out.push_str(&format!(
            "{} {}: {}\n",
            marker(check.status),
            check.name,
            check.found
        ));
        if !check.fix.is_empty() {
            out.push_str(&format!("       fix: {}\n", check.fix));
        }
    }
    let count = |status| report.checks.iter().filter(|c| c.status == status).count();
    out.push_str(&format!(
        "{} failed, {} warning(s), {} ok, {} skipped: {}\n",
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Ok),
        count(Status::Skipped),
        if report.ok {
            "the server should start (exit 0)"
        } else {
            "fix the failed checks (exit 1)"
        }
    ));
    out
}

/// The report as one JSON document.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|_| "{\"ok\":false}".to_owned())
}

/// The marker opening a check's line, all one width.
fn marker(status: Status) -> &'static str {
    match status {
        Status::Ok => "[ ok ]",
        Status::Warn => "[warn]",
        Status::Fail => "[FAIL]",
        Status::Skipped => "[skip]",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Check;

    #[test]
    fn text_has_one_line_per_check_and_the_fix_indented() {
        let report = Report::new(vec![
            Check::ok("settings", "fine"),
            Check::fail("account key", "key refused", "make a new one"),
        ]);
        let shown = text(&report);
        assert!(shown.contains("[ ok ] settings: fine\n"), "{shown}");
        assert!(
            shown.contains("[FAIL] account key: key refused\n       fix: make a new one\n"),
            "{shown}"
        );
        assert!(shown.ends_with("(exit 1)\n"), "{shown}");
        let value: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["checks"][1]["status"], "fail");
        assert_eq!(value["checks"][1]["fix"], "make a new one");
    }
}
