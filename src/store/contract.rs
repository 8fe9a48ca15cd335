//! What every [`ConversationStore`] promises, as one check any implementation runs on
//! itself: [`check_contract`] on an empty store opened with [`RETENTION`].

use std::time::Duration;

use serde_json::{Value, json};

use super::{ConversationId, ConversationStore, Retention, StoreError};
use crate::vultr::chat::Message;

/// The retention a store under [`check_contract`] is opened with: room for three
/// conversations, none old enough to drop.
pub(super) const RETENTION: Retention = Retention {
    max_conversations: 3,
    max_age: Duration::from_secs(365 * 24 * 60 * 60),
};

/// A message from its JSON form.
pub(super) fn msg(value: Value) -> Message {
    serde_json::from_value(value).unwrap()
}

/// A user message with this text.
pub(super) fn user(text: &str) -> Message {
    msg(json!({"role": "user", "content": text}))
}

/// Messages as JSON, to compare them.
pub(super) fn as_json(messages: &[Message]) -> Value {
    serde_json::to_value(messages).unwrap()
}

/// Checks the contract on `store`, which must be empty and opened with [`RETENTION`].
pub(super) async fn check_contract(store: &dyn ConversationStore) {
    new_ids_are_conv_and_32_hex_digits_and_differ(store).await;
    created_messages_come_back_in_order_and_appends_follow_them(store).await;
    appending_nothing_still_counts_a_turn(store).await;
    a_reply_stored_as_cut_off_comes_back_ending_with_a_note_saying_so(store).await;
    an_unknown_id_is_not_found_with_advice_to_start_over(store).await;
    the_list_shows_the_most_recently_used_first(store).await;
    retention_keeps_only_the_most_recently_used(store).await;
    deleting_removes_only_that_conversation(store).await;
}

/// Deletes every conversation, so each check starts from an empty store.
async fn clear(store: &dyn ConversationStore) {
    for summary in store.list(usize::MAX).await.unwrap() {
        assert!(store.delete(&summary.id).await.unwrap());
    }
}

/// The ids `store` lists, most recently used first.
async fn listed(store: &dyn ConversationStore) -> Vec<ConversationId> {
    let summaries = store.list(usize::MAX).await.unwrap();
    summaries.into_iter().map(|s| s.id).collect()
}

/// The text content of each message of conversation `id`.
async fn texts(store: &dyn ConversationStore, id: &ConversationId) -> Vec<Value> {
    let conversation = store.get(id).await.unwrap();
    as_json(&conversation.messages)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].clone())
        .collect()
}

async fn new_ids_are_conv_and_32_hex_digits_and_differ(store: &dyn ConversationStore) {
    clear(store).await;
    let a = store.create("m", &[user("a")], None).await.unwrap();
    let b = store.create("m", &[user("b")], None).await.unwrap();
    assert_ne!(a, b);
    for id in [&a, &b] {
        let hex = id.as_ref().strip_prefix("conv_").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ConversationId::parse(id.as_ref()).unwrap(), *id);
        assert_eq!(id.to_string(), id.as_ref());
    }
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        Value::String(a.to_string())
    );
}

async fn created_messages_come_back_in_order_and_appends_follow_them(
    store: &dyn ConversationStore,
) {
    clear(store).await;
    let first = vec![
        msg(json!({"role": "system", "content": "Be brief."})),
        user("What is the weather in Paris?"),
        msg(json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
            }]
        })),
        msg(json!({"role": "tool", "tool_call_id": "call_1", "content": "18°C, clear"})),
        msg(json!({"role": "assistant", "content": "18°C and clear."})),
    ];
    let id = store.create("model-a", &first, None).await.unwrap();
    let created = store.get(&id).await.unwrap();
    assert_eq!(as_json(&created.messages), as_json(&first));
    assert_eq!(created.summary.turns, 1);
    assert_eq!(created.summary.model, "model-a");

    let second = vec![
        msg(json!({
            "role": "user",
            "name": "alice",
            "content": [{"type": "text", "text": "And tomorrow?"}]
        })),
        msg(json!({"role": "assistant", "content": "Rain."})),
    ];
    store.append(&id, "model-b", &second, None).await.unwrap();

    let all: Vec<Message> = first.iter().chain(&second).cloned().collect();
    let conversation = store.get(&id).await.unwrap();
    assert_eq!(as_json(&conversation.messages), as_json(&all));
    assert_eq!(conversation.summary.id, id);
    assert_eq!(conversation.summary.turns, 2);
    assert_eq!(conversation.summary.model, "model-b");
    assert_eq!(conversation.summary.title, "What is the weather in Paris?");
    assert!(conversation.summary.updated_at >= conversation.summary.created_at);
    assert_eq!(
        store.list(1).await.unwrap(),
        [conversation.summary],
        "the list shows the same summary"
    );
}

