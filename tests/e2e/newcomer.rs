//! What a new user runs first, held by tests: every setting documented in the README's
//! tables, the README's tokens snippet run as written, `hash-token` refusing short tokens,
//! and `deploy/run-local.sh` serving through nginx past a killed replica.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::support::assertions::assert_contains;
use crate::support::http::run_hash_token;
use crate::support::mcp::{BINARY, Home};

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The README's text.
fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// Every name written in `src/setting.rs`, the one place setting names live.
fn setting_names() -> Vec<String> {
    let module = std::fs::read_to_string(root().join("src/setting.rs")).expect("src/setting.rs");
    let names: Vec<String> = module
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(names.len() > 30, "too few settings found: {names:?}");
    names
}

/// The names written in backticks in the README's table rows.
fn names_in_readme_tables(readme: &str) -> BTreeSet<String> {
    readme
        .lines()
        .filter(|line| line.trim_start().starts_with('|'))
        .flat_map(|row| row.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect()
}

#[test]
fn every_setting_is_in_a_readme_table() {
    let documented = names_in_readme_tables(&readme());
    let missing: Vec<String> = setting_names()
        .into_iter()
        .filter(|name| !documented.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "settings missing from the README's tables: {missing:?}"
    );
}

/// The contents of the README's fenced `sh` blocks.
fn shell_blocks(readme: &str) -> Vec<String> {
    readme
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest[..rest.find("```").expect("the block ends")].to_owned())
        .collect()
}

/// Runs `hash-token NAME` with `stdin`, as a user's shell would (no setting cleared);
/// its exit success, stdout and stderr.
async fn hash_token(name: &str, stdin: &str) -> (bool, String, String) {
    let home = Home::new();
    let mut command = tokio::process::Command::new(BINARY);
    home.apply(&mut command);
    run_hash_token(command, name, stdin).await
}

#[tokio::test]
async fn hash_token_refuses_a_token_under_16_characters_and_says_how_to_make_one() {
    for short in ["12345", "fifteen-chars-x"] {
        let (ok, stdout, stderr) = hash_token("alice", &format!("{short}\n")).await;
        assert!(!ok, "a {}-character token was accepted", short.len());
        assert!(stdout.is_empty(), "{stdout}");
        assert_contains(&stderr, &["at least 16", "openssl rand -hex 32"]);
        assert!(!stderr.contains(short), "the token is echoed: {stderr}");
    }
    let (ok, stdout, stderr) = hash_token("alice", "sixteen-chars-xx\n").await;
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("alice "), "{stdout}");
}

/// Whether `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[tokio::test]
async fn the_readmes_tokens_snippet_makes_a_private_folder_and_a_file_the_server_accepts() {
    use std::os::unix::fs::PermissionsExt;

    let readme = readme();
    let snippet = shell_blocks(&readme)
        .into_iter()
        .find(|block| block.contains("hash-token alice"))
        .expect("the README has the tokens snippet");
    let scratch = tempfile::tempdir().expect("a temp dir");
    let etc = scratch.path().join("etc/vultr-inference-mcp");
    let script = snippet.replace("/etc/vultr-inference-mcp", &etc.display().to_string());
    // The snippet calls the installed binary by name: put the test's binary first on PATH
    // (and a stand-in for openssl where none is installed).
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::os::unix::fs::symlink(BINARY, bin.join("vultr-inference-mcp")).expect("symlink");
    if !on_path("openssl") {
        let fake = bin.join("openssl");
        std::fs::write(
            &fake,
            "#!/bin/sh\nod -An -N32 -tx1 /dev/urandom | tr -d ' \\n'; echo\n",
        )
        .expect("write");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = path_with(&bin);
    let home = Home::new();
    let mut command = tokio::process::Command::new("bash");
    home.apply(&mut command);
    let output = command
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the snippet failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = stdout
        .lines()
        .find_map(|line| line.strip_prefix("give this to alice: "))
        .expect("the snippet prints the token")
        .trim()
        .to_owned();

    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&etc), 0o700, "the folder");
    let file = etc.join("tokens");
    assert_eq!(mode(&file), 0o600, "the tokens file");
    let tokens = vultr_inference_mcp::http::auth::StaticTokens::load(&file).expect("loads");
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens.principal_for(&token).map(|p| p.as_str().to_owned()),
        Some("alice".to_owned())
    );

    // Run again, as for a second user: the existing folder and file are reused.
    let second = script.replace("alice", "bob");
    let mut command = tokio::process::Command::new("bash");
    home.apply(&mut command);
    let output = command
        .args(["-euo", "pipefail", "-c", &second])
        .env("PATH", path_with(&bin))
        .output()
        .await
        .expect("bash runs");
    assert!(output.status.success());
    let tokens = vultr_inference_mcp::http::auth::StaticTokens::load(&file).expect("loads");
    assert_eq!(tokens.len(), 2);
    assert_eq!(mode(&file), 0o600, "the tokens file after a second line");
}

