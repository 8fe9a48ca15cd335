//! `chat_completion`: what is sent upstream, what comes back, the tool-calling round trip,
//! and the requests refused before they cost anything.

use serde_json::{Value, json};

use crate::support::fake_vultr::{FakeVultr, TOOL_CALL_ID, weather_tool};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

#[tokio::test]
async fn a_prompt_gets_the_models_reply_as_text_and_structured_content() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let result = server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "Say hi"}),
        )
        .await;
    let reply = ok(&result);
    assert_eq!(reply["model"], "glm-5.2");
    assert_eq!(reply["content"], "echo: Say hi");
    assert_eq!(reply["finish_reason"], "stop");
    assert_eq!(reply["tool_calls"], json!([]));
    assert_eq!(
        reply["assistant_message"],
        json!({"role": "assistant", "content": "echo: Say hi"})
    );
    let usage = &reply["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    let shown = text(&result);
    assert!(shown.starts_with("echo: Say hi"), "{shown}");
    assert!(shown.contains("finish_reason stop"), "{shown}");
    server.stop().await;
}

#[tokio::test]
async fn only_the_parameters_the_caller_gave_are_sent_upstream() {
    let fake = FakeVultr::start().await;
    // Every optional parameter, each sent upstream as given.
    let every_parameter = json!({
        "model": "glm-5.2",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "tools": [weather_tool()],
        "tool_choice": "none"
    });
    let server = Server::with_fake(&fake, &[]).await;
    ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi", "system": "Be brief."}),
        )
        .await);
    ok(&server
        .call("chat_completion", every_parameter.clone())
        .await);
    // glm-5.2 streams, so the server adds exactly the two streaming fields it needs.
    let mut sent = fake.chat_requests().await;
    for body in &mut sent {
        let body = body.as_object_mut().unwrap();
        assert_eq!(body.remove("stream"), Some(json!(true)));
        assert_eq!(
            body.remove("stream_options"),
            Some(json!({"include_usage": true}))
        );
    }
    assert_eq!(
        sent[0],
        json!({
            "model": "glm-5.2",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
        })
    );
    assert_eq!(sent[1], every_parameter);
    server.stop().await;
}

#[tokio::test]
async fn the_default_model_is_used_when_a_call_names_none() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_DEFAULT_MODEL", "kimi-k2-instruct")]).await;
    let reply = ok(&server
        .call("chat_completion", json!({"prompt": "hi"}))
        .await);
    assert_eq!(reply["model"], "kimi-k2-instruct");
    assert_eq!(fake.chat_requests().await[0]["model"], "kimi-k2-instruct");
    server.stop().await;
}

#[tokio::test]
async fn without_a_model_or_a_default_the_error_says_how_to_choose() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let message = err(&server
        .call("chat_completion", json!({"prompt": "hi"}))
        .await);
    assert!(
        message.contains("`model`") && message.contains("VULTR_DEFAULT_MODEL"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_complete_tool_calling_round_trip() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let question = json!({"role": "user", "content": "What is the weather in Paris?"});

    // 1. The model asks for a tool.
    let first = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "messages": [question], "tools": [weather_tool()]}),
        )
        .await;
    let reply = ok(&first);
    assert_eq!(reply["finish_reason"], "tool_calls");
    assert_eq!(
        reply["tool_calls"],
        json!([{"id": TOOL_CALL_ID, "name": "get_weather", "arguments": {"city": "Paris"}}])
    );
    let assistant = reply["assistant_message"].clone();
    assert_eq!(
        assistant,
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{"id": TOOL_CALL_ID, "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
        })
    );
    let shown = text(&first);
    assert!(
        shown.contains(&format!(
            "id {TOOL_CALL_ID}: get_weather({{\"city\":\"Paris\"}})"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("assistant_message") && shown.contains("tool_call_id"),
        "{shown}"
    );

    // 2. The caller runs the tool and sends the result back.
    let tool_result =
        json!({"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "18°C and sunny"});
    let messages = json!([question, assistant, tool_result]);
    let second = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "messages": messages, "tools": [weather_tool()]}),
        )
        .await;
    let answer = ok(&second);
    assert_eq!(answer["content"], "Tool result received: 18°C and sunny");
    assert_eq!(answer["finish_reason"], "stop");

    // The fake saw the conversation as the round trip built it (a null content is left out).
    let sent = fake.chat_requests().await;
    assert_eq!(sent.len(), 2);
    let mut upstream_assistant = messages[1].clone();
    upstream_assistant
        .as_object_mut()
        .unwrap()
        .remove("content");
    assert_eq!(
        sent[1]["messages"],
        json!([messages[0], upstream_assistant, messages[2]])
    );
    server.stop().await;
}

