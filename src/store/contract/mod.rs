//! What every store promises, as checks any implementation runs on itself:
//! [`check_contract`] for conversations, [`check_task_contract`] for task records,
//! [`check_media_contract`] for media. Each is
//! a table of named checks; a failing one is reported by its name.

/// A named entry of a table of checks: the check function and its name.
macro_rules! check {
    ($name:ident) => {
        (stringify!($name), |store| Box::pin($name(store)))
    };
}

mod collections;
mod conversations;
mod ledger;
mod media;
mod tasks;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;

pub(crate) use collections::check_collection_contract;
pub(crate) use conversations::{
    RETENTION, add, alice, as_json, bob, check_contract, listed, listed_for, msg, start, user,
};
pub(crate) use ledger::{check_concurrent_reservations, check_ledger_contract};
pub(crate) use media::check_media_contract;
pub(crate) use tasks::check_task_contract;

/// One check of a contract, by name, on a store of kind `S`.
type Check<S> = (
    &'static str,
    for<'a> fn(&'a S) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
);

/// Runs each check on `store` in order; a failing check panics naming it and the store.
async fn run_checks<S: ?Sized>(contract: &str, store: &S, checks: &[Check<S>]) {
    for (name, check) in checks {
        if let Err(panic) = AssertUnwindSafe(check(store)).catch_unwind().await {
            let said = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("the {contract} contract's check `{name}` failed: {said}");
        }
    }
}
