//! A Postgres URL from the setting (libpq URL syntax): kept whole for connecting, shown
//! only with its password replaced by `***`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::SslMode;

use super::tls::Tls;

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long sent data may go unacknowledged before the connection counts as dead
/// (`tcp_user_timeout`), so a call on a server that vanished fails instead of hanging.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// What stands for a password when a URL is shown.
const HIDDEN: &str = "***";

/// A `postgres://` or `postgresql://` URL. Debug and Display hide its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
}

impl PostgresUrl {
    /// The URL when `setting` is one (`postgres://` or `postgresql://`, any case).
    pub fn parse(setting: &str) -> Option<Self> {
        let lower = setting.get(..13).unwrap_or(setting).to_ascii_lowercase();
        (lower.starts_with("postgres://") || lower.starts_with("postgresql://")).then(|| Self {
            url: setting.to_owned(),
        })
    }

    /// The driver's configuration and how to use TLS; the error is the driver's
    /// complaint about the URL (it never quotes the password).
    pub(in crate::store) fn config(
        &self,
    ) -> Result<(tokio_postgres::Config, Tls), tokio_postgres::Error> {
        // The driver knows `disable`, `prefer` and `require`, and no `sslrootcert`: the
        // stricter modes become `require` and the CA file is ours to read.
        let (url, roots) = take_parameter(&self.url, "sslrootcert");
        let roots = roots.map(PathBuf::from);
        let (url, mode) = take_parameter(&url, "sslmode");
        let tls = match mode.as_deref() {
            Some("require") if roots.is_none() => Tls::Encrypted,
            Some("require" | "verify-ca" | "verify-full") => Tls::Verified(roots),
            _ => Tls::Off,
        };
        let mut config = tokio_postgres::Config::from_str(&url)?;
        config.ssl_mode(if tls == Tls::Off {
            SslMode::Disable
        } else {
            SslMode::Require
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(env!("CARGO_PKG_NAME"));
        }
        Ok((config, tls))
    }
}

/// What in a driver's message would say which database a URL names (its user, hosts, ports,
/// database name, password): replaced by placeholders in what clients are shown, so only the
/// server's log names the database.
#[derive(Debug, Clone, Default)]
pub(in crate::store) struct Identifying {
    /// Each word to hide and what stands for it, longest first.
    words: Vec<(String, &'static str)>,
}

impl Identifying {
    /// The identifying parts of the database `config` connects to.
    pub(in crate::store) fn of(config: &tokio_postgres::Config) -> Self {
        let mut words: Vec<(String, &'static str)> = Vec::new();
        if let Some(password) = config.get_password() {
            words.push((String::from_utf8_lossy(password).into_owned(), "<password>"));
        }
        // What the driver uses when the URL leaves them out: the system user's name for the
        // user and the database, port 5432.
        let user = config
            .get_user()
            .map(str::to_owned)
            .or_else(|| whoami::username().ok());
        if let Some(user) = &user {
            words.push((user.clone(), "<user>"));
        }
        match config.get_dbname() {
            Some(dbname) => words.push((dbname.to_owned(), "<database>")),
            None => words.extend(user.map(|user| (user, "<database>"))),
        }
        if config.get_ports().is_empty() {
            words.push(("5432".to_owned(), "<port>"));
        }
        for host in config.get_hosts() {
            let host = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            words.push((host, "<host>"));
        }
        for address in config.get_hostaddrs() {
            words.push((address.to_string(), "<host>"));
        }
        for port in config.get_ports() {
            words.push((port.to_string(), "<port>"));
        }
        words.retain(|(word, _)| !word.is_empty());
        words.sort_by_key(|(word, _)| std::cmp::Reverse(word.len()));
        Self { words }
    }

    /// `text` with every identifying part that stands as a word of its own replaced.
    pub(in crate::store) fn hide(&self, text: &str) -> String {
        self.words
            .iter()
            .fold(text.to_owned(), |text, (word, placeholder)| {
                replace_words(&text, word, placeholder)
            })
    }
}

/// `text` with `word` replaced by `by` where it is not part of a longer word (letters,
/// digits and `_` around it).
fn replace_words(text: &str, word: &str, by: &str) -> String {
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        let whole = !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char);
        out.push_str(&rest[..at]);
        out.push_str(if whole { by } else { word });
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// `url` without its query parameter `name`, and that parameter's value.
fn take_parameter(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, found)) if key == name => {
                value = Some(found.to_owned());
                false
            }
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), value)
    } else {
        (format!("{base}?{}", kept.join("&")), value)
    }
}

impl fmt::Display for PostgresUrl {
    /// The URL with the password (in the user part or a `password=` parameter) as `***`,
    /// even when the password holds characters a URL should have escaped (`@ / ? :`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        write!(f, "{scheme}://")?;
        // The user part ends at the last `@`, when what precedes the first `:` (or that
        // `@`) is a plain user name; else any `@` is in the host or the parameters.
        let user_part = rest.rfind('@').and_then(|at| {
            let user_info = &rest[..at];
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            (!user.contains(['/', '?'])).then_some((user_info, user, &rest[at + 1..]))
        });
        let after_user = match user_part {
            Some((user_info, user, after)) => {
                if user.len() < user_info.len() {
                    write!(f, "{user}:{HIDDEN}@")?;
                } else {
                    write!(f, "{user}@")?;
                }
                after
            }
            None => rest,
        };
        let Some((before, query)) = after_user.split_once('?') else {
            return f.write_str(after_user);
        };
        write!(f, "{before}?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    write!(f, "{key}={HIDDEN}")?;
                }
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresUrl {
    /// Same as Display: the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> PostgresUrl {
        PostgresUrl::parse(text).unwrap()
    }

