//! The `rag` toolset on the binary: over stdio a local document goes in by `path`, is
//! searched and answered over; over HTTP two principals' collections stay apart and no
//! client may name a file on the server's machine.

use base64::Engine as _;
use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::vector_store::RAG_PATH;
use crate::support::mcp::Server;
use crate::support::session::{err, ok, text};

const RAG: (&str, &str) = ("VULTR_MCP_TOOLSETS", "core,rag");

#[tokio::test]
async fn over_stdio_a_local_document_is_uploaded_searched_and_answered_over() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[RAG]).await;
    let created = ok(&server
        .call("create_collection", json!({"name": "field-guide"}))
        .await);
    let id = created["collection"]["id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("birds.txt");
    std::fs::write(
        &file,
        "Robins sing at dawn.\n\nOwls hunt at night and sleep by day.",
    )
    .unwrap();
    let uploaded = ok(&server
        .call(
            "add_to_collection",
            json!({"collection": id, "path": file.to_str().unwrap()}),
        )
        .await);
    assert_eq!(uploaded["filename"], "birds.txt");

    let found = ok(&server
        .call(
            "search_collection",
            json!({"collection": id, "query": "when do owls hunt", "top_k": 1}),
        )
        .await);
    assert_eq!(
        found["results"][0]["content"],
        "Owls hunt at night and sleep by day."
    );

    let answer = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "When do owls hunt?", "collection": id}),
        )
        .await;
    assert!(
        text(&answer).contains("Owls hunt at night"),
        "{}",
        text(&answer)
    );
    assert_eq!(fake.count("POST", RAG_PATH).await, 1);
    server.stop().await;
}

#[cfg(unix)]
mod http {
    use super::*;
    use crate::support::http::{ALICE_TOKEN, BOB_TOKEN, Generation, for_alice_and_bob};

    #[tokio::test]
    async fn over_http_principals_keep_their_collections_apart_and_name_no_local_file() {
        let fake = FakeVultr::start().await;
        let (server, _tokens) = for_alice_and_bob(&fake, &[RAG]).await;
        let alice = server
            .connect(Generation::Stateless, Some(ALICE_TOKEN))
            .await;
        let bob = server.connect(Generation::Sessions, Some(BOB_TOKEN)).await;

        let id = ok(&alice
            .call("create_collection", json!({"name": "alice-notes"}))
            .await)["collection"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let data = base64::engine::general_purpose::STANDARD.encode("Alice keeps her notes here.");
        ok(&alice
            .call(
                "add_to_collection",
                json!({"collection": id, "data": data, "filename": "notes.txt"}),
            )
            .await);

        // Another's collection reads exactly as one that never existed.
        let theirs = err(&bob
            .call(
                "search_collection",
                json!({"collection": id, "query": "notes"}),
            )
            .await);
        let never = "no-such-collec";
        let nobodys = err(&bob
            .call(
                "search_collection",
                json!({"collection": never, "query": "notes"}),
            )
            .await);
        assert_eq!(theirs.replace(&id, "ID"), nobodys.replace(never, "ID"));
        let listed = ok(&bob.call("list_collections", json!({})).await);
        assert_eq!(listed["collections"], json!([]));
        let refused = err(&bob
            .call("create_collection", json!({"name": "alice-notes"}))
            .await);
        assert!(refused.contains("another user's"), "{refused}");

        // A path on the server's machine is refused over HTTP, even for one's own.
        let own = ok(&bob
            .call("create_collection", json!({"name": "bob-notes"}))
            .await)["collection"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let refused = err(&bob
            .call(
                "add_to_collection",
                json!({"collection": own, "path": "/etc/hostname"}),
            )
            .await);
        assert!(
            refused.contains("only a local (stdio) client") && !refused.contains("/etc"),
            "{refused}"
        );
        assert!(fake.collections().iter().all(|c| c.items.len() <= 1));

        let listed = ok(&alice.call("list_collections", json!({})).await);
        assert_eq!(listed["collections"].as_array().unwrap().len(), 1);
        assert_eq!(listed["collections"][0]["id"], id.as_str());
        alice.client.cancel().await.ok();
        bob.client.cancel().await.ok();
        server.terminate().await;
    }
}
