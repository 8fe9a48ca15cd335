//! Which inference key to use: the configured one, or one discovered from the account's
//! subscriptions on first use and cached for the life of the process.

use std::collections::HashMap;

use tokio::sync::Mutex;

use crate::secret::ApiKey;
use crate::setting;
use crate::vultr::account::{AccountClient, Subscription};
use crate::vultr::error::VultrError;

/// Why no inference key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither key variable is set.
    #[error(
        "no inference API key is configured. Set {} to a subscription's key, or set {} (an account API key) so the server can find it.",
        setting::INFERENCE_API_KEY,
        setting::API_KEY
    )]
    NoKeys,
    /// A subscription was asked for, which needs the account API.
    #[error(
        "choosing a subscription (`{0}`) needs the account API: set {account}, or drop the subscription argument to use {inference}.",
        account = setting::API_KEY,
        inference = setting::INFERENCE_API_KEY
    )]
    NeedsAccountKey(String),
    /// The account has no inference subscription.
    #[error(
        "this Vultr account has no Serverless Inference subscription. Create one in the Vultr customer portal (Products > Serverless Inference), then call again."
    )]
    NoSubscriptions,
    /// Several subscriptions and none chosen.
    #[error("this account has {} inference subscriptions: {}. Choose one with {} (id or label) or the `subscription` argument.", .0.len(), .0.join(", "), setting::INFERENCE_SUBSCRIPTION)]
    Ambiguous(Vec<String>),
    /// The chosen subscription does not exist.
    #[error("no inference subscription has the id or label `{wanted}`. Known: {}. Check {} or the `subscription` argument.", list_or_none(.known), setting::INFERENCE_SUBSCRIPTION)]
    NotFound {
        /// What was asked for.
        wanted: String,
        /// What exists, as `label (id)`.
        known: Vec<String>,
    },
    /// The subscription came back without a key.
    #[error(
        "the subscription `{0}` came back without an API key; set {inference} instead.",
        inference = setting::INFERENCE_API_KEY
    )]
    NoKeyInSubscription(String),
    /// Reading the subscriptions failed.
    #[error("could not read your inference subscriptions to find the key: {0}")]
    Account(#[from] VultrError),
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// `label (id)`, how subscriptions are named in messages.
pub fn describe(subscription: &Subscription) -> String {
    if subscription.label.is_empty() {
        subscription.id.clone()
    } else {
        format!("{} ({})", subscription.label, subscription.id)
    }
}

/// Picks a subscription by id or label (exact, then case-insensitive), or the only one.
pub fn select<'a>(
    subscriptions: &'a [Subscription],
    wanted: Option<&str>,
) -> Result<&'a Subscription, KeyError> {
    let known = || subscriptions.iter().map(describe).collect::<Vec<_>>();
    let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) else {
        return match subscriptions {
            [] => Err(KeyError::NoSubscriptions),
            [only] => Ok(only),
            _ => Err(KeyError::Ambiguous(known())),
        };
    };
    subscriptions
        .iter()
        .find(|s| s.id == wanted)
        .or_else(|| subscriptions.iter().find(|s| s.label == wanted))
        .or_else(|| {
            let mut matches = subscriptions
                .iter()
                .filter(|s| s.label.eq_ignore_ascii_case(wanted));
            match (matches.next(), matches.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        })
        .ok_or_else(|| KeyError::NotFound {
            wanted: wanted.to_owned(),
            known: known(),
        })
}

/// Where a key came from, which decides whether a 401 is worth a second look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `VULTR_INFERENCE_API_KEY`.
    Configured,
    /// Read from a subscription; the string is the cache slot it lives in.
    Discovered(String),
}

/// A key ready for use, and where it came from.
#[derive(Debug, Clone)]
pub struct InferenceKey {
    /// The key.
    pub key: ApiKey,
    /// Its origin.
    pub source: KeySource,
}

/// Hands out inference keys, discovering them lazily.
pub struct InferenceKeys {
    configured: Option<ApiKey>,
    account: Option<AccountClient>,
    default_subscription: Option<String>,
    discovered: Mutex<HashMap<String, ApiKey>>,
}

