//! What `vultr://usage` shows: the caller's spending today and this month (UTC) per model,
//! their limits and what is left; for an admin, everyone's as well.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Limits, Spending, UtcDay};
use crate::principal::Principal;
use crate::store::{StoreResult, UsageRow};

/// One principal's spending this month, as `vultr://usage` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UsageReport {
    /// Whose.
    pub principal: String,
    /// Today (UTC), `YYYY-MM-DD`.
    pub today: String,
    /// This month (UTC), `YYYY-MM`.
    pub month: String,
    /// Their limits in USD (absent: none).
    pub limits: Limits,
    /// Spent today, settled calls only.
    pub today_usd: f64,
    /// Spent this month, settled calls only.
    pub month_usd: f64,
    /// Reserved by their calls in flight, today.
    pub in_flight_usd: f64,
    /// What is left of the daily limit, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_today_usd: Option<f64>,
    /// What is left of the monthly limit, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_month_usd: Option<f64>,
    /// When the day's limit resets (RFC 3339).
    pub day_resets: String,
    /// When the month's limit resets (RFC 3339).
    pub month_resets: String,
    /// Per model, most spent first.
    pub by_model: Vec<ModelUsage>,
    /// Everyone's, when the caller is an admin (`VULTR_MCP_ADMINS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub everyone: Option<Vec<PrincipalUsage>>,
}

/// Spending on one model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelUsage {
    /// The model.
    pub model: String,
    /// USD today.
    pub today_usd: f64,
    /// USD this month.
    pub month_usd: f64,
    /// Priced calls this month.
    pub calls: u64,
    /// Prompt tokens this month.
    pub prompt_tokens: u64,
    /// Completion tokens this month.
    pub completion_tokens: u64,
}

/// One principal's spending, in an admin's view.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PrincipalUsage {
    /// Who.
    pub principal: String,
    /// Their limits.
    pub limits: Limits,
    /// USD today.
    pub today_usd: f64,
    /// USD this month.
    pub month_usd: f64,
    /// Per model, most spent first.
    pub by_model: Vec<ModelUsage>,
}

/// USD rounded to 10 decimal places, as costs are everywhere else.
fn usd(value: f64) -> f64 {
    (value * 1e10).round() / 1e10
}

/// `rows` (one principal's) per model, most spent first.
fn by_model(rows: &[&UsageRow], today: i64) -> Vec<ModelUsage> {
    let mut models: BTreeMap<&str, ModelUsage> = BTreeMap::new();
    for row in rows {
        let entry = models.entry(&row.model).or_insert_with(|| ModelUsage {
            model: row.model.clone(),
            today_usd: 0.0,
            month_usd: 0.0,
            calls: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        if row.day == today {
            entry.today_usd += row.usd;
        }
        entry.month_usd += row.usd;
        entry.calls += row.calls;
        entry.prompt_tokens += row.prompt_tokens;
        entry.completion_tokens += row.completion_tokens;
    }
    let mut models: Vec<ModelUsage> = models
        .into_values()
        .map(|m| ModelUsage {
            today_usd: usd(m.today_usd),
            month_usd: usd(m.month_usd),
            ..m
        })
        .collect();
    models.sort_by(|a, b| b.month_usd.total_cmp(&a.month_usd));
    models
}

fn totals(models: &[ModelUsage]) -> (f64, f64) {
    let today = models.iter().map(|m| m.today_usd).sum();
    let month = models.iter().map(|m| m.month_usd).sum();
    (usd(today), usd(month))
}

impl Spending {
    /// What `vultr://usage` shows `principal`.
    pub async fn report(&self, principal: &Principal) -> StoreResult<UsageReport> {
        let now = self.now();
        let today = UtcDay::of(now);
        let admin = self.is_admin(principal);
        let rows = self
            .ledger
            .usage((!admin).then_some(principal), today.month_start())
            .await?;
        let spent = self
            .ledger
            .spent(principal, today.day(), today.month_start(), now)
            .await?;
        let mut by_principal: BTreeMap<&str, Vec<&UsageRow>> = BTreeMap::new();
        for row in &rows {
            by_principal.entry(&row.principal).or_default().push(row);
        }
        let own_rows = by_principal
            .get(principal.as_str())
            .cloned()
            .unwrap_or_default();
        let models = by_model(&own_rows, today.day());
        let (today_usd, month_usd) = totals(&models);
        let limits = self.limits(principal);
        let everyone = admin.then(|| {
            by_principal
                .iter()
                .map(|(name, rows)| {
                    let models = by_model(rows, today.day());
                    let (today_usd, month_usd) = totals(&models);
                    PrincipalUsage {
                        principal: (*name).to_owned(),
                        limits: Principal::new(name)
                            .map(|p| self.limits(&p))
                            .unwrap_or_default(),
                        today_usd,
                        month_usd,
                        by_model: models,
                    }
                })
                .collect()
        });
        Ok(UsageReport {
            principal: principal.to_string(),
            today: today.date(),
            month: today.month(),
            limits,
            today_usd,
            month_usd,
            in_flight_usd: usd((spent.day_usd - today_usd).max(0.0)),
            left_today_usd: limits
                .daily_usd
                .map(|limit| usd((limit - spent.day_usd).max(0.0))),
            left_month_usd: limits
                .monthly_usd
                .map(|limit| usd((limit - spent.month_usd).max(0.0))),
            day_resets: today.next_day_rfc3339(),
            month_resets: today.next_month_rfc3339(),
            by_model: models,
            everyone,
        })
    }
}
