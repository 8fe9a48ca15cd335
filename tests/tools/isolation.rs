//! Each principal's conversations apart: two users of one server (one `App`, one store)
//! never see each other's conversations. For another principal's conversation id, every
//! tool and resource answers exactly as for an id that never existed, nothing reaches the
//! model, and the owner's conversation is intact afterwards.

use rmcp::ServiceError;
use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};
use vultr_inference_mcp::principal::Principal;

use crate::support::fake_vultr::FakeVultr;
use crate::support::in_process::Server;
use crate::support::session::{err, ok};

const LIST_URI: &str = "vultr://conversations";

/// A conversation id no one ever had.
const NEVER: &str = "conv_00000000000000000000000000000000";

fn principal(name: &str) -> Principal {
    Principal::new(name).expect("a valid principal")
}

/// Starts a conversation as `client`; returns its id.
async fn start(client: &Server, prompt: &str) -> String {
    let reply = ok(&client
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": prompt}),
        )
        .await);
    reply["conversation_id"]
        .as_str()
        .expect("a conversation_id")
        .to_owned()
}

/// The ids `client` sees in the list resource, newest first.
async fn listed(client: &Server) -> Vec<String> {
    let result = client
        .client
        .read_resource(ReadResourceRequestParams::new(LIST_URI))
        .await
        .expect("resources/read of the list");
    let body = match &result.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("expected text, got {other:?}"),
    };
    let listing: Value = serde_json::from_str(&body).expect("the list is JSON");
    listing["conversations"]
        .as_array()
        .expect("a conversations array")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The URIs `client` sees in `resources/list`.
async fn resource_uris(client: &Server) -> Vec<String> {
    let resources = client
        .client
        .list_all_resources()
        .await
        .expect("resources/list");
    resources.into_iter().map(|r| r.uri).collect()
}

/// Everything `client` is told when it uses conversation `id`: continuing it, deleting
/// it, and reading its resource (the JSON-RPC error, whole).
async fn answers_for(client: &Server, id: &str) -> [String; 3] {
    let continued = err(&client
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "conversation_id": id, "prompt": "let me in"}),
        )
        .await);
    let deleted = err(&client
        .call("delete_conversation", json!({"conversation_id": id}))
        .await);
    let read = match client
        .client
        .read_resource(ReadResourceRequestParams::new(format!("{LIST_URI}/{id}")))
        .await
    {
        Err(ServiceError::McpError(error)) => serde_json::to_string(&error).expect("JSON"),
        other => panic!("expected a JSON-RPC error reading {id}, got {other:?}"),
    };
    [continued, deleted, read]
}

#[tokio::test]
async fn another_principals_conversation_is_not_found_by_any_tool_or_resource_as_if_it_never_existed()
 {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let alice = server.client_acting_for(principal("alice")).await;
    let bob = server.client_acting_for(principal("bob")).await;
    let hers = start(&alice, "alice's secret plan").await;

    let never_existed = answers_for(&bob, NEVER).await;
    assert!(
        never_existed[0].starts_with(&format!("conversation not found: `{NEVER}`")),
        "{never_existed:?}"
    );
    // `local` (stdio's principal) is just another principal here.
    for other in [&bob, &server] {
        let expected = never_existed.clone().map(|text| text.replace(NEVER, &hers));
        assert_eq!(answers_for(other, &hers).await, expected);
        assert!(listed(other).await.is_empty());
        assert_eq!(resource_uris(other).await, ["vultr://usage", LIST_URI]);
    }
    assert_eq!(
        fake.chat_requests().await.len(),
        1,
        "only alice's first turn reached the model"
    );

    // Alice's conversation is intact, and still hers to continue.
    assert_eq!(listed(&alice).await, std::slice::from_ref(&hers));
    assert_eq!(
        resource_uris(&alice).await,
        [
            "vultr://usage".to_owned(),
            LIST_URI.to_owned(),
            format!("{LIST_URI}/{hers}")
        ]
    );
    let reply = ok(&alice
        .call(
            "chat_completion",
            json!({"conversation_id": hers, "prompt": "go on"}),
        )
        .await);
    assert_eq!(reply["conversation_id"], hers.as_str());
    let sent = fake.chat_requests().await;
    assert_eq!(
        sent[1]["messages"],
        json!([
            {"role": "user", "content": "alice's secret plan"},
            {"role": "assistant", "content": "echo: alice's secret plan"},
            {"role": "user", "content": "go on"}
        ]),
        "bob's attempts added nothing to it"
    );
    for client in [alice, bob, server] {
        client.stop().await;
    }
}

#[tokio::test]
async fn each_principal_lists_only_their_own_and_deletes_only_their_own() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let alice = server.client_acting_for(principal("alice")).await;
    let bob = server.client_acting_for(principal("bob")).await;
    let first = start(&alice, "a1").await;
    let his = start(&bob, "b1").await;
    let second = start(&alice, "a2").await;
    let mine = start(&server, "local's").await;

    assert_eq!(listed(&alice).await, [second.clone(), first.clone()]);
    assert_eq!(listed(&bob).await, std::slice::from_ref(&his));
    assert_eq!(listed(&server).await, std::slice::from_ref(&mine));

    ok(&bob
        .call("delete_conversation", json!({"conversation_id": his}))
        .await);
    assert!(listed(&bob).await.is_empty());
    assert_eq!(listed(&alice).await, [second, first]);
    assert_eq!(listed(&server).await, [mine]);
    for client in [alice, bob, server] {
        client.stop().await;
    }
}

#[tokio::test]
async fn a_conversation_belongs_to_its_principal_not_to_the_session_that_started_it() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let alice_here = server.client_acting_for(principal("alice")).await;
    let alice_there = server.client_acting_for(principal("alice")).await;
    let id = start(&alice_here, "from my laptop").await;
    assert_eq!(listed(&alice_there).await, std::slice::from_ref(&id));
    let reply = ok(&alice_there
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "from my phone"}),
        )
        .await);
    assert_eq!(reply["conversation_id"], id.as_str());
    for client in [alice_here, alice_there, server] {
        client.stop().await;
    }
}

#[tokio::test]
async fn one_principal_starting_many_conversations_never_evicts_anothers() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_CONVERSATIONS", "2")]).await;
    let alice = server.client_acting_for(principal("alice")).await;
    let bob = server.client_acting_for(principal("bob")).await;
    let hers = start(&alice, "keep me").await;
    let mut his = Vec::new();
    for i in 0..3 {
        his.push(start(&bob, &format!("bob {i}")).await);
    }
    assert_eq!(listed(&alice).await, [hers], "alice's room is her own");
    assert_eq!(
        listed(&bob).await,
        [his[2].clone(), his[1].clone()],
        "bob's oldest went"
    );
    for client in [alice, bob, server] {
        client.stop().await;
    }
}
