//! Errors from the two Vultr APIs, written for the person who reads them.

use crate::setting;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Which of the two Vultr APIs a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `api.vultr.com/v2`, authenticated with `VULTR_API_KEY`.
    Account,
    /// `api.vultrinference.com/v1`, authenticated with a subscription's inference key.
    Inference,
}

impl Api {
    /// The variable that sets this API's base URL.
    pub fn base_url_var(self) -> &'static str {
        match self {
            Api::Account => setting::API_BASE_URL,
            Api::Inference => setting::INFERENCE_BASE_URL,
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Account => "Vultr account API",
            Api::Inference => "Vultr inference API",
        })
    }
}

/// A failed request to a Vultr API.
#[derive(Debug, thiserror::Error)]
pub enum VultrError {
    /// The API answered with a non-success status.
    #[error("{api} answered HTTP {status}{}. {}", message_suffix(.message), status_advice(*.api, *.status, *.retry_after))]
    Status {
        /// Which API.
        api: Api,
        /// The HTTP status code.
        status: u16,
        /// Vultr's own message, when the body carried one.
        message: Option<String>,
        /// The `Retry-After` header, when present.
        retry_after: Option<Duration>,
    },
    /// The API could not be reached at all.
    #[error("could not reach the {api} at {base_url}: {detail}. Check {} and your network connection.", .api.base_url_var())]
    Unreachable {
        /// Which API.
        api: Api,
        /// The base URL that was tried.
        base_url: String,
        /// What the connection attempt reported.
        detail: String,
    },
    /// The API did not answer in time.
    #[error("the {api} did not answer within {}; try again, or ask for less (e.g. a lower max_tokens).", human_duration(*.after))]
    Timeout {
        /// Which API.
        api: Api,
        /// The time limit that ran out.
        after: Duration,
    },
    /// A streamed answer did not start in time.
    #[error("Vultr sent no part of the answer within {} ({setting}); the model may be busy: try again, try another model, or raise {setting}.", human_duration(*.after))]
    NoFirstChunk {
        /// The time limit that ran out.
        after: Duration,
        /// The setting that sets it.
        setting: &'static str,
    },
    /// The answer was not the JSON that was expected.
    #[error(
        "{api} answered HTTP {status} with a body that could not be read ({detail}); it began: {snippet:?}"
    )]
    Decode {
        /// Which API.
        api: Api,
        /// The HTTP status code.
        status: u16,
        /// What did not parse.
        detail: String,
        /// The first bytes of the body.
        snippet: String,
    },
    /// The answer was cut off before it was complete.
    #[error("the {api}'s answer was cut off before it was complete ({detail}); try again.")]
    Interrupted {
        /// Which API.
        api: Api,
        /// What the connection reported.
        detail: String,
    },
    /// The answer was larger than the configured limit.
    #[error(
        "the {api}'s answer was larger than the limit of {limit} bytes ({}); ask for less, e.g. a lower max_tokens.",
        setting::MAX_RESPONSE_BYTES
    )]
    TooLarge {
        /// Which API.
        api: Api,
        /// The limit in bytes.
        limit: usize,
    },
    /// No HTTPS client could be made, so nothing was sent (no root certificates loaded).
    #[error(
        "could not set up HTTPS to Vultr ({detail}), so nothing was sent. Point SSL_CERT_FILE at a bundle of CA certificates (e.g. /etc/ssl/certs/ca-certificates.crt), or install your system's CA certificates."
    )]
    NoHttpsClient {
        /// Why the client could not be built.
        detail: String,
    },
    /// The connection failed in another way (reset, protocol error).
    #[error("the request to the {api} failed: {detail}. Try again; if it persists, check {}.", .api.base_url_var())]
    Transport {
        /// Which API.
        api: Api,
        /// What failed.
        detail: String,
    },
}

