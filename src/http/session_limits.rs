//! How many sessions of 2025-era clients are open, in total and per principal, and which
//! were never initialised: `initialize` over a cap is refused before rmcp makes a session
//! (503 over the total, 429 over the principal's share, both with Retry-After), and a
//! session whose client has not sent `notifications/initialized` within the init timeout
//! is closed.
//!
//! An idle session (no request or stream open for [`SessionLimits::park_after`]) is
//! *parked*: rmcp's worker for it (channels, tasks: about 100 KiB) is closed and only its
//! `initialize` parameters stay, in the session store; its next request restores it (rmcp
//! replays the handshake). A parked session unused for [`SessionLimits::idle_expiry`] is
//! forgotten, as rmcp forgets an idle session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::store::SessionStore;
use tokio::time::Instant;

use crate::principal::Principal;
use crate::setting;

/// How often sessions are checked for the init timeout and for having ended in rmcp.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The longest a request waits for its session to finish parking.
const PARKING_WAIT: Duration = Duration::from_secs(5);

/// The bounds on sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Sessions open at once.
    pub max_total: usize,
    /// Sessions one principal may have open at once.
    pub max_per_principal: usize,
    /// How long a new session has to send `notifications/initialized`.
    pub init_timeout: Duration,
    /// How long a session with nothing in progress stays in memory before it is parked.
    pub park_after: Duration,
    /// How long a session unused is kept at all.
    pub idle_expiry: Duration,
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
    /// Requests (and streams) of the session in progress.
    in_flight: usize,
    /// When its last request ended (or it opened).
    used: Instant,
    /// Where its worker is.
    place: Place,
}

/// Where a session's rmcp worker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Running in memory.
    Live,
    /// Being closed to park the session: a request waits until it is parked.
    Parking,
    /// Closed; its `initialize` parameters are in the session store.
    Parked,
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

    /// Counts `session` of `owner`, unknown so far (a sweep finds out if it has no worker
    /// and counts it parked).
    fn adopt(&mut self, session: &str, owner: &Principal, initialized: bool) {
        let now = Instant::now();
        self.add(owner);
        self.sessions.insert(
            session.to_owned(),
            Open {
                owner: owner.clone(),
                opened: now,
                initialized,
                in_flight: 0,
                used: now,
                place: Place::Live,
            },
        );
        crate::observe::metrics::sessions_open(self.sessions.len());
    }

    fn remove(&mut self, session: &str) {
        if let Some(open) = self.sessions.remove(session) {
            self.sub(&open.owner);
        }
        crate::observe::metrics::sessions_open(self.sessions.len());
    }
}

/// The sessions open on this process, bounded by [`SessionLimits`].
pub struct LiveSessions {
    limits: SessionLimits,
    counts: Mutex<Counts>,
    /// rmcp sessions not counted here, and when a sweep first saw each.
    strays: Mutex<HashMap<String, Instant>>,
    /// Where parked sessions' state is kept.
    store: Arc<dyn SessionStore>,
    /// Whether only this process uses `store`: then a session forgotten for being idle is
    /// deleted from it (a shared store expires sessions itself).
    private_store: bool,
}

/// A request of a session in progress: the session is not parked until it drops.
pub struct SessionBusy {
    sessions: Arc<LiveSessions>,
    session: String,
}

