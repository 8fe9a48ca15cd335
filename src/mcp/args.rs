//! Tool arguments: decoded with the path of the offending field, and unknown names refused.

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_input;
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a tool's arguments were refused; the message names the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid arguments: {0}")]
pub struct InvalidArguments(pub String);

/// The input schema of `T`, compacted for `tools/list` (which every client pays for in
/// context) and made portable: no formats, a single `type` per schema (an optional field
/// is one left out of `required`, never a `["string", "null"]` type array, which stricter
/// clients refuse), enums as `enum` lists, descriptions only on properties, and no
/// `$schema` (2020-12 is MCP's default dialect, so naming it only costs context).
pub fn input_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    let schema = schema_for_input::<T>().unwrap_or_else(|e| {
        panic!(
            "invalid input schema for {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let mut value = Value::Object((*schema).clone());
    compact(&mut value);
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
    }
    // An optional argument may simply be left out, so its `null` alternative is noise.
    // Nested `anyOf` unions keep theirs: an assistant message's content may well be null.
    if let Some(Value::Object(properties)) = value.get_mut("properties") {
        for property in properties.values_mut() {
            if let Value::Object(property) = property {
                drop_null_alternative(property);
            }
        }
    }
    if let Some(Value::Object(defs)) = value.get_mut("$defs") {
        for def in defs.values_mut() {
            if let Value::Object(def) = def {
                def.remove("description");
            }
        }
    }
    match value {
        Value::Object(map) => Arc::new(map),
        _ => schema,
    }
}

fn drop_null_alternative(map: &mut JsonObject) {
    let is_null = |v: &Value| {
        v.as_str() == Some("null") || v.get("type").and_then(Value::as_str) == Some("null")
    };
    if let Some(Value::Array(types)) = map.get("type")
        && types.len() == 2
        && types.iter().any(is_null)
        && let Some(other) = types.iter().find(|t| !is_null(t)).cloned()
    {
        map.insert("type".to_owned(), other);
    }
    if let Some(Value::Array(variants)) = map.get("anyOf")
        && variants.len() == 2
        && let Some(idx) = variants.iter().position(is_null)
        && let Value::Object(kept) = variants[1 - idx].clone()
    {
        map.remove("anyOf");
        for (k, v) in kept {
            map.entry(k).or_insert(v);
        }
    }
}

/// `"type": ["string", "null"]` becomes `"type": "string"` (leaving the field out is how
/// it is omitted), and `"type": ["string", "object"]` an `anyOf` of single types.
fn single_type(map: &mut JsonObject) {
    let Some(Value::Array(types)) = map.get("type") else {
        return;
    };
    let kept: Vec<Value> = types
        .iter()
        .filter(|t| t.as_str() != Some("null"))
        .cloned()
        .collect();
    match &kept[..] {
        [only] => {
            map.insert("type".to_owned(), only.clone());
        }
        several => {
            let variants = several
                .iter()
                .map(|t| serde_json::json!({ "type": t }))
                .collect();
            map.remove("type");
            map.insert("anyOf".to_owned(), Value::Array(variants));
        }
    }
}

fn compact(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(compact),
        Value::Object(map) => {
            // The `format` keyword is a string; an object is a property named `format`.
            if map.get("format").is_some_and(Value::is_string) {
                map.remove("format");
            }
            single_type(map);
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(variants)) = map.get("oneOf")
                && !variants.is_empty()
                && variants.iter().all(|v| v.get("const").is_some())
            {
                let values: Vec<Value> = variants
                    .iter()
                    .filter_map(|v| v.get("const").cloned())
                    .collect();
                map.remove("oneOf");
                map.insert("type".to_owned(), Value::String("string".to_owned()));
                map.insert("enum".to_owned(), Value::Array(values));
            }
            if let Some(Value::Array(variants)) = map.get_mut("anyOf") {
                for variant in variants.iter_mut() {
                    if let Value::Object(variant) = variant {
                        variant.remove("description");
                    }
                }
            }
            map.values_mut().for_each(compact);
        }
        _ => {}
    }
}

/// Decodes arguments into `T`, naming the field at fault; a missing required argument is
/// explained with its description (what to pass, and where to find the choices).
pub fn decode<T>(arguments: serde_json::Map<String, Value>) -> Result<T, InvalidArguments>
where
    T: DeserializeOwned + JsonSchema + 'static,
{
    let schema = schema_for_input::<T>().ok();
    let properties = schema
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    if let Some(properties) = properties {
        let unknown: Vec<&str> = arguments
            .keys()
            .filter(|k| !properties.contains_key(k.as_str()))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let mut expected: Vec<&str> = properties.keys().map(String::as_str).collect();
            expected.sort_unstable();
            return Err(InvalidArguments(format!(
                "unknown argument{} `{}`; this tool takes: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join("`, `"),
                if expected.is_empty() {
                    "no arguments".to_owned()
                } else {
                    expected.join(", ")
                }
            )));
        }
    }
    serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path != "." {
            return InvalidArguments(format!("`{path}`: {inner}"));
        }
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        let description = missing.and_then(|field| {
            properties?
                .get(field)?
                .get("description")?
                .as_str()
                .map(|d| (field, d))
        });
        match description {
            Some((field, description)) => {
                InvalidArguments(format!("`{field}` is required: {description}"))
            }
            None => InvalidArguments(inner),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Args {
        #[allow(dead_code)]
        count: Option<u32>,
        #[allow(dead_code)]
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Item {
        #[allow(dead_code)]
        name: String,
    }

    fn args(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_the_field_at_fault() {
        let err = decode::<Args>(args(json!({"items":[{"name":"a"},{"name":3}]}))).unwrap_err();
        assert!(
            err.0
                .starts_with("`items[1].name`: invalid type: integer `3`, expected a string"),
            "{}",
            err.0
        );
        let err = decode::<Args>(args(json!({"count":"three"}))).unwrap_err();
        assert!(err.0.starts_with("`count`:"), "{}", err.0);
    }

    /// Arguments with a required field.
    #[derive(Debug, Deserialize, JsonSchema)]
    struct Required {
        /// Subscription id or label; list_subscriptions shows them.
        #[allow(dead_code)]
        subscription: String,
    }

    #[test]
    fn a_missing_required_argument_says_what_to_pass() {
        let err = decode::<Required>(args(json!({}))).unwrap_err();
        assert_eq!(
            err.0,
            "`subscription` is required: Subscription id or label; list_subscriptions shows them."
        );
    }

    #[test]
    fn refuses_unknown_arguments() {
        let err = decode::<Args>(args(json!({"cont": 1}))).unwrap_err();
        assert_eq!(
            err.0,
            "unknown argument `cont`; this tool takes: count, items"
        );
    }
}
