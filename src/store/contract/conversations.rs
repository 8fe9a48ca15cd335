//! What every [`ConversationStore`] promises, as one check any implementation runs on
//! itself: [`check_contract`] on an empty store opened with [`RETENTION`]. Most checks act
//! for [`alice`]; the isolation checks add [`bob`], who must never see, change or crowd
//! out her conversations.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Check, run_checks};
use crate::principal::Principal;
use crate::store::{ConversationId, ConversationStore, Retention, StoreError, Turn};
use crate::vultr::chat::Message;

/// The retention a store under [`check_contract`] is opened with: room for three
/// conversations, none old enough to drop.
pub(crate) const RETENTION: Retention = Retention {
    max_conversations: 3,
    max_age: Duration::from_secs(365 * 24 * 60 * 60),
};

/// The owner most checks act for.
pub(crate) fn alice() -> Principal {
    Principal::new("alice").unwrap()
}

/// Another owner, who must not reach alice's conversations.
pub(crate) fn bob() -> Principal {
    Principal::new("bob").unwrap()
}

/// A message from its JSON form.
pub(crate) fn msg(value: Value) -> Message {
    serde_json::from_value(value).unwrap()
}

/// A user message with this text.
pub(crate) fn user(text: &str) -> Message {
    msg(json!({"role": "user", "content": text}))
}

/// Messages as JSON, to compare them.
pub(crate) fn as_json(messages: &[Message]) -> Value {
    serde_json::to_value(messages).unwrap()
}

/// Starts `owner`'s conversation on model `m` with `messages`.
pub(crate) async fn start(
    store: &dyn ConversationStore,
    owner: &Principal,
    messages: &[Message],
) -> ConversationId {
    store
        .create(owner, &Turn::new("m", messages))
        .await
        .unwrap()
}

/// Adds `messages` as a turn on model `m` to `owner`'s conversation `id`.
pub(crate) async fn add(
    store: &dyn ConversationStore,
    owner: &Principal,
    id: &ConversationId,
    messages: &[Message],
) {
    store
        .append(owner, id, &Turn::new("m", messages))
        .await
        .unwrap();
}

/// The checks, in order.
const CHECKS: &[Check<dyn ConversationStore>] = &[
    check!(new_ids_are_conv_and_32_hex_digits_and_differ),
    check!(created_messages_come_back_in_order_and_appends_follow_them),
    check!(appending_nothing_still_counts_a_turn),
    check!(a_reply_stored_as_cut_off_comes_back_ending_with_a_note_saying_so),
    check!(each_reply_records_the_model_that_answered_it),
    check!(an_unknown_id_is_not_found_with_advice_to_start_over),
    check!(the_list_shows_the_most_recently_used_first),
    check!(retention_keeps_only_the_most_recently_used),
    check!(deleting_removes_only_that_conversation),
    check!(another_owners_conversation_is_not_found_as_if_it_never_existed),
    check!(each_owner_lists_only_their_own),
    check!(retention_counts_each_owners_conversations_apart),
];

/// Checks the contract on `store`, which must be empty and opened with [`RETENTION`].
pub(crate) async fn check_contract(store: &(dyn ConversationStore + 'static)) {
    run_checks("conversation store", store, CHECKS).await;
}

/// Deletes every conversation of alice and bob, so each check starts from an empty store.
async fn clear(store: &dyn ConversationStore) {
    for owner in [alice(), bob()] {
        for summary in store.list(&owner, usize::MAX).await.unwrap() {
            assert!(store.delete(&owner, &summary.id).await.unwrap());
        }
    }
}

/// The ids `store` lists for alice, most recently used first.
pub(crate) async fn listed(store: &dyn ConversationStore) -> Vec<ConversationId> {
    listed_for(store, &alice()).await
}

/// The ids `store` lists for `owner`, most recently used first.
pub(crate) async fn listed_for(
    store: &dyn ConversationStore,
    owner: &Principal,
) -> Vec<ConversationId> {
    let summaries = store.list(owner, usize::MAX).await.unwrap();
    summaries.into_iter().map(|s| s.id).collect()
}

/// The text content of each message of alice's conversation `id`.
async fn texts(store: &dyn ConversationStore, id: &ConversationId) -> Vec<Value> {
    let conversation = store.get(&alice(), id).await.unwrap();
    as_json(&conversation.messages)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].clone())
        .collect()
}

