//! A chat request's worst case, before it is sent: its prompt estimated from its size,
//! plus the most it may answer (`max_tokens`, else the model's output limit, else what its
//! context leaves), at the catalog's prices.

use crate::spend::Quote;
use crate::vultr::chat::ChatRequest;
use crate::vultr::models::Model;

/// Bytes of request JSON counted as one prompt token: fewer than tokenizers use for
/// English (about 4), so the estimate is high rather than low.
const BYTES_PER_TOKEN: u64 = 3;

/// The most `request` can cost on `model` (its catalog entry; `None` when the catalog
/// could not be read). Over a collection (`rag`), Vultr adds what it retrieved to the
/// prompt, so the prompt is taken as all the context the answer leaves.
pub(super) fn quote(request: &ChatRequest, model: Option<&Model>, rag: bool) -> Quote {
    quote_with(request, model, rag, 0)
}

/// [`quote`] for a request whose prompt will also hold `quoted_tokens` tokens of text
/// more than its messages now do (other models' answers, quoted to a judge), counted as
/// the rest of the prompt is: their bytes (about 4 a token) at 3 bytes a token.
pub(super) fn quote_with(
    request: &ChatRequest,
    model: Option<&Model>,
    rag: bool,
    quoted_tokens: u64,
) -> Quote {
    let Some(model) = model else {
        return Quote::unbounded(
            &request.model,
            "the model catalog could not be read, so its prices are unknown",
        );
    };
    let (Some(prompt_price), Some(completion_price)) =
        (model.prompt_usd_per_1m, model.completion_usd_per_1m)
    else {
        return Quote::unbounded(
            &request.model,
            format!("the catalog states no token prices for {}", model.id),
        );
    };
    let quoted = quoted_tokens.saturating_mul(BYTES_PER_TOKEN_FIT) / BYTES_PER_TOKEN;
    let mut prompt = prompt_tokens(request).saturating_add(quoted);
    let completion = match (request.options.max_tokens, model.max_output_tokens) {
        (Some(asked), Some(limit)) => u64::from(asked).min(limit),
        (Some(asked), None) => u64::from(asked),
        (None, Some(limit)) => limit,
        (None, None) => match model.context_window {
            Some(window) => window.saturating_sub(prompt).max(1),
            None => {
                return Quote::unbounded(
                    &request.model,
                    format!(
                        "the catalog states no output limit for {}; pass max_tokens",
                        model.id
                    ),
                );
            }
        },
    };
    if rag {
        match model.context_window {
            Some(window) => prompt = prompt.max(window.saturating_sub(completion)),
            None => {
                return Quote::unbounded(
                    &request.model,
                    format!(
                        "the retrieved context is added to the prompt and the catalog states no context window for {}",
                        model.id
                    ),
                );
            }
        }
    }
    let usd = (prompt as f64 * prompt_price + completion as f64 * completion_price) / 1e6;
    Quote::at_most(&request.model, (usd * 1e10).ceil() / 1e10)
}

/// Bytes of request JSON counted as one token when judging whether a request fits a
/// model's context: the usual figure for English, so a request is not passed over for a
/// window it would fit.
const BYTES_PER_TOKEN_FIT: u64 = 4;

/// Why `request` cannot fit `model`'s context window (its prompt, estimated, plus the
/// `max_tokens` asked for), or `None` when it fits or the catalog states no window.
pub(super) fn does_not_fit(request: &ChatRequest, model: &Model) -> Option<String> {
    let window = model.context_window?;
    let prompt = prompt_tokens(request) * BYTES_PER_TOKEN / BYTES_PER_TOKEN_FIT;
    let needed = prompt + request.options.max_tokens.map_or(0, u64::from);
    (needed > window).then(|| {
        format!("its context window ({window} tokens) is smaller than the request (about {needed} tokens)")
    })
}

