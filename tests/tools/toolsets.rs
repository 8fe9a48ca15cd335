//! Toolsets and read-only mode: which tools each setting lists (snapshots of `tools/list`
//! per toolset), that the instructions follow the tools listed, and that a tool not
//! listed cannot be called, with a message saying why.

use std::path::PathBuf;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::in_process::Server;
use crate::support::session::CORE_TOOLS as CORE;

/// A delegate servers file naming one server (never started: listing needs no server).
struct ServersFile {
    _dir: TempDir,
    path: PathBuf,
}

impl ServersFile {
    fn new() -> ServersFile {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("servers.json");
        let servers = json!({"mcpServers": {"calc": {"command": "true"}}});
        std::fs::write(&path, servers.to_string()).expect("the servers file is written");
        ServersFile { _dir: dir, path }
    }

    fn setting(&self) -> &str {
        self.path.to_str().expect("a UTF-8 path")
    }
}

/// A case: its name, the settings, and the tools they must list in order.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);

/// The names `tools/list` gives, in order, and the listing itself.
async fn listed(server: &Server) -> (Vec<String>, Value) {
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let names = tools.iter().map(|tool| tool.name.to_string()).collect();
    (
        names,
        serde_json::to_value(&tools).expect("tools serialize"),
    )
}

#[tokio::test]
async fn each_toolset_setting_lists_exactly_its_tools() {
    let servers = ServersFile::new();
    let with_servers = ("VULTR_MCP_DELEGATE_SERVERS", servers.setting());
    let mut core_and_delegate = CORE.to_vec();
    core_and_delegate.push("delegate");
    let rag = vec![
        "list_collections",
        "create_collection",
        "delete_collection",
        "add_to_collection",
        "list_collection_items",
        "delete_collection_item",
        "search_collection",
    ];
    let audio = vec!["speak", "list_voices", "transcribe"];
    let mut all = core_and_delegate.clone();
    all.extend(&rag);
    all.extend(["rerank", "embed"]);
    all.extend(&audio);
    all.push("generate_image");
    let mut all_without_delegate = CORE.to_vec();
    all_without_delegate.extend(&rag);
    all_without_delegate.extend(["rerank", "embed"]);
    all_without_delegate.extend(&audio);
    all_without_delegate.push("generate_image");
    let cases: Vec<Case> = vec![
        ("default", vec![], CORE.to_vec()),
        (
            "default_with_delegate_servers",
            vec![with_servers],
            core_and_delegate.clone(),
        ),
        ("core", vec![("VULTR_MCP_TOOLSETS", "core")], CORE.to_vec()),
        (
            "core_with_delegate_servers",
            vec![("VULTR_MCP_TOOLSETS", "core"), with_servers],
            CORE.to_vec(),
        ),
        (
            "delegate",
            vec![("VULTR_MCP_TOOLSETS", "delegate"), with_servers],
            vec!["delegate"],
        ),
        ("rag", vec![("VULTR_MCP_TOOLSETS", "rag")], rag),
        ("audio", vec![("VULTR_MCP_TOOLSETS", "audio")], audio),
        (
            "all",
            vec![("VULTR_MCP_TOOLSETS", "all"), with_servers],
            all,
        ),
        (
            "all_without_delegate_servers",
            vec![("VULTR_MCP_TOOLSETS", "all")],
            all_without_delegate,
        ),
        (
            "retrieval",
            vec![("VULTR_MCP_TOOLSETS", "retrieval")],
            vec!["rerank", "embed"],
        ),
        (
            "images",
            vec![("VULTR_MCP_TOOLSETS", "images")],
            vec!["generate_image"],
        ),
        (
            "read_only",
            vec![("VULTR_MCP_READ_ONLY", "true"), with_servers],
            vec!["list_models", "list_subscriptions", "get_subscription"],
        ),
    ];
    for (case, settings, expected) in cases {
        let server = Server::start(&settings).await;
        let (names, listing) = listed(&server).await;
        assert_eq!(names, expected, "case {case}: the tools listed");
        if matches!(
            case,
            "core" | "delegate" | "rag" | "retrieval" | "audio" | "images" | "all" | "read_only"
        ) {
            insta::assert_json_snapshot!(format!("toolset_{case}"), listing);
        }
        let info = server.client.peer_info().expect("the server's info");
        let instructions = info.instructions.as_deref().expect("instructions");
        for tool in CORE.iter().chain(["delegate"].iter()) {
            assert_eq!(
                instructions.contains(&format!("- {tool}")),
                names.iter().any(|name| name == tool),
                "case {case}: the instructions speak of {tool} exactly when it is listed:\n{instructions}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn a_tool_left_out_cannot_be_called_and_the_error_says_why() {
    let servers = ServersFile::new();
    let read_only = Server::start(&[("VULTR_MCP_READ_ONLY", "1")]).await;
    let refused = read_only
        .try_call("chat_completion", json!({"model": "m", "prompt": "hi"}))
        .await
        .expect_err("chat_completion is not listed in read-only mode")
        .to_string();
    assert!(
        refused.contains("VULTR_MCP_READ_ONLY") && refused.contains("list_models"),
        "{refused}"
    );
    read_only.stop().await;

    let core_only = Server::start(&[
        ("VULTR_MCP_TOOLSETS", "core"),
        ("VULTR_MCP_DELEGATE_SERVERS", servers.setting()),
    ])
    .await;
    let refused = core_only
        .try_call("delegate", json!({"task": "add"}))
        .await
        .expect_err("delegate is not listed without its toolset")
        .to_string();
    assert!(
        refused.contains("toolset `delegate`") && refused.contains("VULTR_MCP_TOOLSETS"),
        "{refused}"
    );
    core_only.stop().await;
}
