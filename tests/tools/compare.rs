//! `compare_models`: several models asked the same question at once, in one call.
//!
//! - The models (2 to 6 distinct chat model ids) and the judge are checked against the
//!   catalog before anything is sent; a wrong one is named with the choices.
//! - With `budget_usd`, the worst case of every answer plus the judge (its prompt holding
//!   every answer at its longest) is checked first: above it, or when it cannot be told,
//!   nothing is sent.
//! - The answers run side by side: three models that each take 1 s answer in about 1 s.
//!   One failing leaves the others, its error in its place; all failing is an error.
//! - Each model gets its stance in its system prompt; the judge gets the question and the
//!   answers as Answer A, B, ... (never a model id) and the client gets the letters' models.
//! - Progress: one notification per model as it finishes, then the judge.
//! - A cancelled call closes every upstream request.
//!
//! The wiremock fake answers "echo: <last user message>"; the raw `FaultServer` in front of
//! it delays, fails or stalls the requests a `Rule` picks by model.

use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

use crate::support::assertions::{assert_contains, assert_lacks};
use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::faults::{Fault, FaultServer, Rule};
use crate::support::in_process::{RawSession, Server};
use crate::support::session::{err, ok, overridden, text};

/// Time allowed for something that should happen at once.
const PROMPTLY: Duration = Duration::from_secs(5);
const GLM: &str = "glm-5.2";
const KIMI: &str = "kimi-k2-instruct";
const PLAIN: &str = "plain-chat-7b";
/// What the raw fault server's model answers.
const RAW_REPLY: &str = "ok from raw fake";

/// A rule answering every chat request for `model` with `fault`.
fn for_model(model: &'static str, fault: Fault) -> Rule {
    Rule::new(move |body: &Value| (body["model"] == model).then(|| fault.clone()))
}

/// A rule answering the judge's request (the one quoting Answer A) with `fault`.
fn for_judge(fault: Fault) -> Rule {
    Rule::new(move |body: &Value| {
        body["messages"]
            .to_string()
            .contains("Answer A")
            .then(|| fault.clone())
    })
}

/// An error status in the inference API's shape, which is not retried.
fn refused(message: &str) -> Fault {
    Fault::Status {
        status: 400,
        headers: Vec::new(),
        body: json!({"error": {"message": message, "code": 400, "type": "invalid_request_error"}})
            .to_string(),
    }
}

/// The settings of a server talking to `fake` through `front`.
fn through(fake: &FakeVultr, front: &FaultServer) -> Vec<(&'static str, String)> {
    let mut settings = fake.settings();
    settings.retain(|(name, _)| *name != "VULTR_INFERENCE_BASE_URL");
    settings.push(("VULTR_INFERENCE_BASE_URL", front.base_url()));
    settings
}

/// The wiremock fake with the fault server in front of it, applying `rules`, and a server
/// talking to them.
async fn behind(rules: Vec<Rule>) -> (FakeVultr, FaultServer, Server) {
    let fake = FakeVultr::start().await;
    let front = FaultServer::in_front_of(&fake.mock_server().uri(), rules).await;
    let server = Server::start(&overridden(&through(&fake, &front), &[])).await;
    (fake, front, server)
}

async fn compare(server: &Server, arguments: Value) -> rmcp::model::CallToolResult {
    server.call("compare_models", arguments).await
}

/// The chat request the fake received for `model` (the only one).
fn request_for<'a>(bodies: &'a [Value], model: &str) -> &'a Value {
    let mut found = bodies.iter().filter(|b| b["model"] == model);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no request for {model}"));
    assert!(found.next().is_none(), "{model} was asked twice");
    first
}