async fn appending_nothing_still_counts_a_turn(store: &dyn ConversationStore) {
    clear(store).await;
    let id = store.create("m", &[], None).await.unwrap();
    store.append(&id, "m", &[], None).await.unwrap();
    let conversation = store.get(&id).await.unwrap();
    assert!(conversation.messages.is_empty());
    assert_eq!(conversation.summary.turns, 2);
    assert_eq!(conversation.summary.title, "(untitled)");
}

async fn a_reply_stored_as_cut_off_comes_back_ending_with_a_note_saying_so(
    store: &dyn ConversationStore,
) {
    clear(store).await;
    let answer = msg(json!({"role": "assistant", "content": "The answer is forty"}));
    let id = store
        .create("m", &[user("What is it?"), answer.clone()], Some("stalled"))
        .await
        .unwrap();
    store
        .append(&id, "m", &[user("Go on"), answer], None)
        .await
        .unwrap();
    assert_eq!(
        texts(store, &id).await,
        [
            json!("What is it?"),
            json!("The answer is forty\n\n[cut off: stalled; this answer is incomplete]"),
            json!("Go on"),
            json!("The answer is forty"),
        ]
    );

    // A cut-off tool call with no text gets the note as its text.
    let call = msg(
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "f", "arguments": "{\"a\":"}
        }]}),
    );
    let id = store
        .create("m", &[call], Some("out of time"))
        .await
        .unwrap();
    let message = as_json(&store.get(&id).await.unwrap().messages)[0].clone();
    assert_eq!(
        message["content"],
        "[cut off: out of time; this answer is incomplete]"
    );
    assert_eq!(message["tool_calls"][0]["id"], "call_1");
}

async fn an_unknown_id_is_not_found_with_advice_to_start_over(store: &dyn ConversationStore) {
    clear(store).await;
    let id = ConversationId::parse("conv_nope").unwrap();
    let err = store.get(&id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "conversation not found: `conv_nope`. It may have been deleted or pruned; omit conversation_id to start a new conversation."
    );
    assert!(matches!(
        store.append(&id, "m", &[user("hello?")], None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!store.delete(&id).await.unwrap());
    assert!(listed(store).await.is_empty(), "append must not create");
}

async fn the_list_shows_the_most_recently_used_first(store: &dyn ConversationStore) {
    clear(store).await;
    let a = store.create("m", &[user("a")], None).await.unwrap();
    let b = store.create("m", &[user("b")], None).await.unwrap();
    assert_eq!(listed(store).await, [b.clone(), a.clone()]);
    store.append(&a, "m", &[user("again")], None).await.unwrap();
    assert_eq!(listed(store).await, [a.clone(), b.clone()]);
    let ids = |limit| async move {
        let summaries = store.list(limit).await.unwrap();
        summaries.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(1).await, [a]);
    assert!(ids(0).await.is_empty());
}

async fn retention_keeps_only_the_most_recently_used(store: &dyn ConversationStore) {
    clear(store).await;
    let first = store.create("m", &[user("1")], None).await.unwrap();
    let second = store.create("m", &[user("2")], None).await.unwrap();
    let third = store.create("m", &[user("3")], None).await.unwrap();
    store
        .append(&first, "m", &[user("1 again")], None)
        .await
        .unwrap();
    // Creating a fourth drops the least recently used one: `second`.
    let fourth = store.create("m", &[user("4")], None).await.unwrap();
    assert_eq!(listed(store).await, [fourth, first, third]);
    assert!(matches!(
        store.get(&second).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.prune().await.unwrap(), 0, "already within the limit");
}

async fn deleting_removes_only_that_conversation(store: &dyn ConversationStore) {
    clear(store).await;
    let gone = store
        .create("m", &[user("a"), user("b")], None)
        .await
        .unwrap();
    let kept = store.create("m", &[user("c")], None).await.unwrap();
    assert!(store.delete(&gone).await.unwrap());
    assert!(
        !store.delete(&gone).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(matches!(
        store.get(&gone).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(listed(store).await, std::slice::from_ref(&kept));
    assert_eq!(texts(store, &kept).await, [json!("c")]);
}
