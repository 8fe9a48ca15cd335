//! Starts the real server binary over stdio and drives it with rmcp's client.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use tokio::io::AsyncReadExt;

use super::fake_vultr::FakeVultr;
use super::fake_vultr::faults::FaultServer;
use super::session::{Session, overridden};

/// The server binary Cargo built for this test run.
pub const BINARY: &str = env!("CARGO_BIN_EXE_vultr-inference-mcp");

/// Every variable the server reads; cleared so the developer's own settings never leak in.
const SERVER_VARS: &[&str] = &[
    "VULTR_API_KEY",
    "VULTR_INFERENCE_API_KEY",
    "VULTR_INFERENCE_SUBSCRIPTION",
    "VULTR_API_BASE_URL",
    "VULTR_INFERENCE_BASE_URL",
    "VULTR_DEFAULT_MODEL",
    "RUST_LOG",
];

/// Whether a variable is one of the server's settings (`VULTR_*`, `OTEL_*`, `RUST_LOG`).
fn is_server_var(name: &str) -> bool {
    name.starts_with("VULTR_") || name.starts_with("OTEL_") || SERVER_VARS.contains(&name)
}

/// A private home for spawned processes: `HOME` and the XDG folders point into a
/// temporary directory, so no test ever reads or writes the developer's real files
/// (the default conversation store among them). Removed when dropped.
pub struct Home(tempfile::TempDir);

impl Home {
    /// A new, empty home.
    pub fn new() -> Home {
        Home(
            tempfile::Builder::new()
                .prefix("vultr-mcp-test-home-")
                .tempdir()
                .expect("a temporary home"),
        )
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Where the server keeps conversations by default inside this home.
    pub fn default_store(&self) -> PathBuf {
        self.path()
            .join(".local/share/vultr-inference-mcp/conversations.sqlite3")
    }

    /// Points `command` at this home. Cargo and rustup keep finding their own folders.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        if let Some(real) = dirs::home_dir() {
            if std::env::var_os("CARGO_HOME").is_none() {
                command.env("CARGO_HOME", real.join(".cargo"));
            }
            if std::env::var_os("RUSTUP_HOME").is_none() {
                command.env("RUSTUP_HOME", real.join(".rustup"));
            }
        }
        command
            .env("HOME", self.path())
            .env("XDG_DATA_HOME", self.path().join(".local/share"))
            .env("XDG_CONFIG_HOME", self.path().join(".config"))
            .env("XDG_CACHE_HOME", self.path().join(".cache"))
            .env("XDG_STATE_HOME", self.path().join(".local/state"));
    }
}

/// A command for the server binary in `home`, with none of the developer's server
/// settings and the default (quiet) log level. The only way tests start the binary.
pub fn server_command(home: &Home) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BINARY);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_server_var) {
            command.env_remove(&name);
        }
    }
    home.apply(&mut command);
    command.env("RUST_LOG", "warn");
    command
}

/// A running server with a connected MCP client.
pub struct Server {
    session: Session,
    stderr: Arc<Mutex<String>>,
    home: Home,
}

impl Server {
    /// Starts the binary in a private home with exactly these server variables set
    /// (conversations in memory unless `env` says otherwise).
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let home = Home::new();
        let mut command = server_command(&home);
        command.env("VULTR_MCP_CONVERSATIONS", "memory");
        for (name, value) in env {
            command.env(name, value);
        }
        Server::spawn(command, home).await
    }

    /// Starts `command` (made by [`server_command`] for `home`, then adjusted by the
    /// caller), keeping its stderr, and completes the MCP handshake.
    pub async fn spawn(command: tokio::process::Command, home: Home) -> Server {
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let captured = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = stderr {
            let captured = captured.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    captured
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
        }
        let client = ().serve(transport).await.expect("the MCP handshake succeeds");
        Server {
            session: Session { client },
            stderr: captured,
            home,
        }
    }

    /// Starts the binary pointed at `fake`, with the account key and `extra` variables.
    pub async fn with_fake(fake: &FakeVultr, extra: &[(&str, &str)]) -> Server {
        let settings = fake.settings();
        Server::start(&overridden(&settings, extra)).await
    }

    /// Starts the binary pointed at the raw `faults` server, with a configured inference
    /// key (no account API, so no key discovery) and `extra` variables.
    pub async fn with_faults(faults: &FaultServer, extra: &[(&str, &str)]) -> Server {
        let settings = faults.settings();
        Server::start(&overridden(&settings, extra)).await
    }

    /// The server's private home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Ends the session (closes stdin) and waits for the process to exit.
    pub async fn stop(self) {
        let _ = self.session.client.cancel().await;
    }
}

impl std::ops::Deref for Server {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}
