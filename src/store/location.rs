//! Where conversations are kept, as the setting names it, and for how long.

pub use super::postgres::PostgresUrl;
use crate::setting;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The setting that moves the conversation store (a file path, `memory`, or a Postgres URL).
pub(super) const LOCATION_SETTING: &str = setting::CONVERSATIONS;

/// Where conversations are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// In memory only: gone when the process ends.
    InMemory,
    /// An SQLite file, created with its parent directories when missing.
    File(PathBuf),
    /// A Postgres database, shared by every server using the same URL.
    Postgres(PostgresUrl),
}

impl StoreLocation {
    /// The default file: `<data dir>/vultr-inference-mcp/conversations.sqlite3` (dirs::data_dir(), falling back to the current dir).
    pub fn default_file() -> StoreLocation {
        let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
        StoreLocation::File(
            base.join("vultr-inference-mcp")
                .join("conversations.sqlite3"),
        )
    }

    /// Parses a setting: "memory" or ":memory:" → InMemory, empty → the default file, a
    /// `postgres://` or `postgresql://` URL → Postgres, anything else → File(path) (a leading `~/` is the home dir).
    pub fn parse(setting: &str) -> StoreLocation {
        let setting = setting.trim();
        if setting.is_empty() {
            return StoreLocation::default_file();
        }
        if setting.eq_ignore_ascii_case("memory") || setting == ":memory:" {
            return StoreLocation::InMemory;
        }
        if let Some(url) = PostgresUrl::parse(setting) {
            return StoreLocation::Postgres(url);
        }
        if let Some(rest) = setting.strip_prefix("~/")
            && let Some(home) = dirs::home_dir()
        {
            return StoreLocation::File(home.join(rest));
        }
        StoreLocation::File(PathBuf::from(setting))
    }
}

impl fmt::Display for StoreLocation {
    /// `memory`, the file's path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::InMemory => f.write_str("memory"),
            StoreLocation::File(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(url) => url.fmt(f),
        }
    }
}

/// How many conversations to keep, and for how long after their last update. The count
/// is per owner: each principal keeps its own newest `max_conversations`, so one user's
/// new conversations never push out another's. The age applies to every conversation.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Keep at most this many per owner, each owner's most recently used.
    pub max_conversations: usize,
    /// Drop those (whoever owns them) not updated for longer than this.
    pub max_age: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed_from_the_setting() {
        assert_eq!(StoreLocation::parse("memory"), StoreLocation::InMemory);
        assert_eq!(StoreLocation::parse(" MEMORY "), StoreLocation::InMemory);
        assert_eq!(StoreLocation::parse(":memory:"), StoreLocation::InMemory);
        assert_eq!(
            StoreLocation::parse("/var/lib/x/conv.db"),
            StoreLocation::File(PathBuf::from("/var/lib/x/conv.db"))
        );
        assert_eq!(
            StoreLocation::parse("relative.sqlite3"),
            StoreLocation::File(PathBuf::from("relative.sqlite3"))
        );
        assert_eq!(StoreLocation::parse(""), StoreLocation::default_file());
        if let Some(home) = dirs::home_dir() {
            assert_eq!(
                StoreLocation::parse("~/conv.db"),
                StoreLocation::File(home.join("conv.db"))
            );
        }
        let StoreLocation::File(default) = StoreLocation::default_file() else {
            panic!("the default is a file");
        };
        assert!(default.ends_with("vultr-inference-mcp/conversations.sqlite3"));
        assert_eq!(StoreLocation::InMemory.to_string(), "memory");
    }

    #[test]
    fn postgres_urls_select_postgres_and_are_shown_without_their_password() {
        for setting in [
            "postgres://app:s3cret@db.example/chats",
            " postgresql://app:s3cret@db.example/chats ",
        ] {
            let location = StoreLocation::parse(setting);
            assert!(
                matches!(location, StoreLocation::Postgres(_)),
                "{location:?}"
            );
            let shown = location.to_string();
            assert!(shown.ends_with("://app:***@db.example/chats"), "{shown}");
            let debug = format!("{location:?}");
            assert!(!debug.contains("s3cret"), "{debug}");
            assert!(debug.contains("app:***@db.example/chats"), "{debug}");
        }
    }
}
