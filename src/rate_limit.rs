//! Tool calls per principal per minute, so one user (or one runaway agent) cannot spend
//! the whole account's budget or starve the others.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::principal::Principal;

/// A limit on tool calls per principal, refilled evenly over each minute.
pub struct CallRateLimit {
    per_minute: NonZeroU32,
    limiter: DefaultKeyedRateLimiter<Principal>,
    clock: DefaultClock,
    /// Checks so far; every [`FORGET_EVERY`]th one forgets principals with a full allowance.
    checks: AtomicU64,
}

/// How often (in checks) principals whose allowance is full again are forgotten, so the
/// state does not grow with every principal ever seen.
const FORGET_EVERY: u64 = 1024;

/// A call over the limit: how long until the next one is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// Calls allowed per minute.
    pub per_minute: NonZeroU32,
    /// How long to wait before the next call is allowed.
    pub wait: Duration,
}

impl CallRateLimit {
    /// At most `per_minute` calls per principal per minute (all of them may come at once).
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            per_minute,
            limiter: DefaultKeyedRateLimiter::hashmap(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one call from `principal`'s allowance, or says how long to wait.
    pub fn check(&self, principal: &Principal) -> Result<(), OverLimit> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(principal)
            .map_err(|not_until| OverLimit {
                per_minute: self.per_minute,
                wait: not_until.wait_time_from(self.clock.now()),
            })
    }
}

impl OverLimit {
    /// The wait in whole seconds, rounded up (at least 1).
    pub fn wait_seconds(&self) -> u64 {
        let seconds = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        seconds.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_principal_has_its_own_allowance_and_is_told_how_long_to_wait() {
        let limit = CallRateLimit::per_minute(NonZeroU32::new(2).unwrap());
        let alice = Principal::new("alice").unwrap();
        let bob = Principal::new("bob").unwrap();
        assert!(limit.check(&alice).is_ok());
        assert!(limit.check(&alice).is_ok());
        let over = limit.check(&alice).unwrap_err();
        assert_eq!(over.per_minute.get(), 2);
        // Two a minute refill one every 30 s.
        assert!((29..=30).contains(&over.wait_seconds()), "{over:?}");
        assert!(limit.check(&bob).is_ok(), "bob pays for alice's calls");
    }
}
