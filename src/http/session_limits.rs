//! How many sessions of 2025-era clients are open, in total and per principal, and which
//! were never initialised: `initialize` over a cap is refused before rmcp makes a session
//! (503 over the total, 429 over the principal's share, both with Retry-After), and a
//! session whose client has not sent `notifications/initialized` within the init timeout
//! is closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::time::Instant;

use crate::config::setting;
use crate::principal::Principal;

/// How often sessions are checked for the init timeout and for having ended in rmcp.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The bounds on sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Sessions open at once.
    pub max_total: usize,
    /// Sessions one principal may have open at once.
    pub max_per_principal: usize,
    /// How long a new session has to send `notifications/initialized`.
    pub init_timeout: Duration,
}

/// Why a new session was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// Every session the server allows is open.
    #[error(
        "the server has {max} sessions open, its limit ({}); retry in a moment, or use the 2026-07-28 protocol, which needs no session",
        setting::MAX_SESSIONS
    )]
    ServerFull {
        /// The limit.
        max: usize,
    },
    /// The principal has its share of sessions open.
    #[error(
        "you have {max} sessions open, the limit per user ({}); close unused ones (HTTP DELETE with their Mcp-Session-Id) or wait for them to expire",
        setting::MAX_SESSIONS_PER_PRINCIPAL
    )]
    PrincipalFull {
        /// The limit.
        max: usize,
    },
}

/// A session as counted here.
struct Open {
    owner: Principal,
    opened: Instant,
    initialized: bool,
}

#[derive(Default)]
struct Counts {
    sessions: HashMap<String, Open>,
    /// Open sessions and reservations per principal (entries at zero are removed).
    per_principal: HashMap<Principal, usize>,
    /// `initialize` requests admitted whose session is not known yet.
    reserved: usize,
}

impl Counts {
    fn add(&mut self, owner: &Principal) {
        *self.per_principal.entry(owner.clone()).or_default() += 1;
    }

    fn sub(&mut self, owner: &Principal) {
        if let Some(count) = self.per_principal.get_mut(owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_principal.remove(owner);
            }
        }
    }

    fn remove(&mut self, session: &str) {
        if let Some(open) = self.sessions.remove(session) {
            self.sub(&open.owner);
        }
    }
}

/// The sessions open on this process, bounded by [`SessionLimits`].
pub struct LiveSessions {
    limits: SessionLimits,
    counts: Mutex<Counts>,
}

/// An admitted `initialize`: counts against the limits until its session is known
/// ([`Reservation::opened`]) or it is dropped.
pub struct Reservation {
    sessions: Arc<LiveSessions>,
    owner: Principal,
    done: bool,
}

impl Reservation {
    /// The `initialize` opened `session`: it now counts as an open session.
    pub fn opened(mut self, session: &str) {
        let mut counts = self.sessions.lock();
        counts.reserved = counts.reserved.saturating_sub(1);
        counts.sessions.insert(
            session.to_owned(),
            Open {
                owner: self.owner.clone(),
                opened: Instant::now(),
                initialized: false,
            },
        );
        self.done = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            let mut counts = self.sessions.lock();
            counts.reserved = counts.reserved.saturating_sub(1);
            counts.sub(&self.owner);
        }
    }
}

