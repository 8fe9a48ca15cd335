//! Conversations: every chat result has a `conversation_id`; passing it back sends the
//! stored messages first, so a caller sends only what is new (for a tool round trip, just
//! the tool results). Conversations live in SQLite (`VULTR_MCP_CONVERSATIONS`, a file or
//! `memory`), survive a restart, can be deleted, are shown as MCP resources, and are pruned
//! to `VULTR_MCP_MAX_CONVERSATIONS`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::ServiceError;
use rmcp::model::{ErrorCode, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::{FakeVultr, TOOL_CALL_ID, weather_tool};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

const LIST_URI: &str = "vultr://conversations";

/// The conversation id of a successful chat result.
fn conversation_id(reply: &Value) -> String {
    let id = reply["conversation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a conversation_id in {reply}"))
        .to_owned();
    let hex = id.strip_prefix("conv_").expect("ids start with conv_");
    assert!(
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    id
}

/// Chats with `arguments` and returns the structured result.
async fn chat(server: &Server, arguments: Value) -> Value {
    ok(&server.call("chat_completion", arguments).await)
}

/// Starts a conversation on `model` with `prompt`; returns its id.
async fn start(server: &Server, model: &str, prompt: &str) -> String {
    conversation_id(&chat(server, json!({"model": model, "prompt": prompt})).await)
}

/// The text of a resource, failing the test on a protocol error.
async fn read_text(server: &Server, uri: &str) -> (String, Option<String>) {
    let result = server
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("resources/read {uri}: {e}"));
    assert_eq!(result.contents.len(), 1, "{uri}");
    match &result.contents[0] {
        ResourceContents::TextResourceContents {
            uri: got,
            mime_type,
            text,
            ..
        } => {
            assert_eq!(got, uri);
            (text.clone(), mime_type.clone())
        }
        other => panic!("{uri}: expected text, got {other:?}"),
    }
}

/// The JSON list resource, `{"conversations":[...]}`.
async fn listing(server: &Server) -> Vec<Value> {
    let (body, mime) = read_text(server, LIST_URI).await;
    assert_eq!(mime.as_deref(), Some("application/json"));
    let value: Value = serde_json::from_str(&body).expect("the list is JSON");
    value["conversations"]
        .as_array()
        .expect("a conversations array")
        .clone()
}

/// The ids of the listed conversations, in order.
async fn listed_ids(server: &Server) -> Vec<String> {
    listing(server)
        .await
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "vultr-mcp-e2e-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Continuing a conversation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn passing_the_conversation_id_back_sends_the_stored_messages_first_and_the_conversation_grows()
 {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let first_result = server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "system": "Be brief.", "prompt": "My name is Ada."}),
        )
        .await;
    let first = ok(&first_result);
    let id = conversation_id(&first);
    assert!(
        text(&first_result).ends_with(&format!(", conversation_id {id}]")),
        "{}",
        text(&first_result)
    );

    let second = chat(
        &server,
        json!({"model": "glm-5.2", "conversation_id": id, "prompt": "What is my name?"}),
    )
    .await;
    assert_eq!(second["conversation_id"], id.as_str(), "same conversation");
    assert_eq!(second["content"], "echo: What is my name?");

    let third = chat(
        &server,
        json!({"model": "glm-5.2", "conversation_id": id,
               "messages": [{"role": "user", "content": "And again?"}]}),
    )
    .await;
    assert_eq!(third["conversation_id"], id.as_str());

    // Without conversation_id: a new conversation with nothing before it.
    let other = chat(&server, json!({"model": "glm-5.2", "prompt": "Hello"})).await;
    assert_ne!(conversation_id(&other), id);

    let sent: Vec<Value> = fake
        .chat_requests()
        .await
        .into_iter()
        .map(|b| b["messages"].clone())
        .collect();
    let system = json!({"role": "system", "content": "Be brief."});
    let user = |t: &str| json!({"role": "user", "content": t});
    let assistant = |t: &str| json!({"role": "assistant", "content": t});
    assert_eq!(
        sent,
        vec![
            json!([system, user("My name is Ada.")]),
            json!([
                system,
                user("My name is Ada."),
                assistant("echo: My name is Ada."),
                user("What is my name?")
            ]),
            json!([
                system,
                user("My name is Ada."),
                assistant("echo: My name is Ada."),
                user("What is my name?"),
                assistant("echo: What is my name?"),
                user("And again?")
            ]),
            json!([user("Hello")]),
        ]
    );

    let listed = listing(&server).await;
    let entry = listed
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("listed");
    assert_eq!(entry["turns"], 3);
    server.stop().await;
}

