//! What every [`LedgerStore`] promises, as checks any implementation runs on itself:
//! [`check_ledger_contract`] on an empty store (SQLite file, memory, Postgres), and
//! [`check_concurrent_reservations`] on one or more stores sharing a ledger (replicas).

use std::sync::Arc;

use super::{Check, run_checks};
use crate::principal::Principal;
use crate::store::{Caps, LedgerStore, Reservation, Settlement, Spent, UsageRow};

/// The checks, in order; each uses principals of its own.
const CHECKS: &[Check<dyn LedgerStore>] = &[
    check!(a_reservation_within_the_caps_counts_until_it_settles_to_the_real_cost),
    check!(over_a_cap_nothing_is_reserved_and_what_is_spent_comes_back),
    check!(a_released_reservation_no_longer_counts),
    check!(an_expired_reservation_no_longer_counts_and_is_pruned),
    check!(the_month_counts_from_its_first_day_and_the_day_only_itself),
    check!(settled_costs_add_up_per_model_and_day),
    check!(each_principal_sees_only_its_own_usage_and_an_admin_view_sees_all),
    check!(old_days_are_pruned),
];

/// A day in the middle of a month (2026-12-15), and its month's first day.
const DAY: i64 = 20_802;
const MONTH_START: i64 = DAY - 14;
/// Unix seconds on [`DAY`].
const NOW: i64 = DAY * 86_400 + 3_600;

fn who(name: &str) -> Principal {
    Principal::new(name).unwrap()
}

fn reservation(
    owner: &Principal,
    usd: f64,
    daily: Option<f64>,
    monthly: Option<f64>,
) -> Reservation<'_> {
    Reservation {
        owner,
        day: DAY,
        month_start: MONTH_START,
        usd,
        caps: Caps {
            daily_usd: daily,
            monthly_usd: monthly,
        },
        expires_at: NOW + 600,
    }
}

fn settlement<'a>(
    owner: &'a Principal,
    reservation: Option<&'a str>,
    model: &'a str,
    usd: f64,
) -> Settlement<'a> {
    Settlement {
        owner,
        reservation,
        model,
        day: DAY,
        usd,
        prompt_tokens: 10,
        completion_tokens: 5,
    }
}

