//! What the calls of the model kinds beyond chat (rerank, embeddings, images) share: an
//! argument checked against the catalog's stated parameter before anything is sent, and
//! the inference key (looked up once more when a discovered key is refused).

use std::future::Future;

use crate::keys::{InferenceKeys, KeyError};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::spend::{Hold, Quote};
use crate::vultr::error::VultrError;
use crate::vultr::models::Model;

/// `value` of the numeric parameter `name`, checked against the range `model`'s catalog
/// entry states (a parameter the catalog does not state is left for Vultr to judge).
pub fn check_number(model: &Model, name: &str, value: f64) -> Result<(), String> {
    let Some(parameter) = model.spec.parameter(name) else {
        return Ok(());
    };
    let below = parameter.min.is_some_and(|min| value < min);
    let above = parameter.max.is_some_and(|max| value > max);
    if !below && !above {
        return Ok(());
    }
    let range = match (parameter.min, parameter.max) {
        (Some(min), Some(max)) => format!("from {min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => unreachable!("out of range needs a bound"),
    };
    Err(format!(
        "`{name}` {value} is out of range for {}: the catalog allows {range}",
        model.id
    ))
}

/// `value` of the enum parameter `name`, checked against the values `model`'s catalog
/// entry lists (none listed: left for Vultr to judge).
pub fn check_choice(model: &Model, name: &str, value: &str) -> Result<(), String> {
    match model.spec.parameter(name) {
        Some(parameter) if !parameter.values.is_empty() => {
            if parameter.values.iter().any(|v| v == value) {
                Ok(())
            } else {
                Err(format!(
                    "`{name}` \"{value}\" is not offered by {}: the catalog lists {}",
                    model.id,
                    parameter.values.join(", ")
                ))
            }
        }
        _ => Ok(()),
    }
}

/// Runs `call` with the inference key; when Vultr refuses a key discovered from the
/// account, the key is looked up again and `call` runs once more.
pub async fn with_key<T, E, F, Fut>(keys: &InferenceKeys, call: F) -> Result<T, E>
where
    F: Fn(crate::secret::ApiKey) -> Fut,
    Fut: Future<Output = Result<T, VultrError>>,
    E: From<KeyError> + From<VultrError>,
{
    let key = keys.get(None).await?;
    match call(key.key.clone()).await {
        Err(VultrError::Status { status: 401, .. }) if keys.forget(&key).await => {
            tracing::info!("inference key refused; reading the subscription's key again");
            let fresh = keys.get(None).await?;
            Ok(call(fresh.key).await?)
        }
        outcome => Ok(outcome?),
    }
}

/// The most a call of `units` `unit`s on `model` can cost, at the catalog's price per
/// `unit` (a model the catalog does not price per `unit` cannot be bounded).
pub fn quote(model: &Model, unit: &str, units: f64) -> Quote {
    match model.spec.price_per(unit) {
        Some(price) => Quote::at_most(&model.id, (price.usd_per_unit * units * 1e10).ceil() / 1e10),
        None => Quote::unbounded(
            &model.id,
            format!("the catalog states no price per {unit} for {}", model.id),
        ),
    }
}

/// Prompt tokens of `texts`, estimated high (3 bytes a token) so a worst case is not
/// under-quoted.
pub fn estimated_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> f64 {
    let bytes: usize = texts.into_iter().map(str::len).sum();
    (bytes as f64 / 3.0).ceil()
}

/// [`with_key`] for a priced call holding `hold`: the request is marked sent, and when
/// Vultr refused it (an error status) or it was never sent, the hold is released (nothing
/// was billed); a request that failed otherwise keeps it, to be charged its worst case.
pub async fn with_key_held<T, E, F, Fut>(
    keys: &InferenceKeys,
    hold: &mut Hold,
    call: F,
) -> Result<T, E>
where
    F: Fn(crate::secret::ApiKey) -> Fut,
    Fut: Future<Output = Result<T, VultrError>>,
    E: From<KeyError> + From<VultrError>,
{
    hold.sending();
    let billed = AtomicBool::new(false);
    let outcome = with_key::<T, E, _, _>(keys, |key| {
        let answer = call(key);
        let billed = &billed;
        async move {
            let answer = answer.await;
            let refused = matches!(answer, Err(VultrError::Status { .. }));
            billed.store(!refused, Ordering::Relaxed);
            answer
        }
    })
    .await;
    if outcome.is_err() && !billed.load(Ordering::Relaxed) {
        hold.release().await;
    }
    outcome
}

/// What a call cost, as far as the catalog's prices and Vultr's answer tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cost {
    /// Priced and counted: USD.
    Usd(f64),
    /// The catalog prices the model per `unit`, but the answer did not say how many.
    Uncounted {
        /// USD per unit.
        usd_per_unit: f64,
        /// The unit (`token`, ...).
        unit: String,
    },
    /// The catalog states no price for the model.
    NotPriced,
}

