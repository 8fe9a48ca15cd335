//! Tool failures: each becomes a result with `isError: true` whose text says what went
//! wrong and what to do.

use super::args::InvalidArguments;
use crate::audio::AudioError;
use crate::chat::ChatError;
use crate::collections::CollectionError;
use crate::compare::CompareError;
use crate::conversations::TurnError;
use crate::delegate::DelegateError;
use crate::fair_share::OverShare;
use crate::keys::KeyError;
use crate::media::MediaError;
use crate::models::PickError;
use crate::rate_limit::OverLimit;
use crate::setting;
use crate::store::{ConversationId, StoreError};
use crate::subscriptions::SubscriptionError;
use crate::tasks::TooManyTasks;
use crate::vultr::error::VultrError;

/// Everything that can make a tool call fail.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not decode.
    #[error(transparent)]
    Arguments(#[from] InvalidArguments),
    /// The call failed inside the server; the text says what happened.
    #[error("{0}")]
    Internal(String),
    /// The arguments decoded but make no sense together; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// Subscriptions could not be read.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    /// The caller already has as many tasks working as one user may.
    #[error(transparent)]
    Tasks(#[from] TooManyTasks),
    /// A delegation could not run.
    #[error(transparent)]
    Delegate(#[from] DelegateError),
    /// No inference key could be had.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A Vultr API failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
    /// A conversation could not be read or written.
    #[error(transparent)]
    Conversation(#[from] StoreError),
    /// delete_conversation named a conversation that is not stored.
    #[error(
        "no stored conversation has the id `{id}`: it may have been deleted or pruned already. Read the resource vultr://conversations for the ids that are stored."
    )]
    NothingToDelete {
        /// The id that was asked for.
        id: ConversationId,
    },
    /// A vector-store collection call failed.
    #[error(transparent)]
    Collection(#[from] CollectionError),
    /// A chat completion failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// A comparison of several models could not run.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// A speech or transcription call could not run.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Media could not be kept or read.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// No model of the kind a tool needs could be chosen.
    #[error(transparent)]
    Model(#[from] PickError),
    /// The call was not allowed to spend (a limit, or the user's confirmation).
    #[error(transparent)]
    Spend(#[from] crate::spend::SpendError),
    /// The caller made more tool calls this minute than the server allows.
    #[error(
        "rate limit: at most {} tool calls per minute are allowed for each user ({}); this call was not run. Try again in {} seconds.",
        .0.per_minute, setting::RATE_LIMIT, .0.wait_seconds()
    )]
    RateLimited(OverLimit),
    /// The caller already has as many calls in flight as one user may.
    #[error(
        "too many calls at once: each user may have {} calls to Vultr running at a time ({}); this call was not run. Wait for one of your calls to finish, then try again.",
        .0.per_principal, setting::MAX_CALLS_PER_PRINCIPAL
    )]
    OverShare(OverShare),
}

impl From<TurnError> for ToolError {
    fn from(error: TurnError) -> Self {
        match error {
            TurnError::Conversation(error) => ToolError::Conversation(error),
            TurnError::Chat(error) => ToolError::Chat(error),
        }
    }
}
