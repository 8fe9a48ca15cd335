//! Check 1, the settings seen: the `VULTR_*` variables set (names only, never values),
//! the keys as their last four characters, the settings given as empty strings, and any
//! `VULTR_*` name the server does not know (a typo leaves a setting at its default).

use std::collections::BTreeSet;

use super::Check;
use crate::secret::ApiKey;
use crate::setting;
use crate::settings::Settings;

/// The check's name.
pub(super) const NAME: &str = "settings";

/// The `VULTR_*` environment variables of the process, and the names the server reads.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Each variable's name and whether its value is blank; values are never kept.
    set: Vec<(String, bool)>,
    /// Every variable the server reads.
    known: BTreeSet<String>,
}

impl Environment {
    /// `vars` (name, value), of which only `VULTR_*` names are kept, and the names the
    /// server reads.
    pub fn new(
        vars: impl IntoIterator<Item = (String, String)>,
        known: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut set: Vec<(String, bool)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with("VULTR_"))
            .map(|(name, value)| (name, value.trim().is_empty()))
            .collect();
        set.sort();
        Self {
            set,
            known: known.into_iter().collect(),
        }
    }

    /// This process's environment, against every variable the command line reads.
    pub fn of_process() -> Self {
        let command = <crate::config::Config as clap::CommandFactory>::command();
        let known = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            Some((name, value.to_string_lossy().into_owned()))
        });
        Self::new(vars, known)
    }
}

/// What the settings look like (see the module's doc).
pub(super) fn check(environment: &Environment, settings: &Settings) -> Check {
    let names: Vec<&str> = environment
        .set
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let blank: Vec<&str> = environment
        .set
        .iter()
        .filter(|(_, blank)| *blank)
        .map(|(name, _)| name.as_str())
        .collect();
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !environment.known.contains(*name))
        .collect();
    let mut found = vec![if names.is_empty() {
        "no VULTR_* environment variables".to_owned()
    } else {
        format!("environment: {}", names.join(", "))
    }];
    found.push(format!(
        "keys: {} {}, {} {}",
        setting::API_KEY,
        shown_key(settings.vultr.api_key.as_ref()),
        setting::INFERENCE_API_KEY,
        shown_key(settings.vultr.inference_api_key.as_ref())
    ));
    if !blank.is_empty() {
        found.push(format!(
            "given as empty (count as not set): {}",
            blank.join(", ")
        ));
    }
    if unknown.is_empty() {
        return Check::ok(NAME, found.join("; "));
    }
    found.push(format!(
        "not settings of this server: {}",
        unknown.join(", ")
    ));
    Check::warn(
        NAME,
        found.join("; "),
        "check the spelling of those names (`vultr-inference-mcp --help` lists every setting); a misspelt setting keeps its default",
    )
}

/// `…abcd` for a key, `not set` without one.
fn shown_key(key: Option<&ApiKey>) -> String {
    key.map_or_else(|| "not set".to_owned(), ApiKey::hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn names_and_key_hints_are_shown_never_values() {
        let environment = Environment::new(
            [
                (
                    "VULTR_API_KEY".to_owned(),
                    "ACCOUNT-KEY-SECRET-9876".to_owned(),
                ),
                ("VULTR_DEFAULT_MODEL".to_owned(), " ".to_owned()),
                ("VULTR_MCP_TOOLSET".to_owned(), "core".to_owned()),
                ("HOME".to_owned(), "/home/x".to_owned()),
            ],
            ["VULTR_API_KEY".to_owned(), "VULTR_DEFAULT_MODEL".to_owned()],
        );
        let mut settings = Settings::default();
        settings.vultr.api_key = ApiKey::new("ACCOUNT-KEY-SECRET-9876");
        let check = check(&environment, &settings);
        assert_eq!(check.status, Status::Warn);
        assert!(!check.found.contains("SECRET"), "{}", check.found);
        assert!(
            check.found.contains("VULTR_API_KEY …9876"),
            "{}",
            check.found
        );
        assert!(
            check
                .found
                .contains("given as empty (count as not set): VULTR_DEFAULT_MODEL"),
            "{}",
            check.found
        );
        assert!(
            check
                .found
                .contains("not settings of this server: VULTR_MCP_TOOLSET")
        );
        assert!(!check.found.contains("HOME"));
    }
}
