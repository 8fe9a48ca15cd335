//! Why a call was not allowed to spend: each message says what was checked, what is left
//! and what to do.

use crate::setting;
use crate::store::StoreError;

/// Why a priced call was refused before anything was sent.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// Its worst case is over the principal's per-call limit.
    #[error("refused before sending: this call on {model} could cost up to ${worst_case_usd:.6}, over your per-call limit of ${limit_usd} (set by the operator in {budgets}). Lower max_tokens, shorten the input or pick a cheaper model (list_models shows prices).", budgets = setting::BUDGETS)]
    OverPerCall {
        /// The model.
        model: String,
        /// The call's worst case.
        worst_case_usd: f64,
        /// The limit.
        limit_usd: f64,
    },
    /// Its worst case, on top of what was spent, could pass a day's or month's limit.
    #[error("refused before sending: your {adjective} spend limit is ${limit_usd}; ${spent_usd:.6} is spent or reserved this {period} (UTC), so ${left:.6} is left, and this call on {model} could cost up to ${worst_case_usd:.6}. The limit resets at {resets}. Lower max_tokens or pick a cheaper model, or ask the operator to raise your limit in {budgets}; vultr://usage shows your spending.", adjective = if *period == "day" { "daily" } else { "monthly" }, left = (limit_usd - spent_usd).max(0.0), budgets = setting::BUDGETS)]
    OverLimit {
        /// `day` or `month`.
        period: &'static str,
        /// The model.
        model: String,
        /// The limit.
        limit_usd: f64,
        /// Spent and reserved in the period.
        spent_usd: f64,
        /// The call's worst case.
        worst_case_usd: f64,
        /// When the period ends (RFC 3339).
        resets: String,
    },
    /// A limit applies, and the call's worst case cannot be told.
    #[error(
        "refused before sending: a spend limit applies to you and the most this call on {model} could cost cannot be told ({why}). Pass max_tokens, or try again once the model catalog can be read."
    )]
    Unbounded {
        /// The model.
        model: String,
        /// Why not.
        why: String,
    },
    /// The user declined the cost.
    #[error("not sent: the user declined this call on {model}{cost}.", cost = cost_phrase(*worst_case_usd))]
    Declined {
        /// The model.
        model: String,
        /// The call's worst case, when known.
        worst_case_usd: Option<f64>,
    },
    /// The call needs the user's confirmation and the client cannot ask.
    #[error("not sent: this call on {model}{cost} needs the user's confirmation (the server asks above ${threshold_usd}, {setting}), and this client cannot be asked: it declared no elicitation support. Use a client that supports elicitation, lower max_tokens, or ask the operator to raise {setting}.", cost = cost_phrase(*worst_case_usd), setting = setting::CONFIRM_ABOVE_USD)]
    CannotAsk {
        /// The model.
        model: String,
        /// The call's worst case, when known.
        worst_case_usd: Option<f64>,
        /// The threshold.
        threshold_usd: f64,
    },
    /// The question went back to the client; the call is made again with its answer.
    #[error("the user's confirmation is needed before this call is sent")]
    AwaitingInput,
    /// The ledger cannot be read or written, and a limit applies.
    #[error(
        "refused before sending: a spend limit applies to you and the spend ledger cannot be read ({0}), so the call cannot be checked against it. Try again shortly; if it persists, the operator should check the store."
    )]
    Ledger(StoreError),
}

fn cost_phrase(worst_case_usd: Option<f64>) -> String {
    match worst_case_usd {
        Some(usd) => format!(", which could cost up to ${usd:.6}"),
        None => ", whose cost cannot be told in advance".to_owned(),
    }
}
