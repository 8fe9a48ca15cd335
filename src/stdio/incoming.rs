//! Making sense of one line from the client: a JSON-RPC message for rmcp, or the error
//! answer the line deserves (every request gets an answer, even a malformed one).

use rmcp::model::{ClientJsonRpcMessage, ErrorCode, RequestId};
use serde_json::{Value, json};

/// UTF-8 byte order mark; RFC 8259 §8.1 lets a parser ignore a leading one.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// What a line from the client amounts to.
#[derive(Debug)]
pub enum Incoming {
    /// A well-formed JSON-RPC message for rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// A malformed message: the error response to send back.
    Refused(ErrorAnswer),
    /// Nothing to act on: a blank line, or a notification we cannot read (JSON-RPC never
    /// answers notifications).
    Nothing,
}

/// A JSON-RPC error response this transport writes itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorAnswer {
    /// The id of the request, when it could be read; `null` otherwise.
    pub id: Option<RequestId>,
    /// The JSON-RPC error code.
    pub code: ErrorCode,
    /// What was wrong and what to do.
    pub message: String,
}

impl ErrorAnswer {
    /// -32700: the line is not JSON.
    pub fn parse_error(message: String) -> Self {
        Self {
            id: None,
            code: ErrorCode::PARSE_ERROR,
            message,
        }
    }

    /// -32600: the message is not a valid request.
    pub fn invalid_request(id: Option<RequestId>, message: String) -> Self {
        Self {
            id,
            code: ErrorCode::INVALID_REQUEST,
            message,
        }
    }

    /// The response line, without its newline; `"id": null` when the id is unknown.
    pub fn to_json(&self) -> Vec<u8> {
        let id = self
            .id
            .clone()
            .map_or(Value::Null, RequestId::into_json_value);
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": self.code.0, "message": self.message},
        })
        .to_string()
        .into_bytes()
    }
}

/// Reads one line (without its newline).
pub fn classify(line: &[u8]) -> Incoming {
    let line = line.strip_prefix(BYTE_ORDER_MARK).unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Incoming::Nothing;
    }
    if let Ok(message) = serde_json::from_slice::<ClientJsonRpcMessage>(line) {
        return Incoming::Message(Box::new(message));
    }
    if std::str::from_utf8(line).is_err() {
        return Incoming::Refused(ErrorAnswer::parse_error(
            "Parse error: the line is not valid UTF-8. Send each JSON-RPC message as one line of UTF-8 JSON.".into(),
        ));
    }
    let value = match serde_json::from_slice::<Value>(line) {
        Ok(value) => value,
        Err(error) => {
            return Incoming::Refused(ErrorAnswer::parse_error(format!(
                "Parse error: the line is not valid JSON ({error}). Send each JSON-RPC message as one line of JSON, nested at most 128 levels deep."
            )));
        }
    };
    // A request nested close to the parser's depth limit fails the direct parse (its
    // envelope adds levels) yet is fine once read as a plain JSON value.
    let shape_error = match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        Ok(message) => return Incoming::Message(Box::new(message)),
        Err(error) => error,
    };
    let Value::Object(object) = &value else {
        let what = match value {
            Value::Array(_) => "an array (JSON-RPC batches are not supported in MCP)",
            _ => "a JSON value that is not an object",
        };
        return Incoming::Refused(ErrorAnswer::invalid_request(
            None,
            format!("Invalid Request: got {what}; send one JSON-RPC 2.0 request object per line."),
        ));
    };
    let id = object.get("id");
    let method = object.get("method").and_then(Value::as_str);
    let version_2 = object.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    if id.is_none() && method.is_some() && version_2 {
        // A notification: JSON-RPC never answers one, even a malformed one.
        tracing::debug!(method, "ignoring a notification that could not be read");
        return Incoming::Nothing;
    }
    let readable_id = id.and_then(request_id);
    let problem = if !version_2 {
        "\"jsonrpc\" must be \"2.0\"".to_owned()
    } else if id.is_some() && readable_id.is_none() {
        "\"id\" must be a string or an integer".to_owned()
    } else if method.is_none() {
        "a request needs a \"method\" string".to_owned()
    } else {
        format!(
            "the message does not fit method {:?} ({shape_error})",
            method.unwrap_or_default()
        )
    };
    Incoming::Refused(ErrorAnswer::invalid_request(
        readable_id,
        format!("Invalid Request: {problem}."),
    ))
}

