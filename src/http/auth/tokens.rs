//! Static bearer tokens: the tokens file holds one `<principal> <sha256-hex-of-token>` per line,
//! so it never holds a usable token; a presented token is hashed and compared in constant time.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::principal::Principal;

/// What every malformed line is told to look like.
const LINE_SHAPE: &str = "expected `<name> <sha256-hex>`; run `vultr-inference-mcp hash-token NAME` (token on stdin) to make one";

/// The SHA-256 digest of a token.
type TokenDigest = [u8; 32];

/// The static tokens from a tokens file: each digest with the principal it stands for. Several
/// digests may share a name (rotation); no digest belongs to two names.
#[derive(Clone)]
pub struct StaticTokens {
    entries: Vec<(TokenDigest, Principal)>,
}

/// Why the tokens file cannot be used. Never quotes a line, which could be a raw token.
#[derive(Debug, thiserror::Error)]
pub enum TokensFileError {
    /// The file cannot be read.
    #[error("cannot read the tokens file {}: {source}; check its path and that the server may read it", path.display())]
    Read {
        /// The tokens file.
        path: PathBuf,
        /// What reading it reported.
        source: std::io::Error,
    },
    /// A line is not a valid entry.
    #[error("tokens file {}, line {line}: {problem}", path.display())]
    Line {
        /// The tokens file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it, and what to do.
        problem: String,
    },
}

/// Why `hash-token` cannot make a tokens-file line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashTokenError {
    /// The name is not usable as a principal in the tokens file.
    #[error("`{name}` cannot name a token: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No token was given on stdin.
    #[error(
        "the token is empty; pipe the token to stdin, e.g. `printf %s \"$TOKEN\" | vultr-inference-mcp hash-token NAME`"
    )]
    EmptyToken,
    /// The token could not be sent in an `Authorization: Bearer` header.
    #[error(
        "the token has whitespace or characters other than visible ASCII, so no client can send it in an `Authorization: Bearer` header; use a token of visible ASCII characters"
    )]
    UnsendableToken,
}

impl StaticTokens {
    /// Reads and parses the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Self, TokensFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, problem)| TokensFileError::Line {
            path: path.to_path_buf(),
            line,
            problem,
        })
    }

    /// Parses the file's text; a failure is the line number and what is wrong with it.
    fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut entries: Vec<(TokenDigest, Principal)> = Vec::new();
        let mut first_lines: Vec<usize> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, hex] = fields[..] else {
                return Err((number, LINE_SHAPE.to_owned()));
            };
            let principal = Principal::authenticated(name).map_err(|e| (number, format!("{e}")))?;
            let Some(digest) = parse_hex_digest(hex) else {
                return Err((
                    number,
                    format!(
                        "the hash is not 64 hexadecimal characters (a SHA-256 digest); {LINE_SHAPE}"
                    ),
                ));
            };
            if let Some(at) = entries.iter().position(|(d, _)| *d == digest) {
                if entries[at].1 == principal {
                    continue;
                }
                return Err((
                    number,
                    format!(
                        "this hash is already given to `{}` on line {}; one token cannot act for two principals",
                        entries[at].1, first_lines[at]
                    ),
                ));
            }
            entries.push((digest, principal));
            first_lines.push(number);
        }
        Ok(Self { entries })
    }

    /// The principal whose token this is, if any. Compares against every entry in constant
    /// time, so timing tells nothing about which digest came close.
    pub fn principal_for(&self, token: &str) -> Option<Principal> {
        let digest = digest_of(token);
        let mut found = None;
        for (candidate, principal) in &self.entries {
            if bool::from(candidate.ct_eq(&digest)) {
                found = Some(principal.clone());
            }
        }
        found
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The tokens-file line `NAME <sha256-hex>` for `token`, as `hash-token NAME` prints it.
pub fn hash_token_line(name: &str, token: &str) -> Result<String, HashTokenError> {
    let bad_name = |reason: String| HashTokenError::BadName {
        name: name.to_owned(),
        reason,
    };
    Principal::authenticated(name).map_err(|e| bad_name(e.to_string()))?;
    if name.chars().any(char::is_whitespace) {
        return Err(bad_name("a name has no whitespace".to_owned()));
    }
    if name.starts_with('#') {
        return Err(bad_name(
            "a line starting with `#` is a comment in the tokens file".to_owned(),
        ));
    }
    if token.is_empty() {
        return Err(HashTokenError::EmptyToken);
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HashTokenError::UnsendableToken);
    }
    let hex: String = digest_of(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("{name} {hex}"))
}

