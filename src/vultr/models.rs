//! The model catalog (`GET /v1/models`), read from the current "Model Document 2.4"
//! shape and from the older OpenAI list shape.

use std::collections::BTreeMap;

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
    /// What the model's outputs accept and cost, as the catalog states it: read by the
    /// tools of other model kinds (speech, images, ...), not shown by `list_models`.
    #[serde(skip)]
    #[schemars(skip)]
    pub spec: KindSpec,
}

/// The parameters, limits and prices the catalog states for a model, whatever its kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindSpec {
    /// The `supported_parameters` of its outputs, by name (the first output naming one wins).
    pub parameters: BTreeMap<String, Parameter>,
    /// Every `{value, unit}` limit of its inputs (`supported_inputs`) and outputs
    /// (`max_length`), in catalog order.
    pub limits: Vec<Limit>,
    /// Every price without a time window, of inputs and outputs.
    pub prices: Vec<Price>,
    /// MIME types its non-text inputs accept (`supported_inputs.formats`), e.g. `audio/wav`.
    pub input_formats: Vec<String>,
}

/// One supported parameter: its allowed values or range, and its default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parameter {
    /// The values of an `enum` parameter.
    pub values: Vec<String>,
    /// The least value of a numeric parameter.
    pub min: Option<f64>,
    /// The greatest value of a numeric parameter.
    pub max: Option<f64>,
    /// The default, when the catalog names one.
    pub default: Option<Value>,
}

/// A limit such as `{"value": 6000, "unit": "character"}`, under the name the catalog gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The catalog's key, e.g. `max_prompt_length` or `max_context_length`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// The unit: `token`, `character`, `second`, `byte`, ...
    pub unit: String,
}

/// A price: USD per unit of a prompt (input) or completion (output).
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// `prompt` or `completion`.
    pub kind: String,
    /// `token`, `second`, `megapixel`, `character`, ...
    pub unit: String,
    /// USD per one unit.
    pub usd_per_unit: f64,
}

impl KindSpec {
    /// The first limit stated in `unit` (`second`, `byte`, `character`, `token`); `None`
    /// when the catalog states none, which means "no limit known", never a made-up one.
    pub fn limit_in(&self, unit: &str) -> Option<f64> {
        self.limits
            .iter()
            .find(|limit| limit.unit.eq_ignore_ascii_case(unit))
            .map(|limit| limit.value)
    }

    /// The first price per `unit`, of either kind.
    pub fn price_per(&self, unit: &str) -> Option<&Price> {
        self.prices
            .iter()
            .find(|price| price.unit.eq_ignore_ascii_case(unit))
    }

    /// The parameter `name`, when the catalog lists it.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.get(name)
    }
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

    /// Whether one of the model's outputs is `kind` (`speech`, `image`, ...).
    pub fn outputs(&self, kind: &str) -> bool {
        self.outputs.iter().any(|o| o == kind)
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
        spec: parse_spec(entry, outputs),
    }
}

/// Everything [`KindSpec`] holds, read leniently: entries of an unknown shape are skipped.
fn parse_spec(entry: &Map<String, Value>, outputs: &[Value]) -> KindSpec {
    let inputs = entry
        .get("input_modalities")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut spec = KindSpec::default();
    for output in outputs {
        let declared = output
            .get("supported_parameters")
            .and_then(Value::as_object)
            .into_iter()
            .flatten();
        for (name, declared) in declared {
            spec.parameters
                .entry(name.clone())
                .or_insert_with(|| parse_parameter(declared));
        }
    }
    for input in inputs {
        let supported = input.get("supported_inputs").and_then(Value::as_object);
        for (name, value) in supported.into_iter().flatten() {
            if let Some(limit) = parse_limit(name, value) {
                spec.limits.push(limit);
            }
        }
        if let Some(formats) = supported.and_then(|s| s.get("formats")) {
            spec.input_formats.extend(parse_parameter(formats).values);
        }
    }
    for output in outputs {
        if let Some(limit) = output
            .get("max_length")
            .and_then(|v| parse_limit("max_length", v))
        {
            spec.limits.push(limit);
        }
    }
    for modality in inputs.iter().chain(outputs) {
        spec.prices.extend(parse_prices(modality.get("pricing")));
    }
    spec
}

/// A `{"type": "enum"|"integer"|"range", "values", "min", "max", "default"}` parameter.
fn parse_parameter(declared: &Value) -> Parameter {
    let values = declared
        .get("values")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Parameter {
        values,
        min: declared.get("min").and_then(Value::as_f64),
        max: declared.get("max").and_then(Value::as_f64),
        default: declared.get("default").filter(|d| !d.is_null()).cloned(),
    }
}