/// The id of a request, if it is one JSON-RPC allows (a string or an integer).
fn request_id(id: &Value) -> Option<RequestId> {
    match id {
        Value::String(_) | Value::Number(_) => serde_json::from_value(id.clone()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(line: &[u8]) -> ErrorAnswer {
        match classify(line) {
            Incoming::Refused(answer) => answer,
            other => panic!("expected a refusal of {line:?}, got {other:?}"),
        }
    }

    fn answer_json(answer: &ErrorAnswer) -> Value {
        serde_json::from_slice(&answer.to_json()).unwrap()
    }

    #[test]
    fn a_request_is_a_message_for_rmcp() {
        let incoming = classify(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
        assert!(matches!(incoming, Incoming::Message(_)), "{incoming:?}");
    }

    #[test]
    fn a_byte_order_mark_and_a_carriage_return_are_tolerated() {
        let incoming =
            classify(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\r");
        assert!(matches!(incoming, Incoming::Message(_)), "{incoming:?}");
    }

    #[test]
    fn blank_lines_are_nothing() {
        assert!(matches!(classify(b""), Incoming::Nothing));
        assert!(matches!(classify(b"  \t"), Incoming::Nothing));
    }

    #[test]
    fn text_truncated_json_invalid_utf8_and_deep_nesting_are_parse_errors_with_a_null_id() {
        let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
        for line in [
            &b"this is not json"[..],
            br#"{"jsonrpc":"2.0","id":5,"meth"#,
            b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"\xff\"}",
            deep.as_bytes(),
        ] {
            let answer = refused(line);
            assert_eq!(answer.code, ErrorCode::PARSE_ERROR, "{answer:?}");
            let json = answer_json(&answer);
            assert_eq!(json["id"], Value::Null, "{json}");
            assert!(json.as_object().unwrap().contains_key("id"), "{json}");
            assert_eq!(json["jsonrpc"], "2.0");
        }
    }

    #[test]
    fn json_that_is_not_a_request_is_an_invalid_request_with_a_null_id() {
        for line in [
            &br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#[..],
            b"42",
            br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            br#"{"jsonrpc":"1.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
            br#"{"jsonrpc":"2.0"}"#,
        ] {
            let answer = refused(line);
            assert_eq!(answer.code, ErrorCode::INVALID_REQUEST, "{answer:?}");
            let expected_id = serde_json::from_slice::<Value>(line).unwrap()["id"].clone();
            let json = answer_json(&answer);
            let id = &json["id"];
            assert!(*id == Value::Null || *id == expected_id, "{json}");
            assert!(json.as_object().unwrap().contains_key("id"), "{json}");
        }
    }

    #[test]
    fn a_refused_request_with_a_readable_id_is_answered_under_that_id() {
        let answer = refused(br#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#);
        assert_eq!(answer_json(&answer)["id"], "abc");
        assert!(
            answer.message.contains("\"jsonrpc\" must be \"2.0\""),
            "{}",
            answer.message
        );
        let answer = refused(br#"{"jsonrpc":"2.0","id":9,"method":"ping","result":{}}"#);
        assert_eq!(answer_json(&answer)["id"], 9);
        assert!(answer.message.contains("ping"), "{}", answer.message);
    }

    #[test]
    fn a_notification_that_cannot_be_read_gets_no_answer() {
        let incoming =
            classify(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}"#);
        assert!(matches!(incoming, Incoming::Nothing), "{incoming:?}");
    }
}
