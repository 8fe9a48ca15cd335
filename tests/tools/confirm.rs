//! Asking before an expensive call (`VULTR_MCP_CONFIRM_ABOVE_USD`), in process, for both
//! protocol generations: a 2025-era client (the `initialize` handshake) that declared
//! elicitation is sent `elicitation/create`; a 2026-07-28 client (`server/discover`) that
//! declared it in its requests' `_meta` gets an input-required result and makes the call
//! again with the answer (rmcp's client drives that round). Accepted: the chat goes to
//! Vultr. Declined (or the box left unticked): an error saying so, and Vultr sees nothing.
//! A client that cannot be asked is refused naming the setting; a call under the threshold
//! is not asked about. A call that may become a task is asked before its answer when the
//! user answers within `VULTR_MCP_TASK_AFTER`; a 2025-era task made first still waits for
//! the answer.

use std::sync::{Arc, Mutex, PoisonError};

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ElicitRequestParams, ElicitResult, ElicitationAction, GetTaskParams, Implementation,
    InputRequest, ProtocolVersion, TaskPayload,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use vultr_inference_mcp::app::App;
use vultr_inference_mcp::mcp::VultrServer;
use vultr_inference_mcp::principal::Principal;
use vultr_inference_mcp::setting;

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::FakeVultr;
use crate::support::in_process::settings;
use crate::support::session::{ok, overridden, text};

/// The threshold the tests set: a chat of "hi" on `kimi-k2-instruct` without `max_tokens`
/// could cost about $0.033 (its 16384-token output limit at $2 per million), one with
/// `max_tokens: 10` a few millionths of a dollar.
const THRESHOLD: &str = "0.01";

/// The two ways a client connects.
#[derive(Debug, Clone, Copy)]
enum Generation {
    /// `initialize`, protocol 2025-11-25: asked with `elicitation/create`.
    Handshake,
    /// `server/discover`, protocol 2026-07-28: asked with an input-required result.
    Discover,
}

const GENERATIONS: [Generation; 2] = [Generation::Handshake, Generation::Discover];

/// What the test's user does when asked.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Accepts with the box ticked.
    Send,
    /// Declines.
    Decline,
    /// Accepts the form with the box unticked.
    Untick,
}

/// A client whose user answers `reply` (declaring elicitation only when it has one), and
/// keeps the messages it was asked.
#[derive(Clone)]
struct User {
    reply: Option<Reply>,
    asked: Arc<Mutex<Vec<String>>>,
    /// Whether it declares the tasks extension.
    tasks: bool,
}

impl User {
    fn answering(reply: Option<Reply>) -> User {
        User {
            reply,
            asked: Arc::default(),
            tasks: false,
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = match self.reply {
            Some(_) => ClientCapabilities::builder().enable_elicitation().build(),
            None => ClientCapabilities::default(),
        };
        if self.tasks {
            capabilities.extensions = ClientCapabilities::builder()
                .enable_tasks()
                .build()
                .extensions;
        }
        ClientConfig::new(capabilities, Implementation::new("confirm-test", "0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        else {
            panic!("a form was expected, got {request:?}");
        };
        let schema = serde_json::to_value(&requested_schema).expect("a schema");
        assert_eq!(schema["properties"]["send"]["type"], "boolean", "{schema}");
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
        Ok(
            match self
                .reply
                .expect("asked a user who declared no elicitation")
            {
                Reply::Send => {
                    ElicitResult::new(ElicitationAction::Accept).with_content(json!({"send": true}))
                }
                Reply::Untick => ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({"send": false})),
                Reply::Decline => ElicitResult::new(ElicitationAction::Decline),
            },
        )
    }
}

/// A server on `fake` asking above [`THRESHOLD`], with `user`'s client connected in
/// `generation`.
struct Setup {
    client: RunningService<RoleClient, User>,
    user: User,
    shutdown: CancellationToken,
}

impl Setup {
    async fn start(fake: &FakeVultr, generation: Generation, reply: Option<Reply>) -> Setup {
        Setup::start_with(fake, generation, User::answering(reply), &[]).await
    }