#[tokio::test]
async fn three_models_that_each_take_a_second_answer_together_in_about_a_second() {
    let slow = Rule::new(|_: &Value| Some(Fault::Delay(Duration::from_secs(1))));
    let (_fake, front, server) = behind(vec![slow]).await;

    let started = Instant::now();
    let result = compare(
        &server,
        json!({"prompt": "hi", "models": [GLM, KIMI, PLAIN]}),
    )
    .await;
    let elapsed = started.elapsed();

    let comparison = ok(&result);
    let answers = comparison["answers"].as_array().expect("answers");
    let models: Vec<&str> = answers
        .iter()
        .map(|a| a["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, [GLM, KIMI, PLAIN], "in the order asked");
    for answer in answers {
        assert_eq!(answer["content"], RAW_REPLY, "{answer}");
        assert_eq!(answer["error"], Value::Null, "{answer}");
        assert!(answer["latency_ms"].as_u64().unwrap() >= 1000, "{answer}");
    }
    assert_eq!(front.chat_requests(), 3);
    assert!(
        elapsed < Duration::from_millis(2500),
        "three 1 s answers took {elapsed:?}: they did not run at once"
    );
    assert_eq!(comparison["synthesis"], Value::Null, "no judge asked");
    server.stop().await;
}

#[tokio::test]
async fn each_model_argues_its_stance_and_the_judge_reads_the_answers_by_letter_only() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let result = compare(
        &server,
        json!({
            "prompt": "Tabs or spaces?",
            "system": "Be brief.",
            "models": [GLM, KIMI],
            "stances": ["argue for tabs", "argue for spaces"],
            "judge": PLAIN,
        }),
    )
    .await;

    let comparison = ok(&result);
    let bodies = fake.chat_requests().await;
    assert_eq!(bodies.len(), 3, "two answers and the judge");
    for (model, stance) in [(GLM, "argue for tabs"), (KIMI, "argue for spaces")] {
        let body = request_for(&bodies, model);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": format!("Be brief.\n\nTake this stance: {stance}")},
                {"role": "user", "content": "Tabs or spaces?"}
            ]),
            "{model}"
        );
    }
    let judge = request_for(&bodies, PLAIN);
    let judged = judge["messages"].to_string();
    assert_lacks(&judged, &[GLM, KIMI]);
    assert_eq!(judge["messages"][0]["role"], "system");
    assert_contains(
        judge["messages"][0]["content"].as_str().unwrap(),
        &["agree", "disagree", "best", "Answer A"],
    );
    assert_eq!(
        judge["messages"][1]["content"],
        "Question:\nTabs or spaces?\n\n\
         Answer A (asked to take this stance: argue for tabs):\necho: Tabs or spaces?\n\n\
         Answer B (asked to take this stance: argue for spaces):\necho: Tabs or spaces?\n"
    );

    let synthesis = &comparison["synthesis"];
    assert_eq!(synthesis["model"], PLAIN);
    assert_eq!(synthesis["labels"], json!({"A": GLM, "B": KIMI}));
    assert!(
        synthesis["content"]
            .as_str()
            .unwrap()
            .starts_with("echo: Question:")
    );
    assert_eq!(comparison["answers"][0]["stance"], "argue for tabs");
    let priced: f64 = comparison["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["cost_usd"].as_f64().expect("glm and kimi are priced"))
        .sum();
    let total = comparison["cost_usd"].as_f64().expect("a total");
    assert!(
        priced > 0.0 && (total - priced).abs() < 1e-12,
        "{total} vs {priced}"
    );

    let shown = text(&result);
    assert_contains(
        &shown,
        &[
            "## glm-5.2 (stance: argue for tabs)\necho: Tabs or spaces?\n[finish_reason stop, ",
            "## kimi-k2-instruct (stance: argue for spaces)\n",
            "## Synthesis by plain-chat-7b (answers: A = glm-5.2, B = kimi-k2-instruct)\necho: Question:",
            "[total $",
        ],
    );
    server.stop().await;
}

#[tokio::test]
async fn one_model_failing_leaves_the_others_and_its_error_stands_in_its_place() {
    let (_fake, _front, server) =
        behind(vec![for_model(KIMI, refused("kimi is overloaded"))]).await;

    let result = compare(
        &server,
        json!({"prompt": "hi", "models": [GLM, KIMI, PLAIN], "judge": GLM}),
    )
    .await;

    let comparison = ok(&result);
    let answers = &comparison["answers"];
    assert_eq!(answers[0]["content"], "echo: hi");
    assert_eq!(answers[2]["content"], "echo: hi");
    assert_eq!(answers[1]["content"], Value::Null);
    assert_contains(
        answers[1]["error"].as_str().unwrap(),
        &["400", "kimi is overloaded"],
    );
    assert_eq!(
        comparison["synthesis"]["labels"],
        json!({"A": GLM, "B": PLAIN}),
        "the judge saw only the answers that came"
    );
    assert_contains(
        &text(&result),
        &["## kimi-k2-instruct\n[failed: ", "kimi is overloaded"],
    );
    server.stop().await;
}

#[tokio::test]
async fn every_model_failing_is_an_error_naming_each_models_error() {
    let (_fake, _front, server) = behind(vec![
        for_model(GLM, refused("glm is down")),
        for_model(KIMI, refused("kimi is down")),
    ])
    .await;

    let error = err(&compare(
        &server,
        json!({"prompt": "hi", "models": [GLM, KIMI], "judge": PLAIN}),
    )
    .await);

    assert_contains(
        &error,
        &[
            "every model failed",
            "- glm-5.2: ",
            "glm is down",
            "- kimi-k2-instruct: ",
            "kimi is down",
        ],
    );
    server.stop().await;
}

