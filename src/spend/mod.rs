//! Spend: each priced call's worst case checked against its principal's limits (the
//! budgets file) and, above `VULTR_MCP_CONFIRM_ABOVE_USD`, put to the user before anything
//! is sent; then what it really cost, kept in the ledger per principal, model and UTC day.
//!
//! A service quotes a call ([`Quote`]) and takes a [`Hold`] from the call's [`CallSpend`]
//! before it sends anything; it settles the hold to the real cost when the answer comes.
//! A hold dropped unsettled (the call failed or was cancelled) releases its reservation.

mod budgets;
mod days;
mod error;
mod usage;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

pub use budgets::{Budgets, BudgetsError, Limits};
pub use days::{UtcDay, now_unix};
pub use error::SpendError;
pub use usage::{ModelUsage, PrincipalUsage, UsageReport};

use crate::observe::{CallFacts, Charge, Outcome};
use crate::principal::Principal;
use crate::store::{Caps, LedgerStore, Reservation, Settlement};

/// What a call could cost at most, before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The model it runs on.
    pub model: String,
    /// The most it can cost in USD, when that can be told (the catalog prices the model
    /// and the output is bounded).
    pub worst_case_usd: Option<f64>,
    /// Why the worst case cannot be told, when it cannot (for the refusal's message).
    pub unbounded_because: Option<String>,
}

impl Quote {
    /// A call whose worst case is `usd` on `model`.
    pub fn at_most(model: &str, usd: f64) -> Quote {
        Quote {
            model: model.to_owned(),
            worst_case_usd: Some(usd),
            unbounded_because: None,
        }
    }

    /// A call on `model` whose worst case cannot be told, because of `why`.
    pub fn unbounded(model: &str, why: impl Into<String>) -> Quote {
        Quote {
            model: model.to_owned(),
            worst_case_usd: None,
            unbounded_because: Some(why.into()),
        }
    }
}

/// What the user said of a call's cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Go ahead.
    Accepted,
    /// Do not send it.
    Declined,
    /// The client cannot be asked (it declared no elicitation, or its protocol has no way).
    CannotAsk,
    /// The question went back to the client as the call's result (2026-07-28
    /// input-required); the call ends now and is made again with the answer.
    InputRequired,
}

/// Asks the user whether a call may spend its worst case (the tool layer implements it
/// per client: elicitation, or an input-required result). `Any`, so the tool layer can find
/// the question its own approver stashed for the call's answer.
#[async_trait]
pub trait Approve: Send + Sync + std::any::Any {
    /// The user's answer for `quote`.
    async fn approve(&self, quote: &Quote) -> Approval;
}

/// The spend rules and ledger of the process: built once (by `App`).
pub struct Spending {
    budgets: Budgets,
    ledger: Arc<dyn LedgerStore>,
    confirm_above_usd: Option<f64>,
    admins: BTreeSet<String>,
    /// How long a reservation counts when its call never settles (its replica died).
    hold_for: Duration,
    /// Unix seconds now (tests move it across days).
    clock: fn() -> i64,
    /// When the ledger was last pruned (unix seconds).
    pruned_at: AtomicI64,
}

/// How long ledger rows are kept: 400 days, so this month and the same month a year ago
/// can be compared.
pub const KEPT_DAYS: i64 = 400;

/// How often the ledger is pruned, at most (seconds).
const PRUNE_EVERY: i64 = 3_600;

impl Spending {
    /// Spending under `budgets`, kept in `ledger`.
    pub fn new(
        budgets: Budgets,
        ledger: Arc<dyn LedgerStore>,
        confirm_above_usd: Option<f64>,
        admins: impl IntoIterator<Item = String>,
        hold_for: Duration,
    ) -> Spending {
        Spending {
            budgets,
            ledger,
            confirm_above_usd,
            admins: admins.into_iter().collect(),
            hold_for,
            clock: now_unix,
            pruned_at: AtomicI64::new(i64::MIN),
        }
    }

