//! The delegate servers file (`VULTR_MCP_DELEGATE_SERVERS`): the `{"mcpServers": {...}}`
//! format MCP clients already use, read and checked once at start-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::setting;

/// Why the delegate servers file cannot be used: names the file and, when one entry is at
/// fault, the entry.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{problem}; fix the file or unset {}", file.display(), entry.as_ref().map(|e| format!("entry {e:?}: ")).unwrap_or_default(), setting::DELEGATE_SERVERS)]
pub struct ServersFileError {
    file: PathBuf,
    entry: Option<String>,
    problem: String,
}

/// How the bridge reaches one downstream server.
pub enum Transport {
    /// A child process speaking MCP over its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its environment, besides `PATH` and `HOME` (values never logged).
        env: BTreeMap<String, String>,
        /// Its working directory.
        cwd: Option<PathBuf>,
    },
    /// A streamable HTTP server.
    Http {
        /// Its MCP endpoint.
        url: String,
        /// Headers sent with every request (values never logged).
        headers: BTreeMap<String, String>,
    },
}

/// One enabled entry of the file.
pub struct ServerSpec {
    /// The entry's name: the prefix of its tools' names (`<name>__<tool>`).
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
    /// The only tools offered, when given (destructive ones included).
    pub allowlist: Option<Vec<String>>,
    /// The per-call timeout for this server, when it overrides the default.
    pub timeout: Option<Duration>,
}

/// The file's top level.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServersFile {
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, Value>,
}

/// One entry as written; any other key is refused as a likely typo.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(rename = "type")]
    kind: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    tools: Option<Vec<String>>,
    #[serde(default)]
    disabled: bool,
    timeout: Option<f64>,
}

/// Reads and checks the file at `path` (a stdio entry's `cwd` must be a directory now):
/// the enabled entries, in name order.
pub fn load(path: &Path) -> Result<Vec<ServerSpec>, ServersFileError> {
    let fail = |entry: Option<&str>, problem: String| ServersFileError {
        file: path.to_owned(),
        entry: entry.map(str::to_owned),
        problem,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| fail(None, format!("cannot be read ({e})")))?;
    let specs = parse(&text).map_err(|(entry, problem)| fail(entry.as_deref(), problem))?;
    for spec in &specs {
        if let Transport::Stdio { cwd: Some(cwd), .. } = &spec.transport
            && !cwd.is_dir()
        {
            return Err(fail(
                Some(&spec.name),
                format!(
                    "the working directory {} (`cwd`) does not exist or is not a directory",
                    cwd.display()
                ),
            ));
        }
    }
    Ok(specs)
}

/// The enabled entries of the file's `text`, or the entry at fault and what is wrong.
fn parse(text: &str) -> Result<Vec<ServerSpec>, (Option<String>, String)> {
    let file: ServersFile = serde_json::from_str(text).map_err(|e| {
        (
            None,
            format!("is not a JSON object {{\"mcpServers\": {{...}}}} ({e})"),
        )
    })?;
    let mut specs = Vec::new();
    for (name, value) in file.mcp_servers {
        let entry: Entry =
            serde_json::from_value(value).map_err(|e| (Some(name.clone()), e.to_string()))?;
        if let Some(spec) = entry
            .into_spec(&name)
            .map_err(|p| (Some(name.clone()), p))?
        {
            specs.push(spec);
        }
    }
    Ok(specs)
}

impl Entry {
    /// The entry as a server to use, `None` when it is disabled.
    fn into_spec(self, name: &str) -> Result<Option<ServerSpec>, String> {
        check_name(name)?;
        if self.disabled {
            return Ok(None);
        }
        let timeout = match self.timeout {
            Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
            Some(_) => return Err("`timeout` must be a positive number of seconds".to_owned()),
            None => None,
        };
        let transport = match (self.kind.as_deref(), self.command, self.url) {
            (Some("stdio") | None, Some(command), None) => {
                if !self.headers.is_empty() {
                    return Err(
                        "`headers` is for `url` servers; a `command` takes `env`".to_owned()
                    );
                }
                Transport::Stdio {
                    command,
                    args: self.args,
                    env: self.env,
                    cwd: self.cwd,
                }
            }
            (Some("http" | "streamable-http") | None, None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err("`url` must start with http:// or https://".to_owned());
                }
                if let Some(name) = self.headers.iter().find_map(|(name, value)| {
                    let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                        && http::HeaderValue::from_str(value).is_ok();
                    (!valid).then_some(name)
                }) {
                    return Err(format!(
                        "header {name:?} is not a valid HTTP header name and value"
                    ));
                }
                if !self.args.is_empty() || !self.env.is_empty() || self.cwd.is_some() {
                    return Err(
                        "`args`, `env` and `cwd` are for `command` servers, not `url` ones"
                            .to_owned(),
                    );
                }
                Transport::Http {
                    url,
                    headers: self.headers,
                }
            }
            (_, Some(_), Some(_)) => {
                return Err("give either `command` (stdio) or `url` (HTTP), not both".to_owned());
            }
            (_, None, None) => {
                return Err("give `command` (a stdio server) or `url` (an HTTP server)".to_owned());
            }
            (Some(kind), _, _) => {
                return Err(format!(
                    "`type` {kind:?} does not match the entry: use \"stdio\" with `command` or \"http\" with `url`"
                ));
            }
        };
        Ok(Some(ServerSpec {
            name: name.to_owned(),
            transport,
            allowlist: self.tools,
            timeout,
        }))
    }
}

