//! UTC days and months, as the ledger counts them.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Days, Months, NaiveDate};

/// Unix seconds now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcDay(NaiveDate);

impl UtcDay {
    /// The UTC day of the unix second `unix`.
    pub fn of(unix: i64) -> UtcDay {
        UtcDay(
            DateTime::from_timestamp(unix, 0)
                .unwrap_or_default()
                .date_naive(),
        )
    }

    /// The day `day` (days since 1970-01-01).
    pub fn from_day(day: i64) -> UtcDay {
        UtcDay::of(day * 86_400)
    }

    /// Days since 1970-01-01.
    pub fn day(self) -> i64 {
        self.0
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp() / 86_400)
            .unwrap_or(0)
    }

    /// The first day of its month, as days since 1970-01-01.
    pub fn month_start(self) -> i64 {
        UtcDay(self.0.with_day(1).unwrap_or(self.0)).day()
    }

    /// `YYYY-MM-DD`.
    pub fn date(self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }

    /// `YYYY-MM`.
    pub fn month(self) -> String {
        self.0.format("%Y-%m").to_string()
    }

    /// When the next day starts (a day's limit resets), RFC 3339.
    pub fn next_day_rfc3339(self) -> String {
        let next = self.0.checked_add_days(Days::new(1)).unwrap_or(self.0);
        format!("{}T00:00:00Z", next.format("%Y-%m-%d"))
    }

    /// When the next month starts (a month's limit resets), RFC 3339.
    pub fn next_month_rfc3339(self) -> String {
        let first = self.0.with_day(1).unwrap_or(self.0);
        let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
        format!("{}T00:00:00Z", next.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_are_utc() {
        // 2026-12-31T23:59:59Z, then a second later.
        let last = UtcDay::of(1_798_761_599);
        let next = UtcDay::of(1_798_761_600);
        assert_eq!(last.date(), "2026-12-31");
        assert_eq!(next.date(), "2027-01-01");
        assert_eq!(next.day() - last.day(), 1);
        assert_eq!(last.month(), "2026-12");
        assert_eq!(UtcDay::from_day(last.month_start()).date(), "2026-12-01");
        assert_eq!(UtcDay::from_day(last.day()), last);
        assert_eq!(last.next_day_rfc3339(), "2027-01-01T00:00:00Z");
        assert_eq!(last.next_month_rfc3339(), "2027-01-01T00:00:00Z");
        let mid = UtcDay::of(1_796_083_200 + 86_400 * 14); // 2026-12-15
        assert_eq!(mid.date(), "2026-12-15");
        assert_eq!(mid.next_day_rfc3339(), "2026-12-16T00:00:00Z");
        assert_eq!(mid.next_month_rfc3339(), "2027-01-01T00:00:00Z");
    }
}
