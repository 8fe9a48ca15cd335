//! Tool arguments: decoded with the path of the offending field, and unknown names refused.

use std::borrow::Cow;

use rmcp::handler::server::common::{FromContextPart, schema_for_input};
use rmcp::handler::server::tool::ToolCallContext;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a tool's arguments were refused; the message names the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid arguments: {0}")]
pub struct InvalidArguments(pub String);

/// A tool's decoded arguments, or why they could not be decoded. Named `Parameters`
/// so rmcp's `#[tool]` macro takes the input schema from `T`.
pub struct Parameters<T>(pub Result<T, InvalidArguments>);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

impl<S, T> FromContextPart<ToolCallContext<'_, S>> for Parameters<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
{
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, rmcp::ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        Ok(Parameters(decode::<T>(arguments)))
    }
}

/// Decodes arguments into `T`, naming the field at fault.
pub fn decode<T>(arguments: serde_json::Map<String, Value>) -> Result<T, InvalidArguments>
where
    T: DeserializeOwned + JsonSchema + 'static,
{
    if let Ok(schema) = schema_for_input::<T>()
        && let Some(Value::Object(properties)) = schema.get("properties")
    {
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
                if expected.is_empty() { "no arguments".to_owned() } else { expected.join(", ") }
            )));
        }
    }
    serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            InvalidArguments(inner)
        } else {
            InvalidArguments(format!("`{path}`: {inner}"))
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
        assert!(err.0.starts_with("`items[1].name`: invalid type: integer `3`, expected a string"), "{}", err.0);
        let err = decode::<Args>(args(json!({"count":"three"}))).unwrap_err();
        assert!(err.0.starts_with("`count`:"), "{}", err.0);
    }

    #[test]
    fn refuses_unknown_arguments() {
        let err = decode::<Args>(args(json!({"cont": 1}))).unwrap_err();
        assert_eq!(err.0, "unknown argument `cont`; this tool takes: count, items");
    }
}
