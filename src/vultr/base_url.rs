//! Base URLs of the Vultr APIs.

use std::fmt;
use std::str::FromStr;

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
