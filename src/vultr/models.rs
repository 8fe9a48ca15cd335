//! The model catalog (`GET /v1/models`), read from the current "Model Document 2.4"
//! shape and from the older OpenAI list shape.

use serde::Serialize;
use serde_json::{Map, Value};

/// One model of the catalog, normalised from whichever shape the API used.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Model {
    /// The id to send as `model`.
    pub id: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Output kinds: text, embeddings, speech, image, transcription, rerank, video, ...
    pub outputs: Vec<String>,
    /// Context window in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Largest `max_tokens` accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Whether `tools` are accepted; absent when the catalog does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Whether text output can be streamed; absent when the catalog does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    /// Accepted `reasoning_effort` values, strongest first: empty when the catalog lists
    /// none, `None` when the catalog does not say (the older OpenAI list shape).
    #[serde(skip_serializing_if = "lists_no_efforts")]
    pub reasoning_efforts: Option<Vec<String>>,
    /// USD per 1M prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_usd_per_1m: Option<f64>,
    /// USD per 1M completion tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_usd_per_1m: Option<f64>,
    /// False when Vultr marks the model as not ready.
    #[serde(skip_serializing_if = "is_true")]
    pub ready: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn lists_no_efforts(efforts: &Option<Vec<String>>) -> bool {
    efforts.as_ref().is_none_or(Vec::is_empty)
}

impl Model {
    /// Whether the model answers chat completions (it outputs text).
    pub fn is_chat(&self) -> bool {
        self.outputs.iter().any(|o| o == "text")
    }

    /// Whether the model is known to accept `tools`, or not known to refuse them.
    pub fn may_use_tools(&self) -> bool {
        self.tools != Some(false)
    }
}

/// Why a catalog body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the model catalog has an unknown shape: {0}")]
pub struct CatalogShapeError(String);

/// Reads a catalog body: `{"data":[...]}` or a bare array, each entry either a
/// Model Document 2.4 or an OpenAI list entry. Entries without an id are skipped.
pub fn parse_catalog(body: &Value) -> Result<Vec<Model>, CatalogShapeError> {
    let entries = match body {
        Value::Array(entries) => entries,
        Value::Object(map) => match map.get("data").or_else(|| map.get("models")) {
            Some(Value::Array(entries)) => entries,
            _ => return Err(CatalogShapeError("no `data` array".to_owned())),
        },
        _ => {
            return Err(CatalogShapeError(
                "neither an object nor an array".to_owned(),
            ));
        }
    };
    Ok(entries
        .iter()
        .filter_map(Value::as_object)
        .filter_map(parse_entry)
        .collect())
}

fn parse_entry(entry: &Map<String, Value>) -> Option<Model> {
    let id = entry.get("id")?.as_str()?.trim();
    if id.is_empty() {
        return None;
    }
    let name = entry.get("name").and_then(Value::as_str).map(str::to_owned);
    let ready = entry
        .get("is_ready")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let model = match entry.get("output_modalities").and_then(Value::as_array) {
        Some(outputs) => parse_document(id, name, entry, outputs),
        None => parse_openai_entry(id, name, entry),
    };
    Some(Model { ready, ..model })
}

