//! The budgets file (`VULTR_MCP_BUDGETS`): each principal's spend limits in USD, `*` for
//! anyone not named. A named principal's entry replaces `*` for them entirely.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::principal::Principal;
use crate::setting;

/// One principal's limits in USD; a limit not given is no limit. Days and months are UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most one call may cost in its worst case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_call_usd: Option<f64>,
    /// Most one UTC day's calls may cost together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// Most one UTC month's calls may cost together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.per_call_usd.is_some() || self.daily_usd.is_some() || self.monthly_usd.is_some()
    }

    /// Whether the day's or month's spending is limited (these need the ledger's check).
    pub fn over_time(&self) -> bool {
        self.daily_usd.is_some() || self.monthly_usd.is_some()
    }
}

/// Every principal's limits, as the budgets file sets them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budgets {
    named: HashMap<String, Limits>,
    anyone: Option<Limits>,
}

/// Why the budgets file cannot be used: start-up stops, naming the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum BudgetsError {
    /// The file cannot be read.
    #[error("cannot read the budgets file {path} ({setting}): {source}", setting = setting::BUDGETS)]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a JSON object of entries.
    #[error("the budgets file {path} ({setting}) is not valid: {message}. Expected e.g. {{\"*\": {{\"daily_usd\": 5, \"monthly_usd\": 50}}, \"alice\": {{\"daily_usd\": 20}}}}", setting = setting::BUDGETS)]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One entry is wrong.
    #[error("the budgets file {path} ({setting}): entry {entry:?}: {message}", setting = setting::BUDGETS)]
    Entry {
        /// The file.
        path: PathBuf,
        /// The entry's principal name.
        entry: String,
        /// What is wrong.
        message: String,
    },
}

impl Budgets {
    /// The budgets in the file at `path`.
    pub fn load(path: &Path) -> Result<Budgets, BudgetsError> {
        let text = std::fs::read_to_string(path).map_err(|source| BudgetsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The budgets in `text`, read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Budgets, BudgetsError> {
        let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|error| BudgetsError::Syntax {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        let mut budgets = Budgets::default();
        for (name, value) in entries {
            let entry = |message: String| BudgetsError::Entry {
                path: path.to_owned(),
                entry: name.clone(),
                message,
            };
            let limits: Limits = serde_json::from_value(value).map_err(|error| {
                entry(format!(
                    "{error}; an entry is an object of per_call_usd, daily_usd and monthly_usd"
                ))
            })?;
            for (field, value) in [
                ("per_call_usd", limits.per_call_usd),
                ("daily_usd", limits.daily_usd),
                ("monthly_usd", limits.monthly_usd),
            ] {
                if let Some(value) = value
                    && !(value.is_finite() && value >= 0.0)
                {
                    return Err(entry(format!(
                        "{field} must be a number of USD, 0 or more, not {value}"
                    )));
                }
            }
            if name == "*" {
                budgets.anyone = Some(limits);
            } else {
                Principal::new(&name).map_err(|error| entry(error.to_string()))?;
                budgets.named.insert(name, limits);
            }
        }
        Ok(budgets)
    }

    /// A short account of the entries, e.g. `3 entries, * included`.
    pub fn describe(&self) -> String {
        let count = self.named.len() + usize::from(self.anyone.is_some());
        let star = if self.anyone.is_some() {
            "`*` for anyone not named"
        } else {
            "no `*`: anyone not named is unlimited"
        };
        format!(
            "{count} entr{}, {star}",
            if count == 1 { "y" } else { "ies" }
        )
    }

    /// The limits that apply to `principal`: its own entry, else `*`'s, else none.
    pub fn of(&self, principal: &Principal) -> Limits {
        self.named
            .get(principal.as_str())
            .or(self.anyone.as_ref())
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Budgets, String> {
        Budgets::parse(text, Path::new("/etc/budgets.json")).map_err(|e| e.to_string())
    }

    fn principal(name: &str) -> Principal {
        Principal::new(name).unwrap()
    }

    #[test]
    fn a_named_entry_replaces_the_star_for_that_principal() {
        let budgets = parse(
            r#"{"*": {"daily_usd": 5, "monthly_usd": 50}, "alice": {"daily_usd": 20}, "ci-bot": {"per_call_usd": 0.05}}"#,
        )
        .unwrap();
        let star = Limits {
            per_call_usd: None,
            daily_usd: Some(5.0),
            monthly_usd: Some(50.0),
        };
        assert_eq!(budgets.of(&principal("bob")), star);
        assert_eq!(budgets.of(&Principal::local()), star);
        assert_eq!(
            budgets.of(&principal("alice")),
            Limits {
                daily_usd: Some(20.0),
                ..Limits::default()
            }
        );
        assert_eq!(budgets.of(&principal("ci-bot")).per_call_usd, Some(0.05));
        assert!(!budgets.of(&principal("ci-bot")).over_time());
    }

    #[test]
    fn without_a_star_unnamed_principals_are_unlimited() {
        let budgets = parse(r#"{"alice": {"daily_usd": 1}}"#).unwrap();
        assert!(!budgets.of(&principal("bob")).any());
        assert!(!Budgets::default().of(&principal("alice")).any());
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_entry() {
        let cases = [
            ("[1]", "/etc/budgets.json (VULTR_MCP_BUDGETS) is not valid"),
            ("{", "is not valid"),
            (
                r#"{"alice": {"daily": 5}}"#,
                "entry \"alice\": unknown field `daily`",
            ),
            (r#"{"alice": 5}"#, "entry \"alice\": invalid type"),
            (
                r#"{"alice": {"daily_usd": -1}}"#,
                "entry \"alice\": daily_usd must be a number of USD, 0 or more, not -1",
            ),
            (
                r#"{"*": {"monthly_usd": "ten"}}"#,
                "entry \"*\": invalid type: string",
            ),
            (
                r#"{"": {"daily_usd": 1}}"#,
                "entry \"\": a principal's name must not be empty",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("/etc/budgets.json"), "{text}: {error}");
        }
    }
}