async fn new_ids_are_conv_and_32_hex_digits_and_differ(store: &dyn ConversationStore) {
    clear(store).await;
    let a = start(store, &alice(), &[user("a")]).await;
    let b = start(store, &alice(), &[user("b")]).await;
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
    let id = store
        .create(&alice(), &Turn::new("model-a", &first))
        .await
        .unwrap();
    let created = store.get(&alice(), &id).await.unwrap();
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
    store
        .append(&alice(), &id, &Turn::new("model-b", &second))
        .await
        .unwrap();

    let all: Vec<Message> = first.iter().chain(&second).cloned().collect();
    let conversation = store.get(&alice(), &id).await.unwrap();
    assert_eq!(as_json(&conversation.messages), as_json(&all));
    assert_eq!(conversation.summary.id, id);
    assert_eq!(conversation.summary.turns, 2);
    assert_eq!(conversation.summary.model, "model-b");
    assert_eq!(conversation.summary.title, "What is the weather in Paris?");
    assert!(conversation.summary.updated_at >= conversation.summary.created_at);
    assert_eq!(
        store.list(&alice(), 1).await.unwrap(),
        [conversation.summary],
        "the list shows the same summary"
    );
}

async fn appending_nothing_still_counts_a_turn(store: &dyn ConversationStore) {
    clear(store).await;
    let id = start(store, &alice(), &[]).await;
    add(store, &alice(), &id, &[]).await;
    let conversation = store.get(&alice(), &id).await.unwrap();
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
        .create(
            &alice(),
            &Turn {
                model: "m",
                answered_by: "m",
                messages: &[user("What is it?"), answer.clone()],
                cut_off: Some("stalled"),
            },
        )
        .await
        .unwrap();
    add(store, &alice(), &id, &[user("Go on"), answer]).await;
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
        .create(
            &alice(),
            &Turn {
                model: "m",
                answered_by: "m",
                messages: &[call],
                cut_off: Some("out of time"),
            },
        )
        .await
        .unwrap();
    let message = as_json(&store.get(&alice(), &id).await.unwrap().messages)[0].clone();
    assert_eq!(
        message["content"],
        "[cut off: out of time; this answer is incomplete]"
    );
    assert_eq!(message["tool_calls"][0]["id"], "call_1");
}

async fn each_reply_records_the_model_that_answered_it(store: &dyn ConversationStore) {
    clear(store).await;
    let answer = msg(json!({"role": "assistant", "content": "Here"}));
    let id = store
        .create(&alice(), &Turn::new("big", &[user("One"), answer.clone()]))
        .await
        .unwrap();
    // The second turn asked for `big`, which was unavailable: `small` answered.
    store
        .append(
            &alice(),
            &id,
            &Turn {
                model: "big",
                answered_by: "small",
                messages: &[user("Two"), answer],
                cut_off: None,
            },
        )
        .await
        .unwrap();
    let conversation = store.get(&alice(), &id).await.unwrap();
    assert_eq!(
        conversation.answered_by,
        [None, Some("big".to_owned()), None, Some("small".to_owned())]
    );
    assert_eq!(
        conversation.summary.model, "big",
        "the conversation continues on the model asked for"
    );
}