    /// Deletes ledger rows older than [`KEPT_DAYS`] and lapsed reservations, at most once
    /// an hour, in the background.
    fn prune_now_and_then(&self, now: i64) {
        let last = self.pruned_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PRUNE_EVERY
            || self
                .pruned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let ledger = self.ledger.clone();
        let before = UtcDay::of(now).day() - KEPT_DAYS;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = ledger.prune(before, now).await {
                    tracing::warn!(%error, "the spend ledger could not be pruned; it is tried again in an hour");
                }
            });
        }
    }

    /// The same with another clock.
    #[cfg(test)]
    pub fn with_clock(mut self, clock: fn() -> i64) -> Spending {
        self.clock = clock;
        self
    }

    /// The limits of `principal`.
    pub fn limits(&self, principal: &Principal) -> Limits {
        self.budgets.of(principal)
    }

    /// Whether calls above some worst case are put to the user (`VULTR_MCP_CONFIRM_ABOVE_USD`).
    pub fn asks(&self) -> bool {
        self.confirm_above_usd.is_some()
    }

    /// Whether `principal` sees everyone's spending.
    pub fn is_admin(&self, principal: &Principal) -> bool {
        self.admins.contains(principal.as_str())
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn LedgerStore> {
        &self.ledger
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}

/// One call's spending: who pays, the rules, where its charges are recorded, and who can
/// be asked.
#[derive(Clone)]
pub struct CallSpend {
    spending: Arc<Spending>,
    owner: Principal,
    facts: CallFacts,
    approver: Option<Arc<dyn Approve>>,
    /// What the user said yes to in this call: its later requests (a delegation's turns,
    /// a comparison's answers) are not asked about again.
    approved: Arc<Mutex<Approved>>,
}

/// What the user said yes to in one call.
#[derive(Debug, Default)]
enum Approved {
    /// Nothing yet.
    #[default]
    Nothing,
    /// Requests to this model.
    Model(String),
    /// Every request of the call (the user was asked about their sum).
    Everything,
}

impl std::fmt::Debug for CallSpend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSpend")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl CallSpend {
    /// The spending of one call for `owner`, its charges recorded in `facts`; `approver`
    /// asks the user when a call's worst case is over the confirmation threshold (none:
    /// the client cannot be asked).
    pub fn new(
        spending: Arc<Spending>,
        owner: Principal,
        facts: CallFacts,
        approver: Option<Arc<dyn Approve>>,
    ) -> CallSpend {
        CallSpend {
            spending,
            owner,
            facts,
            approver,
            approved: Arc::default(),
        }
    }

    /// A call of `local` that no limit applies to, recorded in a ledger of its own (for
    /// tests of what is not about spending).
    #[cfg(test)]
    pub fn unlimited() -> CallSpend {
        let ledger = crate::store::open_stores(
            crate::store::StoreLocation::InMemory,
            crate::store::Retention {
                max_conversations: 1,
                max_age: Duration::MAX,
            },
            1,
        )
        .ledger;
        CallSpend::new(
            Arc::new(Spending::new(
                Budgets::default(),
                ledger,
                None,
                [],
                Duration::from_secs(60),
            )),
            Principal::local(),
            CallFacts::default(),
            None,
        )
    }

    /// Whether the user already said yes to `model` in this call.
    fn approved_already(&self, model: &str) -> bool {
        match &*self.approved.lock().unwrap_or_else(PoisonError::into_inner) {
            Approved::Nothing => false,
            Approved::Model(approved) => approved == model,
            Approved::Everything => true,
        }
    }

    /// Checks, before any is sent, a call that sends several requests at once (`quote`:
    /// the sum of their worst cases, `model` naming them all) as one call: against the
    /// per-call limit, against what is left of the day's and month's limits, and, over the
    /// confirmation threshold, with the user once (a yes covers every request of the call).
    /// Each request still takes its own hold when it is sent.
    pub async fn check_all(&self, quote: Quote) -> Result<(), SpendError> {
        let checked = self.try_check_all(quote).await;
        if let Err(error) = &checked {
            self.facts.refused(error.outcome());
        }
        checked
    }

    async fn try_check_all(&self, quote: Quote) -> Result<(), SpendError> {
        let spending = &self.spending;
        let limits = spending.limits(&self.owner);
        self.within_limits(&quote, &limits).await?;
        let Some(threshold) = spending.confirm_above_usd else {
            return Ok(());
        };
        if quote.worst_case_usd.is_some_and(|worst| worst <= threshold) {
            return Ok(());
        }
        self.ask(quote, threshold, Approved::Everything).await
    }

    /// Asks the user about `quote`, over `threshold`; a yes is remembered as `approved`.
    async fn ask(
        &self,
        quote: Quote,
        threshold: f64,
        approved: Approved,
    ) -> Result<(), SpendError> {
        let answer = match &self.approver {
            Some(approver) => approver.approve(&quote).await,
            None => Approval::CannotAsk,
        };
        match answer {
            Approval::Accepted => {
                *self.approved.lock().unwrap_or_else(PoisonError::into_inner) = approved;
                Ok(())
            }
            Approval::Declined => Err(SpendError::Declined {
                model: quote.model,
                worst_case_usd: quote.worst_case_usd,
            }),
            Approval::CannotAsk => Err(SpendError::CannotAsk {
                model: quote.model,
                worst_case_usd: quote.worst_case_usd,
                threshold_usd: threshold,
            }),
            Approval::InputRequired => Err(SpendError::AwaitingInput),
        }
    }

    /// Who pays.
    pub fn owner(&self) -> &Principal {
        &self.owner
    }

    /// Checks `quote` against the owner's limits, asks the user when it is over the
    /// confirmation threshold, and reserves it against the day's and month's limits:
    /// refused (and recorded as a refusal in the call's facts) when any of these says no.
    pub async fn hold(&self, quote: Quote) -> Result<Hold, SpendError> {
        let held = self.try_hold(quote).await;
        if let Err(error) = &held {
            self.facts.refused(error.outcome());
        }
        held
    }

    /// The worst case of `quote` once it is within `limits`: the per-call limit, and what
    /// is left of the day's and month's after what is spent and reserved (checked before
    /// asking, so nobody is asked about a call that is refused anyway).
    async fn within_limits(&self, quote: &Quote, limits: &Limits) -> Result<f64, SpendError> {
        let worst = match quote.worst_case_usd {
            Some(worst) => worst,
            None if limits.any() => {
                return Err(SpendError::Unbounded {
                    model: quote.model.clone(),
                    why: quote.unbounded_because.clone().unwrap_or_default(),
                });
            }
            // Nothing to check against; the user is still asked when a threshold is set.
            None => 0.0,
        };
        if let Some(limit) = limits.per_call_usd
            && worst > limit
        {
            return Err(SpendError::OverPerCall {
                model: quote.model.clone(),
                worst_case_usd: worst,
                limit_usd: limit,
            });
        }
        if limits.over_time() {
            let spending = &self.spending;
            let now = spending.now();
            let today = UtcDay::of(now);
            let spent = spending
                .ledger
                .spent(&self.owner, today.day(), today.month_start(), now)
                .await
                .map_err(SpendError::Ledger)?;
            over_time_limit(limits, spent, worst, today, &quote.model)?;
        }
        Ok(worst)
    }

    async fn try_hold(&self, quote: Quote) -> Result<Hold, SpendError> {
        let spending = &self.spending;
        let limits = spending.limits(&self.owner);
        let worst = self.within_limits(&quote, &limits).await?;
        if let Some(threshold) = spending.confirm_above_usd
            && quote.worst_case_usd.is_none_or(|worst| worst > threshold)
            && !self.approved_already(&quote.model)
        {
            let model = Approved::Model(quote.model.clone());
            self.ask(quote.clone(), threshold, model).await?;
        }
        // The user may have taken minutes to answer: the reservation counts from now.
        let now = spending.now();
        let today = UtcDay::of(now);
        let reservation = if limits.over_time() {
            let reserved = spending
                .ledger
                .reserve(
                    &Reservation {
                        owner: &self.owner,
                        day: today.day(),
                        month_start: today.month_start(),
                        usd: worst,
                        caps: Caps {
                            daily_usd: limits.daily_usd,
                            monthly_usd: limits.monthly_usd,
                        },
                        expires_at: now + spending.hold_for.as_secs() as i64,
                    },
                    now,
                )
                .await
                .map_err(SpendError::Ledger)?;
            match reserved {
                Ok(id) => Some(id),
                Err(spent) => {
                    over_time_limit(&limits, spent, worst, today, &quote.model)?;
                    // The ledger refused although the sums allow it: a rounding edge.
                    return Err(SpendError::OverLimit {
                        period: "day",
                        model: quote.model,
                        limit_usd: limits.daily_usd.or(limits.monthly_usd).unwrap_or(0.0),
                        spent_usd: spent.day_usd,
                        worst_case_usd: worst,
                        resets: today.next_day_rfc3339(),
                    });
                }
            }
        } else {
            None
        };
        Ok(Hold {
            spend: self.clone(),
            model: quote.model,
            day: today.day(),
            reservation,
            worst_case_usd: quote.worst_case_usd,
            sent: false,
            done: false,
        })
    }
}

