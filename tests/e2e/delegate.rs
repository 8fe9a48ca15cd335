//! `delegate` on the real binary: what a downstream child inherits, its stderr in our
//! log, that none outlives the bridge (ended, SIGKILLed, or with children ignoring end of
//! input), and a bad servers file (or a missing `cwd`) refused at start-up.

use serde_json::{Value, json};

use crate::support::assertions::assert_contains;
use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::script::{answer, tool_calls, tool_result};
use crate::support::mcp::{Home, Server, server_command};
use crate::support::raw::RawServer;
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

/// Starts the binary with `downstreams`' servers file and waits for it to end (it should
/// refuse to start): its output.
async fn start_with_servers_file(downstreams: &Downstreams) -> std::process::Output {
    let home = Home::new();
    let mut command = server_command(&home);
    command
        .env("VULTR_MCP_DELEGATE_SERVERS", downstreams.file())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
        .spawn()
        .expect("the binary starts")
        .wait_with_output()
        .await
        .expect("it ends")
}

#[tokio::test]
async fn a_bad_servers_file_stops_start_up_naming_the_file_and_the_entry() {
    let downstreams = Downstreams::new(&[], json!({}));
    downstreams.write(r#"{"mcpServers": {"calc": {"command": "x", "tool": ["add"]}}}"#);
    let output = start_with_servers_file(&downstreams).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(
        &stderr,
        &[
            &downstreams.setting(),
            "entry \"calc\"",
            "unknown field `tool`",
        ],
    );
}

/// The binary over raw stdio, delegating to the servers of `downstreams` with a model that
/// answers at once; one `delegate` call has started every server.
async fn raw_with_started_servers(fake: &FakeVultr, downstreams: &Downstreams) -> RawServer {
    fake.script(|_| answer("done")).await;
    let builder = fake
        .settings()
        .into_iter()
        .fold(RawServer::builder(), |builder, (name, value)| {
            builder.env(name, &value)
        })
        .env("VULTR_MCP_DELEGATE_SERVERS", &downstreams.setting());
    let mut raw = builder.start().await;
    raw.send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "delegate", "arguments": {"task": "t", "model": MODEL}}
    }))
    .await;
    let (_, answer) = raw.until_response(1).await;
    assert_eq!(
        answer.value["result"]["isError"], false,
        "the delegation ran: {}",
        answer.value
    );
    raw
}

/// The one process id server `name` of `downstreams` was started with.
fn only_start(downstreams: &Downstreams, name: &str) -> u32 {
    let starts = downstreams.starts(name);
    assert_eq!(starts.len(), 1, "{name} started once: {starts:?}");
    starts[0]
}

/// Waits up to `limit` for process `pid` to end; kills it (so no test leaves it behind)
/// and returns false when it did not.
#[cfg(target_os = "linux")]
async fn ends_within(pid: u32, limit: std::time::Duration) -> bool {
    let pid = pid.to_string();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if ended(&pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    false
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_child_ignoring_end_of_input_dies_with_a_sigkilled_bridge() {
    let fake = FakeVultr::start().await;
    let downstreams = Downstreams::with_flags(&["deaf"], &["--ignore-eof"], json!({}));
    let mut raw = raw_with_started_servers(&fake, &downstreams).await;
    let child = only_start(&downstreams, "deaf");
    assert!(!ended(&child.to_string()), "the child runs");
    raw.signal("KILL").await;
    raw.exit_status(std::time::Duration::from_secs(10))
        .await
        .expect("the bridge is killed");
    assert!(
        ends_within(child, std::time::Duration::from_secs(10)).await,
        "downstream child {child} outlived the SIGKILLed bridge"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn end_of_input_stops_children_that_ignore_it_all_at_once() {
    let fake = FakeVultr::start().await;
    // `deaf` exits on SIGTERM; `stubborn` needs SIGKILL.
    let downstreams = Downstreams::new(&[], json!({}));
    let deaf = Downstreams::with_flags(&["deaf"], &["--ignore-eof"], json!({}));
    let stubborn =
        Downstreams::with_flags(&["stubborn"], &["--ignore-eof", "--ignore-term"], json!({}));
    let entries = |d: &Downstreams| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.file()).unwrap()).unwrap()
    };
    let mut servers = entries(&deaf);
    servers["mcpServers"]["stubborn"] = entries(&stubborn)["mcpServers"]["stubborn"].clone();
    downstreams.write(&servers.to_string());
    let mut raw = raw_with_started_servers(&fake, &downstreams).await;
    let pids = [only_start(&deaf, "deaf"), only_start(&stubborn, "stubborn")];

    let closed = std::time::Instant::now();
    raw.close_stdin();
    let status = raw
        .exit_status(std::time::Duration::from_secs(30))
        .await
        .expect("the bridge exits");
    let took = closed.elapsed();
    assert!(status.success(), "{status}: {}", raw.stderr());
    for pid in pids {
        assert!(ended(&pid.to_string()), "child {pid} outlived the bridge");
    }
    let at = |d: &Downstreams, name: &str, event: &str| -> Vec<u64> {
        d.calls(name)
            .iter()
            .filter(|c| c["event"] == event)
            .map(|c| c["at_us"].as_u64().unwrap())
            .collect()
    };
    let eofs = [at(&deaf, "deaf", "eof"), at(&stubborn, "stubborn", "eof")].concat();
    let terms = [at(&deaf, "deaf", "term"), at(&stubborn, "stubborn", "term")].concat();
    assert_eq!((eofs.len(), terms.len()), (2, 2), "{eofs:?} {terms:?}");
    assert!(
        eofs.iter().max() < terms.iter().min(),
        "both children saw end of input before either got SIGTERM (not one after another): eof {eofs:?}, term {terms:?}"
    );
    // Each child: end of input, a grace, SIGTERM to its group, a grace, SIGKILL; both at
    // once, so about 3 s in all (one after another: 9 s).
    assert!(took < std::time::Duration::from_secs(6), "took {took:?}");
}

#[tokio::test]
async fn a_missing_working_directory_stops_start_up_naming_it() {
    let downstreams = Downstreams::new(&[], json!({}));
    let gone = downstreams.file().with_file_name("no-such-dir");
    downstreams.write(
        &json!({"mcpServers": {"calc": {"command": "calc-server", "cwd": gone}}}).to_string(),
    );
    let output = start_with_servers_file(&downstreams).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "entry \"calc\": the working directory {} (`cwd`) does not exist",
            gone.display()
        )),
        "{stderr}"
    );
}
