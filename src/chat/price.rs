//! What a chat completion cost, from its token counts and the catalog's prices.

use crate::vultr::chat::TokenUsage;
use crate::vultr::models::Model;

/// What a call cost in USD, when the catalog prices both its prompt and completion
/// tokens and the reply counted both; rounded to 10 decimal places.
pub fn cost_usd(model: &Model, usage: Option<&TokenUsage>) -> Option<f64> {
    let usage = usage?;
    let prompt = usage.prompt_tokens? as f64 * model.prompt_usd_per_1m?;
    let completion = usage.completion_tokens? as f64 * model.completion_usd_per_1m?;
    let cost = (prompt + completion) / 1_000_000.0;
    Some((cost * 1e10).round() / 1e10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priced(prompt: Option<f64>, completion: Option<f64>) -> Model {
        Model {
            id: "m".to_owned(),
            name: None,
            outputs: vec!["text".to_owned()],
            context_window: None,
            max_output_tokens: None,
            tools: None,
            streaming: None,
            reasoning_efforts: None,
            prompt_usd_per_1m: prompt,
            completion_usd_per_1m: completion,
            ready: true,
            spec: Default::default(),
        }
    }

    fn used(prompt: Option<u64>, completion: Option<u64>) -> TokenUsage {
        TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: None,
        }
    }

    #[test]
    fn a_call_costs_its_prompt_and_completion_tokens_at_the_catalog_prices() {
        let cases = [
            // (prices per 1M, tokens, cost)
            ((Some(0.75), Some(3.0)), (Some(6), Some(8)), Some(2.85e-5)),
            ((Some(0.75), Some(3.0)), (Some(0), Some(0)), Some(0.0)),
            (
                (Some(1.0), Some(2.0)),
                (Some(1_000_000), Some(500_000)),
                Some(2.0),
            ),
            // Rounded to 10 decimal places: 1 token at $0.00001 per 1M.
            ((Some(0.00001), Some(0.0)), (Some(1), Some(0)), Some(0.0)),
        ];
        for ((prompt_price, completion_price), (prompt, completion), expected) in cases {
            let model = priced(prompt_price, completion_price);
            assert_eq!(
                cost_usd(&model, Some(&used(prompt, completion))),
                expected,
                "{prompt_price:?}/{completion_price:?} for {prompt:?}+{completion:?}"
            );
        }
    }

    #[test]
    fn without_both_prices_or_both_counts_there_is_no_cost() {
        let cases = [
            (priced(None, Some(3.0)), Some(used(Some(6), Some(8)))),
            (priced(Some(0.75), None), Some(used(Some(6), Some(8)))),
            (priced(Some(0.75), Some(3.0)), Some(used(None, Some(8)))),
            (priced(Some(0.75), Some(3.0)), Some(used(Some(6), None))),
            (priced(Some(0.75), Some(3.0)), None),
        ];
        for (model, usage) in cases {
            assert_eq!(
                cost_usd(&model, usage.as_ref()),
                None,
                "{model:?} {usage:?}"
            );
        }
    }
}