#[tokio::test]
async fn tool_call_arguments_given_as_an_object_are_sent_as_a_json_string() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let messages = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "cold"}
    ]);
    ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "messages": messages}),
        )
        .await);
    let sent = fake.chat_requests().await;
    assert_eq!(
        sent[0]["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Oslo\"}"
    );
    server.stop().await;
}

#[tokio::test]
async fn tool_choice_none_gets_a_plain_answer_and_required_gets_a_call() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let none = ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi", "tools": [weather_tool()], "tool_choice": "none"}),
        )
        .await);
    assert_eq!(none["tool_calls"], json!([]));
    assert_eq!(none["content"], "echo: hi");

    let required = ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi", "tools": [weather_tool()], "tool_choice": "required"}),
        )
        .await);
    assert_eq!(required["tool_calls"][0]["name"], "get_weather");

    let other_tool = json!({"type": "function", "function": {"name": "get_time"}});
    let named = ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi", "tools": [weather_tool(), other_tool],
                   "tool_choice": {"type": "function", "function": {"name": "get_time"}}}),
        )
        .await);
    assert_eq!(named["tool_calls"][0]["name"], "get_time");

    let sent = fake.chat_requests().await;
    assert_eq!(sent[0]["tool_choice"], "none");
    assert_eq!(sent[1]["tool_choice"], "required");
    assert_eq!(
        sent[2]["tool_choice"],
        json!({"type": "function", "function": {"name": "get_time"}})
    );
    server.stop().await;
}

/// Calls chat_completion with `arguments`, expects an error result, and returns its text.
async fn refused(server: &Server, arguments: Value) -> String {
    err(&server.call("chat_completion", arguments).await)
}

