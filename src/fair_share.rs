//! Tool calls in flight per principal: one user (or one runaway agent) holding many calls
//! open gets an immediate refusal for the next one, instead of queueing in front of
//! everyone else for the shared upstream slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::principal::Principal;

/// Places each principal holds of something bounded per principal, at most `limit` each.
/// A principal's entry goes when it holds none, so the map never outgrows the places held.
#[derive(Debug)]
pub struct PerPrincipal {
    limit: usize,
    held: Mutex<HashMap<Principal, usize>>,
}

/// One place held; dropping it gives it back.
#[derive(Debug)]
pub struct Held {
    places: Arc<PerPrincipal>,
    owner: Principal,
}

/// A principal already holds its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLimit {
    /// How many places it holds.
    pub held: usize,
    /// The most it may hold.
    pub limit: usize,
}

impl PerPrincipal {
    /// At most `limit` places per principal (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            held: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Principal, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One more place for `owner`, or the refusal when it holds its limit.
    pub fn take(self: &Arc<Self>, owner: &Principal) -> Result<Held, AtLimit> {
        let mut held = self.lock();
        let count = held.entry(owner.clone()).or_default();
        if *count >= self.limit {
            return Err(AtLimit {
                held: *count,
                limit: self.limit,
            });
        }
        *count += 1;
        Ok(Held {
            places: Arc::clone(self),
            owner: owner.clone(),
        })
    }

    /// How many places `owner` holds.
    pub fn held(&self, owner: &Principal) -> usize {
        self.lock().get(owner).copied().unwrap_or(0)
    }

    /// How many principals hold a place.
    pub fn principals(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.places.lock();
        if let Some(count) = held.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.owner);
            }
        }
    }
}

/// How many tool calls each principal has in flight, each bounded by the same share.
pub struct CallShares {
    places: Arc<PerPrincipal>,
}

/// A principal already has its share of calls in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverShare {
    /// Calls each principal may have in flight.
    pub per_principal: usize,
}

/// One call in flight; its place is given back when it drops (a call that becomes a
/// task carries it into the task).
pub struct CallTicket {
    _place: Held,
}

impl CallShares {
    /// At most `per_principal` calls in flight for each principal (at least 1).
    pub fn new(per_principal: usize) -> Arc<Self> {
        Arc::new(Self {
            places: PerPrincipal::new(per_principal),
        })
    }

    /// The default share: over HTTP, where principals share the process, a quarter of the
    /// calls it runs at once (at least 1); over stdio, with its one user, all of them.
    pub fn default_share(max_concurrent_calls: usize, shared: bool) -> usize {
        if shared {
            (max_concurrent_calls / 4).max(1)
        } else {
            max_concurrent_calls.max(1)
        }
    }

    /// A place for one more call of `owner`, or the refusal when it has its share.
    pub fn enter(&self, owner: &Principal) -> Result<CallTicket, OverShare> {
        self.places
            .take(owner)
            .map(|place| CallTicket { _place: place })
            .map_err(|at| OverShare {
                per_principal: at.limit,
            })
    }

    /// How many principals have calls in flight (principals at zero are forgotten).
    pub fn principals(&self) -> usize {
        self.places.principals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_at_its_share_is_refused_while_another_still_enters() {
        let shares = CallShares::new(2);
        let alice = Principal::new("alice").unwrap();
        let bob = Principal::new("bob").unwrap();
        let first = shares.enter(&alice).unwrap();
        let _second = shares.enter(&alice).unwrap();
        assert_eq!(
            shares.enter(&alice).err(),
            Some(OverShare { per_principal: 2 })
        );
        let _bobs = shares.enter(&bob).expect("bob has his own share");
        drop(first);
        assert!(
            shares.enter(&alice).is_ok(),
            "a finished call frees its place"
        );
    }

    #[test]
    fn principals_with_nothing_in_flight_are_forgotten() {
        let shares = CallShares::new(3);
        for n in 0..100 {
            let who = Principal::new(&format!("user-{n}")).unwrap();
            let _ticket = shares.enter(&who).unwrap();
        }
        assert_eq!(shares.principals(), 0);
    }

    #[test]
    fn the_default_share_is_a_quarter_of_the_slots_when_shared_and_never_zero() {
        assert_eq!(CallShares::default_share(256, true), 64);
        assert_eq!(CallShares::default_share(2, true), 1);
        assert_eq!(CallShares::default_share(256, false), 256);
    }
}