#[tokio::test]
async fn a_judge_that_fails_leaves_the_answers_and_reports_its_error() {
    let (_fake, _front, server) = behind(vec![for_judge(refused("the judge is out"))]).await;

    let result = compare(
        &server,
        json!({"prompt": "hi", "models": [GLM, KIMI], "judge": PLAIN}),
    )
    .await;

    let comparison = ok(&result);
    assert_eq!(comparison["answers"][0]["content"], "echo: hi");
    assert_eq!(comparison["answers"][1]["content"], "echo: hi");
    let synthesis = &comparison["synthesis"];
    assert_eq!(synthesis["content"], Value::Null);
    assert_contains(synthesis["error"].as_str().unwrap(), &["the judge is out"]);
    assert_contains(
        &text(&result),
        &["[the judge failed: ", "the answers above stand"],
    );
    server.stop().await;
}

#[tokio::test]
async fn above_the_budget_nothing_is_sent_and_the_refusal_says_how_to_fit() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    // Without max_tokens glm-5.2 may answer 131072 tokens at $3 per million: about $0.39.
    let error = err(&compare(
        &server,
        json!({"prompt": "hi", "models": [GLM, KIMI], "judge": GLM, "budget_usd": 0.01}),
    )
    .await);
    assert_contains(
        &error,
        &[
            "nothing was sent",
            "worst case of this comparison is $",
            "glm-5.2 $",
            "kimi-k2-instruct $",
            "judge glm-5.2 $",
            "above budget_usd $0.010000",
            "lower max_tokens (unset",
            "fewer models",
            "leave out the judge",
        ],
    );

    // The judge's prompt holds every answer at its longest: a budget that fits the
    // answers alone does not fit them with the judge.
    let answers_only =
        json!({"prompt": "hi", "models": [GLM, KIMI], "max_tokens": 1000, "budget_usd": 0.0052});
    let with_judge = json!({"prompt": "hi", "models": [GLM, KIMI], "max_tokens": 1000, "budget_usd": 0.0052, "judge": GLM});
    let error = err(&compare(&server, with_judge).await);
    assert_contains(&error, &["judge glm-5.2 $", "lower max_tokens (now 1000)"]);
    assert!(fake.chat_requests().await.is_empty(), "nothing was sent");

    ok(&compare(&server, answers_only).await);
    assert_eq!(fake.chat_requests().await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_budget_with_a_model_the_catalog_does_not_price_is_refused_saying_why() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;

    let error = err(&compare(
        &server,
        json!({"prompt": "hi", "models": [GLM, PLAIN], "max_tokens": 10, "budget_usd": 1.0}),
    )
    .await);

    assert_contains(
        &error,
        &[
            "nothing was sent",
            "worst case of plain-chat-7b cannot be told",
            "no token prices",
            "leave out budget_usd",
        ],
    );
    assert!(fake.chat_requests().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn unknown_models_and_wrong_counts_are_refused_before_anything_is_sent() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[]).await;
    let refusal = async |arguments: Value| err(&compare(&server, arguments).await);

    let unknown = refusal(json!({"prompt": "hi", "models": [GLM, "glm-5.3"]})).await;
    assert_contains(
        &unknown,
        &[
            "`models[1]`",
            "unknown model `glm-5.3`",
            "Did you mean glm-5.2",
            "Chat models: glm-5.2, kimi-k2-instruct, plain-chat-7b",
        ],
    );
    let judge = refusal(json!({"prompt": "hi", "models": [GLM, KIMI], "judge": "gpt-4o"})).await;
    assert_contains(
        &judge,
        &["`judge`", "unknown model `gpt-4o`", "Chat models: "],
    );
    let not_chat = refusal(json!({"prompt": "hi", "models": [GLM, "z-image-turbo"]})).await;
    assert_contains(&not_chat, &["`models[1]`", "not a chat model"]);
    let one = refusal(json!({"prompt": "hi", "models": [GLM]})).await;
    assert_contains(&one, &["`models` must list 2 to 6 model ids", "not 1"]);
    let seven =
        refusal(json!({"prompt": "hi", "models": ["a", "b", "c", "d", "e", "f", "g"]})).await;
    assert_contains(&seven, &["2 to 6", "not 7"]);
    let twice = refusal(json!({"prompt": "hi", "models": [GLM, KIMI, GLM]})).await;
    assert_contains(&twice, &["`models[2]` repeats `models[0]`"]);
    let stances = refusal(json!({"prompt": "hi", "models": [GLM, KIMI], "stances": ["for"]})).await;
    assert_contains(&stances, &["one stance per model", "2 models, 1 stances"]);
    let too_many_tokens =
        refusal(json!({"prompt": "hi", "models": [GLM, KIMI], "max_tokens": 20000})).await;
    assert_contains(
        &too_many_tokens,
        &["`models[1]`", "kimi-k2-instruct` generates at most 16384"],
    );
    let nothing = refusal(json!({"models": [GLM, KIMI]})).await;
    assert_contains(&nothing, &["give `prompt`"]);

    assert!(fake.chat_requests().await.is_empty(), "nothing was sent");
    server.stop().await;
}