impl VultrError {
    /// The HTTP status, when the API answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            VultrError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `500ms`, `30s`, `5m`: a duration as a person writes it.
pub fn human_duration(duration: Duration) -> String {
    let rounded = if duration >= Duration::from_secs(1) {
        Duration::from_secs(duration.as_secs())
    } else {
        Duration::from_millis(duration.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
}

fn message_suffix(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(": {}", m.trim_end_matches('.')),
        None => String::new(),
    }
}

fn status_advice(api: Api, status: u16, retry_after: Option<Duration>) -> String {
    match (api, status) {
        (Api::Account, 401) => format!("Check {}: it must be a valid account API key, and the API's access control must allow this machine's IP address.", setting::API_KEY),
        (Api::Inference, 401) => format!("The inference key was refused: check {}, or unset it so the key is read from your subscription with {}.", setting::INFERENCE_API_KEY, setting::API_KEY),
        (_, 403) => "The key is not allowed to do this: check its permissions in the Vultr customer portal.".to_owned(),
        (_, 404) => "Vultr has no such resource: check the id or name you gave.".to_owned(),
        (_, 400 | 422) => "Vultr rejected the request: fix the argument named in the message and call again.".to_owned(),
        (_, 429) => match retry_after {
            Some(d) => format!("Rate limited: Vultr asks to wait {}s before trying again.", d.as_secs().max(1)),
            None => "Rate limited: wait a few seconds and try again.".to_owned(),
        },
        (_, 502..=504) => "The model or service is unavailable or timed out on Vultr's side: try again shortly, or pick another model.".to_owned(),
        (_, s) if s >= 500 => "Vultr had an internal error: try again shortly.".to_owned(),
        _ => "The request was not accepted.".to_owned(),
    }
}

/// Vultr's message from an error body, in whichever shape the API used:
/// `{"error":{"message":..,"code":..,"type":..}}`, `{"error":".."}` or `{"message":".."}`.
pub fn error_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    match value.get("error") {
        Some(Value::Object(error)) => {
            let message = error.get("message").and_then(Value::as_str).map(str::trim);
            let code = error.get("code").and_then(scalar_text);
            let kind = error.get("type").and_then(Value::as_str);
            let label = match (kind, code) {
                (Some(k), Some(c)) if c != k => Some(format!("{k}, {c}")),
                (Some(k), _) => Some(k.to_owned()),
                (None, Some(c)) => Some(c),
                (None, None) => None,
            };
            match (message.filter(|m| !m.is_empty()), label) {
                (Some(m), Some(l)) => Some(format!("{m} ({l})")),
                (Some(m), None) => Some(m.to_owned()),
                (None, Some(l)) => Some(l),
                (None, None) => None,
            }
        }
        Some(Value::String(message)) if !message.trim().is_empty() => {
            Some(message.trim().to_owned())
        }
        _ => value
            .get("message")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first `max` characters of a body, for messages about bodies that did not parse,
/// with the values of any `api_key` fields blanked out.
pub fn snippet(body: &str, max: usize) -> String {
    let mut out: String = redact_api_keys(body).chars().take(max).collect();
    if body.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Replaces the string value after every `api_key` name with `[redacted]`, even in a
/// body that is not valid JSON (the case where it is quoted back to the user).
fn redact_api_keys(body: &str) -> String {
    const NAME: &str = "api_key";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find(NAME) {
        let (before, after_name) = rest.split_at(at + NAME.len());
        out.push_str(before);
        let value_start = after_name
            .char_indices()
            .find(|(_, c)| !matches!(c, '"' | ':' | ' ' | '\t' | '\n' | '\r' | '\\'))
            .map_or(after_name.len(), |(i, _)| i);
        out.push_str(&after_name[..value_start]);
        let value = &after_name[value_start..];
        let value_end = value.find(['"', '\\', ',', '}']).unwrap_or(value.len());
        if value_end > 0 {
            out.push_str("[redacted]");
        }
        rest = &value[value_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_openrouter_envelope() {
        let body =
            r#"{"error":{"message":"Invalid API key","code":401,"type":"authentication_error"}}"#;
        assert_eq!(
            error_message(body).as_deref(),
            Some("Invalid API key (authentication_error, 401)")
        );
    }

    #[test]
    fn reads_the_account_api_string_error() {
        let body = r#"{"error":"Invalid API token.","status":401}"#;
        assert_eq!(error_message(body).as_deref(), Some("Invalid API token."));
    }

    #[test]
    fn reads_a_top_level_message() {
        let body = r#"{"message":"No API key provided"}"#;
        assert_eq!(error_message(body).as_deref(), Some("No API key provided"));
    }

    #[test]
    fn gives_nothing_for_other_bodies() {
        assert_eq!(error_message("<html>502 Bad Gateway</html>"), None);
        assert_eq!(error_message(r#"{"error":""}"#), None);
        assert_eq!(error_message(r#"{"status":500}"#), None);
    }

    #[test]
    fn status_errors_say_what_to_do() {
        let err = VultrError::Status {
            api: Api::Account,
            status: 401,
            message: Some("Invalid API token.".into()),
            retry_after: None,
        };
        let text = err.to_string();
        assert!(text.contains("HTTP 401: Invalid API token."), "{text}");
        assert!(text.contains(crate::setting::API_KEY), "{text}");
    }

    #[test]
    fn snippets_never_show_api_keys() {
        let body = r#"{"subscriptions":[{"id":"x","api_key":"ABCD7PQSLLGS6XDHQY4C","label":"l"},{"api_key": "SECOND-KEY"#;
        let shown = snippet(body, 500);
        assert!(
            !shown.contains("ABCD7PQ") && !shown.contains("SECOND-KEY"),
            "{shown}"
        );
        assert!(
            shown.contains(r#""api_key":"[redacted]","label":"l""#),
            "{shown}"
        );
    }

    proptest::proptest! {
        #[test]
        fn error_bodies_never_panic(body in ".{0,200}", value in crate::proptest_strategies::json_value()) {
            let _ = error_message(&body);
            let _ = error_message(&value.to_string());
            let _ = error_message(&json_error(value));
        }

        #[test]
        fn snippets_never_panic_and_hide_api_keys(body in ".{0,300}", key in "[A-Z0-9]{12,40}", max in 0usize..400) {
            let _ = snippet(&body, max);
            let with_key = format!("{body}{{\"api_key\":\"{key}\"}}");
            proptest::prop_assert!(!snippet(&with_key, 10_000).contains(&key));
        }
    }

    fn json_error(value: Value) -> String {
        serde_json::json!({ "error": value }).to_string()
    }

    #[test]
    fn snippets_are_cut() {
        assert_eq!(snippet("abcdef", 3), "abc…");
        assert_eq!(snippet("abc", 3), "abc");
    }
}
