//! The account's inference subscriptions as a service: listed, and one with its usage.
//! Needs the account API key.

use crate::keys::{KeyError, select};
use crate::setting;
use crate::vultr::account::{AccountClient, Subscription, Usage};
use crate::vultr::error::VultrError;

/// The subscriptions of the account whose key is set.
pub struct Subscriptions {
    account: Option<AccountClient>,
    reveal_keys: bool,
}

/// One subscription and its usage (which may fail on its own).
pub struct SubscriptionDetail {
    /// The subscription.
    pub subscription: Subscription,
    /// Its usage, or why it could not be read.
    pub usage: Result<Usage, VultrError>,
}

/// Why subscriptions could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// No account key is set.
    #[error(
        "this tool needs the Vultr account API: set {} to an account API key (Vultr customer portal > Account > API, with this machine's IP allowed) in the MCP server's env, then restart it.",
        setting::API_KEY
    )]
    NoAccountKey,
    /// The account API failed.
    #[error(transparent)]
    Upstream(#[from] VultrError),
    /// No subscription has the id or label asked for.
    #[error("no inference subscription has the id or label `{wanted}`. Known: {}.", if .known.is_empty() { "none".to_owned() } else { .known.join(", ") })]
    Unknown {
        /// What was asked for.
        wanted: String,
        /// What exists, as `label (id)`.
        known: Vec<String>,
    },
    /// The subscription could not be chosen.
    #[error(transparent)]
    Key(KeyError),
}

impl Subscriptions {
    /// The subscriptions through `account` (none without an account key); `reveal_keys`
    /// says whether full keys may be shown.
    pub fn new(account: Option<AccountClient>, reveal_keys: bool) -> Self {
        Self {
            account,
            reveal_keys,
        }
    }

    /// Whether full keys may be shown (`VULTR_MCP_REVEAL_KEYS`).
    pub fn reveal_keys(&self) -> bool {
        self.reveal_keys
    }

    fn account(&self) -> Result<&AccountClient, SubscriptionError> {
        self.account.as_ref().ok_or(SubscriptionError::NoAccountKey)
    }

    /// Every subscription of the account.
    pub async fn list(&self) -> Result<Vec<Subscription>, SubscriptionError> {
        Ok(self.account()?.list_subscriptions().await?)
    }

    /// The subscription with id or label `wanted`, and its usage.
    pub async fn detail(&self, wanted: &str) -> Result<SubscriptionDetail, SubscriptionError> {
        let account = self.account()?;
        let subscriptions = account.list_subscriptions().await?;
        let chosen = select(&subscriptions, Some(wanted)).map_err(|e| match e {
            KeyError::NotFound { wanted, known } => SubscriptionError::Unknown { wanted, known },
            other => SubscriptionError::Key(other),
        })?;
        let subscription = chosen.clone();
        let usage = account.usage(&subscription.id).await;
        Ok(SubscriptionDetail {
            subscription,
            usage,
        })
    }
}