    #[test]
    fn only_postgres_urls_are_postgres_urls() {
        assert!(PostgresUrl::parse("postgres://db/x").is_some());
        assert!(PostgresUrl::parse("PostgreSQL://db/x").is_some());
        assert!(PostgresUrl::parse("/var/lib/postgres://x").is_none());
        assert!(PostgresUrl::parse("memory").is_none());
        assert!(PostgresUrl::parse("").is_none());
    }

    #[test]
    fn a_shown_url_has_its_password_replaced() {
        let cases = [
            (
                "postgres://app:s3cret@db.example:5432/chats?sslmode=require",
                "postgres://app:***@db.example:5432/chats?sslmode=require",
            ),
            (
                "postgresql://app:p%40ss@w@db/chats",
                "postgresql://app:***@db/chats",
            ),
            (
                "postgres://app@db/chats?password=s3cret&connect_timeout=2",
                "postgres://app@db/chats?password=***&connect_timeout=2",
            ),
            ("postgres://db", "postgres://db"),
            (
                "postgres://app:s3cret@h1:5432,h2:5433/chats",
                "postgres://app:***@h1:5432,h2:5433/chats",
            ),
            // Characters a password should have escaped still stay hidden.
            (
                "postgres://app:s3/cr?e:t@db/chats",
                "postgres://app:***@db/chats",
            ),
            (
                "postgres://app@db/chats?options=a@b&password=s3cret",
                "postgres://app@db/chats?options=a@b&password=***",
            ),
            (
                "postgres://db/chats?password=s3@cret",
                "postgres://db/chats?password=***",
            ),
        ];
        for (given, shown) in cases {
            let url = url(given);
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("PostgresUrl({shown})"));
        }
    }

    #[test]
    fn tls_is_used_when_the_url_asks_for_it() {
        let tls = |text| url(text).config().unwrap().1;
        assert_eq!(tls("postgres://u@h/d"), Tls::Off);
        assert_eq!(tls("postgres://u@h/d?sslmode=disable"), Tls::Off);
        assert_eq!(tls("postgres://u@h/d?sslmode=prefer"), Tls::Off);
        assert_eq!(tls("postgres://u@h/d?sslmode=require"), Tls::Encrypted);
        assert_eq!(
            tls("postgres://u@h/d?sslmode=verify-full"),
            Tls::Verified(None)
        );
        assert_eq!(
            tls("postgres://u@h/d?connect_timeout=3&sslmode=verify-ca"),
            Tls::Verified(None)
        );
        let ca = Tls::Verified(Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            tls("postgres://u@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem"),
            ca
        );
        assert_eq!(
            tls("postgres://u@h/d?sslrootcert=/etc/ca.pem&sslmode=require"),
            ca,
            "as in libpq, a CA file makes `require` check the certificate"
        );
    }

    #[test]
    fn connecting_and_unanswered_sends_give_up_after_a_few_seconds_unless_the_url_says() {
        let config = |text| url(text).config().unwrap().0;
        let default = config("postgres://u@h/d");
        assert_eq!(default.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(default.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        let given = config("postgres://u@h/d?connect_timeout=2&tcp_user_timeout=3");
        assert_eq!(given.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(given.get_tcp_user_timeout(), Some(&Duration::from_secs(3)));
    }

    #[test]
    fn identifying_parts_are_hidden_where_they_stand_as_words() {
        let (config, _) = url("postgres://app:pw@db.example:6543,10.0.0.7:5432/chats")
            .config()
            .unwrap();
        let hidden = Identifying::of(&config);
        assert_eq!(
            hidden.hide(
                "FATAL: role \"app\" cannot open \"chats\" on db.example:6543 or 10.0.0.7 port 5432 (pw); application_name apps 65432 chatsroom"
            ),
            "FATAL: role \"<user>\" cannot open \"<database>\" on <host>:<port> or <host> port <port> (<password>); application_name apps 65432 chatsroom"
        );
    }

    #[test]
    fn the_user_database_and_port_the_driver_falls_back_to_are_hidden_too() {
        let (config, _) = url("postgres://db.example").config().unwrap();
        let system_user = whoami::username().expect("this system names its user");
        let hidden = Identifying::of(&config);
        let text = format!("FATAL: role \"{system_user}\" does not exist at db.example port 5432");
        assert_eq!(
            hidden.hide(&text),
            "FATAL: role \"<user>\" does not exist at <host> port <port>"
        );
    }

    #[test]
    fn a_bad_url_is_refused_without_quoting_the_password() {
        let err = url("postgres://u:s3cret@h/d?bogus=1").config().unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