impl LiveSessions {
    /// No sessions yet, bounded by `limits`.
    pub fn new(limits: SessionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits an `initialize` of `owner`, or says which limit it is over.
    pub fn reserve(self: &Arc<Self>, owner: &Principal) -> Result<Reservation, SessionRefusal> {
        let mut counts = self.lock();
        if counts.sessions.len() + counts.reserved >= self.limits.max_total {
            return Err(SessionRefusal::ServerFull {
                max: self.limits.max_total,
            });
        }
        if counts.per_principal.get(owner).copied().unwrap_or(0) >= self.limits.max_per_principal
        {
            return Err(SessionRefusal::PrincipalFull {
                max: self.limits.max_per_principal,
            });
        }
        counts.reserved += 1;
        counts.add(owner);
        Ok(Reservation {
            sessions: Arc::clone(self),
            owner: owner.clone(),
            done: false,
        })
    }

    /// The client of `session` is using it (it sent `notifications/initialized` or any
    /// later message): the init timeout no longer applies.
    pub fn used(&self, session: &str) {
        if let Some(open) = self.lock().sessions.get_mut(session) {
            open.initialized = true;
        }
    }

    /// The session ended (closed by its client).
    pub fn closed(&self, session: &str) {
        self.lock().remove(session);
    }

    /// How many sessions are open (and admitted `initialize` requests pending).
    #[cfg(test)]
    pub fn open(&self) -> usize {
        let counts = self.lock();
        counts.sessions.len() + counts.reserved
    }

    /// Every [`SWEEP_EVERY`] while `self` lives: closes sessions not initialised in time,
    /// and forgets sessions rmcp ended (idle for its keep-alive, or their worker stopped).
    pub fn keep_sweeping(self: &Arc<Self>, manager: Arc<LocalSessionManager>) {
        let sessions: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(sessions) = sessions.upgrade() else {
                    break;
                };
                sessions.sweep(&manager).await;
            }
        });
    }

    /// One sweep; see [`LiveSessions::keep_sweeping`].
    async fn sweep(&self, manager: &LocalSessionManager) {
        let now = Instant::now();
        let late: Vec<String> = {
            let counts = self.lock();
            counts
                .sessions
                .iter()
                .filter(|(_, open)| {
                    !open.initialized && now.duration_since(open.opened) >= self.limits.init_timeout
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in late {
            tracing::debug!(
                "closing a session whose client did not initialize it within {:?} ({})",
                self.limits.init_timeout,
                setting::SESSION_INIT_TIMEOUT
            );
            self.lock().remove(&id);
            if let Err(error) = manager.close_session(&id.as_str().into()).await {
                tracing::debug!(%error, "could not close an uninitialised session");
            }
        }
        let alive = manager.sessions.read().await;
        let mut counts = self.lock();
        let gone: Vec<String> = counts
            .sessions
            .keys()
            .filter(|id| !alive.contains_key(id.as_str()))
            .cloned()
            .collect();
        drop(alive);
        for id in gone {
            counts.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits {
            max_total: 3,
            max_per_principal: 2,
            init_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_principal_over_its_share_is_refused_while_others_still_get_sessions() {
        let sessions = LiveSessions::new(limits());
        let alice = Principal::new("alice").unwrap();
        let bob = Principal::new("bob").unwrap();
        sessions.reserve(&alice).unwrap().opened("a1");
        sessions.reserve(&alice).unwrap().opened("a2");
        assert_eq!(
            sessions.reserve(&alice).err(),
            Some(SessionRefusal::PrincipalFull { max: 2 })
        );
        sessions.reserve(&bob).unwrap().opened("b1");
        assert_eq!(
            sessions.reserve(&bob).err(),
            Some(SessionRefusal::ServerFull { max: 3 })
        );
        sessions.closed("a1");
        assert!(sessions.reserve(&bob).is_ok(), "a closed session frees its place");
    }

    #[test]
    fn a_reservation_dropped_without_a_session_frees_its_place() {
        let sessions = LiveSessions::new(limits());
        let alice = Principal::new("alice").unwrap();
        let first = sessions.reserve(&alice).unwrap();
        let _second = sessions.reserve(&alice).unwrap();
        assert!(sessions.reserve(&alice).is_err());
        drop(first);
        let _third = sessions.reserve(&alice).expect("the dropped one's place is free");
        assert_eq!(sessions.open(), 2);
    }

    #[test]
    fn refusals_name_the_setting_to_change() {
        let full = SessionRefusal::ServerFull { max: 3 }.to_string();
        assert!(full.contains(setting::MAX_SESSIONS), "{full}");
        let mine = SessionRefusal::PrincipalFull { max: 2 }.to_string();
        assert!(mine.contains(setting::MAX_SESSIONS_PER_PRINCIPAL), "{mine}");
    }
}
