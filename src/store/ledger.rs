//! The spend ledger, whatever the store: what each principal spent per model and UTC day
//! (the [`LedgerStore`] trait and its records). A call that a day's or month's limit
//! applies to first reserves its worst case (refused when that could pass a limit), then
//! settles to what it really cost; replicas sharing a store share the ledger, and the
//! check and the reservation are one atomic step, so concurrent calls of one principal
//! never pass a limit together.

use async_trait::async_trait;

use super::StoreResult;
use crate::principal::Principal;

/// A UTC day: days since 1970-01-01.
pub type Day = i64;

/// The limits a reservation is checked against, in USD (none: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Caps {
    /// Most the day's spending may reach.
    pub daily_usd: Option<f64>,
    /// Most the month's spending may reach.
    pub monthly_usd: Option<f64>,
}

/// What a principal has spent (settled, plus reservations still held) in a day and in the
/// month up to and including it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// The day's.
    pub day_usd: f64,
    /// The month's, the day included.
    pub month_usd: f64,
}

/// A call's worst case, to reserve against its principal's limits.
#[derive(Debug, Clone)]
pub struct Reservation<'a> {
    /// Who spends.
    pub owner: &'a Principal,
    /// The day it is spent on.
    pub day: Day,
    /// The first day of that day's month.
    pub month_start: Day,
    /// The worst case, in USD.
    pub usd: f64,
    /// The limits it must stay within.
    pub caps: Caps,
    /// When (unix seconds) the reservation stops counting, should its call never settle
    /// (its replica died).
    pub expires_at: i64,
}

/// What a call really cost, added to its principal's row for the model and day.
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    /// Who spent.
    pub owner: &'a Principal,
    /// The reservation it replaces, if one was made.
    pub reservation: Option<&'a str>,
    /// The model.
    pub model: &'a str,
    /// The day it is counted on (the reservation's).
    pub day: Day,
    /// USD.
    pub usd: f64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// One principal's spending on one model in one day.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// Who.
    pub principal: String,
    /// The model.
    pub model: String,
    /// The day.
    pub day: Day,
    /// USD.
    pub usd: f64,
    /// Priced calls.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// Keeps the spend ledger.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Reserves `reservation.usd` unless the day's or month's spending (settled plus
    /// reservations unexpired at `now`, unix seconds) would then pass a cap: `Ok(id)`, or
    /// `Err` with what is spent. The check and the reservation are one atomic step.
    async fn reserve(
        &self,
        reservation: &Reservation<'_>,
        now: i64,
    ) -> StoreResult<Result<String, Spent>>;

    /// Adds what a call cost to its row, dropping its reservation, in one step.
    async fn settle(&self, settlement: &Settlement<'_>) -> StoreResult<()>;

    /// Drops `owner`'s reservation `id` (the call spent nothing).
    async fn release(&self, owner: &Principal, id: &str) -> StoreResult<()>;

    /// What `owner` spent on `day` and in its month (from `month_start`), reservations
    /// unexpired at `now` included.
    async fn spent(
        &self,
        owner: &Principal,
        day: Day,
        month_start: Day,
        now: i64,
    ) -> StoreResult<Spent>;

    /// The rows from `since` on: `owner`'s, or everyone's when `None`; by principal, day
    /// and model.
    async fn usage(&self, owner: Option<&Principal>, since: Day) -> StoreResult<Vec<UsageRow>>;

    /// Deletes rows of days before `before` and reservations expired at `now`; how many.
    async fn prune(&self, before: Day, now: i64) -> StoreResult<usize>;
}
