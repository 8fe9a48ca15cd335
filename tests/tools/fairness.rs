//! Fair shares of a shared server: one principal with many calls in flight is refused at
//! once for the next one (naming the setting) while others are still served, and calls that
//! do not go to Vultr never wait behind the slots of those that do.

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::{Peer, RoleClient};
use serde_json::json;
use vultr_inference_mcp::principal::Principal;

use crate::support::fake_vultr::faults::{FaultServer, Standing};
use crate::support::in_process::Server;
use crate::support::session::{err, ok};

/// How long the fake holds every chat request: long enough to look at the server while
/// calls are in flight.
const UPSTREAM_DELAY: Duration = Duration::from_secs(3);

fn principal(name: &str) -> Principal {
    Principal::new(name).expect("a valid principal")
}

async fn slow_upstream() -> FaultServer {
    let faults = FaultServer::start(Vec::new()).await;
    faults.set_standing(Standing {
        delay: UPSTREAM_DELAY,
        stream: None,
    });
    faults
}

fn chat_args() -> serde_json::Value {
    json!({"model": "plain-chat-7b", "prompt": "hi"})
}

/// A `chat_completion` running on its own task.
fn spawn_chat(
    peer: Peer<RoleClient>,
) -> tokio::task::JoinHandle<Result<CallToolResult, rmcp::ServiceError>> {
    tokio::spawn(async move {
        let arguments = chat_args().as_object().cloned().unwrap_or_default();
        peer.call_tool(CallToolRequestParams::new("chat_completion").with_arguments(arguments))
            .await
    })
}

#[tokio::test]
async fn a_principal_over_its_share_of_calls_is_refused_at_once_and_others_are_still_served() {
    let faults = slow_upstream().await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "2")]).await;
    let alice = server.client_acting_for(principal("alice")).await;
    let bob = server.client_acting_for(principal("bob")).await;

    let first = spawn_chat(alice.client.peer().clone());
    let second = spawn_chat(alice.client.peer().clone());
    assert!(
        faults.wait_chat_requests(2, Duration::from_secs(10)).await,
        "alice's two calls reach the upstream"
    );

    let refused = alice.call("chat_completion", chat_args()).await;
    let message = err(&refused);
    assert!(
        message.contains("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL") && message.contains('2'),
        "{message}"
    );
    assert_eq!(
        faults.in_flight(),
        2,
        "the refused call did not wait or reach Vultr"
    );

    let bobs = bob.call("chat_completion", chat_args()).await;
    ok(&bobs);
    for call in [first, second] {
        ok(&call.await.unwrap().expect("alice's calls end"));
    }
    let again = alice.call("chat_completion", chat_args()).await;
    ok(&again);
    server.stop().await;
}

#[tokio::test]
async fn calls_that_do_not_go_upstream_never_wait_for_a_busy_slot() {
    let faults = slow_upstream().await;
    let server = Server::with_faults(&faults, &[("VULTR_MCP_MAX_CONCURRENT_CALLS", "1")]).await;
    // The catalog is read once and cached.
    ok(&server.call("list_models", json!({})).await);

    let chat = spawn_chat(server.client.peer().clone());
    assert!(faults.wait_chat_requests(1, Duration::from_secs(10)).await);

    // The only slot is taken by the chat; the cached catalog answers anyway.
    ok(&server
        .call("list_models", json!({"capability": "tools"}))
        .await);
    assert_eq!(
        faults.in_flight(),
        1,
        "list_models answered while the chat still held the only slot"
    );
    ok(&chat.await.unwrap().expect("the chat ends"));
    server.stop().await;
}
