//! Conversations as the binary keeps them: by default in the data directory of its home,
//! which for every server the tests start is a private one.

use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::mcp::Server;
use crate::support::session::ok;

#[tokio::test]
async fn servers_started_by_the_tests_keep_their_default_store_in_a_private_home() {
    let fake = FakeVultr::start().await;
    // An empty setting means the default location: the data directory under HOME.
    let server = Server::with_fake(&fake, &[("VULTR_MCP_CONVERSATIONS", "")]).await;
    let result = server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi"}),
        )
        .await;
    ok(&result);
    let store = server.home().default_store();
    assert!(store.exists(), "no store at {}", store.display());
    assert!(store.starts_with(server.home().path()));
    server.stop().await;
}
