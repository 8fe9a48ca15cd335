//! Which principal opened each legacy MCP session (2025-era clients): a session id is
//! only good for the principal that opened it; to anyone else it does not exist.
//!
//! With a shared store (Postgres), sessions are shared by every replica on it: the owner
//! is written to the store too (a [`crate::store::LegacySessionStore`]), a replica that does not know a
//! session asks the store, and [`SharedSessionStore`] keeps rmcp's session state there, so
//! any replica can restore a session another one opened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::principal::Principal;
use crate::store::SharedSessions;

/// How long an unused session's owner is remembered here; rmcp closes a session idle for
/// 5 minutes, so one unused for longer is gone anyway (unless the database keeps it, and
/// then it is read again from there).
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// How often a session in use here is marked used in the database, so that other
/// replicas (and this one, once rmcp closed it) can still restore it.
const TOUCH_EVERY: Duration = Duration::from_secs(5 * 60);

/// A session's owner as known here.
struct Known {
    owner: Principal,
    /// When it was last used here.
    used: Instant,
    /// When the database last heard it was used.
    touched: Instant,
}

/// Session id → the principal that opened it, and when it was last used; with a shared
/// store, backed by the database.
pub struct SessionOwners {
    owners: Mutex<HashMap<String, Known>>,
    shared: Option<Arc<SharedSessions>>,
}

impl SessionOwners {
    /// Owners kept in this process, and in `shared` when given.
    pub fn new(shared: Option<Arc<SharedSessions>>) -> Self {
        Self {
            owners: Mutex::new(HashMap::new()),
            shared,
        }
    }

    /// Records that `principal` opened `session`, forgetting sessions long unused.
    pub async fn opened(&self, session: &str, principal: &Principal) {
        self.remember(session, principal);
        if let Some(shared) = &self.shared
            && let Err(error) = shared.save_owner(session, principal).await
        {
            tracing::warn!(%error, "the session's owner was not saved; other replicas will not know it");
        }
    }

    /// Whether `principal` may use `session`: only if it opened it. A session known
    /// neither here nor in the shared store is answered as unknown, and the client opens
    /// a new one.
    pub async fn may_use(&self, session: &str, principal: &Principal) -> bool {
        match self.known(session, principal) {
            Some(false) => return false,
            Some(true) => return true,
            None => {}
        }
        let Some(shared) = &self.shared else {
            return false;
        };
        match shared.use_session(session).await {
            Ok(Some(stored)) if stored.owner.as_ref() == Some(principal) => {
                self.remember(session, principal);
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%error, "could not look up a session in the shared store");
                // A session opened or used here stays usable while the database is away.
                self.owners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(session)
                    .is_some_and(|known| known.owner == *principal)
            }
        }
    }

    /// Whether `principal` owns `session` as known here (`None`: not known here, or
    /// known but due to be marked used in the shared store, which is then asked again).
    fn known(&self, session: &str, principal: &Principal) -> Option<bool> {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let known = owners.get_mut(session)?;
        if known.owner != *principal {
            return Some(false);
        }
        if self.shared.is_some() && known.touched.elapsed() >= TOUCH_EVERY {
            return None;
        }
        known.used = Instant::now();
        Some(true)
    }

    /// Forgets a session its owner closed (rmcp deletes it from the shared store).
    pub fn closed(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }

    /// Remembers here that `principal` owns `session`, forgetting sessions long unused.
    fn remember(&self, session: &str, principal: &Principal) {
        let now = Instant::now();
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.retain(|_, known| now.duration_since(known.used) < FORGET_AFTER);
        owners.insert(
            session.to_owned(),
            Known {
                owner: principal.clone(),
                used: now,
                touched: now,
            },
        );
    }
}

/// rmcp's session state of parked sessions kept in this process, when there is no shared
/// store (bounded: [`super::session_limits::LiveSessions`] deletes what it forgets).
#[derive(Default)]
pub struct MemorySessionStore(Mutex<HashMap<String, SessionState>>);

#[async_trait::async_trait]
impl SessionStore for MemorySessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(session_id)
            .cloned())
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session_id.to_owned(), state.clone());
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session_id);
        Ok(())
    }
}

/// rmcp's session state kept in the shared store, so any replica restores a session
/// (sessions unused for [`crate::store::SESSION_IDLE`] are gone).
pub struct SharedSessionStore(pub Arc<SharedSessions>);

#[async_trait::async_trait]
impl SessionStore for SharedSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(stored) = self.0.use_session(session_id).await? else {
            return Ok(None);
        };
        Ok(match stored.state {
            Some(state) => Some(serde_json::from_str(&state)?),
            None => None,
        })
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let state = serde_json::to_string(state)?;
        Ok(self.0.save_state(session_id, &state).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.0.delete(session_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_usable_only_by_the_principal_that_opened_it() {
        let owners = SessionOwners::new(None);
        let alice = Principal::new("alice").unwrap();
        let bob = Principal::new("bob").unwrap();
        owners.opened("s1", &alice).await;
        assert!(owners.may_use("s1", &alice).await);
        assert!(!owners.may_use("s1", &bob).await);
        owners.closed("s1");
        assert!(
            !owners.may_use("s1", &alice).await,
            "a closed session is unknown"
        );
    }
}
