//! API keys held so that they cannot leak by accident.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// A Vultr API key. `Debug` and `Display` print only a redacted hint.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key; `None` when it is empty or only whitespace.
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return None;
        }
        Some(Self(SecretString::from(trimmed.to_owned())))
    }

    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The last four characters, the only part ever shown to a person.
    pub fn hint(&self) -> String {
        key_hint(self.expose())
    }

    /// Whether two keys are the same key.
    pub fn same_as(&self, other: &ApiKey) -> bool {
        self.expose() == other.expose()
    }
}

/// A hint for a key: `…` followed by its last four characters, or nothing for a key
/// too short to hide anything by showing four of its characters.
pub fn key_hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "…".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("…{tail}")
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Error for a key given as an empty string.
#[derive(Debug, thiserror::Error)]
#[error("the key is empty")]
pub struct EmptyKey;

impl FromStr for ApiKey {
    type Err = EmptyKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiKey::new(s).ok_or(EmptyKey)
    }
}

/// Every key the server has come across, so that text from elsewhere (an upstream error
/// message, a model's reply) can be scrubbed of them before a client sees it.
#[derive(Default)]
pub struct KnownKeys(std::sync::RwLock<Vec<ApiKey>>);

impl KnownKeys {
    /// Adds a key to scrub; keys too short to recognise safely are ignored.
    pub fn remember(&self, key: &ApiKey) {
        if key.expose().len() < 8 {
            return;
        }
        let mut keys = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !keys.iter().any(|k| k.same_as(key)) {
            keys.push(key.clone());
        }
    }

    /// `text` with every known key replaced by `[redacted key …XXXX]`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        self.redact_in_place(&mut text);
        text
    }

    /// Replaces every known key in `text` by `[redacted key …XXXX]`; text without a key is
    /// left as it is, without copying it.
    pub fn redact_in_place(&self, text: &mut String) {
        let keys = self.0.read().unwrap_or_else(|e| e.into_inner());
        for key in keys.iter() {
            if text.contains(key.expose()) {
                *text = text.replace(key.expose(), &format!("[redacted key {}]", key.hint()));
            }
        }
    }

    /// Whether `text` holds a known key.
    fn holds_a_key(&self, text: &str) -> bool {
        let keys = self.0.read().unwrap_or_else(|e| e.into_inner());
        keys.iter().any(|key| text.contains(key.expose()))
    }

    /// Redacts every string inside `value` (object keys included) like [`KnownKeys::redact`],
    /// in place: only strings that hold a key are rewritten.
    pub fn redact_value(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(text) => self.redact_in_place(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_value(item)),
            Value::Object(map) => {
                map.values_mut().for_each(|item| self.redact_value(item));
                if map.keys().any(|name| self.holds_a_key(name)) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(name, item)| (self.redact(&name), item))
                        .collect();
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// A key as given on the command line or in the environment, where an empty value
/// (a common placeholder in MCP client configs) means "not set".
#[derive(Clone, Debug)]
pub struct KeyArg(pub Option<ApiKey>);

impl FromStr for KeyArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(ApiKey::new(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_key() {
        let key = ApiKey::new("ABCD7PQSLLGS6XDHQY4CMHUL55T5YO63EFGH").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(redacted)");
        assert_eq!(format!("{key}"), "[redacted]");
        assert_eq!(key.hint(), "…EFGH");
    }

    #[test]
    fn blank_keys_are_no_keys() {
        assert!(ApiKey::new("   ").is_none());
        assert!("".parse::<ApiKey>().is_err());
        assert_eq!(
            ApiKey::new(" k3y-with-spaces-around ").unwrap().expose(),
            "k3y-with-spaces-around"
        );
    }

    #[test]
    fn known_keys_are_scrubbed_from_text() {
        let known = KnownKeys::default();
        known.remember(&ApiKey::new("INFKEY-ONE-AAAA-BBBB-CCCC-1111").unwrap());
        known.remember(&ApiKey::new("short").unwrap());
        assert_eq!(
            known.redact("key INFKEY-ONE-AAAA-BBBB-CCCC-1111 is not allowed; short"),
            "key [redacted key …1111] is not allowed; short"
        );
    }

    #[test]
    fn known_keys_are_scrubbed_from_every_string_in_json() {
        let known = KnownKeys::default();
        known.remember(&ApiKey::new("INFKEY-TWO-AAAA-BBBB-CCCC-2222").unwrap());
        let mut value = serde_json::json!({
            "content": "use INFKEY-TWO-AAAA-BBBB-CCCC-2222 please",
            "parts": [{"text": "INFKEY-TWO-AAAA-BBBB-CCCC-2222"}, 7, null],
            "INFKEY-TWO-AAAA-BBBB-CCCC-2222": true
        });
        known.redact_value(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "content": "use [redacted key …2222] please",
                "parts": [{"text": "[redacted key …2222]"}, 7, null],
                "[redacted key …2222]": true
            })
        );
    }

    #[test]
    fn short_keys_get_no_hint() {
        assert_eq!(key_hint("abc"), "…");
        assert_eq!(key_hint("12345678901"), "…");
    }
}
