//! The `retrieval` toolset on the real binary over stdio: rerank and embed reach the fake
//! Vultr with the discovered key, and the key never shows in results or logs.

use serde_json::json;

use crate::support::fake_vultr::retrieval::{EMBEDDINGS_PATH, RERANK_PATH};
use crate::support::fake_vultr::{DEFAULT_SUBSCRIPTION_KEY, FakeVultr};
use crate::support::mcp::Server;
use crate::support::session::{ok, text};

#[tokio::test]
async fn rerank_and_embed_run_over_stdio() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_TOOLSETS", "core,retrieval")]).await;
    let ranked = server
        .call(
            "rerank",
            json!({"query": "green tea", "documents": ["black coffee", "green tea leaves"]}),
        )
        .await;
    let body = ok(&ranked);
    assert_eq!(body["results"][0]["index"], 1, "{body}");
    assert!(body["cost_usd"].is_number(), "{body}");
    let embedded = server
        .call("embed", json!({"input": ["green tea", "green tea"]}))
        .await;
    let shown = text(&embedded);
    assert!(
        shown.contains("2 texts embedded by qwen3-embedding-4b")
            && shown.contains("[0]  1.000  1.000"),
        "{shown}"
    );
    assert_eq!(fake.count("POST", RERANK_PATH).await, 1);
    assert_eq!(fake.count("POST", EMBEDDINGS_PATH).await, 1);
    let keyed = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path == RERANK_PATH || r.path == EMBEDDINGS_PATH)
        .all(|r| r.authorization == Some(format!("Bearer {DEFAULT_SUBSCRIPTION_KEY}")));
    assert!(keyed, "sent with the subscription's key");
    for shown in [text(&ranked), shown, server.stderr()] {
        assert!(!shown.contains(DEFAULT_SUBSCRIPTION_KEY), "{shown}");
    }
    server.stop().await;
}
