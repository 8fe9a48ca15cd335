//! Checks of a chat request that need no catalog: the messages, the options, and
//! history a caller resent with a stored conversation.

use std::collections::HashSet;

use super::ChatError;
use crate::secret::KnownKeys;
use crate::vultr::chat::{ChatOptions, Message, Role, Stop, ToolChoice, ToolChoiceMode};

/// With a stored conversation, `messages` should be only the new ones. A caller that
/// resends the history (all of it, or its last messages, such as the assistant message
/// that asked for tools) would pay for it twice: drop the longest start of `messages`
/// that repeats the end of `history`, and say how many were dropped. Messages are
/// compared as stored: with known keys redacted.
pub fn without_repeats(
    mut messages: Vec<Message>,
    history: &[Message],
    known_keys: &KnownKeys,
) -> Result<(Vec<Message>, usize), ChatError> {
    let longest = messages.len().min(history.len());
    // Compared as they would be stored: redacted.
    let given: Vec<Message> = messages[..longest]
        .iter()
        .map(|message| {
            let mut message = message.clone();
            message.redact(known_keys);
            message
        })
        .collect();
    let stored = &history[history.len() - longest..];
    let repeated = (1..=longest)
        .rev()
        .find(|&n| given[..n] == stored[longest - n..])
        .unwrap_or(0);
    if repeated == messages.len() {
        return Err(ChatError::Invalid(format!(
            "`messages` only repeats the stored conversation ({repeated} message(s)); with `conversation_id`, send only what is new: a user message, or one tool message per tool call"
        )));
    }
    messages.drain(..repeated);
    Ok((messages, repeated))
}

/// The messages to send: `prompt` (with `system`) or `messages`, checked for the
/// mistakes Vultr would otherwise reject with a less helpful message.
pub fn new_messages(
    prompt: Option<String>,
    system: Option<String>,
    messages: Option<Vec<Message>>,
    history: &[Message],
) -> Result<Vec<Message>, ChatError> {
    let invalid = |m: &str| Err(ChatError::Invalid(m.to_owned()));
    match (prompt, messages) {
        (Some(_), Some(_)) => invalid("give either `prompt` or `messages`, not both"),
        (None, None) => invalid("give `prompt` (one user message) or `messages` (a conversation)"),
        (Some(prompt), None) => {
            if prompt.trim().is_empty() {
                return invalid("`prompt` is empty");
            }
            let mut messages = Vec::with_capacity(2);
            if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
                messages.push(Message::text(Role::System, system));
            }
            messages.push(Message::text(Role::User, prompt));
            Ok(messages)
        }
        (None, Some(messages)) => {
            if system.is_some() {
                return invalid(
                    "`system` goes with `prompt`; with `messages`, put a message with role system first",
                );
            }
            check_messages(&messages, history)?;
            Ok(messages)
        }
    }
}

/// Checks new messages; `history` (a stored conversation) supplies earlier tool calls.
fn check_messages(messages: &[Message], history: &[Message]) -> Result<(), ChatError> {
    if messages.is_empty() {
        return Err(ChatError::Invalid("`messages` is empty".to_owned()));
    }
    let mut call_ids: HashSet<&str> = history
        .iter()
        .flat_map(|m| m.tool_calls.iter().flatten())
        .map(|call| call.id.as_str())
        .collect();
    for (i, message) in messages.iter().enumerate() {
        let at = |field: &str, problem: &str| {
            Err(ChatError::Invalid(format!(
                "`messages[{i}].{field}` {problem}"
            )))
        };
        let has_content = message.content.as_ref().is_some_and(|c| !c.is_empty());
        let has_calls = message.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
        if message.tool_calls.is_some() && message.role != Role::Assistant {
            return at("tool_calls", "is only allowed on assistant messages");
        }
        if message.tool_call_id.is_some() && message.role != Role::Tool {
            return at("tool_call_id", "is only allowed on tool messages");
        }
        match message.role {
            Role::System | Role::User if !has_content => {
                return at("content", "is required and must not be empty");
            }
            Role::Assistant if !has_content && !has_calls => {
                return at(
                    "content",
                    "is required on an assistant message without tool_calls",
                );
            }
            Role::Tool => {
                let Some(id) = message.tool_call_id.as_deref() else {
                    return at(
                        "tool_call_id",
                        "is required on a tool message: copy the id of the tool call it answers",
                    );
                };
                if !call_ids.contains(id) {
                    return at(
                        "tool_call_id",
                        &format!(
                            "`{id}` matches no tool call of an earlier assistant message; include the assistant_message that made the call before the tool results"
                        ),
                    );
                }
                if message.content.is_none() {
                    return at(
                        "content",
                        "is required on a tool message: the tool's result as text",
                    );
                }
            }
            _ => {}
        }
        for call in message.tool_calls.iter().flatten() {
            call_ids.insert(call.id.as_str());
        }
    }
    Ok(())
}

