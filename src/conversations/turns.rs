//! One chat turn of a conversation: load what it continues, drop what the caller resent,
//! run the model, save the turn (redacted). The chat tool, tasks and any other entry point
//! call this one method.

use std::sync::Arc;

use super::{Conversations, TurnToSave};
use crate::chat::{ChatError, ChatInput, ChatOutcome, ChatService, Progress, ProgressSink};
use crate::principal::Principal;
use crate::store::{ConversationId, StoreError};

/// Chat turns that continue and store conversations.
pub struct ChatTurns {
    chat: Arc<ChatService>,
    conversations: Conversations,
}

/// A turn asked for: the chat request and the conversation it continues.
pub struct TurnRequest {
    /// The request (its `history` and `stored_model` are filled from the conversation).
    pub input: ChatInput,
    /// The conversation to continue, as the caller gave its id.
    pub conversation_id: Option<String>,
}

/// A turn that ran: the reply, and where it was saved (or why it was not).
pub struct CompletedTurn {
    /// The reply, its cost and latency.
    pub outcome: ChatOutcome,
    /// The conversation the turn is stored in, or why saving failed.
    pub saved: Result<ConversationId, String>,
}

/// Why a turn did not run.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The conversation to continue could not be read.
    #[error(transparent)]
    Conversation(#[from] StoreError),
    /// The chat completion failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
}

impl ChatTurns {
    /// Turns run by `chat` and kept in `conversations`.
    pub fn new(chat: Arc<ChatService>, conversations: Conversations) -> Self {
        Self {
            chat,
            conversations,
        }
    }

    /// Runs one turn for `owner`, continuing one of `owner`'s conversations when asked,
    /// and stores it as `owner`'s; a streamed reply reports to `progress`.
    pub async fn run<S: ProgressSink>(
        &self,
        owner: &Principal,
        request: TurnRequest,
        progress: &mut Progress<S>,
    ) -> Result<CompletedTurn, TurnError> {
        let TurnRequest {
            mut input,
            conversation_id,
        } = request;
        let continuing = match conversation_id {
            Some(id) => {
                let stored = self.conversations.load(owner, &id).await?;
                input.history = stored.messages;
                input.stored_model = Some(stored.summary.model);
                Some(stored.summary.id)
            }
            None => None,
        };
        let mut outcome = self.chat.complete(input, progress).await?;
        let messages = std::mem::take(&mut outcome.turn);
        let saved = self
            .conversations
            .save(
                owner,
                TurnToSave {
                    continuing,
                    model: &outcome.model,
                    answered_by: &outcome.answered_by,
                    messages,
                    reply: &outcome.reply,
                    cut_off: outcome.cut_off,
                },
            )
            .await;
        Ok(CompletedTurn { outcome, saved })
    }
}
