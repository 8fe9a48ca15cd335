//! Conversations as a service: each owner's stored chats loaded, saved (with every known
//! key redacted), listed and deleted, and chat turns that continue them ([`ChatTurns`]).
//! No MCP types: the tool layer decodes, calls one method and renders.

mod turns;

use std::sync::Arc;

pub use turns::{ChatTurns, CompletedTurn, TurnError, TurnRequest};

use crate::principal::Principal;
use crate::secret::KnownKeys;
use crate::store::{
    Conversation, ConversationId, ConversationStore, ConversationSummary, StoreError, Turn,
};
use crate::vultr::chat::{ChatReply, Message};
use crate::vultr::stream::CutOff;

/// Every owner's conversations in the store, each owner seeing only their own.
#[derive(Clone)]
pub struct Conversations {
    store: Arc<dyn ConversationStore>,
    known_keys: Arc<KnownKeys>,
}

/// A turn to store: the new messages and the reply they got.
pub struct TurnToSave<'a> {
    /// The conversation it continues; `None` starts one.
    pub continuing: Option<ConversationId>,
    /// The model asked for, which the conversation continues on.
    pub model: &'a str,
    /// The model that answered (a fallback model when the one asked for was unavailable).
    pub answered_by: &'a str,
    /// The messages sent this turn (the reply is added to them).
    pub messages: Vec<Message>,
    /// The reply.
    pub reply: &'a ChatReply,
    /// Why the reply was cut short, if it was.
    pub cut_off: Option<CutOff>,
}

impl Conversations {
    /// The conversations in `store`; `known_keys` are redacted from what is saved.
    pub fn new(store: Arc<dyn ConversationStore>, known_keys: Arc<KnownKeys>) -> Self {
        Self { store, known_keys }
    }

    /// The store underneath (to open it at start-up).
    pub fn store(&self) -> &Arc<dyn ConversationStore> {
        &self.store
    }

    /// `owner`'s conversation `id`, or why it cannot be had (an id that is not one, one
    /// not stored or another owner's: "not found", a store that is down).
    pub async fn load(&self, owner: &Principal, id: &str) -> Result<Conversation, StoreError> {
        let id = ConversationId::parse(id)?;
        self.store.get(owner, &id).await
    }

    /// Stores a turn of `owner`'s conversation, marked when it was cut off, with every
    /// known key redacted. Saving never costs the caller the reply: a failure comes back
    /// as text to show next to it.
    pub async fn save(
        &self,
        owner: &Principal,
        turn: TurnToSave<'_>,
    ) -> Result<ConversationId, String> {
        let TurnToSave {
            continuing,
            model,
            answered_by,
            mut messages,
            reply,
            cut_off,
        } = turn;
        messages.push(reply.assistant_message.clone());
        for message in &mut messages {
            message.redact(&self.known_keys);
        }
        let model = self.known_keys.redact(model);
        let answered_by = self.known_keys.redact(answered_by);
        let cut_off = cut_off.map(cut_off_reason);
        let turn = Turn {
            model: &model,
            answered_by: &answered_by,
            messages: &messages,
            cut_off,
        };
        let saved = match continuing {
            Some(id) => self.store.append(owner, &id, &turn).await.map(|()| id),
            None => self.store.create(owner, &turn).await,
        };
        saved.map_err(|error| {
            tracing::warn!(%error, "conversation not saved");
            error.to_string()
        })
    }

    /// Deletes `owner`'s conversation `id`: the id, and whether there was one to delete
    /// (another owner's is none).
    pub async fn delete(
        &self,
        owner: &Principal,
        id: &str,
    ) -> Result<(ConversationId, bool), StoreError> {
        let id = ConversationId::parse(id)?;
        let deleted = self.store.delete(owner, &id).await?;
        Ok((id, deleted))
    }

    /// `owner`'s `most` most recent conversations, newest first.
    pub async fn recent(
        &self,
        owner: &Principal,
        most: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        self.store.list(owner, most).await
    }
}

/// Why a reply was cut short, as the store keeps it and its note shows it.
fn cut_off_reason(cut: CutOff) -> &'static str {
    match cut {
        CutOff::Stalled(_) => "stalled",
        CutOff::Deadline(_) => "out of time",
    }
}