impl Drop for SessionBusy {
    fn drop(&mut self) {
        if let Some(open) = self.sessions.lock().sessions.get_mut(&self.session) {
            open.in_flight = open.in_flight.saturating_sub(1);
            open.used = Instant::now();
        }
    }
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
        let now = Instant::now();
        counts.sessions.insert(
            session.to_owned(),
            Open {
                owner: self.owner.clone(),
                opened: now,
                initialized: false,
                in_flight: 0,
                used: now,
                place: Place::Live,
            },
        );
        crate::observe::metrics::sessions_open(counts.sessions.len());
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
    /// No sessions yet, bounded by `limits`; idle sessions are parked in `store`
    /// (`private_store`: only this process uses it).
    pub fn new(
        limits: SessionLimits,
        store: Arc<dyn SessionStore>,
        private_store: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::default(),
            strays: Mutex::default(),
            store,
            private_store,
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
        if counts.per_principal.get(owner).copied().unwrap_or(0) >= self.limits.max_per_principal {
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

    /// A request of `session` begins (`None` for a session not opened here). The client is
    /// using it, so the init timeout no longer applies (it sent `notifications/initialized`
    /// or a later message); a session being parked is waited for, then restored by rmcp.
    ///
    /// `owner` may use the session (the caller checked): a session not known here (opened
    /// on another replica, or before a restart, and restored from the shared store) is
    /// counted from now on, so it is bounded and parked like the others.
    pub async fn begin(self: &Arc<Self>, session: &str, owner: &Principal) -> SessionBusy {
        let waiting_since = Instant::now();
        loop {
            {
                let mut counts = self.lock();
                if !counts.sessions.contains_key(session) {
                    counts.adopt(session, owner, true);
                }
                let Some(open) = counts.sessions.get_mut(session) else {
                    unreachable!("adopted above");
                };
                // A worker that takes long to close is not waited for forever.
                if open.place != Place::Parking || waiting_since.elapsed() >= PARKING_WAIT {
                    open.place = Place::Live;
                    open.initialized = true;
                    open.in_flight += 1;
                    open.used = Instant::now();
                    return SessionBusy {
                        sessions: Arc::clone(self),
                        session: session.to_owned(),
                    };
                }
            }
            // Closing a worker takes a moment.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A session opened without a reservation (its `initialize` was not recognised as one
    /// before rmcp made it): counted from now on, even over the limits, so it is bounded
    /// by the sweep like any other.
    pub fn adopt(&self, session: &str, owner: &Principal) {
        let mut counts = self.lock();
        if !counts.sessions.contains_key(session) {
            counts.adopt(session, owner, false);
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
        let limits = &self.limits;
        let (late, expired, to_park) = {
            let mut counts = self.lock();
            let mut late = Vec::new();
            let mut expired = Vec::new();
            let mut to_park = Vec::new();
            for (id, open) in &mut counts.sessions {
                if open.in_flight > 0 || open.place == Place::Parking {
                    continue;
                }
                if !open.initialized && now.duration_since(open.opened) >= limits.init_timeout {
                    late.push(id.clone());
                } else if now.duration_since(open.used) >= limits.idle_expiry {
                    expired.push(id.clone());
                } else if open.place == Place::Live
                    && now.duration_since(open.used) >= limits.park_after
                {
                    open.place = Place::Parking;
                    to_park.push(id.clone());
                }
            }
            for id in late.iter().chain(&expired) {
                counts.remove(id);
            }
            (late, expired, to_park)
        };
        if !late.is_empty() {
            tracing::debug!(
                sessions = late.len(),
                "closing sessions whose client did not initialize them within {:?} ({})",
                limits.init_timeout,
                setting::SESSION_INIT_TIMEOUT
            );
        }
        for id in &late {
            self.forget(manager, id, true).await;
        }
        for id in &expired {
            self.forget(manager, id, self.private_store).await;
        }
        for id in to_park {
            // A request may have come (and given up waiting) since: only park what is
            // still idle and being parked.
            let still_idle = self
                .lock()
                .sessions
                .get(&id)
                .is_some_and(|open| open.place == Place::Parking && open.in_flight == 0);
            if !still_idle {
                continue;
            }
            if let Err(error) = manager.close_session(&id.as_str().into()).await {
                tracing::debug!(%error, "could not park an idle session");
            }
            if let Some(open) = self.lock().sessions.get_mut(&id)
                && open.place == Place::Parking
            {
                open.place = Place::Parked;
            }
            tracing::debug!("parked an idle session (restored at its next request)");
        }
        // A session whose worker rmcp ended by itself is parked: its state is in the store
        // (until it expires here), and its next request restores it.
        let alive = manager.sessions.read().await;
        let mut strays = Vec::new();
        {
            let mut counts = self.lock();
            for (id, open) in &mut counts.sessions {
                if open.place == Place::Live
                    && open.in_flight == 0
                    && !alive.contains_key(id.as_str())
                {
                    open.place = Place::Parked;
                }
            }
            // Workers rmcp runs for sessions not counted here (an `initialize` whose
            // client went away before its answer) are closed after the init timeout.
            let mut seen = self.strays.lock().unwrap_or_else(PoisonError::into_inner);
            seen.retain(|id, _| {
                alive.contains_key(id.as_str()) && !counts.sessions.contains_key(id)
            });
            for id in alive.keys() {
                if counts.sessions.contains_key(id.as_ref()) {
                    continue;
                }
                let first_seen = *seen.entry(id.to_string()).or_insert(now);
                if now.duration_since(first_seen) >= limits.init_timeout {
                    strays.push(id.to_string());
                }
            }
        }
        drop(alive);
        for id in strays {
            self.strays
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            self.forget(manager, &id, true).await;
        }
    }

    /// Closes `id`'s worker and, when `delete`, its stored state.
    async fn forget(&self, manager: &LocalSessionManager, id: &str, delete: bool) {
        if let Err(error) = manager.close_session(&id.into()).await {
            tracing::debug!(%error, "could not close a session");
        }
        if delete && let Err(error) = self.store.delete(id).await {
            tracing::debug!(%error, "could not delete a session's state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sessions::MemorySessionStore;

    fn limits() -> SessionLimits {
        SessionLimits {
            max_total: 3,
            max_per_principal: 2,
            init_timeout: Duration::from_secs(30),
            park_after: Duration::from_secs(10),
            idle_expiry: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_principal_over_its_share_is_refused_while_others_still_get_sessions() {
        let sessions = LiveSessions::new(limits(), Arc::new(MemorySessionStore::default()), true);
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
        assert!(
            sessions.reserve(&bob).is_ok(),
            "a closed session frees its place"
        );
    }

    #[test]
    fn a_reservation_dropped_without_a_session_frees_its_place() {
        let sessions = LiveSessions::new(limits(), Arc::new(MemorySessionStore::default()), true);
        let alice = Principal::new("alice").unwrap();
        let first = sessions.reserve(&alice).unwrap();
        let _second = sessions.reserve(&alice).unwrap();
        assert!(sessions.reserve(&alice).is_err());
        drop(first);
        let _third = sessions
            .reserve(&alice)
            .expect("the dropped one's place is free");
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