/// A `{"value": N, "unit": "..."}` limit named `name`; other shapes are not limits.
fn parse_limit(name: &str, value: &Value) -> Option<Limit> {
    Some(Limit {
        name: name.to_owned(),
        value: value.get("value")?.as_f64()?,
        unit: value.get("unit")?.as_str()?.to_owned(),
    })
}

/// The prices of a `pricing` array without a time window.
fn parse_prices(pricing: Option<&Value>) -> Vec<Price> {
    let Some(entries) = pricing.and_then(Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| !is_windowed(e))
        .filter_map(|e| {
            Some(Price {
                kind: e.get("type")?.as_str()?.to_owned(),
                unit: e
                    .get("unit")
                    .and_then(Value::as_str)
                    .unwrap_or("token")
                    .to_owned(),
                usd_per_unit: cost_usd(e.get("cost_usd")?)?,
            })
        })
        .collect()
}

/// Whether a price holds only at some hours or days.
fn is_windowed(entry: &Value) -> bool {
    ["utc_start", "utc_end", "utc_days"]
        .iter()
        .any(|k| entry.get(*k).is_some_and(|v| !v.is_null()))
}

/// A `cost_usd`, given as a decimal string or a number.
fn cost_usd(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Number(n) => n.as_f64(),
        _ => None,
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
        spec: KindSpec::default(),
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
    let per_token = parse_prices(pricing)
        .into_iter()
        .find(|price| price.kind == kind && price.unit == "token")?
        .usd_per_unit;
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
                spec: models[0].spec.clone(),
            }]
        );
        let spec = &models[0].spec;
        assert_eq!(spec.limit_in("token"), Some(1_048_576.0));
        assert_eq!(
            spec.parameter("max_tokens").and_then(|p| p.max),
            Some(131_072.0)
        );
        assert_eq!(
            spec.prices,
            vec![
                Price {
                    kind: "prompt".into(),
                    unit: "token".into(),
                    usd_per_unit: 0.00000075
                },
                Price {
                    kind: "completion".into(),
                    unit: "token".into(),
                    usd_per_unit: 0.000003
                },
            ],
            "the windowed price is left out"
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
    fn reads_the_parameters_limits_and_prices_of_other_model_kinds() {
        let tts = json!({"id":"qwen3-tts","input_modalities":[{"type":"text",
            "supported_inputs":{"max_prompt_length":{"value":6000,"unit":"character"}}}],
            "output_modalities":[{"type":"speech","supported_parameters":{
                "voice":{"type":"enum","values":["ryan","vivian"]},
                "response_format":{"type":"enum","values":["mp3","wav"],"default":"mp3"},
                "speed":{"type":"range","min":0.25,"max":4}},
              "pricing":[{"type":"completion","unit":"second","cost_usd":"0.00028"}]}]});
        let whisper = json!({"id":"whisper","input_modalities":[{"type":"audio","supported_inputs":{
                "sources":{"type":"enum","values":["base64"]},
                "formats":{"type":"enum","values":["audio/wav","audio/mpeg"]},
                "max_duration":{"value":14400,"unit":"second"},
                "max_file_size":{"value":26214400,"unit":"byte"}},
              "pricing":[{"type":"prompt","unit":"second","cost_usd":0.00001111}]}],
            "output_modalities":[{"type":"transcription"}]});
        let models = parse_catalog(&json!([tts, whisper])).unwrap();
        let tts = &models[0].spec;
        assert_eq!(tts.limit_in("character"), Some(6000.0));
        assert_eq!(
            tts.limit_in("second"),
            None,
            "no limit known is not a limit"
        );
        assert_eq!(tts.parameter("voice").unwrap().values, ["ryan", "vivian"]);
        assert_eq!(
            tts.parameter("response_format").unwrap().default,
            Some(json!("mp3"))
        );
        assert_eq!(tts.parameter("speed").unwrap().max, Some(4.0));
        assert_eq!(tts.price_per("second").unwrap().usd_per_unit, 0.00028);
        let whisper = &models[1].spec;
        assert_eq!(whisper.limit_in("second"), Some(14400.0));
        assert_eq!(whisper.limit_in("byte"), Some(26_214_400.0));
        assert_eq!(whisper.input_formats, ["audio/wav", "audio/mpeg"]);
        assert_eq!(whisper.price_per("second").unwrap().kind, "prompt");
        assert!(models[1].outputs("transcription"));
    }

    #[test]
    fn models_marked_not_ready_say_so() {
        let entry = json!({"id":"m","is_ready":false,"output_modalities":[{"type":"text"}]});
        assert!(!parse_catalog(&json!([entry])).unwrap()[0].ready);
    }
}
