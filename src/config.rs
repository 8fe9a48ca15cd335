//! Configuration: every setting is an environment variable and a command-line flag.

use std::fmt;
use std::str::FromStr;

use clap::Parser;

use crate::secret::{ApiKey, KeyArg};

/// Default base URL of the Vultr account API.
pub const DEFAULT_ACCOUNT_BASE_URL: &str = "https://api.vultr.com/v2";
/// Default base URL of the Vultr inference API.
pub const DEFAULT_INFERENCE_BASE_URL: &str = "https://api.vultrinference.com/v1";

/// The server's settings. Environment variables are the usual way to set them, since an
/// MCP client passes `env` to the process it starts; flags override them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vultr-inference-mcp",
    version,
    about = "MCP server (stdio) for Vultr Serverless Inference: subscriptions, the live model catalog, and chat completions with tool calling.",
    long_about = None,
    after_help = "The server speaks MCP over stdin/stdout and is started by an MCP client; logs go to stderr (RUST_LOG, e.g. RUST_LOG=debug). \
No .env file is read. Prefer environment variables for keys: command-line flags are visible to other local users."
)]
pub struct Config {
    /// Vultr account API key: enables the subscription tools and finds the inference key for you.
    #[arg(
        long,
        env = "VULTR_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<KeyArg>,

    /// Inference API key of a subscription; when set, no discovery through the account API is needed.
    #[arg(
        long,
        env = "VULTR_INFERENCE_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    inference_api_key: Option<KeyArg>,

    /// Which subscription's key to use, by id or label [default: the only one].
    #[arg(long, env = "VULTR_INFERENCE_SUBSCRIPTION", value_name = "ID_OR_LABEL")]
    pub inference_subscription: Option<String>,

    /// Base URL of the Vultr account API.
    #[arg(long, env = "VULTR_API_BASE_URL", value_name = "URL", default_value = DEFAULT_ACCOUNT_BASE_URL)]
    pub api_base_url: BaseUrl,

    /// Base URL of the Vultr inference API.
    #[arg(long, env = "VULTR_INFERENCE_BASE_URL", value_name = "URL", default_value = DEFAULT_INFERENCE_BASE_URL)]
    pub inference_base_url: BaseUrl,

    /// Model used when a chat_completion call names none.
    #[arg(long, env = "VULTR_DEFAULT_MODEL", value_name = "MODEL_ID")]
    pub default_model: Option<String>,
}

impl Config {
    /// The account API key, if one is set.
    pub fn api_key(&self) -> Option<ApiKey> {
        self.api_key.clone().and_then(|k| k.0)
    }

    /// The inference API key, if one is set.
    pub fn inference_api_key(&self) -> Option<ApiKey> {
        self.inference_api_key.clone().and_then(|k| k.0)
    }

    /// Drops settings given as empty strings, as MCP client configs often carry `"VAR": ""`.
    pub fn normalized(mut self) -> Self {
        let blank_to_none = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        self.inference_subscription = blank_to_none(self.inference_subscription);
        self.default_model = blank_to_none(self.default_model);
        self
    }
}

/// An `http(s)` base URL without a trailing slash, so paths can be appended to it.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }

    /// The base URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a base URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    /// Not a URL at all.
    #[error("`{0}` is not a URL: {1}")]
    Invalid(String, String),
    /// A URL, but not http or https.
    #[error("`{0}` must start with http:// or https://")]
    Scheme(String),
}

impl FromStr for BaseUrl {
    type Err = BaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let url = reqwest::Url::parse(trimmed)
            .map_err(|e| BaseUrlError::Invalid(trimmed.to_owned(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BaseUrlError::Scheme(trimmed.to_owned()));
        }
        Ok(Self(trimmed.trim_end_matches('/').to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_work_with_or_without_a_trailing_slash() {
        let with: BaseUrl = "https://api.vultr.com/v2/".parse().unwrap();
        let without: BaseUrl = "https://api.vultr.com/v2".parse().unwrap();
        assert_eq!(with, without);
        assert_eq!(
            with.join("/inference"),
            "https://api.vultr.com/v2/inference"
        );
    }

    #[test]
    fn base_urls_must_be_http() {
        assert!("ftp://example.com".parse::<BaseUrl>().is_err());
        assert!("not a url".parse::<BaseUrl>().is_err());
    }
}
