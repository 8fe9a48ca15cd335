//! Which principal opened each legacy MCP session (2025-era clients): a session id is
//! only good for the principal that opened it; to anyone else it does not exist.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::principal::Principal;

/// How long an unused session's owner is remembered; rmcp closes a session idle for 5
/// minutes, so one unused for longer is gone anyway (and if not, its client opens another).
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Session id → the principal that opened it, and when it was last used.
#[derive(Default)]
pub struct SessionOwners {
    owners: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl SessionOwners {
    /// Records that `principal` opened `session`, forgetting sessions long unused.
    pub fn opened(&self, session: &str, principal: &Principal) {
        let now = Instant::now();
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.retain(|_, (_, used)| now.duration_since(*used) < FORGET_AFTER);
        owners.insert(session.to_owned(), (principal.clone(), now));
    }

    /// Whether `principal` may use `session`: only if it opened it. A session forgotten
    /// here is answered as unknown, and the client opens a new one.
    pub fn may_use(&self, session: &str, principal: &Principal) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        match owners.get_mut(session) {
            Some((owner, used)) if owner == principal => {
                *used = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Forgets a session its owner closed.
    pub fn closed(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_usable_only_by_the_principal_that_opened_it() {
        let owners = SessionOwners::default();
        let alice = Principal::new("alice").unwrap();
        let bob = Principal::new("bob").unwrap();
        owners.opened("s1", &alice);
        assert!(owners.may_use("s1", &alice));
        assert!(!owners.may_use("s1", &bob));
        owners.closed("s1");
        assert!(!owners.may_use("s1", &alice), "a closed session is unknown");
    }
}
