//! Holding a call's worst case: the limits, the confirmation threshold, the ledger down,
//! and what a settled or dropped hold leaves.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::store::{Day, Retention, Spent, StoreError, StoreLocation, StoreResult, UsageRow};

/// 2026-12-15T01:00:00Z.
fn clock() -> i64 {
    20_802 * 86_400 + 3_600
}

fn memory_ledger() -> Arc<dyn LedgerStore> {
    crate::store::open_stores(
        StoreLocation::InMemory,
        Retention {
            max_conversations: 1,
            max_age: Duration::MAX,
        },
        1,
    )
    .ledger
}

fn spending(
    budgets: &str,
    confirm_above: Option<f64>,
    ledger: Arc<dyn LedgerStore>,
) -> Arc<Spending> {
    let budgets = Budgets::parse(budgets, std::path::Path::new("budgets.json")).unwrap();
    Arc::new(
        Spending::new(
            budgets,
            ledger,
            confirm_above,
            ["root".to_owned()],
            Duration::from_secs(600),
        )
        .with_clock(clock),
    )
}

fn alice() -> Principal {
    Principal::new("alice").unwrap()
}

/// An approver that answers `answer` and counts how often it was asked.
struct Answering {
    answer: Approval,
    asked: AtomicUsize,
    quotes: Mutex<Vec<Quote>>,
}

#[async_trait]
impl Approve for Answering {
    async fn approve(&self, quote: &Quote) -> Approval {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.quotes.lock().unwrap().push(quote.clone());
        self.answer.clone()
    }
}

fn answering(answer: Approval) -> Arc<Answering> {
    Arc::new(Answering {
        answer,
        asked: AtomicUsize::new(0),
        quotes: Mutex::new(Vec::new()),
    })
}

fn call(spending: &Arc<Spending>, approver: Option<Arc<Answering>>) -> (CallSpend, CallFacts) {
    let facts = CallFacts::default();
    let spend = CallSpend::new(
        spending.clone(),
        alice(),
        facts.clone(),
        approver.map(|a| a as Arc<dyn Approve>),
    );
    (spend, facts)
}

#[tokio::test]
async fn a_call_over_the_per_call_limit_is_refused_and_recorded_as_over_budget() {
    let spending = spending(
        r#"{"alice": {"per_call_usd": 0.05}}"#,
        None,
        memory_ledger(),
    );
    let (spend, facts) = call(&spending, None);
    let error = spend
        .hold(Quote::at_most("big-model", 0.08))
        .await
        .err()
        .expect("over the per-call limit");
    let text = error.to_string();
    assert!(
        text.contains("up to $0.080000") && text.contains("per-call limit of $0.05"),
        "{text}"
    );
    assert!(
        text.contains("VULTR_MCP_BUDGETS") && text.contains("max_tokens"),
        "{text}"
    );
    assert_eq!(facts.snapshot().refusal, Some(Outcome::OverBudget));
    assert!(
        spend.hold(Quote::at_most("big-model", 0.05)).await.is_ok(),
        "at the limit is fine"
    );
}