#[tokio::test]
async fn an_unknown_model_is_refused_with_the_chat_models_listed() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let message = refused(&server, json!({"model": "glm-9", "prompt": "hi"})).await;
    assert!(message.contains("unknown model `glm-9`"), "{message}");
    for chat_model in ["glm-5.2", "kimi-k2-instruct", "plain-chat-7b"] {
        assert!(message.contains(chat_model), "{message}");
    }
    assert!(
        !message.contains("qwen3-embedding-4b"),
        "only chat models are listed: {message}"
    );

    let message = refused(
        &server,
        json!({"model": "moonshotai/kimi-k2-instruct", "prompt": "hi"}),
    )
    .await;
    assert!(
        message.contains("Did you mean kimi-k2-instruct?"),
        "{message}"
    );
    assert!(
        fake.chat_requests().await.is_empty(),
        "nothing was sent upstream"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_typo_in_the_model_id_gets_a_suggestion() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    for (typo, meant) in [
        ("kimi-k2-instrct", "kimi-k2-instruct"),
        ("Kimi-K2-Instuct", "kimi-k2-instruct"),
        ("glm-52", "glm-5.2"),
        ("moonshotai/kimi-k2-intsruct", "kimi-k2-instruct"),
    ] {
        let message = refused(&server, json!({"model": typo, "prompt": "hi"})).await;
        assert!(
            message.contains(&format!("Did you mean {meant}")),
            "{typo}: {message}"
        );
    }
    let message = refused(&server, json!({"model": "llama-3-70b", "prompt": "hi"})).await;
    assert!(
        !message.contains("Did you mean"),
        "nothing alike, no suggestion: {message}"
    );
    assert!(fake.chat_requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn reasoning_effort_for_a_model_that_offers_none_is_refused_before_sending() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let message = refused(
        &server,
        json!({"model": "kimi-k2-instruct", "prompt": "hi", "reasoning_effort": "low"}),
    )
    .await;
    assert_eq!(
        message,
        "`kimi-k2-instruct` offers no reasoning_effort setting (list_models shows none for it): leave reasoning_effort out, or use a model that has one: glm-5.2."
    );
    assert!(fake.chat_requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn requests_the_catalog_says_cannot_work_are_refused_before_sending() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let message = refused(
        &server,
        json!({"model": "plain-chat-7b", "prompt": "hi", "tools": [weather_tool()]}),
    )
    .await;
    assert!(
        message.contains("`plain-chat-7b` does not support tool calling"),
        "{message}"
    );
    assert!(
        message.contains("glm-5.2") && message.contains("kimi-k2-instruct"),
        "{message}"
    );

    let message = refused(
        &server,
        json!({"model": "kimi-k2-instruct", "prompt": "hi", "max_tokens": 20000}),
    )
    .await;
    assert!(message.contains("at most 16384"), "{message}");

    let message = refused(
        &server,
        json!({"model": "qwen3-embedding-4b", "prompt": "hi"}),
    )
    .await;
    assert!(
        message.contains("not a chat model") && message.contains("embeddings"),
        "{message}"
    );

    let message = refused(
        &server,
        json!({"model": "glm-5.2", "prompt": "hi", "reasoning_effort": "extreme"}),
    )
    .await;
    assert!(message.contains("high, medium, low"), "{message}");

    assert!(
        fake.chat_requests().await.is_empty(),
        "nothing was sent upstream"
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_arguments_name_the_field() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let cases = [
        (
            json!({"model": "glm-5.2", "messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role",
        ),
        (json!({"model": "glm-5.2", "prompt": 42}), "`prompt`"),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "max_tokens": -1}),
            "`max_tokens`",
        ),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "max_token": 10}),
            "unknown argument `max_token`",
        ),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "messages": []}),
            "either `prompt` or `messages`",
        ),
        (json!({"model": "glm-5.2"}), "give `prompt`"),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "temperature": 3}),
            "`temperature` must be between 0 and 2",
        ),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "tool_choice": "sometimes"}),
            "`tool_choice`",
        ),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "tool_choice": "required"}),
            "needs `tools`",
        ),
        (
            json!({"model": "glm-5.2", "prompt": "hi", "tools": [weather_tool()],
                   "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "`tool_choice.function.name` `nope` is not one of `tools` (get_weather)",
        ),
        (
            json!({"model": "glm-5.2", "messages": [{"role": "user", "content": "hi"},
                                                   {"role": "tool", "content": "18°C"}]}),
            "`messages[1].tool_call_id` is required",
        ),
        (
            json!({"model": "glm-5.2", "messages": [{"role": "user", "content": "hi"},
                                                   {"role": "tool", "tool_call_id": "x", "content": "18°C"}]}),
            "`messages[1].tool_call_id` `x` matches no tool call",
        ),
        (
            json!({"model": "glm-5.2", "messages": [{"role": "user"}]}),
            "`messages[0].content` is required",
        ),
    ];
    for (arguments, expected) in cases {
        let message = refused(&server, arguments.clone()).await;
        assert!(
            message.contains(expected),
            "for {arguments}: expected {expected:?} in {message:?}"
        );
    }
    assert!(
        fake.chat_requests().await.is_empty(),
        "nothing was sent upstream"
    );
    server.stop().await;
}

#[tokio::test]
async fn when_the_catalog_is_down_the_request_still_goes_through() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "GET",
        "/v1/models",
        503,
        r#"{"error":{"message":"catalog down"}}"#,
        1,
    )
    .await;
    let server = Server::with_fake(&fake, &[]).await;
    let reply = ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi"}),
        )
        .await);
    assert_eq!(reply["content"], "echo: hi");
    server.stop().await;
}