/// Server names prefix tool names the model sees, so they keep to what function names allow.
fn check_name(name: &str) -> Result<(), String> {
    let allowed = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.contains("__");
    if allowed {
        Ok(())
    } else {
        Err("a server name must be 1 to 32 letters, digits, `-` or `_`, without `__`".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problem(text: &str) -> (Option<String>, String) {
        match parse(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(problem) => problem,
        }
    }

    #[test]
    fn both_kinds_of_server_are_read_with_their_settings() {
        let specs = parse(
            r#"{"mcpServers": {
                "calc": {"command": "calc-server", "args": ["--flag"], "env": {"K": "v"}, "cwd": "/srv",
                         "tools": ["add", "multiply"], "timeout": 5},
                "notes": {"type": "http", "url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer x"}},
                "off": {"command": "x", "disabled": true}}}"#,
        )
        .unwrap();
        assert_eq!(specs.len(), 2, "the disabled entry is skipped");
        let calc = &specs[0];
        assert_eq!(calc.name, "calc");
        assert_eq!(
            calc.allowlist.as_deref(),
            Some(&["add".to_owned(), "multiply".to_owned()][..])
        );
        assert_eq!(calc.timeout, Some(Duration::from_secs(5)));
        assert!(
            matches!(&calc.transport, Transport::Stdio { command, args, env, cwd }
            if command == "calc-server" && args == &["--flag"] && env["K"] == "v" && cwd.as_deref() == Some(Path::new("/srv")))
        );
        assert!(
            matches!(&specs[1].transport, Transport::Http { url, headers }
            if url == "http://127.0.0.1:9000/mcp" && headers.contains_key("Authorization"))
        );
    }

    #[test]
    fn a_bad_entry_is_named_with_what_is_wrong() {
        let cases = [
            (
                r#"{"mcpServers": {"a": {"command": "x", "comand": "y"}}}"#,
                "unknown field `comand`",
            ),
            (r#"{"mcpServers": {"a": {}}}"#, "give `command`"),
            (
                r#"{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}"#,
                "not both",
            ),
            (
                r#"{"mcpServers": {"a": {"type": "http", "command": "x"}}}"#,
                "`type` \"http\"",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "timeout": 0}}}"#,
                "`timeout`",
            ),
            (
                r#"{"mcpServers": {"a__b": {"command": "x"}}}"#,
                "without `__`",
            ),
            (
                r#"{"mcpServers": {"a": {"url": "http://h", "env": {"K": "v"}}}}"#,
                "for `command` servers",
            ),
        ];
        for (text, expected) in cases {
            let (entry, problem) = problem(text);
            assert!(entry.is_some(), "{text}: names the entry");
            assert!(problem.contains(expected), "{text}: {problem}");
        }
    }

    #[test]
    fn a_file_that_is_not_the_format_is_refused() {
        for text in ["", "[]", r#"{"servers": {}}"#, r#"{"mcpServers": []}"#] {
            let (entry, problem) = problem(text);
            assert_eq!(entry, None, "{text}");
            assert!(problem.contains("mcpServers"), "{text}: {problem}");
        }
    }

    #[test]
    fn the_error_names_the_file_the_entry_and_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("servers.json");
        std::fs::write(&path, r#"{"mcpServers": {"calc": {"args": []}}}"#).unwrap();
        let message = load(&path).err().unwrap().to_string();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        assert!(message.contains("entry \"calc\""), "{message}");
        assert!(message.contains(setting::DELEGATE_SERVERS), "{message}");
        let gone = dir.path().join("gone");
        std::fs::write(
            &path,
            json!({"mcpServers": {"calc": {"command": "x", "cwd": gone}}}).to_string(),
        )
        .unwrap();
        let message = load(&path).err().unwrap().to_string();
        assert!(
            message.contains(&format!(
                "entry \"calc\": the working directory {} (`cwd`) does not exist",
                gone.display()
            )),
            "{message}"
        );
        let missing = load(&dir.path().join("nope.json"))
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("nope.json: cannot be read"), "{missing}");
    }
}