impl InferenceKeys {
    /// Keys from configuration; nothing is fetched until [`InferenceKeys::get`].
    pub fn new(
        configured: Option<ApiKey>,
        account: Option<AccountClient>,
        default_subscription: Option<String>,
    ) -> Self {
        Self {
            configured,
            account,
            default_subscription,
            discovered: Mutex::new(HashMap::new()),
        }
    }

    /// The key for a call: `subscription` (the call's argument) wins, then the configured
    /// key, then the subscription named by configuration or the only one.
    pub async fn get(&self, subscription: Option<&str>) -> Result<InferenceKey, KeyError> {
        let subscription = subscription.map(str::trim).filter(|s| !s.is_empty());
        if subscription.is_none()
            && let Some(key) = &self.configured
        {
            return Ok(InferenceKey {
                key: key.clone(),
                source: KeySource::Configured,
            });
        }
        let wanted = subscription.or(self.default_subscription.as_deref());
        let Some(account) = &self.account else {
            return Err(match subscription {
                Some(s) => KeyError::NeedsAccountKey(s.to_owned()),
                None => KeyError::NoKeys,
            });
        };
        let slot = wanted.unwrap_or_default().to_owned();
        // Held across the lookup so concurrent first calls discover once.
        let mut cache = self.discovered.lock().await;
        if let Some(key) = cache.get(&slot) {
            return Ok(InferenceKey {
                key: key.clone(),
                source: KeySource::Discovered(slot),
            });
        }
        let subscriptions = account.list_subscriptions().await?;
        let chosen = select(&subscriptions, wanted)?;
        let key = chosen
            .api_key
            .clone()
            .ok_or_else(|| KeyError::NoKeyInSubscription(describe(chosen)))?;
        tracing::debug!(subscription = %chosen.id, key = %key.hint(), "discovered inference key");
        cache.insert(slot.clone(), key.clone());
        Ok(InferenceKey {
            key,
            source: KeySource::Discovered(slot),
        })
    }

    /// Forgets a discovered key after the inference API refused it; true when another
    /// look may help (the refused key was dropped, or a newer one is already cached).
    pub async fn forget(&self, key: &InferenceKey) -> bool {
        let KeySource::Discovered(slot) = &key.source else {
            return false;
        };
        let mut cache = self.discovered.lock().await;
        match cache.get(slot) {
            Some(cached) if cached.same_as(&key.key) => {
                cache.remove(slot);
                true
            }
            _ => true,
        }
    }

    /// A key already at hand (configured or discovered before), without any lookup.
    pub async fn at_hand(&self) -> Option<ApiKey> {
        if let Some(key) = &self.configured {
            return Some(key.clone());
        }
        self.discovered.lock().await.values().next().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, label: &str) -> Subscription {
        Subscription {
            id: id.into(),
            label: label.into(),
            date_created: None,
            api_key: ApiKey::new(format!("key-for-{id}-000000")),
        }
    }

    #[test]
    fn the_only_subscription_is_chosen() {
        let subs = [sub("a", "main")];
        assert_eq!(select(&subs, None).unwrap().id, "a");
    }

    #[test]
    fn several_subscriptions_need_a_choice() {
        let subs = [sub("a", "main"), sub("b", "staging")];
        let err = select(&subs, None).unwrap_err().to_string();
        assert!(err.contains("main (a), staging (b)"), "{err}");
        assert!(err.contains(setting::INFERENCE_SUBSCRIPTION), "{err}");
        assert_eq!(select(&subs, Some("b")).unwrap().label, "staging");
        assert_eq!(select(&subs, Some("Staging")).unwrap().id, "b");
    }

    #[test]
    fn unknown_and_missing_subscriptions_say_so() {
        let subs = [sub("a", "main")];
        let err = select(&subs, Some("prod")).unwrap_err().to_string();
        assert!(err.contains("`prod`") && err.contains("main (a)"), "{err}");
        assert!(matches!(select(&[], None), Err(KeyError::NoSubscriptions)));
    }
}
