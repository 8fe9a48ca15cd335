//! `delegate` on the real binary: what a downstream child inherits, its stderr in our
//! log, that none outlives the bridge, and a bad servers file refused at start-up.

use serde_json::{Value, json};

use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};
use crate::support::mcp::{Home, Server, server_command};
use crate::support::session::ok;

const MODEL: &str = "kimi-k2-instruct";

/// The binary delegating to the test server `calc`, whose model calls `tool` once and
/// answers with its result.
async fn delegating(
    tool: &'static str,
    extra: &[(&str, &str)],
) -> (FakeVultr, Downstreams, Server) {
    let fake = FakeVultr::start().await;
    fake.script(move |messages: &[Value]| match tool_result(messages, "t") {
        None => tool_calls(&[("t", tool, "{}")]),
        Some(result) => answer(result),
    })
    .await;
    let downstreams = Downstreams::new(&["calc"], json!({}));
    let setting = downstreams.setting();
    let mut env = vec![("VULTR_MCP_DELEGATE_SERVERS", setting.as_str())];
    env.extend_from_slice(extra);
    let server = Server::with_fake(&fake, &env).await;
    (fake, downstreams, server)
}

#[tokio::test]
async fn a_downstream_child_gets_its_configured_env_with_path_and_home_only() {
    let (_fake, _downstreams, server) =
        delegating("calc__env", &[("RUST_LOG", "vultr_inference_mcp=debug")]).await;
    let delegation = ok(&server
        .call("delegate", json!({"task": "env", "model": MODEL}))
        .await);
    let names: Vec<String> = serde_json::from_str(delegation["answer"].as_str().unwrap()).unwrap();
    assert_eq!(
        names,
        ["DOWNSTREAM_MARK", "HOME", "PATH"],
        "no VULTR_* key, nothing else"
    );
    let log = server.stderr();
    assert!(
        log.contains("calc: downstream test server starting"),
        "{log}"
    );
    assert!(
        !log.contains("set-by-config"),
        "env values are never logged: {log}"
    );
    server.stop().await;
}

#[cfg(target_os = "linux")]
/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn no_downstream_server_outlives_the_bridge() {
    let (_fake, _downstreams, server) = delegating("calc__pid", &[]).await;
    let delegation = ok(&server
        .call("delegate", json!({"task": "pid", "model": MODEL}))
        .await);
    let pid = delegation["answer"].as_str().unwrap().to_owned();
    assert!(
        !ended(&pid),
        "the downstream server runs while the bridge does"
    );
    // The bridge waits for its downstream servers before it exits.
    server.stop().await;
    assert!(
        ended(&pid),
        "downstream server {pid} still runs after the bridge ended"
    );
}

#[tokio::test]
async fn a_bad_servers_file_stops_start_up_naming_the_file_and_the_entry() {
    let downstreams = Downstreams::new(&[], json!({}));
    downstreams.write(r#"{"mcpServers": {"calc": {"command": "x", "tool": ["add"]}}}"#);
    let home = Home::new();
    let mut command = server_command(&home);
    command
        .env("VULTR_MCP_DELEGATE_SERVERS", downstreams.file())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = command
        .spawn()
        .expect("the binary starts")
        .wait_with_output()
        .await
        .expect("it ends");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&downstreams.setting()), "{stderr}");
    assert!(stderr.contains("entry \"calc\""), "{stderr}");
    assert!(stderr.contains("unknown field `tool`"), "{stderr}");
}