/// The prompt's tokens, estimated from the size of its messages and tools.
fn prompt_tokens(request: &ChatRequest) -> u64 {
    let messages = serde_json::to_vec(&request.messages).map_or(0, |json| json.len());
    let tools = request
        .options
        .tools
        .as_ref()
        .and_then(|tools| serde_json::to_vec(tools).ok())
        .map_or(0, |json| json.len());
    ((messages + tools) as u64).div_ceil(BYTES_PER_TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vultr::chat::{ChatOptions, Message};

    fn model(max_output: Option<u64>, window: Option<u64>) -> Model {
        Model {
            id: "m".to_owned(),
            name: None,
            outputs: vec!["text".to_owned()],
            context_window: window,
            max_output_tokens: max_output,
            tools: None,
            streaming: None,
            reasoning_efforts: None,
            prompt_usd_per_1m: Some(1.0),
            completion_usd_per_1m: Some(2.0),
            ready: true,
            spec: Default::default(),
        }
    }

    fn request(max_tokens: Option<u32>) -> ChatRequest {
        ChatRequest {
            model: "m".to_owned(),
            messages: vec![
                serde_json::from_value::<Message>(
                    serde_json::json!({"role": "user", "content": "x".repeat(290)}),
                )
                .unwrap(),
            ],
            options: ChatOptions {
                max_tokens,
                ..ChatOptions::default()
            },
        }
    }

    #[test]
    fn a_request_fits_a_window_that_holds_its_prompt_and_max_tokens() {
        // About 75 tokens of prompt at 4 bytes a token (300 bytes of JSON).
        let fits = |window, max_tokens| does_not_fit(&request(max_tokens), &model(None, window));
        assert_eq!(fits(None, Some(1_000_000)), None, "no window stated");
        assert_eq!(fits(Some(4096), Some(1000)), None);
        let reason = fits(Some(1000), Some(1000)).expect("too big");
        assert!(
            reason.starts_with(
                "its context window (1000 tokens) is smaller than the request (about 10"
            ),
            "{reason}"
        );
        assert!(fits(Some(50), None).is_some(), "the prompt alone overflows");
    }

    fn usd(quote: &Quote) -> f64 {
        quote.worst_case_usd.expect("bounded")
    }

    #[test]
    fn quoted_answers_count_as_prompt_at_the_same_high_rate() {
        let model = model(Some(100), None);
        let plain = usd(&quote(&request(Some(100)), Some(&model), false));
        // 300 tokens of answers, about 1,200 bytes, count as 400 prompt tokens at $1 a million.
        let judged = usd(&quote_with(&request(Some(100)), Some(&model), false, 300));
        assert!(
            (judged - plain - 400.0 / 1e6).abs() < 1e-9,
            "{judged} - {plain}"
        );
    }

    #[test]
    fn the_worst_case_is_the_prompt_estimate_plus_the_most_the_answer_may_take() {
        let prompt = prompt_tokens(&request(None));
        assert!(
            (100..=110).contains(&prompt),
            "{prompt}: about 3 bytes a token"
        );
        let cost = |completion: u64| (prompt as f64 * 1.0 + completion as f64 * 2.0) / 1e6;
        let cases = [
            (Some(1000), Some(500), Some(8000), cost(500)),
            (Some(1000), None, Some(8000), cost(1000)),
            (None, Some(4000), Some(8000), cost(4000)),
            (None, None, Some(8000), cost(8000 - prompt)),
        ];
        for (max_tokens, max_output, window, expected) in cases {
            let quoted = usd(&quote(
                &request(max_tokens),
                Some(&model(max_output, window)),
                false,
            ));
            assert!(
                (quoted - expected).abs() < 1e-9,
                "{max_tokens:?} {max_output:?}: {quoted} != {expected}"
            );
        }
    }

    #[test]
    fn without_prices_limits_or_a_catalog_the_worst_case_cannot_be_told() {
        let unbounded = quote(&request(None), Some(&model(None, None)), false);
        assert!(unbounded.worst_case_usd.is_none());
        assert!(
            unbounded
                .unbounded_because
                .unwrap()
                .contains("pass max_tokens")
        );
        assert!(
            quote(&request(Some(10)), None, false)
                .worst_case_usd
                .is_none()
        );
        let mut free = model(Some(10), None);
        free.completion_usd_per_1m = None;
        assert!(
            quote(&request(Some(10)), Some(&free), false)
                .worst_case_usd
                .is_none()
        );
    }

    #[test]
    fn over_a_collection_the_prompt_may_fill_the_context_the_answer_leaves() {
        let rag = usd(&quote(
            &request(Some(1000)),
            Some(&model(None, Some(8000))),
            true,
        ));
        let expected = (7000.0 * 1.0 + 1000.0 * 2.0) / 1e6;
        assert!((rag - expected).abs() < 1e-9, "{rag}");
        assert!(
            quote(&request(Some(10)), Some(&model(None, None)), true)
                .worst_case_usd
                .is_none()
        );
    }
}