impl Cost {
    /// `units` at the model's price per `unit`: rounded to 10 decimal places.
    pub fn of(model: &Model, unit: &str, units: Option<f64>) -> Cost {
        match (model.spec.price_per(unit), units) {
            (None, _) => Cost::NotPriced,
            (Some(price), Some(units)) => {
                Cost::Usd((price.usd_per_unit * units * 1e10).round() / 1e10)
            }
            (Some(price), None) => Cost::Uncounted {
                usd_per_unit: price.usd_per_unit,
                unit: unit.to_owned(),
            },
        }
    }

    /// The cost in USD, when known.
    pub fn usd(&self) -> Option<f64> {
        match self {
            Cost::Usd(usd) => Some(*usd),
            _ => None,
        }
    }

    /// One line for the result text.
    pub fn describe(&self) -> String {
        match self {
            Cost::Usd(usd) => format!("cost ${usd}"),
            Cost::Uncounted { usd_per_unit, unit } => format!(
                "cost not known: Vultr returned no {unit} count (the catalog price is ${usd_per_unit} per {unit})"
            ),
            Cost::NotPriced => "not priced: the catalog states no price for this model".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vultr::models::parse_catalog;
    use serde_json::json;

    fn image_model() -> Model {
        parse_catalog(
            &json!([{"id":"img","output_modalities":[{"type":"image","supported_parameters":{
            "n":{"type":"integer","min":1,"max":4},
            "size":{"type":"enum","values":["512x512","1024x1024"]},
            "guidance_scale":{"type":"range","min":0,"max":20},
            "steps":{"type":"integer","min":1}}}]}]),
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn numbers_are_checked_against_the_stated_range_only() {
        let model = image_model();
        let cases = [
            ("n", 1.0, None),
            ("n", 4.0, None),
            (
                "n",
                5.0,
                Some("`n` 5 is out of range for img: the catalog allows from 1 to 4"),
            ),
            ("n", 0.0, Some("from 1 to 4")),
            ("guidance_scale", 20.5, Some("from 0 to 20")),
            ("steps", 0.0, Some("at least 1")),
            ("steps", 900.0, None),
            ("seed", -3.0, None),
        ];
        for (name, value, expected) in cases {
            match (check_number(&model, name, value), expected) {
                (Ok(()), None) => {}
                (Err(problem), Some(expected)) => {
                    assert!(problem.contains(expected), "{name} {value}: {problem}")
                }
                (outcome, expected) => panic!("{name} {value}: {outcome:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn cost_is_units_at_the_catalog_price_or_says_why_not() {
        let priced = parse_catalog(&json!([{"id":"r","output_modalities":[{"type":"rerank",
            "pricing":[{"type":"completion","unit":"token","cost_usd":"0.00000005"}]}]}]))
        .unwrap()
        .remove(0);
        assert_eq!(Cost::of(&priced, "token", Some(20.0)), Cost::Usd(0.000001));
        assert_eq!(
            Cost::of(&priced, "token", Some(20.0)).describe(),
            "cost $0.000001"
        );
        let uncounted = Cost::of(&priced, "token", None);
        assert_eq!(uncounted.usd(), None);
        assert_eq!(
            uncounted.describe(),
            "cost not known: Vultr returned no token count (the catalog price is $0.00000005 per token)"
        );
        let free = Cost::of(&image_model(), "megapixel", Some(1.0));
        assert_eq!(free, Cost::NotPriced);
        assert!(free.describe().starts_with("not priced"));
    }

    #[test]
    fn choices_are_checked_against_the_listed_values_only() {
        let model = image_model();
        assert!(check_choice(&model, "size", "512x512").is_ok());
        assert_eq!(
            check_choice(&model, "size", "640x480").unwrap_err(),
            "`size` \"640x480\" is not offered by img: the catalog lists 512x512, 1024x1024"
        );
        assert!(check_choice(&model, "style", "vivid").is_ok(), "not stated");
    }
}