/// A Model Document 2.4 entry.
fn parse_document(
    id: &str,
    name: Option<String>,
    entry: &Map<String, Value>,
    outputs: &[Value],
) -> Model {
    let kinds: Vec<String> = outputs
        .iter()
        .filter_map(|o| o.get("type").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let text_out = outputs
        .iter()
        .find(|o| o.get("type").and_then(Value::as_str) == Some("text"));
    let text_in = entry
        .get("input_modalities")
        .and_then(Value::as_array)
        .and_then(|inputs| {
            inputs
                .iter()
                .find(|i| i.get("type").and_then(Value::as_str) == Some("text"))
        });
    let params = text_out
        .and_then(|o| o.get("supported_parameters"))
        .and_then(Value::as_object);
    let max_output_tokens = params
        .and_then(|p| p.get("max_tokens"))
        .and_then(|m| m.get("max"))
        .and_then(as_u64)
        .or_else(|| text_out.and_then(|o| limit(o.get("max_length"))));
    let context_window = text_in
        .and_then(|i| i.get("supported_inputs"))
        .and_then(|s| limit(s.get("max_context_length")));
    let reasoning_efforts = entry
        .get("reasoning")
        .and_then(|r| r.get("supported_efforts"))
        .and_then(Value::as_array)
        .map(|efforts| {
            efforts
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Model {
        id: id.to_owned(),
        name,
        context_window,
        max_output_tokens,
        tools: text_out.map(|_| params.is_some_and(|p| p.contains_key("tools"))),
        streaming: text_out.map(|o| o.get("streaming").and_then(Value::as_bool) == Some(true)),
        reasoning_efforts: Some(reasoning_efforts),
        prompt_usd_per_1m: text_in.and_then(|i| base_price(i.get("pricing"), "prompt")),
        completion_usd_per_1m: text_out.and_then(|o| base_price(o.get("pricing"), "completion")),
        outputs: kinds,
        ready: true,
    }
}

/// An OpenAI list entry: `{"id","object":"model","owned_by","features":[..]}`.
fn parse_openai_entry(id: &str, name: Option<String>, entry: &Map<String, Value>) -> Model {
    let features: Vec<String> = entry
        .get("features")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(feature_kind)
                .collect()
        })
        .unwrap_or_default();
    let outputs = if features.is_empty() {
        vec!["text".to_owned()]
    } else {
        features
    };
    Model {
        id: id.to_owned(),
        name,
        outputs,
        context_window: entry.get("context_length").and_then(as_u64),
        max_output_tokens: None,
        tools: None,
        streaming: None,
        reasoning_efforts: None,
        prompt_usd_per_1m: None,
        completion_usd_per_1m: None,
        ready: true,
    }
}

fn feature_kind(feature: &str) -> String {
    match feature.to_ascii_lowercase().as_str() {
        "textgeneration" | "chat" | "text" => "text".to_owned(),
        "embedding" | "embeddings" => "embeddings".to_owned(),
        "texttospeech" | "tts" | "speech" => "speech".to_owned(),
        "imagegeneration" | "image" => "image".to_owned(),
        other => other.to_owned(),
    }
}

/// A `{"value":N,"unit":"token"}` limit.
fn limit(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value
        .get("value")
        .and_then(as_u64)
        .or_else(|| as_u64(value))
}

fn as_u64(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

/// The base per-token price of `kind` in USD per 1M tokens: the entry without a time window.
fn base_price(pricing: Option<&Value>, kind: &str) -> Option<f64> {
    let entries = pricing?.as_array()?;
    let is_windowed = |e: &Value| {
        ["utc_start", "utc_end", "utc_days"]
            .iter()
            .any(|k| e.get(*k).is_some_and(|v| !v.is_null()))
    };
    let entry = entries.iter().find(|e| {
        e.get("type").and_then(Value::as_str) == Some(kind)
            && e.get("unit").and_then(Value::as_str).unwrap_or("token") == "token"
            && !is_windowed(e)
    })?;
    let per_token = match entry.get("cost_usd")? {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    Some(round_to(per_token * 1_000_000.0, 6))
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn glm() -> Value {
        json!({"schema_version":"2.4","id":"glm-5.2","name":"GLM 5.2","created":1788472794,
         "input_modalities":[
           {"type":"text","supported_inputs":{"max_context_length":{"value":1048576,"unit":"token"}},
            "pricing":[{"type":"prompt","unit":"token","cost_usd":"0.0000005","utc_start":"01:00","utc_end":"05:00"},
                       {"type":"prompt","unit":"token","cost_usd":"0.00000075"}]},
           {"type":"image"}],
         "output_modalities":[{"type":"text","streaming":true,"max_length":{"value":1048576,"unit":"token"},
           "supported_parameters":{"max_tokens":{"type":"integer","min":1,"max":131072},"tools":{"type":"boolean"}},
           "pricing":[{"type":"completion","unit":"token","cost_usd":"0.000003"}]}],
         "reasoning":{"mandatory":false,"supported_efforts":["high","medium","low"]}})
    }

    #[test]
    fn reads_model_document_2_4() {
        let models = parse_catalog(&json!({ "data": [glm()] })).unwrap();
        assert_eq!(
            models,
            vec![Model {
                id: "glm-5.2".into(),
                name: Some("GLM 5.2".into()),
                outputs: vec!["text".into()],
                context_window: Some(1_048_576),
                max_output_tokens: Some(131_072),
                tools: Some(true),
                streaming: Some(true),
                reasoning_efforts: Some(vec!["high".into(), "medium".into(), "low".into()]),
                prompt_usd_per_1m: Some(0.75),
                completion_usd_per_1m: Some(3.0),
                ready: true,
            }]
        );
    }

    #[test]
    fn a_text_model_without_the_tools_parameter_has_no_tools() {
        let entry = json!({"id":"plain","output_modalities":[{"type":"text","supported_parameters":{"temperature":{}}}],
                           "input_modalities":[{"type":"text"}]});
        let model = &parse_catalog(&json!([entry])).unwrap()[0];
        assert_eq!(model.tools, Some(false));
        assert_eq!(model.streaming, Some(false));
        assert!(model.is_chat());
        assert!(!model.may_use_tools());
        assert_eq!(model.reasoning_efforts, Some(vec![]), "lists no efforts");
    }

    #[test]
    fn max_length_stands_in_for_a_missing_max_tokens() {
        let entry = json!({"id":"m","output_modalities":[{"type":"text","max_length":{"value":8192,"unit":"token"}}]});
        assert_eq!(
            parse_catalog(&json!([entry])).unwrap()[0].max_output_tokens,
            Some(8192)
        );
    }

    #[test]
    fn reads_the_openai_list_shape() {
        let body = json!({"object":"list","data":[
            {"id":"llama-3.3-70b-instruct","created":1,"object":"model","owned_by":"system","features":["TextGeneration"]},
            {"id":"bare","object":"model"}]});
        let models = parse_catalog(&body).unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(models[0].outputs, vec!["text"]);
        assert_eq!(models[0].tools, None);
        assert_eq!(models[0].reasoning_efforts, None, "the list does not say");
        assert!(models[0].may_use_tools());
        assert!(models[1].is_chat());
    }

    #[test]
    fn other_outputs_are_not_chat_models() {
        let entry = json!({"id":"qwen3-embedding-4b","output_modalities":[{"type":"embeddings"}]});
        let model = &parse_catalog(&json!({"data":[entry]})).unwrap()[0];
        assert!(!model.is_chat());
        assert_eq!(model.tools, None);
    }

    #[test]
    fn skips_entries_without_an_id_and_rejects_other_shapes() {
        assert!(
            parse_catalog(&json!({"data":[{"name":"x"}, 3, {"id":""}]}))
                .unwrap()
                .is_empty()
        );
        assert!(parse_catalog(&json!({"object":"list"})).is_err());
        assert!(parse_catalog(&json!("text")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_json_parses_or_is_refused_without_panicking(body in crate::proptest_strategies::json_value()) {
            let _ = parse_catalog(&body);
            let _ = parse_catalog(&json!({ "data": [body] }));
        }
    }

    #[test]
    fn models_marked_not_ready_say_so() {
        let entry = json!({"id":"m","is_ready":false,"output_modalities":[{"type":"text"}]});
        assert!(!parse_catalog(&json!([entry])).unwrap()[0].ready);
    }
}
