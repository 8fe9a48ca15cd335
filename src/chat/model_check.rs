//! Checks of a chat request against the model catalog: the model exists and chats, and
//! its tools, max_tokens and reasoning_effort are ones the model takes.

use super::ChatError;
use crate::vultr::chat::ChatOptions;
use crate::vultr::models::Model;

/// The catalog entry of `model`, or why the request cannot work with it.
pub fn check_model<'c>(
    model: &str,
    options: &ChatOptions,
    catalog: &'c [Model],
) -> Result<&'c Model, ChatError> {
    let chat_models = || ids(catalog.iter().filter(|m| m.is_chat()));
    let Some(found) = catalog.iter().find(|m| m.id == model) else {
        return Err(ChatError::UnknownModel {
            model: model.to_owned(),
            suggestions: suggestions(model, catalog),
            chat_models: chat_models(),
        });
    };
    if !found.is_chat() {
        return Err(ChatError::NotAChatModel {
            model: model.to_owned(),
            outputs: found.outputs.clone(),
            chat_models: chat_models(),
        });
    }
    if options.tools.as_ref().is_some_and(|t| !t.is_empty()) && !found.may_use_tools() {
        return Err(ChatError::ToolsUnsupported {
            model: model.to_owned(),
            tool_models: ids(catalog
                .iter()
                .filter(|m| m.is_chat() && m.tools == Some(true))),
        });
    }
    if let (Some(given), Some(max)) = (options.max_tokens, found.max_output_tokens)
        && u64::from(given) > max
    {
        return Err(ChatError::MaxTokensTooHigh {
            model: model.to_owned(),
            max,
            given,
        });
    }
    if let (Some(effort), Some(supported)) = (&options.reasoning_effort, &found.reasoning_efforts) {
        if supported.is_empty() {
            return Err(ChatError::NoReasoning {
                model: model.to_owned(),
                reasoning_models: ids(catalog
                    .iter()
                    .filter(|m| m.reasoning_efforts.as_ref().is_some_and(|e| !e.is_empty()))),
            });
        }
        if effort != "none" && !supported.contains(effort) {
            return Err(ChatError::ReasoningEffort {
                model: model.to_owned(),
                given: effort.clone(),
                supported: supported.clone(),
            });
        }
    }
    Ok(found)
}

fn ids<'a>(models: impl Iterator<Item = &'a Model>) -> Vec<String> {
    models.map(|m| m.id.clone()).collect()
}