#[tokio::test]
async fn progress_reports_each_model_as_it_finishes_then_the_judge() {
    let fake = FakeVultr::start().await;
    let front = FaultServer::in_front_of(
        &fake.mock_server().uri(),
        vec![
            for_model(KIMI, refused("kimi is overloaded")),
            for_model(GLM, Fault::Delay(Duration::from_millis(700))),
            for_model(PLAIN, Fault::Delay(Duration::from_millis(1400))),
        ],
    )
    .await;
    let settings = through(&fake, &front);
    let mut session = RawSession::start(&overridden(&settings, &[])).await;

    session
        .call_tool(
            7,
            "compare_models",
            json!({"prompt": "hi", "models": [PLAIN, GLM, KIMI], "judge": GLM}),
            Some(json!({"progressToken": "cmp"})),
        )
        .await;
    let (before, response) = session.until_response(7).await;

    assert_eq!(
        response.value["result"]["isError"], false,
        "{}",
        response.value
    );
    let progress: Vec<(f64, String)> = before
        .iter()
        .map(|line| {
            assert_eq!(
                line.value["method"], "notifications/progress",
                "{}",
                line.value
            );
            let params = &line.value["params"];
            assert_eq!(params["progressToken"], "cmp");
            (
                params["progress"].as_f64().unwrap(),
                params["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            (1.0, "1/3 failed: kimi-k2-instruct".to_owned()),
            (2.0, "2/3 answered: glm-5.2".to_owned()),
            (3.0, "3/3 answered: plain-chat-7b".to_owned()),
            (4.0, "judging: glm-5.2".to_owned()),
        ]
    );
    session.stop().await;
}

#[tokio::test]
async fn a_cancelled_comparison_closes_every_upstream_request() {
    let stall = Rule::new(|_: &Value| Some(Fault::Stall));
    let (_fake, front, server) = behind(vec![stall]).await;
    let arguments = json!({"prompt": "hi", "models": [GLM, KIMI, PLAIN]});
    let call = server
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("compare_models")
                    .with_arguments(arguments.as_object().cloned().unwrap()),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("the request is sent");
    assert!(
        front.wait_chat_requests(3, PROMPTLY).await,
        "all three were asked"
    );

    call.cancel(Some("enough".to_owned()))
        .await
        .expect("notifications/cancelled is sent");

    assert!(
        front.wait_stalls_closed(3, PROMPTLY).await,
        "{} of 3 upstream requests closed",
        front.stalls_closed_by_client()
    );
    server.stop().await;
}

#[tokio::test]
async fn long_answers_are_cut_evenly_to_the_result_limit_and_the_result_says_so() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_MAX_RESULT_CHARS", "3000")]).await;
    let long = "word ".repeat(1000);

    let result = compare(
        &server,
        json!({"prompt": long, "models": [GLM, KIMI], "judge": PLAIN}),
    )
    .await;

    let comparison = ok(&result);
    assert_eq!(comparison["truncated"], true);
    let mut contents: Vec<&str> = comparison["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["content"].as_str().unwrap())
        .collect();
    contents.push(comparison["synthesis"]["content"].as_str().unwrap());
    for content in contents {
        let kept = content.chars().count();
        assert!(
            (1..=(3000 - 4 * 300) / 3).contains(&kept),
            "{kept} characters kept"
        );
        assert!(
            content.starts_with("echo: "),
            "the start is kept: {content}"
        );
    }
    let shown = text(&result);
    assert!(
        shown.chars().count() <= 3000,
        "{} characters shown",
        shown.chars().count()
    );
    assert_contains(
        &shown,
        &[
            "cut to the result size limit (VULTR_MCP_MAX_RESULT_CHARS)",
            "[total $",
        ],
    );
    server.stop().await;
}