/// The SHA-256 digest of `token`.
fn digest_of(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A digest written as 64 hexadecimal characters (either case).
fn parse_hex_digest(hex: &str) -> Option<TokenDigest> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_HASH: &str = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";

    fn problem(text: &str) -> (usize, String) {
        StaticTokens::parse(text).expect_err("the file should be refused")
    }

    #[test]
    fn a_token_hashes_to_the_line_the_file_accepts() {
        let line = hash_token_line("alice", "alice-secret-1").unwrap();
        let tokens = StaticTokens::parse(&format!("# team\n\n{line}\n")).unwrap();
        assert_eq!(
            tokens.principal_for("alice-secret-1").unwrap().as_str(),
            "alice"
        );
        assert_eq!(tokens.principal_for("alice-secret-2"), None);
        assert_eq!(tokens.principal_for(""), None);
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_token_in_lowercase_hex() {
        assert_eq!(
            hash_token_line("bob", "abc").unwrap(),
            "bob ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn several_tokens_may_share_a_name_and_uppercase_hex_is_read() {
        let first = hash_token_line("alice", "old-token").unwrap();
        let second = hash_token_line("alice", "new-token")
            .unwrap()
            .to_uppercase();
        let second = second.replacen("ALICE", "alice", 1);
        let tokens = StaticTokens::parse(&format!("{first}\n  {second}  \n{first}\n")).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.principal_for("old-token").unwrap().as_str(), "alice");
        assert_eq!(tokens.principal_for("new-token").unwrap().as_str(), "alice");
    }

    #[test]
    fn a_line_without_two_fields_is_refused_without_being_quoted() {
        let (line, message) = problem("# tokens\nsupersecrettoken\n");
        assert_eq!(line, 2);
        assert!(
            message.contains("expected `<name> <sha256-hex>`"),
            "{message}"
        );
        assert!(message.contains("hash-token NAME"), "{message}");
        assert!(!message.contains("supersecret"), "{message}");

        let (line, message) = problem(&format!("alice {ALICE_HASH} extra-secret\n"));
        assert_eq!(line, 1);
        assert!(!message.contains("extra-secret"), "{message}");
    }

    #[test]
    fn a_hash_that_is_not_64_hex_characters_is_refused() {
        for bad in [
            &ALICE_HASH[..63],
            &format!("{ALICE_HASH}0"),
            &ALICE_HASH.replace('b', "g"),
        ] {
            let (line, message) = problem(&format!("\nalice {bad}\n"));
            assert_eq!(line, 2);
            assert!(
                message.contains("not 64 hexadecimal characters"),
                "{message}"
            );
            assert!(!message.contains(bad), "{message}");
        }
    }

    #[test]
    fn one_hash_under_two_names_is_refused() {
        let (line, message) = problem(&format!("alice {ALICE_HASH}\n#\nbob {ALICE_HASH}\n"));
        assert_eq!(line, 3);
        assert!(
            message.contains("already given to `alice` on line 1"),
            "{message}"
        );
    }

    #[test]
    fn a_name_that_cannot_be_a_principal_is_refused() {
        let long = "x".repeat(Principal::MAX_CHARS + 1);
        let (line, message) = problem(&format!("{long} {ALICE_HASH}\n"));
        assert_eq!(line, 1);
        assert!(message.contains("at most 256 characters"), "{message}");
        let (_, message) = problem(&format!("local {ALICE_HASH}\n"));
        assert!(message.contains("reserved"), "{message}");
    }

    #[test]
    fn hash_token_refuses_what_the_file_could_not_hold() {
        assert_eq!(
            hash_token_line("alice", ""),
            Err(HashTokenError::EmptyToken)
        );
        assert_eq!(
            hash_token_line("alice", "two words"),
            Err(HashTokenError::UnsendableToken)
        );
        for name in ["", "al ice", "#alice", "local", &"x".repeat(257)] {
            assert!(
                matches!(
                    hash_token_line(name, "t"),
                    Err(HashTokenError::BadName { .. })
                ),
                "{name:?}"
            );
        }
        let error = hash_token_line("al\tice", "t").unwrap_err().to_string();
        assert!(error.contains("no whitespace"), "{error}");
    }

    #[test]
    fn debug_output_shows_no_digest() {
        let tokens = StaticTokens::parse(&format!("alice {ALICE_HASH}\n")).unwrap();
        let debug = format!("{tokens:?}");
        assert!(!debug.contains(&ALICE_HASH[..16]), "{debug}");
        assert!(debug.contains("tokens: 1"), "{debug}");
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let error = StaticTokens::load(Path::new("/nonexistent/tokens.txt")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/tokens.txt"), "{message}");
        assert!(message.contains("check its path"), "{message}");
    }
}