/// Refuses a call whose worst case `worst`, on top of `spent`, would pass a limit.
fn over_time_limit(
    limits: &Limits,
    spent: crate::store::Spent,
    worst: f64,
    today: UtcDay,
    model: &str,
) -> Result<(), SpendError> {
    let checks = [
        (
            "day",
            limits.daily_usd,
            spent.day_usd,
            today.next_day_rfc3339(),
        ),
        (
            "month",
            limits.monthly_usd,
            spent.month_usd,
            today.next_month_rfc3339(),
        ),
    ];
    for (period, limit, spent, resets) in checks {
        if let Some(limit) = limit
            && spent + worst > limit + 1e-12
        {
            return Err(SpendError::OverLimit {
                period,
                model: model.to_owned(),
                limit_usd: limit,
                spent_usd: spent,
                worst_case_usd: worst,
                resets,
            });
        }
    }
    Ok(())
}

/// A call's worst case, held until it is settled to the real cost. One released (Vultr
/// answered with an error, which it does not bill) or dropped before the request was sent
/// spends nothing; one dropped after it was sent (cancelled, cut off, an answer that could
/// not be read) is charged its worst case, since Vultr bills what it generated and reports
/// it only in a complete answer.
pub struct Hold {
    spend: CallSpend,
    model: String,
    day: i64,
    reservation: Option<String>,
    worst_case_usd: Option<f64>,
    /// The request went out.
    sent: bool,
    /// Settled or released.
    done: bool,
}