async fn spent(store: &dyn LedgerStore, owner: &Principal) -> Spent {
    store.spent(owner, DAY, MONTH_START, NOW).await.unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Runs every check of the contract against `store`, which must start empty.
pub(crate) async fn check_ledger_contract(store: &(dyn LedgerStore + 'static)) {
    run_checks("ledger store", store, CHECKS).await;
}

/// Many reservations of one principal at once, spread over `stores` (replicas sharing one
/// ledger): exactly as many are made as the cap allows, never more.
pub(crate) async fn check_concurrent_reservations(stores: &[Arc<dyn LedgerStore>]) {
    let owner = who("racer");
    let attempts = (0..24).map(|i| {
        let store = Arc::clone(&stores[i % stores.len()]);
        let owner = owner.clone();
        tokio::spawn(async move {
            store
                .reserve(&reservation(&owner, 1.0, Some(5.0), Some(100.0)), NOW)
                .await
                .unwrap()
        })
    });
    let made = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|joined| joined.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(
        made, 5,
        "a daily cap of $5 allows five $1 reservations, however they race"
    );
    let spent = spent(stores[0].as_ref(), &owner).await;
    assert!(close(spent.day_usd, 5.0), "{spent:?}");
}

async fn a_reservation_within_the_caps_counts_until_it_settles_to_the_real_cost(
    store: &dyn LedgerStore,
) {
    let alice = who("ledger-alice");
    let id = store
        .reserve(&reservation(&alice, 0.5, Some(1.0), Some(10.0)), NOW)
        .await
        .unwrap()
        .expect("within the caps");
    let held = spent(store, &alice).await;
    assert!(
        close(held.day_usd, 0.5) && close(held.month_usd, 0.5),
        "{held:?}"
    );
    store
        .settle(&settlement(&alice, Some(&id), "m1", 0.125))
        .await
        .unwrap();
    let settled = spent(store, &alice).await;
    assert!(
        close(settled.day_usd, 0.125) && close(settled.month_usd, 0.125),
        "the reservation is replaced by the real cost: {settled:?}"
    );
}

async fn over_a_cap_nothing_is_reserved_and_what_is_spent_comes_back(store: &dyn LedgerStore) {
    let bob = who("ledger-bob");
    store
        .settle(&settlement(&bob, None, "m1", 0.75))
        .await
        .unwrap();
    let refused = store
        .reserve(&reservation(&bob, 0.5, Some(1.0), None), NOW)
        .await
        .unwrap()
        .expect_err("0.75 + 0.5 passes the daily 1.0");
    assert!(close(refused.day_usd, 0.75), "{refused:?}");
    let refused = store
        .reserve(&reservation(&bob, 0.5, None, Some(1.2)), NOW)
        .await
        .unwrap()
        .expect_err("0.75 + 0.5 passes the monthly 1.2");
    assert!(close(refused.month_usd, 0.75), "{refused:?}");
    assert!(
        close(spent(store, &bob).await.day_usd, 0.75),
        "nothing was reserved"
    );
    store
        .reserve(&reservation(&bob, 0.25, Some(1.0), Some(1.0)), NOW)
        .await
        .unwrap()
        .expect("exactly reaching a cap is allowed");
}

async fn a_released_reservation_no_longer_counts(store: &dyn LedgerStore) {
    let carol = who("ledger-carol");
    let id = store
        .reserve(&reservation(&carol, 0.9, Some(1.0), None), NOW)
        .await
        .unwrap()
        .unwrap();
    store.release(&who("ledger-mallory"), &id).await.unwrap();
    assert!(
        close(spent(store, &carol).await.day_usd, 0.9),
        "another principal cannot release it"
    );
    store.release(&carol, &id).await.unwrap();
    assert!(close(spent(store, &carol).await.day_usd, 0.0));
    assert!(store.usage(Some(&carol), DAY).await.unwrap().is_empty());
}

async fn an_expired_reservation_no_longer_counts_and_is_pruned(store: &dyn LedgerStore) {
    let dave = who("ledger-dave");
    store
        .reserve(&reservation(&dave, 0.9, Some(1.0), None), NOW)
        .await
        .unwrap()
        .unwrap();
    let later = NOW + 601;
    let after = store.spent(&dave, DAY, MONTH_START, later).await.unwrap();
    assert!(
        close(after.day_usd, 0.0),
        "a lapsed reservation counts no more: {after:?}"
    );
    store
        .reserve(&reservation(&dave, 0.9, Some(1.0), None), later)
        .await
        .unwrap()
        .expect("the lapsed reservation no longer blocks");
    assert!(store.prune(0, later).await.unwrap() >= 1);
}

async fn the_month_counts_from_its_first_day_and_the_day_only_itself(store: &dyn LedgerStore) {
    let erin = who("ledger-erin");
    for (day, usd) in [
        (MONTH_START - 1, 100.0),
        (MONTH_START, 1.0),
        (DAY - 1, 2.0),
        (DAY, 4.0),
    ] {
        store
            .settle(&Settlement {
                day,
                ..settlement(&erin, None, "m1", usd)
            })
            .await
            .unwrap();
    }
    let spent = spent(store, &erin).await;
    assert!(close(spent.day_usd, 4.0), "{spent:?}");
    assert!(
        close(spent.month_usd, 7.0),
        "last month's 100 is not counted: {spent:?}"
    );
}

async fn settled_costs_add_up_per_model_and_day(store: &dyn LedgerStore) {
    let frank = who("ledger-frank");
    for (model, usd) in [("m1", 0.5), ("m2", 0.25), ("m1", 0.125)] {
        store
            .settle(&settlement(&frank, None, model, usd))
            .await
            .unwrap();
    }
    let rows = store.usage(Some(&frank), DAY).await.unwrap();
    let row = |model: &str| UsageRow {
        principal: "ledger-frank".to_owned(),
        model: model.to_owned(),
        day: DAY,
        usd: 0.0,
        calls: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].model.as_str(), rows[0].calls), ("m1", 2));
    assert!(close(rows[0].usd, 0.625), "{rows:?}");
    assert_eq!((rows[0].prompt_tokens, rows[0].completion_tokens), (20, 10));
    assert_eq!(
        UsageRow {
            usd: 0.0,
            ..rows[1].clone()
        },
        UsageRow {
            calls: 1,
            prompt_tokens: 10,
            completion_tokens: 5,
            ..row("m2")
        }
    );
}

async fn each_principal_sees_only_its_own_usage_and_an_admin_view_sees_all(
    store: &dyn LedgerStore,
) {
    let (gina, hank) = (who("ledger-gina"), who("ledger-hank"));
    store
        .settle(&settlement(&gina, None, "m1", 1.0))
        .await
        .unwrap();
    store
        .settle(&settlement(&hank, None, "m1", 2.0))
        .await
        .unwrap();
    let own = store.usage(Some(&gina), DAY).await.unwrap();
    assert!(
        own.iter().all(|row| row.principal == "ledger-gina") && own.len() == 1,
        "{own:?}"
    );
    let all = store.usage(None, DAY).await.unwrap();
    for name in ["ledger-gina", "ledger-hank"] {
        assert!(
            all.iter().any(|row| row.principal == name),
            "{name} in {all:?}"
        );
    }
    assert!(
        store.usage(Some(&gina), DAY + 1).await.unwrap().is_empty(),
        "rows from a later day on"
    );
}

async fn old_days_are_pruned(store: &dyn LedgerStore) {
    let ivan = who("ledger-ivan");
    store
        .settle(&Settlement {
            day: DAY - 500,
            ..settlement(&ivan, None, "m1", 1.0)
        })
        .await
        .unwrap();
    store
        .settle(&settlement(&ivan, None, "m1", 1.0))
        .await
        .unwrap();
    assert!(store.prune(DAY - 400, NOW).await.unwrap() >= 1);
    let left = store.usage(Some(&ivan), 0).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].day, DAY);
}