#[tokio::test]
async fn the_daily_limit_holds_worst_cases_until_they_settle_to_the_real_cost() {
    let spending = spending(
        r#"{"*": {"daily_usd": 1.0, "monthly_usd": 50}}"#,
        None,
        memory_ledger(),
    );
    let (spend, facts) = call(&spending, None);
    let first = spend.hold(Quote::at_most("m", 0.6)).await.unwrap();
    let refused = spend
        .hold(Quote::at_most("m", 0.6))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("daily spend limit is $1")
            && refused.contains("$0.600000 is spent or reserved this day (UTC)")
            && refused.contains("$0.400000 is left")
            && refused.contains("could cost up to $0.600000")
            && refused.contains("resets at 2026-12-16T00:00:00Z")
            && refused.contains("vultr://usage"),
        "{refused}"
    );
    first
        .settle(Used {
            usd: Some(0.1),
            prompt_tokens: Some(100),
            completion_tokens: Some(20),
        })
        .await;
    let second = spend
        .hold(Quote::at_most("m", 0.6))
        .await
        .expect("0.1 spent, 0.6 fits");
    second.settle(Used::default()).await;
    let charges = facts.snapshot().charges;
    assert_eq!(charges.len(), 2);
    assert_eq!(charges[0].usd, Some(0.1));
    assert_eq!(
        charges[1].usd,
        Some(0.6),
        "an answer without counts is charged its worst case"
    );
    let rows = spending.ledger().usage(Some(&alice()), 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        (rows[0].usd - 0.7).abs() < 1e-9 && rows[0].calls == 2,
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_dropped_hold_gives_its_reservation_back() {
    let spending = spending(r#"{"*": {"daily_usd": 1.0}}"#, None, memory_ledger());
    let (spend, _) = call(&spending, None);
    let hold = spend.hold(Quote::at_most("m", 0.9)).await.unwrap();
    drop(hold);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        spend.hold(Quote::at_most("m", 0.9)).await.is_ok(),
        "the failed call spent nothing"
    );
}

#[tokio::test]
async fn a_hold_dropped_after_sending_is_charged_its_worst_case_and_a_refused_one_nothing() {
    let spending = spending(r#"{"*": {"daily_usd": 1.0}}"#, None, memory_ledger());
    let (spend, facts) = call(&spending, None);
    let mut cut_off = spend.hold(Quote::at_most("m", 0.25)).await.unwrap();
    cut_off.sending();
    drop(cut_off);
    let mut refused = spend.hold(Quote::at_most("m", 0.5)).await.unwrap();
    refused.sending();
    refused.release().await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let rows = spending.ledger().usage(Some(&alice()), 0).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!((rows[0].usd - 0.25).abs() < 1e-9, "{rows:?}");
    let charges = facts.snapshot().charges;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].usd, Some(0.25));
    let left = spend.hold(Quote::at_most("m", 0.75)).await;
    assert!(left.is_ok(), "0.25 charged, nothing held: 0.75 fits");
}

#[tokio::test]
async fn a_yes_covers_the_calls_later_requests_on_that_model_only() {
    let spending = spending("{}", Some(0.01), memory_ledger());
    let approver = answering(Approval::Accepted);
    let (spend, _) = call(&spending, Some(approver.clone()));
    for worst in [0.02, 0.03, 0.05] {
        spend.hold(Quote::at_most("m", worst)).await.unwrap();
    }
    assert_eq!(
        approver.asked.load(Ordering::SeqCst),
        1,
        "a delegation's turns are asked once"
    );
    spend.hold(Quote::at_most("other", 0.02)).await.unwrap();
    assert_eq!(
        approver.asked.load(Ordering::SeqCst),
        2,
        "another model is asked about"
    );
    let (fresh, _) = call(&spending, Some(approver.clone()));
    fresh.hold(Quote::at_most("m", 0.02)).await.unwrap();
    assert_eq!(
        approver.asked.load(Ordering::SeqCst),
        3,
        "another call is asked again"
    );
}