/// Checks the options for values Vultr would refuse with a less helpful message.
pub fn check_options(options: &ChatOptions) -> Result<(), ChatError> {
    let invalid = |m: String| Err(ChatError::Invalid(m));
    let in_range = |name: &str, value: Option<f64>, low: f64, high: f64| -> Result<(), ChatError> {
        match value {
            Some(v) if !(low..=high).contains(&v) => invalid(format!(
                "`{name}` must be between {low} and {high}, got {v}"
            )),
            _ => Ok(()),
        }
    };
    in_range("temperature", options.temperature, 0.0, 2.0)?;
    in_range("top_p", options.top_p, 0.0, 1.0)?;
    in_range("frequency_penalty", options.frequency_penalty, -2.0, 2.0)?;
    in_range("presence_penalty", options.presence_penalty, -2.0, 2.0)?;
    if options.max_tokens == Some(0) {
        return invalid("`max_tokens` must be at least 1".to_owned());
    }
    if let Some(Stop::Many(stops)) = &options.stop
        && stops.len() > 4
    {
        return invalid(format!(
            "`stop` takes at most 4 sequences, got {}",
            stops.len()
        ));
    }
    if let Some(effort) = &options.reasoning_effort
        && effort.trim().is_empty()
    {
        return invalid("`reasoning_effort` is empty".to_owned());
    }
    let tools = options.tools.as_deref().unwrap_or_default();
    let mut names = HashSet::new();
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return invalid(format!(
                "`tools[{i}].type` must be \"function\", got \"{}\"",
                tool.kind
            ));
        }
        let name = &tool.function.name;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return invalid(format!(
                "`tools[{i}].function.name` `{name}` must be 1 to 64 letters, digits, _ or -"
            ));
        }
        if !names.insert(name.as_str()) {
            return invalid(format!(
                "`tools[{i}].function.name` `{name}` is defined twice"
            ));
        }
    }
    match &options.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) if tools.is_empty() => {
            invalid("`tool_choice` \"required\" needs `tools`".to_owned())
        }
        Some(ToolChoice::Named(named)) if !names.contains(named.function.name.as_str()) => {
            invalid(format!(
                "`tool_choice.function.name` `{}` is not one of `tools`{}",
                named.function.name,
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", sorted(&names).join(", "))
                }
            ))
        }
        _ => Ok(()),
    }
}

