//! The time task records are stamped with: wall-clock milliseconds that advance with
//! tokio's clock, so tests on paused time can age a heartbeat or a TTL.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Unix milliseconds: the wall clock when made, advanced by tokio's clock since.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    wall_ms: i64,
    started: Instant,
}

impl WallClock {
    /// A clock reading the wall clock now.
    pub fn new() -> Self {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            wall_ms,
            started: Instant::now(),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.wall_ms.saturating_add(elapsed)
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

/// `ms` unix milliseconds as an RFC 3339 timestamp (UTC, milliseconds).
pub(crate) fn rfc3339(ms: i64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_moves_with_tokio_time() {
        let clock = WallClock::new();
        let before = clock.now_ms();
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        assert_eq!(clock.now_ms() - before, 61_000);
    }
}
