//! Continuing a conversation by `conversation_id`: `messages` are the new messages only.
//! A caller that resends the stored history (all of it, or the assistant message that asked
//! for tools) has the repeat dropped, is told so, and pays for the history once.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::support::fake_vultr::{ACCOUNT_KEY, FakeVultr, TOOL_CALL_ID, roles, weather_tool};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

/// The fake and a server pointed at it.
async fn started() -> (FakeVultr, Server) {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    (fake, server)
}

/// A chat call with `arguments`.
async fn chat(server: &Server, arguments: Value) -> CallToolResult {
    server.call("chat_completion", arguments).await
}

#[tokio::test]
async fn resending_the_whole_history_with_a_conversation_id_sends_it_once() {
    let (fake, server) = started().await;
    let question = json!({"role": "user", "content": "Name a colour."});
    let first = ok(&chat(&server, json!({"model": "glm-5.2", "messages": [question]})).await);
    let id = first["conversation_id"].as_str().unwrap().to_owned();
    let follow_up = json!({"role": "user", "content": "Another one."});

    let result = chat(
        &server,
        json!({"conversation_id": id, "messages": [question, first["assistant_message"], follow_up]}),
    )
    .await;

    let reply = ok(&result);
    assert_eq!(reply["repeated_messages_dropped"], 2);
    assert!(
        text(&result).contains("the first 2 message(s) of `messages` repeated the stored conversation and were not sent again"),
        "{}",
        text(&result)
    );
    let sent = fake.chat_requests().await;
    assert_eq!(
        sent[1]["messages"],
        json!([question, first["assistant_message"], follow_up]),
        "the history went upstream once"
    );
    server.stop().await;
}

#[tokio::test]
async fn resending_the_assistant_message_of_a_tool_call_with_the_conversation_id_sends_it_once() {
    let (fake, server) = started().await;
    let first = ok(&chat(
        &server,
        json!({"model": "kimi-k2-instruct", "prompt": "Weather in Paris?", "tools": [weather_tool()]}),
    )
    .await);
    let id = first["conversation_id"].as_str().unwrap().to_owned();
    let assistant = first["assistant_message"].clone();
    let tool_result =
        json!({"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "18°C and sunny"});

    let answer = ok(&chat(
        &server,
        json!({"conversation_id": id, "tools": [weather_tool()], "messages": [assistant, tool_result]}),
    )
    .await);

    assert_eq!(answer["content"], "Tool result received: 18°C and sunny");
    assert_eq!(answer["repeated_messages_dropped"], 1);
    let sent = fake.chat_requests().await;
    assert_eq!(roles(&sent[1]), ["user", "assistant", "tool"]);
    server.stop().await;
}

#[tokio::test]
async fn new_messages_that_only_repeat_the_history_are_refused_before_sending() {
    let (fake, server) = started().await;
    let question = json!({"role": "user", "content": "Name a colour."});
    let first = ok(&chat(&server, json!({"model": "glm-5.2", "messages": [question]})).await);

    let message = err(&chat(
        &server,
        json!({"conversation_id": first["conversation_id"], "messages": [question, first["assistant_message"]]}),
    )
    .await);

    assert!(
        message.contains("only repeats the stored conversation")
            && message.contains("send only what is new"),
        "{message}"
    );
    assert_eq!(fake.chat_requests().await.len(), 1, "nothing more was sent");
    server.stop().await;
}

#[tokio::test]
async fn new_messages_that_do_not_repeat_the_history_are_all_sent_after_it() {
    let (fake, server) = started().await;
    let first = ok(&chat(&server, json!({"model": "glm-5.2", "prompt": "Hi"})).await);
    // The same text as the stored user message, but as a new turn: not a repeat of the
    // history's end, so it is sent.
    let again = json!({"role": "user", "content": "Hi"});

    let reply = ok(&chat(
        &server,
        json!({"conversation_id": first["conversation_id"], "messages": [again]}),
    )
    .await);

    assert!(reply.get("repeated_messages_dropped").is_none(), "{reply}");
    let sent = fake.chat_requests().await;
    assert_eq!(sent[1]["messages"].as_array().unwrap().len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn the_tool_call_advice_names_the_conversation_id_route_first() {
    let (_fake, server) = started().await;
    let result = chat(
        &server,
        json!({"model": "kimi-k2-instruct", "prompt": "Weather in Paris?", "tools": [weather_tool()]}),
    )
    .await;
    let id = ok(&result)["conversation_id"].as_str().unwrap().to_owned();
    let shown = text(&result);
    let by_id = shown
        .find(&format!("with conversation_id \"{id}\""))
        .unwrap_or_else(|| panic!("no conversation_id route in:\n{shown}"));
    let without = shown
        .find("Without conversation_id")
        .unwrap_or_else(|| panic!("no fallback route in:\n{shown}"));
    assert!(by_id < without, "{shown}");
    server.stop().await;
}

#[tokio::test]
async fn a_resent_history_holding_a_key_is_recognised_although_it_was_stored_redacted() {
    let (fake, server) = started().await;
    let question = json!({"role": "user", "content": format!("Keep {ACCOUNT_KEY} safe.")});
    let first = ok(&chat(&server, json!({"model": "glm-5.2", "messages": [question]})).await);
    let follow_up = json!({"role": "user", "content": "Thanks."});

    let reply = ok(&chat(
        &server,
        json!({"conversation_id": first["conversation_id"], "messages": [question, first["assistant_message"], follow_up]}),
    )
    .await);

    assert_eq!(reply["repeated_messages_dropped"], 2, "{reply}");
    let sent = fake.chat_requests().await;
    assert_eq!(roles(&sent[1]), ["user", "assistant", "user"]);
    server.stop().await;
}
