//! Request bodies held in memory, bounded in total and per principal: a body takes its
//! bytes from the budget before they are kept (its declared length at once, else as they
//! arrive) and gives them back when its call has answered. Over the total a request gets
//! 503, over the principal's share 429, both with Retry-After; so many clients holding
//! large bodies cannot exhaust memory, and one principal cannot hold the whole budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::principal::Principal;
use crate::setting;

/// Why a body does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// All requests together hold the whole budget.
    #[error(
        "the server holds as many request bodies in memory as it allows ({}); retry in a moment",
        setting::MAX_BODY_MEMORY
    )]
    Server,
    /// This principal's requests hold their share of it.
    #[error(
        "your requests hold {share} bytes of request bodies in memory, the most one user may (a quarter of {}); retry once they are answered",
        setting::MAX_BODY_MEMORY
    )]
    Principal {
        /// The share, in bytes.
        share: usize,
    },
}

/// The budget for request bodies held in memory.
pub struct BodyBudget {
    total: Arc<Semaphore>,
    share: usize,
    held: Mutex<HashMap<Principal, usize>>,
}

/// Bytes of the budget one request holds, given back when dropped.
pub struct HeldBytes {
    budget: Arc<BodyBudget>,
    owner: Principal,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// `total` bytes in all, of which one principal may hold a quarter (never less than
    /// `largest_body`, so one body of the largest size always fits on its own).
    pub fn new(total: usize, largest_body: usize) -> Arc<Self> {
        let total = total.min(Semaphore::MAX_PERMITS);
        Arc::new(Self {
            total: Arc::new(Semaphore::new(total)),
            share: (total / 4).max(largest_body),
            held: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Principal, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Nothing held yet for a request of `owner`.
    pub fn start(self: &Arc<Self>, owner: &Principal) -> HeldBytes {
        HeldBytes {
            budget: Arc::clone(self),
            owner: owner.clone(),
            bytes: 0,
            permit: None,
        }
    }
}

impl HeldBytes {
    /// Holds `more` bytes too, if the budget and the principal's share allow.
    pub fn grow(&mut self, more: usize) -> Result<(), OverBudget> {
        if more == 0 {
            return Ok(());
        }
        let budget = &self.budget;
        let mut held = budget.lock();
        let mine = held.get(&self.owner).copied().unwrap_or(0);
        if mine + more > budget.share {
            return Err(OverBudget::Principal {
                share: budget.share,
            });
        }
        let permits = u32::try_from(more).map_err(|_| OverBudget::Server)?;
        let permit = Arc::clone(&budget.total)
            .try_acquire_many_owned(permits)
            .map_err(|_| OverBudget::Server)?;
        *held.entry(self.owner.clone()).or_default() += more;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.bytes += more;
        Ok(())
    }

    /// Gives everything back now (the body is being dropped).
    pub fn release(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self.budget.lock();
        if let Some(mine) = held.get_mut(&self.owner) {
            *mine = mine.saturating_sub(self.bytes);
            if *mine == 0 {
                held.remove(&self.owner);
            }
        }
        self.bytes = 0;
        self.permit = None;
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str) -> Principal {
        Principal::new(name).unwrap()
    }

    #[test]
    fn one_principal_holds_at_most_a_quarter_and_the_rest_stays_for_others() {
        let budget = BodyBudget::new(400, 10);
        let alice = principal("alice");
        let mut first = budget.start(&alice);
        first.grow(60).unwrap();
        let mut second = budget.start(&alice);
        assert_eq!(second.grow(41), Err(OverBudget::Principal { share: 100 }));
        second.grow(40).unwrap();
        let others: Vec<HeldBytes> = ["bob", "carol", "dave"]
            .into_iter()
            .map(|name| {
                let mut held = budget.start(&principal(name));
                held.grow(100).unwrap();
                held
            })
            .collect();
        let mut eves = budget.start(&principal("eve"));
        assert_eq!(eves.grow(1), Err(OverBudget::Server), "the total is spent");
        drop(first);
        eves.grow(60).unwrap();
        drop(others);
    }

    #[test]
    fn what_a_request_held_is_given_back_and_its_principal_forgotten() {
        let budget = BodyBudget::new(100, 10);
        let alice = principal("alice");
        let mut held = budget.start(&alice);
        held.grow(25).unwrap();
        drop(held);
        assert!(budget.lock().is_empty());
        assert_eq!(budget.total.available_permits(), 100);
    }

    #[test]
    fn the_largest_body_always_fits_in_a_share() {
        let budget = BodyBudget::new(8, 4);
        assert_eq!(budget.share, 4);
    }
}
