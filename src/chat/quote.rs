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
/// could not be read).
pub(super) fn quote(request: &ChatRequest, model: Option<&Model>) -> Quote {
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
    let prompt = prompt_tokens(request);
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
    let usd = (prompt as f64 * prompt_price + completion as f64 * completion_price) / 1e6;
    Quote::at_most(&request.model, (usd * 1e10).ceil() / 1e10)
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