/// What a call used, as the answer counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Used {
    /// USD, when the answer's counts could be priced.
    pub usd: Option<f64>,
    /// Prompt tokens (or the model kind's input units), when counted.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, when counted.
    pub completion_tokens: Option<u64>,
}

impl Hold {
    /// Marks the request as sent: from now on, dropping the hold charges its worst case.
    pub fn sending(&mut self) {
        self.sent = true;
    }

    /// Gives the reservation back: the call spent nothing (Vultr answered with an error
    /// status, or nothing was sent).
    pub async fn release(&mut self) {
        self.done = true;
        if let Some(id) = self.reservation.take()
            && let Err(error) = self
                .spend
                .spending
                .ledger
                .release(&self.spend.owner, &id)
                .await
        {
            tracing::warn!(%error, "a spend reservation could not be released; it lapses on its own");
        }
    }

    /// Records what the call cost: `used.usd`, or its worst case when the answer did not
    /// say (a priced model whose answer carried no counts is charged its worst case, so a
    /// limit is never passed by uncounted calls).
    pub async fn settle(mut self, used: Used) {
        self.done = true;
        let charge = Charge {
            model: std::mem::take(&mut self.model),
            prompt_tokens: used.prompt_tokens,
            completion_tokens: used.completion_tokens,
            usd: used.usd.or(self.worst_case_usd),
        };
        let reservation = self.reservation.take();
        record(&self.spend, reservation, self.day, &charge).await;
        self.spend.facts.charge(charge);
        self.spend
            .spending
            .prune_now_and_then(self.spend.spending.now());
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let spend = self.spend.clone();
        let reservation = self.reservation.take();
        if !self.sent {
            let Some(id) = reservation else {
                return;
            };
            runtime.spawn(async move {
                if let Err(error) = spend.spending.ledger.release(&spend.owner, &id).await {
                    tracing::warn!(%error, "a spend reservation could not be released; it lapses on its own");
                }
            });
            return;
        }
        let charge = Charge {
            model: std::mem::take(&mut self.model),
            prompt_tokens: None,
            completion_tokens: None,
            usd: self.worst_case_usd,
        };
        spend.facts.charge(charge.clone());
        let day = self.day;
        runtime.spawn(async move { record(&spend, reservation, day, &charge).await });
    }
}

/// Writes `charge` to the ledger for `spend`'s payer on `day`, replacing `reservation`; a
/// failure is logged (the call's own record still has the charge).
async fn record(spend: &CallSpend, reservation: Option<String>, day: i64, charge: &Charge) {
    let settled = spend
        .spending
        .ledger
        .settle(&Settlement {
            owner: &spend.owner,
            reservation: reservation.as_deref(),
            model: &charge.model,
            day,
            usd: charge.usd.unwrap_or(0.0),
            prompt_tokens: charge.prompt_tokens.unwrap_or(0),
            completion_tokens: charge.completion_tokens.unwrap_or(0),
        })
        .await;
    if let Err(error) = settled {
        tracing::warn!(%error, "a call's cost could not be recorded in the spend ledger");
    }
}

impl SpendError {
    /// How a call refused for this ends, in records and metrics.
    pub fn outcome(&self) -> Outcome {
        match self {
            SpendError::Declined { .. } | SpendError::CannotAsk { .. } => Outcome::NotConfirmed,
            SpendError::AwaitingInput => Outcome::InputRequired,
            _ => Outcome::OverBudget,
        }
    }
}

#[cfg(test)]
mod tests;
