//! Toolset settings the binary cannot serve stop it at start-up, naming what to change.

use std::process::Stdio;

use crate::support::mcp::{Home, server_command};

/// Starts the binary with `env` and stdin closed; its exit success and stderr.
async fn start_with(env: &[(&str, &str)]) -> (bool, String) {
    let home = Home::new();
    let mut command = server_command(&home);
    command.stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unknown_toolset_stops_start_up_naming_the_known_ones() {
    let (ok, stderr) = start_with(&[("VULTR_MCP_TOOLSETS", "core,imagez")]).await;
    assert!(!ok, "the server must not start: {stderr}");
    assert!(
        stderr.contains("unknown toolset `imagez`")
            && stderr.contains("core, delegate, rag, retrieval, audio, images, or all"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_delegate_toolset_without_delegate_servers_stops_start_up() {
    let (ok, stderr) = start_with(&[("VULTR_MCP_TOOLSETS", "core,delegate")]).await;
    assert!(!ok, "the server must not start: {stderr}");
    assert!(
        stderr.contains("VULTR_MCP_DELEGATE_SERVERS") && stderr.contains("toolset `delegate`"),
        "{stderr}"
    );
}