    /// The same with `user` as the client, and `extra` settings.
    async fn start_with(
        fake: &FakeVultr,
        generation: Generation,
        user: User,
        extra: &[(&str, &str)],
    ) -> Setup {
        let base = fake.settings();
        let mut extra = extra.to_vec();
        extra.push((setting::CONFIRM_ABOVE_USD, THRESHOLD));
        let env = overridden(&base, &extra);
        let app = App::new(settings(&env));
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let handler = VultrServer::new(app, shutdown.clone()).acting_for(Principal::local());
        tokio::spawn(async move {
            if let Ok(running) = handler.serve(server_end).await {
                let _ = running.waiting().await;
            }
        });
        let client = match generation {
            Generation::Handshake => user.clone().serve(client_end).await,
            Generation::Discover => {
                user.clone()
                    .serve_with_lifecycle(
                        client_end,
                        ClientLifecycleMode::Discover {
                            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                        },
                    )
                    .await
            }
        }
        .expect("the client connects");
        Setup {
            client,
            user,
            shutdown,
        }
    }

    /// `chat_completion` with `arguments` (the client answering any question it is put).
    async fn chat(&self, arguments: Value) -> CallToolResult {
        self.client
            .call_tool(params(arguments))
            .await
            .expect("tools/call answers")
    }

    /// `tool` with `arguments` (the client answering any question it is put).
    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        self.client
            .call_tool(
                CallToolRequestParams::new(tool.to_owned())
                    .with_arguments(arguments.as_object().cloned().expect("an object")),
            )
            .await
            .expect("tools/call answers")
    }

    async fn stop(self) {
        let _ = self.client.cancel().await;
        self.shutdown.cancel();
    }
}

fn params(arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new("chat_completion")
        .with_arguments(arguments.as_object().cloned().expect("an object"))
}

/// The call the threshold is about: worst case about $0.033.
fn expensive() -> Value {
    json!({"model": "kimi-k2-instruct", "prompt": "hi"})
}

