//! Conversations, whatever the store: the [`ConversationStore`] trait, what it keeps (ids,
//! summaries, conversations, the [`Turn`] it is given) and the rules every store applies
//! the same way (a conversation's title, the note on a cut-off reply).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::Serialize;

use super::{StoreError, StoreResult};
use crate::principal::Principal;
use crate::vultr::chat::{Content, Message, Role};

/// Keeps conversations: each is a list of messages grown one turn at a time, found by id,
/// listed most recently used first, and dropped per [`Retention`](super::Retention). Each belongs to the
/// principal that created it (its owner), and every call but [`ConversationStore::prune`]
/// sees only the given owner's: another owner's id is [`StoreError::NotFound`] (or not
/// deleted) exactly as an id that never existed. Implementations do their own waiting (a
/// store that blocks moves off the async threads itself), so callers just await.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Starts a conversation of `owner` with `turn` (turn 1) and applies retention, never
    /// dropping the new one; returns its new id.
    async fn create(&self, owner: &Principal, turn: &Turn<'_>) -> StoreResult<ConversationId>;

    /// Adds `turn` to the end of `owner`'s conversation and records its model;
    /// [`StoreError::NotFound`] when `owner` has no such conversation.
    async fn append(&self, owner: &Principal, id: &ConversationId, turn: &Turn) -> StoreResult<()>;

    /// `owner`'s conversation: its summary and messages, oldest first; a reply stored as
    /// cut off ends with a note saying so. [`StoreError::NotFound`] when `owner` has no
    /// such conversation.
    async fn get(&self, owner: &Principal, id: &ConversationId) -> StoreResult<Conversation>;

    /// Up to `limit` of `owner`'s conversations, most recently used (created or continued)
    /// first.
    async fn list(&self, owner: &Principal, limit: usize) -> StoreResult<Vec<ConversationSummary>>;

    /// Deletes `owner`'s conversation and its messages; true when `owner` had it.
    async fn delete(&self, owner: &Principal, id: &ConversationId) -> StoreResult<bool>;

    /// Drops conversations per [`Retention`](super::Retention), whoever owns them; returns how many went.
    async fn prune(&self) -> StoreResult<usize>;

    /// Opens the store now if it opens on first use (migrating and pruning it); a store
    /// that is open from the start has nothing to do.
    async fn open(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// One turn to store: the conversation's model, the model that answered, the turn's
/// messages (the reply last) and why the reply was cut short, if it was.
#[derive(Clone, Copy, Debug)]
pub struct Turn<'a> {
    /// The model of the turn: the one asked for, which the conversation continues on.
    pub model: &'a str,
    /// The model that answered (a fallback model when the one asked for was unavailable),
    /// recorded on the reply.
    pub answered_by: &'a str,
    /// The new messages, oldest first.
    pub messages: &'a [Message],
    /// Why the last message (the reply) was cut short, if it was.
    pub cut_off: Option<&'a str>,
}

impl<'a> Turn<'a> {
    /// A turn of `messages` on `model`, not cut off.
    pub fn new(model: &'a str, messages: &'a [Message]) -> Self {
        Self {
            model,
            answered_by: model,
            messages,
            cut_off: None,
        }
    }

    /// Each message as JSON text, for a store that keeps them so.
    pub(super) fn bodies(&self) -> StoreResult<Vec<String>> {
        self.messages
            .iter()
            .map(|m| serde_json::to_string(m).map_err(|source| StoreError::Encode { source }))
            .collect()
    }

    /// The cut-off reason of each message: the reply's on the last, none on the others.
    pub(super) fn cut_offs(&self) -> Vec<Option<&'a str>> {
        self.on_reply(self.cut_off)
    }

    /// The model that answered, on the last message (the reply), none on the others.
    pub(super) fn answered_bys(&self) -> Vec<Option<&'a str>> {
        self.on_reply(Some(self.answered_by))
    }

    /// `value` on the last message, none on the others.
    fn on_reply(&self, value: Option<&'a str>) -> Vec<Option<&'a str>> {
        let last = self.messages.len().saturating_sub(1);
        (0..self.messages.len())
            .map(|i| if i == last { value } else { None })
            .collect()
    }
}

/// The longest id [`ConversationId::parse`] accepts.
pub(super) const ID_MAX_LEN: usize = 100;

/// The longest title, in characters, including the trailing "…".
const TITLE_MAX_CHARS: usize = 80;

/// A conversation's id: `conv_` and 32 hex digits when we make one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    /// A fresh random id, `conv_` + 32 hex digits.
    pub(super) fn generate() -> Self {
        Self(format!("conv_{}", uuid::Uuid::new_v4().simple()))
    }

    /// An id read back from a store, which only holds ids that were checked on the way in.
    pub(super) fn stored(id: String) -> Self {
        Self(id)
    }

    /// Checks an id from a client: 1 to 100 characters of `A-Z a-z 0-9 _ -`.
    pub fn parse(text: &str) -> StoreResult<Self> {
        let well_formed = !text.is_empty()
            && text.len() <= ID_MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(StoreError::InvalidId {
                shown: shown_id(text),
            })
        }
    }
}

/// A bad id quoted for an error message, shortened when long.
fn shown_id(text: &str) -> String {
    const SHOWN_MAX_CHARS: usize = 40;
    if text.chars().count() > SHOWN_MAX_CHARS {
        let head: String = text.chars().take(SHOWN_MAX_CHARS).collect();
        format!("{head:?}… ({} characters)", text.chars().count())
    } else {
        format!("{text:?}")
    }
}