fn sorted<'a>(names: &HashSet<&'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.iter().copied().collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ApiKey;
    use serde_json::{Value, json};

    fn options(value: Value) -> ChatOptions {
        let mut options = ChatOptions::default();
        let map = value.as_object().unwrap();
        let f64_of = |k: &str| map.get(k).and_then(Value::as_f64);
        options.temperature = f64_of("temperature");
        options.top_p = f64_of("top_p");
        options.frequency_penalty = f64_of("frequency_penalty");
        options.presence_penalty = f64_of("presence_penalty");
        options.max_tokens = map
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|n| n as u32);
        options.stop = map
            .get("stop")
            .map(|v| serde_json::from_value(v.clone()).unwrap());
        options.reasoning_effort = map
            .get("reasoning_effort")
            .map(|v| v.as_str().unwrap().to_owned());
        options.tools = map
            .get("tools")
            .map(|v| serde_json::from_value(v.clone()).unwrap());
        options.tool_choice = map
            .get("tool_choice")
            .map(|v| serde_json::from_value(v.clone()).unwrap());
        options
    }

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name}})
    }

    fn refusal(result: Result<impl std::fmt::Debug, ChatError>) -> String {
        match result {
            Err(ChatError::Invalid(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn options_within_their_ranges_pass() {
        let cases = [
            json!({}),
            json!({"temperature": 0, "top_p": 1, "frequency_penalty": -2, "presence_penalty": 2}),
            json!({"max_tokens": 1, "stop": ["a", "b", "c", "d"], "reasoning_effort": "low"}),
            json!({"tools": [tool("a"), tool("b-2_c")], "tool_choice": "required"}),
            json!({"tools": [tool("a")], "tool_choice": {"type": "function", "function": {"name": "a"}}}),
        ];
        for case in cases {
            assert!(check_options(&options(case.clone())).is_ok(), "{case}");
        }
    }

    #[test]
    fn options_out_of_range_are_refused_naming_the_field() {
        let cases = [
            (
                json!({"temperature": 2.5}),
                "`temperature` must be between 0 and 2, got 2.5",
            ),
            (
                json!({"top_p": -0.1}),
                "`top_p` must be between 0 and 1, got -0.1",
            ),
            (
                json!({"frequency_penalty": 3}),
                "`frequency_penalty` must be between -2 and 2",
            ),
            (
                json!({"presence_penalty": -3}),
                "`presence_penalty` must be between -2 and 2",
            ),
            (json!({"max_tokens": 0}), "`max_tokens` must be at least 1"),
            (
                json!({"stop": ["a", "b", "c", "d", "e"]}),
                "`stop` takes at most 4 sequences, got 5",
            ),
            (
                json!({"reasoning_effort": " "}),
                "`reasoning_effort` is empty",
            ),
            (
                json!({"tools": [{"type": "code", "function": {"name": "a"}}]}),
                "`tools[0].type` must be \"function\", got \"code\"",
            ),
            (
                json!({"tools": [tool("has space")]}),
                "`tools[0].function.name` `has space` must be 1 to 64",
            ),
            (
                json!({"tools": [tool("a"), tool("a")]}),
                "`tools[1].function.name` `a` is defined twice",
            ),
            (
                json!({"tool_choice": "required"}),
                "`tool_choice` \"required\" needs `tools`",
            ),
            (
                json!({"tools": [tool("b"), tool("a")], "tool_choice": {"type": "function", "function": {"name": "c"}}}),
                "`tool_choice.function.name` `c` is not one of `tools` (a, b)",
            ),
        ];
        for (case, expected) in cases {
            let message = refusal(check_options(&options(case.clone())));
            assert!(message.starts_with(expected), "{case}: {message}");
        }
    }

    fn messages(value: Value) -> Vec<Message> {
        serde_json::from_value(value).unwrap()
    }

    fn asking_for_a_tool() -> Value {
        json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
               "function": {"name": "f", "arguments": "{}"}}]})
    }

    #[test]
    fn a_prompt_becomes_a_user_message_after_the_system_one() {
        let sent = new_messages(Some("hi".into()), Some("Be brief.".into()), None, &[]).unwrap();
        assert_eq!(
            serde_json::to_value(&sent).unwrap(),
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
        );
        let blank_system = new_messages(Some("hi".into()), Some(" ".into()), None, &[]).unwrap();
        assert_eq!(blank_system.len(), 1);
    }

    #[test]
    fn mistaken_messages_are_refused_naming_the_field() {
        let user = json!({"role": "user", "content": "hi"});
        let cases = [
            (json!([]), "`messages` is empty"),
            (
                json!([{"role": "user"}]),
                "`messages[0].content` is required",
            ),
            (
                json!([{"role": "system", "content": " "}]),
                "`messages[0].content` is required",
            ),
            (
                json!([user, {"role": "assistant"}]),
                "`messages[1].content` is required on an assistant message",
            ),
            (
                json!([{"role": "user", "content": "x", "tool_calls": []}]),
                "`messages[0].tool_calls` is only allowed on assistant",
            ),
            (
                json!([{"role": "user", "content": "x", "tool_call_id": "c1"}]),
                "`messages[0].tool_call_id` is only allowed on tool",
            ),
            (
                json!([user, {"role": "tool", "content": "18°C"}]),
                "`messages[1].tool_call_id` is required",
            ),
            (
                json!([user, {"role": "tool", "tool_call_id": "x", "content": "1"}]),
                "`messages[1].tool_call_id` `x` matches no tool call",
            ),
            (
                json!([user, asking_for_a_tool(), {"role": "tool", "tool_call_id": "c1"}]),
                "`messages[2].content` is required on a tool message",
            ),
        ];
        for (case, expected) in cases {
            let message = refusal(new_messages(None, None, Some(messages(case.clone())), &[]));
            assert!(message.starts_with(expected), "{case}: {message}");
        }
    }

    #[test]
    fn prompt_and_messages_go_one_at_a_time() {
        let both = new_messages(Some("hi".into()), None, Some(vec![]), &[]);
        assert_eq!(
            refusal(both),
            "give either `prompt` or `messages`, not both"
        );
        let neither = new_messages(None, None, None, &[]);
        assert!(refusal(neither).starts_with("give `prompt`"));
        let system_with_messages = new_messages(
            None,
            Some("s".into()),
            Some(messages(json!([{"role": "user", "content": "hi"}]))),
            &[],
        );
        assert!(refusal(system_with_messages).starts_with("`system` goes with `prompt`"));
        assert_eq!(
            refusal(new_messages(Some(" ".into()), None, None, &[])),
            "`prompt` is empty"
        );
    }

    #[test]
    fn a_tool_result_may_answer_a_call_of_the_stored_conversation() {
        let history = messages(json!([{"role": "user", "content": "hi"}, asking_for_a_tool()]));
        let result = json!([{"role": "tool", "tool_call_id": "c1", "content": "done"}]);
        assert!(new_messages(None, None, Some(messages(result)), &history).is_ok());
    }

    #[test]
    fn resent_history_is_dropped_and_counted() {
        let key = ApiKey::new("INFKEY-REPEAT-AAAA-BBBB-9999").unwrap();
        let known = KnownKeys::default();
        known.remember(&key);
        let question = json!({"role": "user", "content": "use INFKEY-REPEAT-AAAA-BBBB-9999"});
        let stored_question = json!({"role": "user", "content": "use [redacted key …9999]"});
        let history = messages(json!([stored_question, asking_for_a_tool()]));
        let result = json!({"role": "tool", "tool_call_id": "c1", "content": "done"});
        let cases = [
            // (given, how many repeated)
            (json!([result]), 0),
            (json!([asking_for_a_tool(), result]), 1),
            (json!([question, asking_for_a_tool(), result]), 2),
            (json!([stored_question, asking_for_a_tool(), result]), 2),
        ];
        for (given, repeated) in cases {
            let (kept, dropped) =
                without_repeats(messages(given.clone()), &history, &known).unwrap();
            assert_eq!(dropped, repeated, "{given}");
            assert_eq!(
                serde_json::to_value(&kept).unwrap(),
                json!([result]),
                "{given}"
            );
        }
        let only_history =
            without_repeats(messages(json!([asking_for_a_tool()])), &history, &known);
        assert!(
            refusal(only_history).contains("only repeats the stored conversation (1 message(s))")
        );
    }
}
