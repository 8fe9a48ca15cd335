//! Strategies for property tests: arbitrary JSON, with the shapes our parsers look for
//! mixed in so the tests reach past the first check.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Keys our parsers read, so random objects often carry them.
const KEYS: &[&str] = &[
    "id",
    "data",
    "error",
    "message",
    "code",
    "type",
    "choices",
    "content",
    "role",
    "tool_calls",
    "function",
    "arguments",
    "name",
    "output_modalities",
    "input_modalities",
    "supported_parameters",
    "pricing",
    "cost_usd",
    "max_tokens",
    "max",
    "value",
    "tools",
    "messages",
    "prompt",
    "model",
    "tool_choice",
    "tool_call_id",
    "stop",
    "temperature",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        proptest::sample::select(
            &[
                "text",
                "function",
                "user",
                "tool",
                "assistant",
                "auto",
                "none",
                "{}",
                "{\"a\":1}"
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Any JSON object.
pub fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((key(), json_value()), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect())
}