impl FromStr for ConversationId {
    type Err = StoreError;

    /// Same as [`ConversationId::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ConversationId {
    /// The id itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ConversationId {
    /// The id itself.
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a conversation list shows of each conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationSummary {
    /// Its id.
    pub id: ConversationId,
    /// The start of its first user message.
    pub title: String,
    /// The model of its latest turn.
    pub model: String,
    /// How many times it was created or continued.
    pub turns: u32,
    /// When it was created, in unix seconds.
    pub created_at: i64,
    /// When it was last continued, in unix seconds.
    pub updated_at: i64,
}

/// A conversation with all its messages.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// Its summary.
    pub summary: ConversationSummary,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
    /// The model that answered, beside each message that is a stored reply (none beside the
    /// others, and beside replies stored before this was recorded).
    pub answered_by: Vec<Option<String>>,
}

/// The first user message's text, whitespace collapsed and cut to 80 characters, or "(untitled)".
pub(super) fn title_of(messages: &[Message]) -> String {
    let text = messages
        .iter()
        .find(|m| m.role == Role::User)
        .and_then(|m| m.content.as_ref())
        .map(content_text)
        .unwrap_or_default();
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(untitled)".to_owned();
    }
    if collapsed.chars().count() <= TITLE_MAX_CHARS {
        return collapsed;
    }
    let head: String = collapsed.chars().take(TITLE_MAX_CHARS - 1).collect();
    format!("{}…", head.trim_end())
}

/// The text of message content; for parts, the text parts joined by spaces.
fn content_text(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Message `seq` of conversation `id` read back from its JSON text `body`, marked cut off
/// when it was stored so.
pub(super) fn stored_message(
    id: &ConversationId,
    seq: i64,
    body: &str,
    cut_off: Option<&str>,
) -> StoreResult<Message> {
    let mut message: Message =
        serde_json::from_str(body).map_err(|source| StoreError::CorruptMessage {
            id: id.clone(),
            seq,
            source,
        })?;
    if let Some(reason) = cut_off {
        mark_cut_off(&mut message, reason);
    }
    Ok(message)
}

/// Ends `message` with the note that it was cut short, e.g. `[cut off: stalled; this
/// answer is incomplete]`, so a transcript shows it and a continuation tells the model its
/// answer was incomplete.
fn mark_cut_off(message: &mut Message, reason: &str) {
    let note = format!("[cut off: {reason}; this answer is incomplete]");
    match &mut message.content {
        Some(Content::Text(text)) if !text.trim().is_empty() => {
            text.push_str("\n\n");
            text.push_str(&note);
        }
        Some(Content::Parts(parts)) => {
            let mut part = serde_json::Map::new();
            part.insert("type".to_owned(), "text".into());
            part.insert("text".to_owned(), note.into());
            parts.push(part);
        }
        _ => message.content = Some(Content::Text(note)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::contract::{msg, user};

    #[test]
    fn the_title_is_the_first_user_message_collapsed_and_cut_to_80_characters() {
        let system = msg(json!({"role": "system", "content": "You are a poet."}));
        assert_eq!(
            title_of(&[
                system.clone(),
                user("  Write\n\na   haiku\t"),
                user("later")
            ]),
            "Write a haiku"
        );
        let long = "word ".repeat(40);
        let cut = title_of(&[user(&long)]);
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with("word…"), "{cut}");
        let exactly_80 = "é".repeat(80);
        assert_eq!(title_of(&[user(&exactly_80)]), exactly_80);
        assert_eq!(
            title_of(&[msg(json!({"role": "user", "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "this image"}
            ]}))]),
            "Describe this image"
        );
        assert_eq!(title_of(&[system]), "(untitled)");
        assert_eq!(title_of(&[user("   \n ")]), "(untitled)");
        assert_eq!(title_of(&[]), "(untitled)");
    }

    #[test]
    fn a_cut_off_reply_ends_with_a_note_or_becomes_one() {
        let note = "[cut off: stalled; this answer is incomplete]";
        let marked = |value: Value| {
            let mut message = msg(value);
            mark_cut_off(&mut message, "stalled");
            serde_json::to_value(message).unwrap()
        };
        assert_eq!(
            marked(json!({"role": "assistant", "content": "The answer is forty"}))["content"],
            format!("The answer is forty\n\n{note}")
        );
        assert_eq!(
            marked(json!({"role": "assistant", "content": [{"type": "text", "text": "a"}]}))["content"],
            json!([{"type": "text", "text": "a"}, {"type": "text", "text": note}])
        );
        assert_eq!(
            marked(json!({"role": "assistant", "content": "  "}))["content"],
            note
        );
    }

    #[test]
    fn conversation_ids_from_clients_are_checked() {
        for good in [
            "conv_0123456789abcdef0123456789abcdef",
            "a",
            "A-b_9",
            &"x".repeat(100),
        ] {
            let id: ConversationId = good.parse().unwrap();
            assert_eq!(id.as_ref(), good);
        }
        for bad in [
            "",
            "conv 1",
            "conv/../x",
            "conv_1;DROP TABLE conversations",
            "émoji",
            "conv_1\n",
            &"x".repeat(101),
        ] {
            let err = ConversationId::parse(bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidId { .. }), "{bad:?}");
            assert!(err.to_string().contains("conversation_id"), "{err}");
        }
        let long = ConversationId::parse(&"y".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(
            long.contains("(500 characters)") && long.len() < 400,
            "{long}"
        );
    }
}