/// How long the deployment may take to come up (initdb, two replicas, nginx) on a busy machine.
const DEPLOY_START: Duration = Duration::from_secs(180);

/// `deploy/run-local.sh` running; stopped with SIGTERM (its own clean-up) when dropped.
struct Deployment {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    _home: Home,
}

impl Deployment {
    /// Starts the script with the test's binary and `env`, waiting for its `ready` line.
    async fn start(env: &[(&str, String)]) -> Deployment {
        let home = Home::new();
        let mut command = tokio::process::Command::new("bash");
        for (name, _) in std::env::vars() {
            if name.starts_with("VULTR_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        home.apply(&mut command);
        command
            .arg(root().join("deploy/run-local.sh"))
            .env("VULTR_MCP_BIN", BINARY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("bash starts");
        let (tx, lines) = mpsc::unbounded_channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout"))
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        let mut deployment = Deployment {
            child,
            lines,
            seen: Vec::new(),
            _home: home,
        };
        deployment
            .wait_for(DEPLOY_START, |line| line.contains("] ready: "))
            .await;
        deployment
    }

    /// Waits for a line matching `wanted`, returning it; panics with all output after `within`.
    async fn wait_for(&mut self, within: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(within, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if wanted(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "deploy/run-local.sh did not print the expected line; its output:\n{}",
                self.seen.join("\n")
            ),
        }
    }

    /// The pid the script printed last for the replica on `port`.
    fn replica_pid(&self, port: u16) -> i32 {
        let prefix = format!("[deploy] replica 127.0.0.1:{port}: pid ");
        self.seen
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pid printed for {port}:\n{}", self.seen.join("\n")))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on the script we started, with a valid signal.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            // Its clean-up stops the replicas, nginx and Postgres; give it the time it needs.
            for _ in 0..300 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// A 2026-07-28 (stateless) MCP client of `url`: each request stands alone, so the balancer
/// may send each to either replica.
async fn stateless_client(url: &str) -> crate::support::session::Session {
    use rmcp::model::ProtocolVersion;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::{ClientLifecycleMode, ClientServiceExt};
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap_or_else(|error| panic!("could not connect through nginx: {error}"));
    crate::support::session::Session { client }
}

/// Fails unless `/healthz` through `base` answers 200.
async fn healthz(http: &reqwest::Client, base: &str) {
    let response = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap_or_else(|error| panic!("{base}/healthz: {error}"));
    assert_eq!(response.status(), 200, "{base}/healthz");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_script_serves_through_nginx_past_a_killed_replica_and_restarts_it() {
    use crate::support::fake_vultr::FakeVultr;
    use crate::support::session::ok;
    use serde_json::json;

    let fake = FakeVultr::start().await;
    let (nginx_port, a_port, b_port) = (free_port(), free_port(), free_port());
    let mut env: Vec<(&str, String)> = fake.settings();
    env.push(("MCP_PORT", nginx_port.to_string()));
    env.push(("REPLICA_PORTS", format!("{a_port} {b_port}")));
    let mut deployment = Deployment::start(&env).await;
    let a_pid = deployment.replica_pid(a_port);
    let b_pid = deployment.replica_pid(b_port);
    assert!(alive(a_pid) && alive(b_pid), "the printed pids run");
    assert!(
        deployment
            .seen
            .iter()
            .any(|l| l.contains("nginx on 127.0.0.1:") && l.contains(": pid ")),
        "nginx's pid is printed: {:?}",
        deployment.seen
    );

    let url = format!("http://127.0.0.1:{nginx_port}/mcp");
    let base = format!("http://127.0.0.1:{nginx_port}");
    let http = reqwest::Client::new();
    let session = stateless_client(&url).await;
    let started = ok(&session.chat_hi().await);
    let id = started["conversation_id"]
        .as_str()
        .expect("the turn is stored in Postgres")
        .to_owned();

    // SAFETY: kill(2) on a replica the script started for this test.
    unsafe { libc::kill(a_pid, libc::SIGKILL) };
    // Every request through nginx still succeeds while it is down: round robin sends about
    // half of them to the dead replica, and nginx passes those to the other one.
    for turn in 0..6 {
        healthz(&http, &base).await;
        ok(&session
            .call(
                "chat_completion",
                json!({"conversation_id": id, "prompt": format!("turn {turn}")}),
            )
            .await);
    }

    // The script starts the replica again and prints its new pid.
    let restarted = deployment
        .wait_for(Duration::from_secs(60), |line| {
            line.starts_with(&format!("[deploy] replica 127.0.0.1:{a_port}: pid "))
        })
        .await;
    let new_pid = deployment.replica_pid(a_port);
    assert_ne!(new_pid, a_pid, "{restarted}");
    assert!(
        deployment
            .seen
            .iter()
            .any(|l| l.contains(&format!("(pid {a_pid}) exited"))),
        "the death is reported: {:?}",
        deployment.seen
    );
    let direct = format!("http://127.0.0.1:{a_port}");
    let mut up = false;
    for _ in 0..300 {
        if http
            .get(format!("{direct}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the restarted replica answers on {direct}");
    ok(&session
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "after the restart"}),
        )
        .await);

    // SIGTERM stops everything the script started.
    let run_dir = deployment
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("[deploy] logs in "))
        .map(PathBuf::from)
        .expect("the script names its folder");
    drop(session);
    drop(deployment);
    assert!(!alive(new_pid) && !alive(b_pid), "replicas stopped");
    assert!(!run_dir.exists(), "{} removed", run_dir.display());
}

#[tokio::test]
async fn the_deploy_script_builds_into_cargo_target_dir_when_no_binary_is_given() {
    use std::os::unix::fs::PermissionsExt;

    let scratch = tempfile::tempdir().expect("a temp dir");
    let target = scratch.path().join("elsewhere");
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    // A stand-in for cargo that records how it was called and builds nothing.
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\nprintf '%s\\n' \"$*\" > \"$CARGO_CALLS\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let calls = scratch.path().join("calls");
    let home = Home::new();
    let mut command = tokio::process::Command::new("bash");
    home.apply(&mut command);
    let output = command
        .arg(root().join("deploy/run-local.sh"))
        .env_remove("VULTR_MCP_BIN")
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_CALLS", &calls)
        .env("PATH", path_with(&bin))
        .output()
        .await
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let expected = format!(
        "{}/release/vultr-inference-mcp is not an executable file",
        target.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let called = std::fs::read_to_string(&calls).expect("cargo was called");
    assert!(called.contains("build --release"), "{called}");
}

/// `PATH` with `dir` first.
fn path_with(dir: &std::path::Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