#[tokio::test]
async fn a_call_whose_cost_cannot_be_told_is_refused_only_when_a_limit_applies() {
    let limited = spending(r#"{"alice": {"monthly_usd": 10}}"#, None, memory_ledger());
    let (spend, _) = call(&limited, None);
    let text = spend
        .hold(Quote::unbounded("m", "the model catalog could not be read"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("cannot be told (the model catalog could not be read)")
            && text.contains("max_tokens"),
        "{text}"
    );
    let free = spending(r#"{"bob": {"monthly_usd": 10}}"#, None, memory_ledger());
    let (spend, facts) = call(&free, None);
    spend
        .hold(Quote::unbounded("m", "unknown"))
        .await
        .unwrap()
        .settle(Used::default())
        .await;
    assert_eq!(facts.snapshot().charges[0].usd, None, "recorded, unpriced");
}

#[tokio::test]
async fn above_the_threshold_the_user_is_asked_and_their_answer_decides() {
    let spending = spending("{}", Some(0.01), memory_ledger());
    let accepting = answering(Approval::Accepted);
    let (spend, _) = call(&spending, Some(accepting.clone()));
    assert!(spend.hold(Quote::at_most("m", 0.005)).await.is_ok());
    assert_eq!(
        accepting.asked.load(Ordering::SeqCst),
        0,
        "under the threshold nobody is asked"
    );
    assert!(spend.hold(Quote::at_most("m", 0.02)).await.is_ok());
    assert_eq!(accepting.asked.load(Ordering::SeqCst), 1);
    assert_eq!(
        accepting.quotes.lock().unwrap()[0],
        Quote::at_most("m", 0.02)
    );

    let declining = answering(Approval::Declined);
    let (spend, facts) = call(&spending, Some(declining));
    let text = spend
        .hold(Quote::at_most("m", 0.02))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("declined") && text.contains("$0.020000"),
        "{text}"
    );
    assert_eq!(facts.snapshot().refusal, Some(Outcome::NotConfirmed));

    let (spend, _) = call(&spending, None);
    let text = spend
        .hold(Quote::at_most("m", 0.02))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("cannot be asked") && text.contains("VULTR_MCP_CONFIRM_ABOVE_USD"),
        "{text}"
    );

    let (spend, facts) = call(&spending, Some(answering(Approval::InputRequired)));
    assert!(matches!(
        spend.hold(Quote::at_most("m", 0.02)).await,
        Err(SpendError::AwaitingInput)
    ));
    assert_eq!(facts.snapshot().refusal, Some(Outcome::InputRequired));
}

#[tokio::test]
async fn nobody_is_asked_about_a_call_the_limits_refuse_anyway() {
    let spending = spending(
        r#"{"*": {"daily_usd": 0.01}}"#,
        Some(0.001),
        memory_ledger(),
    );
    let approver = answering(Approval::Accepted);
    let (spend, _) = call(&spending, Some(approver.clone()));
    assert!(spend.hold(Quote::at_most("m", 0.02)).await.is_err());
    assert_eq!(approver.asked.load(Ordering::SeqCst), 0);
}

/// A ledger whose store is down.
struct Down;

#[async_trait]
impl LedgerStore for Down {
    async fn reserve(&self, _: &Reservation<'_>, _: i64) -> StoreResult<Result<String, Spent>> {
        Err(down())
    }
    async fn settle(&self, _: &Settlement<'_>) -> StoreResult<()> {
        Err(down())
    }
    async fn release(&self, _: &Principal, _: &str) -> StoreResult<()> {
        Err(down())
    }
    async fn spent(&self, _: &Principal, _: Day, _: Day, _: i64) -> StoreResult<Spent> {
        Err(down())
    }
    async fn usage(&self, _: Option<&Principal>, _: Day) -> StoreResult<Vec<UsageRow>> {
        Err(down())
    }
    async fn prune(&self, _: Day, _: i64) -> StoreResult<usize> {
        Err(down())
    }
}

fn down() -> StoreError {
    StoreError::Open {
        location: "Postgres database".to_owned(),
        source: "connection refused".into(),
    }
}

#[tokio::test]
async fn with_the_ledger_down_limited_calls_are_refused_and_unlimited_ones_go_ahead() {
    let spending = spending(r#"{"alice": {"daily_usd": 5}}"#, None, Arc::new(Down));
    let (spend, _) = call(&spending, None);
    let text = spend
        .hold(Quote::at_most("m", 0.01))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("spend ledger cannot be read") && text.contains("Try again"),
        "{text}"
    );
    let spending = self::spending(r#"{"bob": {"daily_usd": 5}}"#, None, Arc::new(Down));
    let (spend, facts) = call(&spending, None);
    let hold = spend
        .hold(Quote::at_most("m", 0.01))
        .await
        .expect("no limit applies to alice");
    hold.settle(Used {
        usd: Some(0.01),
        ..Used::default()
    })
    .await;
    assert_eq!(
        facts.snapshot().charges.len(),
        1,
        "the call's record still has its cost"
    );
}

#[test]
fn admins_are_the_principals_named() {
    let spending = spending("{}", None, memory_ledger());
    assert!(spending.is_admin(&Principal::new("root").unwrap()));
    assert!(!spending.is_admin(&alice()));
}
