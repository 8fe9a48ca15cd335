//! The binary's commands other than serving MCP: `--version` names the commit it was built
//! from, and `healthcheck` (the container image's HEALTHCHECK) tells a serving process from
//! none.

use crate::support::http::HttpServer;
use crate::support::mcp::{Home, server_command};

/// Runs the binary with `args` and `env`; its exit code, stdout and stderr.
async fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let home = Home::new();
    let mut command = server_command(&home);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

/// The commit git says this tree is at, as `--version` should show it.
fn head_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[tokio::test]
async fn version_names_the_package_version_and_the_commit() {
    let (code, stdout, _) = run(&["--version"], &[]).await;
    assert_eq!(code, Some(0));
    let line = stdout.trim();
    assert!(
        line.starts_with(&format!(
            "vultr-inference-mcp {} (",
            env!("CARGO_PKG_VERSION")
        )),
        "{line}"
    );
    if let Some(commit) = head_commit() {
        assert!(
            line.ends_with(&format!("({commit})")),
            "{line} lacks {commit}"
        );
    }
}

#[tokio::test]
async fn healthcheck_passes_against_a_serving_process() {
    let server = HttpServer::start(&[]).await;
    let (code, _, stderr) = run(&["healthcheck", "--url", &server.at("/healthz")], &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // With no URL it asks the --http address, read from the same setting the server uses.
    let (code, _, stderr) = run(&["healthcheck"], &[("VULTR_MCP_HTTP", server.authority())]).await;
    assert_eq!(code, Some(0), "{stderr}");
    server.terminate().await;
}

#[tokio::test]
async fn healthcheck_fails_clearly_when_nothing_serves() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (code, stdout, stderr) =
        run(&["healthcheck"], &[("VULTR_MCP_HTTP", &addr.to_string())]).await;
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("http://{addr}/healthz")) && stderr.contains("--http"),
        "{stderr}"
    );
}

#[tokio::test]
async fn healthcheck_fails_on_an_answer_other_than_200() {
    let server = HttpServer::start(&[]).await;
    let (code, _, stderr) = run(&["healthcheck", "--url", &server.at("/no-such-page")], &[]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("404"), "{stderr}");
    server.terminate().await;
}