/// Chat models whose id resembles what was asked for, closest first: one contains the
/// other (ignoring case and any `org/` prefix), or they are a few typos apart.
fn suggestions(wanted: &str, catalog: &[Model]) -> Vec<String> {
    /// How alike two ids must be (normalised Damerau-Levenshtein, 1 = equal).
    const ALIKE: f64 = 0.75;
    let tail = |id: &str| {
        let id = id.to_lowercase();
        id.rsplit('/').next().unwrap_or(&id).to_owned()
    };
    let wanted = tail(wanted);
    let mut close: Vec<(f64, &str)> = catalog
        .iter()
        .filter(|m| m.is_chat())
        .filter_map(|m| {
            let id = tail(&m.id);
            let contains = !wanted.is_empty()
                && (id.contains(&wanted) || (wanted.len() >= 3 && wanted.contains(&id)));
            let score = strsim::normalized_damerau_levenshtein(&wanted, &id);
            (contains || score >= ALIKE).then_some((score, m.id.as_str()))
        })
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    close
        .into_iter()
        .take(3)
        .map(|(_, id)| id.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, outputs: &[&str]) -> Model {
        Model {
            id: id.to_owned(),
            name: None,
            outputs: outputs.iter().map(|&o| o.to_owned()).collect(),
            context_window: None,
            max_output_tokens: Some(4096),
            tools: Some(false),
            streaming: None,
            reasoning_efforts: Some(vec![]),
            prompt_usd_per_1m: None,
            completion_usd_per_1m: None,
            ready: true,
            spec: Default::default(),
        }
    }

    fn catalog() -> Vec<Model> {
        let mut catalog = vec![
            model("glm-5.2", &["text"]),
            model("kimi-k2-instruct", &["text"]),
            model("meta-llama/Llama-3.3-70B-Instruct", &["text"]),
            model("glm-embed", &["embeddings"]),
        ];
        catalog[0].reasoning_efforts = Some(vec!["high".into(), "low".into()]);
        catalog[1].tools = Some(true);
        catalog
    }

    fn options(configure: impl FnOnce(&mut ChatOptions)) -> ChatOptions {
        let mut options = ChatOptions::default();
        configure(&mut options);
        options
    }

    #[test]
    fn a_request_the_model_can_serve_gets_its_entry() {
        let catalog = catalog();
        let cases =
            [
                ("glm-5.2", options(|_| {})),
                (
                    "glm-5.2",
                    options(|o| o.reasoning_effort = Some("low".into())),
                ),
                (
                    "glm-5.2",
                    options(|o| o.reasoning_effort = Some("none".into())),
                ),
                ("glm-5.2", options(|o| o.max_tokens = Some(4096))),
                ("glm-5.2", options(|o| o.tools = Some(vec![]))),
                (
                    "kimi-k2-instruct",
                    options(|o| {
                        o.tools =
                            Some(vec![serde_json::from_value(
                serde_json::json!({"type": "function", "function": {"name": "f"}})).unwrap()])
                    }),
                ),
            ];
        for (id, options) in cases {
            let found = check_model(id, &options, &catalog).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(found.id, id);
        }
    }

    #[test]
    fn a_request_the_model_cannot_serve_says_what_to_use_instead() {
        let catalog = catalog();
        let weather = || {
            serde_json::from_value(
                serde_json::json!({"type": "function", "function": {"name": "f"}}),
            )
            .unwrap()
        };
        let cases = [
            (
                "gml-5.2",
                options(|_| {}),
                "unknown model `gml-5.2`. Did you mean glm-5.2?",
            ),
            (
                "glm-embed",
                options(|_| {}),
                "`glm-embed` is not a chat model (it outputs embeddings)",
            ),
            (
                "glm-5.2",
                options(|o| o.tools = Some(vec![weather()])),
                "Models with tool support: kimi-k2-instruct.",
            ),
            (
                "glm-5.2",
                options(|o| o.max_tokens = Some(4097)),
                "`max_tokens` is 4097, but `glm-5.2` generates at most 4096",
            ),
            (
                "kimi-k2-instruct",
                options(|o| o.reasoning_effort = Some("low".into())),
                "or use a model that has one: glm-5.2.",
            ),
            (
                "glm-5.2",
                options(|o| o.reasoning_effort = Some("max".into())),
                "it accepts: high, low, or none.",
            ),
        ];
        for (id, options, expected) in cases {
            let message = check_model(id, &options, &catalog).unwrap_err().to_string();
            assert!(message.contains(expected), "{id}: {message}");
        }
    }

    #[test]
    fn suggestions_are_chat_models_alike_in_name_closest_first() {
        let catalog = catalog();
        let cases: [(&str, &[&str]); 5] = [
            ("glm-5", &["glm-5.2"]),
            ("GLM-5.2", &["glm-5.2"]),
            (
                "llama-3.3-70b-instruct",
                &["meta-llama/Llama-3.3-70B-Instruct"],
            ),
            ("kimi-k2-instrct", &["kimi-k2-instruct"]),
            ("gpt-4o", &[]),
        ];
        for (wanted, expected) in cases {
            assert_eq!(suggestions(wanted, &catalog), expected, "{wanted}");
        }
        assert!(!suggestions("glm-embed", &catalog).contains(&"glm-embed".to_owned()));
    }
}