#[tokio::test]
async fn a_tool_round_trip_continues_by_conversation_id_with_only_the_tool_result() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});

    let first = chat(
        &server,
        json!({"model": "kimi-k2-instruct", "messages": [question], "tools": [weather_tool()]}),
    )
    .await;
    assert_eq!(first["finish_reason"], "tool_calls");
    assert_eq!(
        first["tool_calls"],
        json!([{"id": TOOL_CALL_ID, "name": "get_weather", "arguments": {"city": "Paris"}}])
    );
    let id = conversation_id(&first);

    let second = chat(
        &server,
        json!({
            "model": "kimi-k2-instruct",
            "conversation_id": id,
            "messages": [{"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "18C"}],
            "tools": [weather_tool()]
        }),
    )
    .await;
    assert_eq!(second["content"], "Tool result received: 18C");
    assert_eq!(second["finish_reason"], "stop");
    assert_eq!(second["conversation_id"], id.as_str());

    let sent = fake.chat_requests().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1]["messages"],
        json!([
            question,
            {"role": "assistant", "tool_calls": [{"id": TOOL_CALL_ID, "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "18C"}
        ])
    );
    assert_eq!(sent[1]["tools"], json!([weather_tool()]));

    // The transcript shows the call and its result.
    let (transcript, _) = read_text(&server, &format!("{LIST_URI}/{id}")).await;
    assert_contains(
        &transcript,
        &[
            &format!("\n- tool call `{TOOL_CALL_ID}`: get_weather({{\"city\":\"Paris\"}})\n"),
            &format!("\n## tool (result of {TOOL_CALL_ID})\n\n18C\n"),
        ],
    );
    server.stop().await;
}

#[tokio::test]
async fn a_turn_that_fails_upstream_is_not_stored() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let id = start(&server, "glm-5.2", "First question").await;
    fake.fail(
        "POST",
        "/v1/chat/completions",
        400,
        r#"{"error":{"message":"Bad request","code":400,"type":"invalid_request_error"}}"#,
        1,
    )
    .await;
    let message = err(&server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "This one fails"}),
        )
        .await);
    assert!(message.contains("HTTP 400"), "{message}");
    chat(
        &server,
        json!({"conversation_id": id, "prompt": "Second question"}),
    )
    .await;
    let sent = fake.chat_requests().await;
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[2]["messages"],
        json!([
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": "echo: First question"},
            {"role": "user", "content": "Second question"}
        ])
    );
    assert_eq!(listing(&server).await[0]["turns"], 2);
    server.stop().await;
}