#[tokio::test]
async fn an_accepted_call_is_sent_after_the_user_saw_the_model_and_its_worst_case() {
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        let setup = Setup::start(&fake, generation, Some(Reply::Send)).await;
        let result = setup.chat(expensive()).await;
        ok(&result);
        assert_contains(&text(&result), &["echo: hi"]);
        let asked = setup.user.asked();
        assert_eq!(asked.len(), 1, "{generation:?}: asked once: {asked:?}");
        assert_contains(&asked[0], &["kimi-k2-instruct", "$0.0328", "above"]);
        assert_eq!(fake.chat_requests().await.len(), 1, "{generation:?}");
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_declined_or_unticked_call_is_an_error_and_nothing_is_sent() {
    for generation in GENERATIONS {
        for reply in [Reply::Decline, Reply::Untick] {
            let fake = FakeVultr::start().await;
            let setup = Setup::start(&fake, generation, Some(reply)).await;
            let result = setup.chat(expensive()).await;
            assert_eq!(result.is_error, Some(true), "{generation:?} {reply:?}");
            assert_contains(
                &text(&result),
                &["not sent", "the user declined", "kimi-k2-instruct"],
            );
            assert_eq!(setup.user.asked().len(), 1, "{generation:?} {reply:?}");
            assert!(
                fake.chat_requests().await.is_empty(),
                "{generation:?} {reply:?}: nothing may reach Vultr"
            );
            setup.stop().await;
        }
    }
}

#[tokio::test]
async fn a_client_that_cannot_be_asked_is_refused_naming_the_setting() {
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        let setup = Setup::start(&fake, generation, None).await;
        let result = setup.chat(expensive()).await;
        assert_eq!(result.is_error, Some(true), "{generation:?}");
        assert_contains(
            &text(&result),
            &["not sent", "VULTR_MCP_CONFIRM_ABOVE_USD", "elicitation"],
        );
        assert!(fake.chat_requests().await.is_empty(), "{generation:?}");
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_call_under_the_threshold_is_not_asked_about() {
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        // A user who would decline: the call goes through only if nobody asks.
        let setup = Setup::start(&fake, generation, Some(Reply::Decline)).await;
        let cheap = json!({"model": "kimi-k2-instruct", "prompt": "hi", "max_tokens": 10});
        ok(&setup.chat(cheap).await);
        assert!(setup.user.asked().is_empty(), "{generation:?}");
        assert_eq!(fake.chat_requests().await.len(), 1, "{generation:?}");
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_2026_client_is_asked_in_the_result_and_a_forged_state_is_asked_again() {
    let fake = FakeVultr::start().await;
    let setup = Setup::start(&fake, Generation::Discover, Some(Reply::Send)).await;
    // One round by hand: the question comes back as the call's result.
    let first = setup.client.call_tool_once(params(expensive())).await;
    let CallToolResponse::InputRequired(question) = first.expect("tools/call answers") else {
        panic!("expected an input-required result");
    };
    let requests = question.input_requests.expect("the question");
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (key, request) = requests.into_iter().next().expect("one question");
    assert!(
        matches!(request, InputRequest::Elicitation(_)),
        "{request:?}"
    );
    let state = question.request_state.expect("a request state");
    // "Accepted", with the state changed: not taken for a yes; asked again, nothing sent.
    let mut forged = params(expensive());
    forged.request_state = Some(format!("{state}A"));
    forged.input_responses = Some(
        [(
            key.clone(),
            json!({"action": "accept", "content": {"send": true}}),
        )]
        .into(),
    );
    let again = setup.client.call_tool_once(forged).await;
    assert!(
        matches!(again, Ok(CallToolResponse::InputRequired(_))),
        "{again:?}"
    );
    // The same yes with the state as given, but for other arguments: asked again too.
    let mut elsewhere = params(json!({"model": "kimi-k2-instruct", "prompt": "other"}));
    elsewhere.request_state = Some(state.clone());
    elsewhere.input_responses = Some(
        [(
            key.clone(),
            json!({"action": "accept", "content": {"send": true}}),
        )]
        .into(),
    );
    let elsewhere = setup.client.call_tool_once(elsewhere).await;
    assert!(
        matches!(elsewhere, Ok(CallToolResponse::InputRequired(_))),
        "{elsewhere:?}"
    );
    assert!(fake.chat_requests().await.is_empty());
    // The genuine answer goes through.
    let mut answered = params(expensive());
    answered.request_state = Some(state);
    answered.input_responses =
        Some([(key, json!({"action": "accept", "content": {"send": true}}))].into());
    let Ok(CallToolResponse::Complete(result)) = setup.client.call_tool_once(answered).await else {
        panic!("expected the call's result");
    };
    ok(&result);
    assert_eq!(fake.chat_requests().await.len(), 1);
    setup.stop().await;
}

/// A client that accepts tasks, answering `reply`.
fn task_user(reply: Reply) -> User {
    User {
        tasks: true,
        ..User::answering(Some(reply))
    }
}

#[tokio::test]
async fn a_call_that_may_become_a_task_is_asked_before_its_answer_is_given() {
    // Answered at once, the call ends within VULTR_MCP_TASK_AFTER (5 s): its own result,
    // not a task handle, in either generation (2026-07-28: the question first).
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        let setup = Setup::start_with(&fake, generation, task_user(Reply::Send), &[]).await;
        let first = setup.client.call_tool_once(params(expensive())).await;
        let first = first.expect("tools/call answers");
        match (generation, first) {
            (Generation::Handshake, CallToolResponse::Complete(result)) => {
                ok(&result);
            }
            (Generation::Discover, CallToolResponse::InputRequired(_)) => {
                // rmcp's client answers it and calls again: the result, not a task.
                ok(&setup.chat(expensive()).await);
            }
            (generation, other) => panic!("{generation:?}: unexpected {other:?}"),
        }
        assert_eq!(fake.chat_requests().await.len(), 1, "{generation:?}");
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_task_made_before_the_answer_still_waits_for_it() {
    // VULTR_MCP_TASK_AFTER=0: the handle comes first; the 2025-era question is still put
    // (from the task), and the task sends the chat only once it is accepted.
    for (reply, sent) in [(Reply::Send, 1), (Reply::Decline, 0)] {
        let fake = FakeVultr::start().await;
        let setup = Setup::start_with(
            &fake,
            Generation::Handshake,
            task_user(reply),
            &[(setting::TASK_AFTER, "0")],
        )
        .await;
        let first = setup.client.call_tool_once(params(expensive())).await;
        let Ok(CallToolResponse::Task(handle)) = first else {
            panic!("expected a task handle, got {first:?}");
        };
        let task = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                let task = setup
                    .client
                    .get_task(GetTaskParams::new(handle.task.task_id.clone()))
                    .await
                    .expect("tasks/get answers")
                    .task;
                if task.status().is_terminal() {
                    return task;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the task ends");
        let TaskPayload::Completed { result } = &task.payload else {
            panic!(
                "{reply:?}: expected a completed task, got {:?}",
                task.payload
            );
        };
        let result: CallToolResult =
            serde_json::from_value(Value::Object(result.clone())).expect("a tool result");
        assert_eq!(setup.user.asked().len(), 1, "{reply:?}");
        match reply {
            Reply::Send => {
                ok(&result);
                assert_contains(&text(&result), &["echo: hi"]);
            }
            _ => assert_contains(&text(&result), &["the user declined"]),
        }
        assert_eq!(fake.chat_requests().await.len(), sent, "{reply:?}");
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_comparison_is_asked_about_once_for_all_its_requests() {
    let comparison = json!({
        "prompt": "hi",
        "models": ["kimi-k2-instruct", "glm-5.2"],
        "judge": "kimi-k2-instruct",
    });
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        let setup = Setup::start(&fake, generation, Some(Reply::Send)).await;
        let result = setup.call("compare_models", comparison.clone()).await;
        ok(&result);
        let asked = setup.user.asked();
        assert_eq!(asked.len(), 1, "{generation:?}: asked once: {asked:?}");
        assert_contains(
            &asked[0],
            &[
                "kimi-k2-instruct, glm-5.2 (judge kimi-k2-instruct)",
                "above",
            ],
        );
        assert_eq!(
            fake.chat_requests().await.len(),
            3,
            "{generation:?}: two answers and the judge"
        );
        setup.stop().await;

        let fake = FakeVultr::start().await;
        let setup = Setup::start(&fake, generation, Some(Reply::Decline)).await;
        let result = setup.call("compare_models", comparison.clone()).await;
        assert_eq!(result.is_error, Some(true), "{generation:?}");
        assert_contains(&text(&result), &["not sent", "the user declined"]);
        assert_eq!(setup.user.asked().len(), 1, "{generation:?}");
        assert!(fake.chat_requests().await.is_empty(), "{generation:?}");
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_fallback_model_the_user_declines_is_not_sent_and_no_other_is_tried() {
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        // The chosen model is overloaded, on the first try and on the retry that carries the
        // answer (a 2026-07-28 client makes the call again).
        fake.fail(
            "POST",
            "/v1/chat/completions",
            503,
            r#"{"error":{"message":"overloaded"}}"#,
            2,
        )
        .await;
        let setup = Setup::start_with(
            &fake,
            generation,
            User::answering(Some(Reply::Decline)),
            &[("VULTR_MCP_MAX_RETRIES", "0")],
        )
        .await;
        // Cheap on kimi (under the threshold, not asked); the catalog prices no
        // plain-chat-7b, so its worst case is unknown and the user is asked.
        let result = setup
            .chat(json!({
                "model": "kimi-k2-instruct", "prompt": "hi", "max_tokens": 10,
                "fallback_models": ["plain-chat-7b", "glm-5.2"],
            }))
            .await;
        let message = text(&result);
        assert_eq!(result.is_error, Some(true), "{generation:?}: {message}");
        assert_contains(&message, &["the user declined", "plain-chat-7b"]);
        assert!(!message.contains("no model could answer"), "{message}");
        let asked = setup.user.asked();
        assert_eq!(asked.len(), 1, "{generation:?}: {asked:?}");
        assert_contains(&asked[0], &["plain-chat-7b"]);
        let models: Vec<Value> = fake
            .chat_requests()
            .await
            .iter()
            .map(|body| body["model"].clone())
            .collect();
        assert!(
            models.iter().all(|m| m == "kimi-k2-instruct") && !models.is_empty(),
            "{generation:?}: only the failing model was sent to: {models:?}"
        );
        setup.stop().await;
    }
}

#[tokio::test]
async fn a_fallback_needing_its_own_yes_is_asked_once_and_answers() {
    for generation in GENERATIONS {
        let fake = FakeVultr::start().await;
        fake.fail(
            "POST",
            "/v1/chat/completions",
            503,
            r#"{"error":{"message":"overloaded"}}"#,
            10,
        )
        .await;
        let setup = Setup::start_with(
            &fake,
            generation,
            User::answering(Some(Reply::Send)),
            &[("VULTR_MCP_MAX_RETRIES", "0")],
        )
        .await;
        // Both over the threshold: kimi's worst case is about $0.033, plain-chat-7b's
        // cannot be told. A 2026-07-28 client's later rounds carry both yeses.
        let mut arguments = expensive();
        arguments["fallback_models"] = json!(["plain-chat-7b"]);
        // The fake fails every request, so plain-chat-7b's 503 ends the call too: what
        // matters is who was asked, and how often.
        let result = setup.chat(arguments).await;
        assert_contains(&text(&result), &["no model could answer", "plain-chat-7b"]);
        let asked = setup.user.asked();
        assert_eq!(asked.len(), 2, "{generation:?}: {asked:?}");
        assert_contains(&asked[0], &["kimi-k2-instruct"]);
        assert_contains(&asked[1], &["plain-chat-7b"]);
        setup.stop().await;
    }
}