async fn an_unknown_id_is_not_found_with_advice_to_start_over(store: &dyn ConversationStore) {
    clear(store).await;
    let id = ConversationId::parse("conv_nope").unwrap();
    let err = store.get(&alice(), &id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "conversation not found: `conv_nope`. It may have been deleted or pruned; omit conversation_id to start a new conversation."
    );
    assert!(matches!(
        store
            .append(&alice(), &id, &Turn::new("m", &[user("hello?")]))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!store.delete(&alice(), &id).await.unwrap());
    assert!(listed(store).await.is_empty(), "append must not create");
}

async fn the_list_shows_the_most_recently_used_first(store: &dyn ConversationStore) {
    clear(store).await;
    let a = start(store, &alice(), &[user("a")]).await;
    let b = start(store, &alice(), &[user("b")]).await;
    assert_eq!(listed(store).await, [b.clone(), a.clone()]);
    add(store, &alice(), &a, &[user("again")]).await;
    assert_eq!(listed(store).await, [a.clone(), b.clone()]);
    let ids = |limit| async move {
        let summaries = store.list(&alice(), limit).await.unwrap();
        summaries.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(1).await, [a]);
    assert!(ids(0).await.is_empty());
}

async fn retention_keeps_only_the_most_recently_used(store: &dyn ConversationStore) {
    clear(store).await;
    let first = start(store, &alice(), &[user("1")]).await;
    let second = start(store, &alice(), &[user("2")]).await;
    let third = start(store, &alice(), &[user("3")]).await;
    add(store, &alice(), &first, &[user("1 again")]).await;
    // Creating a fourth drops the least recently used one: `second`.
    let fourth = start(store, &alice(), &[user("4")]).await;
    assert_eq!(listed(store).await, [fourth, first, third]);
    assert!(matches!(
        store.get(&alice(), &second).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.prune().await.unwrap(), 0, "already within the limit");
}

async fn deleting_removes_only_that_conversation(store: &dyn ConversationStore) {
    clear(store).await;
    let gone = start(store, &alice(), &[user("a"), user("b")]).await;
    let kept = start(store, &alice(), &[user("c")]).await;
    assert!(store.delete(&alice(), &gone).await.unwrap());
    assert!(
        !store.delete(&alice(), &gone).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(matches!(
        store.get(&alice(), &gone).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(listed(store).await, std::slice::from_ref(&kept));
    assert_eq!(texts(store, &kept).await, [json!("c")]);
}

async fn another_owners_conversation_is_not_found_as_if_it_never_existed(
    store: &dyn ConversationStore,
) {
    clear(store).await;
    let hers = start(store, &alice(), &[user("alice's secret")]).await;
    let never = ConversationId::parse("conv_never").unwrap();
    for id in [&hers, &never] {
        let unknown = StoreError::NotFound { id: id.clone() }.to_string();
        let err = store.get(&bob(), id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert_eq!(err.to_string(), unknown);
        let err = store
            .append(&bob(), id, &Turn::new("m", &[user("bob was here")]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert_eq!(err.to_string(), unknown);
        assert!(
            !store.delete(&bob(), id).await.unwrap(),
            "nothing to delete"
        );
    }
    let intact = store.get(&alice(), &hers).await.unwrap();
    assert_eq!(
        as_json(&intact.messages),
        as_json(&[user("alice's secret")])
    );
    assert_eq!(intact.summary.turns, 1);
    assert_eq!(listed(store).await, std::slice::from_ref(&hers));
    assert!(listed_for(store, &bob()).await.is_empty());
}

async fn each_owner_lists_only_their_own(store: &dyn ConversationStore) {
    clear(store).await;
    let first = start(store, &alice(), &[user("a1")]).await;
    let bobs = start(store, &bob(), &[user("b1")]).await;
    let second = start(store, &alice(), &[user("a2")]).await;
    assert_eq!(listed(store).await, [second.clone(), first.clone()]);
    assert_eq!(listed_for(store, &bob()).await, std::slice::from_ref(&bobs));
    assert!(listed_for(store, &Principal::local()).await.is_empty());
    // Continuing bob's conversation does not reorder alice's.
    add(store, &bob(), &bobs, &[user("b2")]).await;
    assert_eq!(listed(store).await, [second, first]);
}

async fn retention_counts_each_owners_conversations_apart(store: &dyn ConversationStore) {
    clear(store).await;
    let mut hers = Vec::new();
    for i in 0..3 {
        hers.push(start(store, &alice(), &[user(&i.to_string())]).await);
    }
    // Bob filling his own room, and more, never drops one of alice's.
    let mut his = Vec::new();
    for i in 0..4 {
        his.push(start(store, &bob(), &[user(&i.to_string())]).await);
    }
    hers.reverse();
    assert_eq!(listed(store).await, hers, "alice keeps all three");
    assert_eq!(
        listed_for(store, &bob()).await,
        [his[3].clone(), his[2].clone(), his[1].clone()],
        "bob's oldest went"
    );
    assert_eq!(store.prune().await.unwrap(), 0, "each within the limit");
}