#[tokio::test]
async fn a_conversation_continues_after_a_restart_with_the_same_store_file() {
    let fake = FakeVultr::start().await;
    let dir = TempDir::new("restart");
    let file = dir.path().join("nested").join("c.sqlite3");
    let location = file.to_str().expect("a UTF-8 path").to_owned();
    let env = [("VULTR_MCP_CONVERSATIONS", location.as_str())];

    let server = Server::with_fake(&fake, &env).await;
    let id = start(&server, "glm-5.2", "Remember the number 7.").await;
    server.stop().await;
    assert!(
        file.exists(),
        "the store file was created, with its directory"
    );

    let server = Server::with_fake(&fake, &env).await;
    assert_eq!(listed_ids(&server).await, vec![id.clone()]);
    let reply = chat(
        &server,
        json!({"conversation_id": id, "prompt": "Which number?"}),
    )
    .await;
    assert_eq!(reply["conversation_id"], id.as_str());
    assert_eq!(reply["model"], "glm-5.2");
    let sent = fake.chat_requests().await;
    assert_eq!(
        sent[1]["messages"],
        json!([
            {"role": "user", "content": "Remember the number 7."},
            {"role": "assistant", "content": "echo: Remember the number 7."},
            {"role": "user", "content": "Which number?"}
        ])
    );
    server.stop().await;

    // A memory store forgets: a server on `memory` does not know the id.
    let server = Server::with_fake(&fake, &[]).await;
    let message = err(&server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "Which number?"}),
        )
        .await);
    assert!(message.contains("conversation not found"), "{message}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Unknown, deleted and invalid ids
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_deleted_and_invalid_conversation_ids_are_refused_before_anything_is_sent() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let continue_with =
        |id: &str| json!({"model": "glm-5.2", "conversation_id": id, "prompt": "more"});

    let unknown = "conv_00000000000000000000000000000000";
    let message = err(&server.call("chat_completion", continue_with(unknown)).await);
    assert_eq!(
        message,
        format!(
            "conversation not found: `{unknown}`. It may have been deleted or pruned; omit conversation_id to start a new conversation."
        )
    );

    let id = start(&server, "glm-5.2", "Delete me").await;
    let deleted = server
        .call("delete_conversation", json!({"conversation_id": id}))
        .await;
    assert_eq!(ok(&deleted), json!({"deleted": id}));
    assert_eq!(text(&deleted), format!("Deleted conversation {id}."));
    let message = err(&server.call("chat_completion", continue_with(&id)).await);
    assert!(
        message.starts_with(&format!("conversation not found: `{id}`")),
        "{message}"
    );
    let again = err(&server
        .call("delete_conversation", json!({"conversation_id": id}))
        .await);
    assert_eq!(
        again,
        format!(
            "no stored conversation has the id `{id}`: it may have been deleted or pruned already. Read the resource vultr://conversations for the ids that are stored."
        ),
        "advice for deleting, not for chatting"
    );
    assert!(listed_ids(&server).await.is_empty());

    for invalid in ["not a valid id!", "", "../../etc/passwd"] {
        let message = err(&server.call("chat_completion", continue_with(invalid)).await);
        assert!(
            message.starts_with(&format!("invalid conversation_id {invalid:?}")),
            "{message}"
        );
        let message = err(&server
            .call("delete_conversation", json!({"conversation_id": invalid}))
            .await);
        assert!(message.contains("invalid conversation_id"), "{message}");
    }
    let long = "x".repeat(101);
    let message = err(&server.call("chat_completion", continue_with(&long)).await);
    assert!(
        message.contains("invalid conversation_id") && message.contains("(101 characters)"),
        "{message}"
    );

    assert_eq!(
        fake.chat_requests().await.len(),
        1,
        "only the conversation that was deleted reached the model"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

#[tokio::test]
async fn conversations_are_listed_and_read_as_resources_newest_first() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    // First conversation: two turns, the second on another model. Then the second one.
    let first = start(&server, "glm-5.2", "  First\n conversation ").await;
    chat(
        &server,
        json!({"model": "kimi-k2-instruct", "conversation_id": first, "prompt": "Go on"}),
    )
    .await;
    let second = start(&server, "plain-chat-7b", "Second conversation").await;

    // resources/list: the usage, the list, then one entry per conversation, newest first.
    let resources = server
        .client
        .list_all_resources()
        .await
        .expect("resources/list");
    let entries: Vec<(String, String, Option<String>)> = resources
        .iter()
        .map(|r| (r.uri.clone(), r.name.clone(), r.mime_type.clone()))
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                "vultr://usage".to_owned(),
                "usage".to_owned(),
                Some("application/json".to_owned())
            ),
            (
                LIST_URI.to_owned(),
                "conversations".to_owned(),
                Some("application/json".to_owned())
            ),
            (
                format!("{LIST_URI}/{second}"),
                "Second conversation".to_owned(),
                Some("text/markdown".to_owned())
            ),
            (
                format!("{LIST_URI}/{first}"),
                "First conversation".to_owned(),
                Some("text/markdown".to_owned())
            ),
        ]
    );
    let templates = server
        .client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    let templates: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(templates, ["vultr://conversations/{conversation_id}"]);

    // The list resource: JSON, newest first.
    let listed = listing(&server).await;
    assert_eq!(listed.len(), 2);
    let summary = |c: &Value| json!({"id": c["id"], "uri": c["uri"], "title": c["title"], "model": c["model"], "turns": c["turns"]});
    assert_eq!(
        listed.iter().map(summary).collect::<Vec<_>>(),
        vec![
            json!({"id": second, "uri": format!("{LIST_URI}/{second}"), "title": "Second conversation",
                   "model": "plain-chat-7b", "turns": 1}),
            json!({"id": first, "uri": format!("{LIST_URI}/{first}"), "title": "First conversation",
                   "model": "kimi-k2-instruct", "turns": 2}),
        ]
    );
    for entry in &listed {
        for field in ["created", "updated"] {
            let time = entry[field].as_str().expect("a time");
            assert!(
                time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
                "RFC 3339 in seconds: {time}"
            );
        }
    }

    // One conversation: a Markdown transcript.
    let updated = listed[1]["updated"].as_str().unwrap();
    let (transcript, mime) = read_text(&server, &format!("{LIST_URI}/{first}")).await;
    assert_eq!(mime.as_deref(), Some("text/markdown"));
    assert_eq!(
        transcript,
        format!(
            "# First conversation\n\nconversation_id `{first}` · model kimi-k2-instruct · 2 turn(s) · updated {updated}\n\
             \n## user\n\n  First\n conversation \n\
             \n## assistant (glm-5.2)\n\necho:   First\n conversation \n\
             \n## user\n\nGo on\n\
             \n## assistant (kimi-k2-instruct)\n\necho: Go on\n"
        )
    );

    // Unknown resources are JSON-RPC errors (resource not found).
    for uri in [
        format!("{LIST_URI}/conv_00000000000000000000000000000000"),
        format!("{LIST_URI}/not a valid id"),
        "vultr://elsewhere".to_owned(),
    ] {
        let error = server
            .client
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .expect_err("an unknown resource");
        match error {
            ServiceError::McpError(e) => {
                assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND, "{uri}");
                assert!(e.message.contains("no such resource"), "{}", e.message);
                assert!(e.message.contains(LIST_URI), "{}", e.message);
            }
            other => panic!("{uri}: expected a JSON-RPC error, got {other:?}"),
        }
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Retention and defaults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn only_the_newest_max_conversations_are_kept() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_CONVERSATIONS", "2")]).await;
    let oldest = start(&server, "glm-5.2", "one").await;
    let middle = start(&server, "glm-5.2", "two").await;
    assert_eq!(
        listed_ids(&server).await,
        vec![middle.clone(), oldest.clone()]
    );
    let newest = start(&server, "glm-5.2", "three").await;
    assert_eq!(
        listed_ids(&server).await,
        vec![newest.clone(), middle.clone()]
    );

    let message = err(&server
        .call(
            "chat_completion",
            json!({"conversation_id": oldest, "prompt": "still there?"}),
        )
        .await);
    assert!(
        message.starts_with(&format!("conversation not found: `{oldest}`")),
        "{message}"
    );
    let resources = server
        .client
        .list_all_resources()
        .await
        .expect("resources/list");
    assert_eq!(
        resources.len(),
        4,
        "the usage, the list and two conversations"
    );
    // The kept ones continue.
    chat(
        &server,
        json!({"conversation_id": middle, "prompt": "still there?"}),
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_conversation_used_most_recently_is_listed_first_and_kept_when_pruning() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_CONVERSATIONS", "2")]).await;
    let a = start(&server, "glm-5.2", "conversation a").await;
    let b = start(&server, "glm-5.2", "conversation b").await;
    // Continuing a makes it the most recently used one.
    chat(&server, json!({"conversation_id": a, "prompt": "more"})).await;
    assert_eq!(
        listed_ids(&server).await,
        vec![a.clone(), b.clone()],
        "a was used last"
    );
    // A third conversation pushes out the least recently used one: b, not a.
    let c = start(&server, "glm-5.2", "conversation c").await;
    assert_eq!(listed_ids(&server).await, vec![c, a.clone()]);
    chat(&server, json!({"conversation_id": a, "prompt": "more"})).await;
    server.stop().await;
}

