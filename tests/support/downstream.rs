//! The downstream MCP server of the delegation tests (`examples/downstream_server.rs`),
//! built once per test binary with `cargo build --example`, and the files around it: the
//! delegate servers file naming it and the log of the calls it received.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

/// The built downstream test server.
pub fn server_path() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--example",
                "downstream_server",
                "--manifest-path",
            ])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building examples/downstream_server.rs failed"
        );
        // The test binary is target/<profile>/deps/<name>; examples sit beside deps.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let path = profile_dir.join("examples").join("downstream_server");
        assert!(path.exists(), "{} was not built", path.display());
        path
    })
}

/// A delegate servers file and the call logs of the downstream servers it names, in a
/// private directory.
pub struct Downstreams {
    dir: TempDir,
}

impl Downstreams {
    /// A file with one stdio entry per name, each the test server logging to its own
    /// file; `extra` is merged into every entry (e.g. `{"tools": [...]}`).
    pub fn new(names: &[&str], extra: Value) -> Downstreams {
        let downstreams = Downstreams {
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        downstreams.write_entries(names, &extra, |name| {
            json!({
                "command": server_path(),
                "args": ["--log", downstreams.log_path(name)],
                "env": {"DOWNSTREAM_MARK": "set-by-config"},
            })
        });
        downstreams
    }

    /// Like [`Downstreams::new`], with `flags` after `--log FILE` and `--starts FILE`
    /// (e.g. `--ignore-eof`, `--start-delay-ms N`; see `examples/downstream_server.rs`).
    pub fn with_flags(names: &[&str], flags: &[&str], extra: Value) -> Downstreams {
        let downstreams = Downstreams::new(&[], json!({}));
        downstreams.write_entries(names, &extra, |name| {
            let mut args = vec![
                json!("--log"),
                json!(downstreams.log_path(name)),
                json!("--starts"),
                json!(downstreams.starts_path(name)),
            ];
            args.extend(flags.iter().map(|flag| json!(flag)));
            json!({"command": server_path(), "args": args})
        });
        downstreams
    }

    /// Writes the file with the entry `entry` makes for each of `names`, `extra` merged in.
    fn write_entries(&self, names: &[&str], extra: &Value, entry: impl Fn(&str) -> Value) {
        let servers: serde_json::Map<String, Value> = names
            .iter()
            .map(|name| {
                let mut entry = entry(name);
                if let (Some(entry), Some(extra)) = (entry.as_object_mut(), extra.as_object()) {
                    entry.extend(extra.clone());
                }
                ((*name).to_owned(), entry)
            })
            .collect();
        self.write(&json!({ "mcpServers": servers }).to_string());
    }

    fn starts_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.starts"))
    }

    /// The process ids of the starts of server `name` so far (made [`Downstreams::with_flags`]).
    pub fn starts(&self, name: &str) -> Vec<u32> {
        lines_of(&self.starts_path(name), |line| {
            line.parse().expect("a process id")
        })
    }

    /// Replaces the file's text.
    pub fn write(&self, text: &str) {
        std::fs::write(self.file(), text).expect("write the servers file");
    }

    /// The servers file, as `VULTR_MCP_DELEGATE_SERVERS` takes it.
    pub fn file(&self) -> PathBuf {
        self.dir.path().join("servers.json")
    }

    /// The file as a setting value.
    pub fn setting(&self) -> String {
        self.file().display().to_string()
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.calls.jsonl"))
    }

    /// The calls server `name` received so far, one JSON object each, in order.
    pub fn calls(&self, name: &str) -> Vec<Value> {
        lines_of(&self.log_path(name), |line| {
            serde_json::from_str(line).expect("a JSON log line")
        })
    }

    /// Waits (up to 10 s) until server `name` has logged `event`; true when it has.
    pub async fn wait_for(&self, name: &str, event: &Value) -> bool {
        for _ in 0..200 {
            if self.calls(name).contains(event) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// Each line of the file at `path` (none while it does not exist), read by `read`.
fn lines_of<T>(path: &Path, read: impl Fn(&str) -> T) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(read)
        .collect()
}

/// The downstream test server serving streamable HTTP on loopback; stopped when dropped.
pub struct HttpDownstream {
    _child: tokio::process::Child,
    /// Its MCP endpoint.
    pub url: String,
}

impl Downstreams {
    /// The test server over HTTP, named `name` in a servers file whose entry sends
    /// `authorization` (when given) as its `Authorization` header; the server requires
    /// `Bearer <token>`.
    pub async fn http(
        name: &str,
        token: &str,
        authorization: Option<&str>,
    ) -> (Downstreams, HttpDownstream) {
        use tokio::io::AsyncBufReadExt;

        let downstreams = Downstreams::new(&[], json!({}));
        let mut child = tokio::process::Command::new(server_path())
            .args(["--http", "--token", token, "--log"])
            .arg(downstreams.log_path(name))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the HTTP test server starts");
        let stdout = child.stdout.take().expect("its stdout");
        let url = tokio::io::BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .expect("its address")
            .expect("a line with its address");
        let mut entry = json!({"url": url});
        if let Some(authorization) = authorization {
            entry["headers"] = json!({"Authorization": authorization});
        }
        downstreams.write(&json!({"mcpServers": {name: entry}}).to_string());
        (downstreams, HttpDownstream { _child: child, url })
    }
}
