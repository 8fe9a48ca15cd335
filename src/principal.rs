//! Who a request acts for. Conversations (and later tasks) belong to the principal that
//! created them; no principal ever sees another's.

use std::fmt;
use std::sync::Arc;

/// The name of whoever a request acts for: a static token's name from the tokens file, an
/// OAuth token's `sub`, or `local` (stdio, and HTTP on loopback without auth).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(Arc<str>);

/// Why a name cannot be a principal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPrincipal {
    /// The name is empty.
    #[error("a principal's name must not be empty")]
    Empty,
    /// The name is `local`, which only the unauthenticated local user may have (stdio, and
    /// HTTP on loopback without auth; rows stored before principals existed are its too).
    #[error("`local` is reserved for the unauthenticated local user; pick another name")]
    Reserved,
    /// The name is longer than [`Principal::MAX_CHARS`].
    #[error("a principal's name may have at most {max} characters; this one has {chars}", max = Principal::MAX_CHARS)]
    TooLong {
        /// How long the name is.
        chars: usize,
    },
}

impl Principal {
    /// The longest name a principal may have, in characters.
    pub const MAX_CHARS: usize = 256;

    /// The one user of a server without authentication: stdio, or HTTP on loopback.
    pub fn local() -> Self {
        Self(Arc::from("local"))
    }

    /// The principal named `name` (non-empty, at most [`Principal::MAX_CHARS`] characters).
    pub fn new(name: &str) -> Result<Self, InvalidPrincipal> {
        let chars = name.chars().count();
        if chars == 0 {
            return Err(InvalidPrincipal::Empty);
        }
        if chars > Self::MAX_CHARS {
            return Err(InvalidPrincipal::TooLong { chars });
        }
        Ok(Self(Arc::from(name)))
    }

    /// The principal named `name` by a credential (a token's name, an OAuth `sub`): like
    /// [`Principal::new`], and never `local`, so no credential can act as the local user.
    pub fn authenticated(name: &str) -> Result<Self, InvalidPrincipal> {
        if name == Principal::local().as_str() {
            return Err(InvalidPrincipal::Reserved);
        }
        Self::new(name)
    }

    /// The principal's name, as stored with what it owns.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_has_a_non_empty_bounded_name() {
        assert_eq!(Principal::new("alice").unwrap().as_str(), "alice");
        assert_eq!(Principal::local().as_str(), "local");
        assert_eq!(Principal::new(""), Err(InvalidPrincipal::Empty));
        assert_eq!(
            Principal::new(&"x".repeat(257)),
            Err(InvalidPrincipal::TooLong { chars: 257 })
        );
        assert!(Principal::new(&"é".repeat(256)).is_ok());
        assert_eq!(
            Principal::authenticated("local"),
            Err(InvalidPrincipal::Reserved)
        );
        assert!(Principal::authenticated("alice").is_ok());
    }
}