#[tokio::test]
async fn continuing_without_a_model_uses_the_conversations_model_over_the_default() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_DEFAULT_MODEL", "glm-5.2")]).await;
    let id = start(&server, "kimi-k2-instruct", "hi").await;
    let reply = chat(&server, json!({"conversation_id": id, "prompt": "again"})).await;
    assert_eq!(reply["model"], "kimi-k2-instruct");

    // Naming a model switches it for this turn and for the conversation from then on.
    let reply = chat(
        &server,
        json!({"conversation_id": id, "model": "plain-chat-7b", "prompt": "and now"}),
    )
    .await;
    assert_eq!(reply["model"], "plain-chat-7b");
    let reply = chat(&server, json!({"conversation_id": id, "prompt": "last"})).await;
    assert_eq!(reply["model"], "plain-chat-7b");

    // A new conversation without a model takes the default.
    let fresh = chat(&server, json!({"prompt": "new"})).await;
    assert_eq!(fresh["model"], "glm-5.2");

    let models: Vec<Value> = fake
        .chat_requests()
        .await
        .iter()
        .map(|b| b["model"].clone())
        .collect();
    assert_eq!(
        models,
        vec![
            json!("kimi-k2-instruct"),
            json!("kimi-k2-instruct"),
            json!("plain-chat-7b"),
            json!("plain-chat-7b"),
            json!("glm-5.2")
        ]
    );
    server.stop().await;
}
