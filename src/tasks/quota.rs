//! Pending tasks per principal in this process, capped (`VULTR_MCP_MAX_TASKS_PER_PRINCIPAL`):
//! a call that may become a task holds a place from its start until it, or its task,
//! ends. A replica-local bound, like the other limits; an owner's entry goes at zero.

use std::sync::Arc;

use crate::fair_share::{Held, PerPrincipal};
use crate::principal::Principal;
use crate::setting;

/// A principal already has as many pending tasks as allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many tasks: you have {working} calls working as tasks or about to become one on this server, the most allowed ({}={limit}); wait for one to end or cancel one with tasks/cancel, then call again",
    setting::MAX_TASKS_PER_PRINCIPAL
)]
pub struct TooManyTasks {
    /// How many the principal has working (and starting).
    pub working: u32,
    /// The cap.
    pub limit: u32,
}

/// How many calls each principal has that are (or may become) tasks.
#[derive(Debug)]
pub(super) struct Quota {
    places: Arc<PerPrincipal>,
}

/// One held place; dropping it gives it back.
pub(super) type Place = Held;

impl Quota {
    /// At most `limit` per principal.
    pub(super) fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            places: PerPrincipal::new(limit as usize),
        })
    }

    /// A place for one more of `owner`'s calls, held until the [`Place`] drops; refused
    /// when `owner` already holds the limit.
    pub(super) fn take(&self, owner: &Principal) -> Result<Place, TooManyTasks> {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.places.take(owner).map_err(|at| TooManyTasks {
            working: count(at.held),
            limit: count(at.limit),
        })
    }

    /// How many places `owner` holds.
    #[cfg(test)]
    pub(super) fn held(&self, owner: &Principal) -> u32 {
        self.places.held(owner) as u32
    }

    /// How many principals hold a place.
    #[cfg(test)]
    pub(super) fn owners(&self) -> usize {
        self.places.principals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal::new("alice").unwrap()
    }

    #[test]
    fn over_the_limit_a_place_is_refused_naming_the_setting_and_the_count() {
        let quota = Quota::new(2);
        let _first = quota.take(&alice()).unwrap();
        let _second = quota.take(&alice()).unwrap();

        let refused = quota.take(&alice()).unwrap_err();

        assert_eq!(
            refused,
            TooManyTasks {
                working: 2,
                limit: 2
            }
        );
        let message = refused.to_string();
        assert!(
            message.contains(&format!("{}=2", setting::MAX_TASKS_PER_PRINCIPAL)),
            "{message}"
        );
        assert!(message.contains("you have 2 calls working"), "{message}");
        assert!(
            quota.take(&Principal::new("bob").unwrap()).is_ok(),
            "another principal has places of its own"
        );
    }

    #[test]
    fn a_place_given_back_is_free_again_and_an_owner_at_zero_is_forgotten() {
        let quota = Quota::new(1);
        let place = quota.take(&alice()).unwrap();
        assert_eq!(quota.held(&alice()), 1);

        drop(place);

        assert_eq!(quota.owners(), 0, "the map does not keep owners at zero");
        let _again = quota.take(&alice()).unwrap();
        assert_eq!(quota.held(&alice()), 1);
    }
}
