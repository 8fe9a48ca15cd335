//! Spend limits per principal (`VULTR_MCP_BUDGETS`): a call whose worst case could pass a
//! limit is refused before anything reaches Vultr, with what is spent, what is left and
//! when it resets; what calls really cost is kept per principal and model and shown in
//! `vultr://usage` (everyone's to an admin, `VULTR_MCP_ADMINS`).

use std::path::{Path, PathBuf};

use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};
use vultr_inference_mcp::principal::Principal;

use crate::support::assertions::assert_contains;
use crate::support::fake_vultr::FakeVultr;
use crate::support::in_process::Server;
use crate::support::session::{err, ok};

/// A priced chat model of the fake's catalog.
const MODEL: &str = "kimi-k2-instruct";

/// A budgets file in a private temporary folder (kept as long as the returned guard).
fn budgets(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budgets.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

async fn server(fake: &FakeVultr, budgets: &Path, extra: &[(&str, &str)]) -> Server {
    let path = budgets.to_str().unwrap();
    let mut settings = vec![("VULTR_MCP_BUDGETS", path)];
    settings.extend_from_slice(extra);
    Server::with_fake(fake, &settings).await
}

/// `vultr://usage` as `client` reads it.
async fn usage(client: &Server) -> Value {
    let result = client
        .client
        .read_resource(ReadResourceRequestParams::new("vultr://usage"))
        .await
        .expect("resources/read vultr://usage");
    match &result.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => serde_json::from_str(text).unwrap(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn a_call_that_could_pass_the_daily_limit_is_refused_before_anything_is_sent() {
    let fake = FakeVultr::start().await;
    let (_dir, file) = budgets(r#"{"*": {"daily_usd": 0.000001}}"#);
    let server = server(&fake, &file, &[]).await;
    let refused = err(&server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "hi", "max_tokens": 1000}),
        )
        .await);
    assert!(
        refused.contains("refused before sending")
            && refused.contains("daily spend limit is $0.000001")
            && refused.contains("resets at")
            && refused.contains(MODEL),
        "{refused}"
    );
    assert!(
        fake.chat_requests().await.is_empty(),
        "nothing reached Vultr"
    );
}

#[tokio::test]
async fn what_calls_cost_is_kept_and_shown_per_model_and_the_limit_counts_it() {
    let fake = FakeVultr::start().await;
    let (_dir, file) = budgets(r#"{"*": {"daily_usd": 1, "monthly_usd": 5}}"#);
    let server = server(&fake, &file, &[]).await;
    let mut total = 0.0;
    for prompt in ["one", "two"] {
        let reply = ok(&server
            .call(
                "chat_completion",
                json!({"model": MODEL, "prompt": prompt, "max_tokens": 50}),
            )
            .await);
        total += reply["cost_usd"]
            .as_f64()
            .expect("a priced call has a cost");
    }
    let usage = usage(&server).await;
    assert_eq!(usage["principal"], "local");
    assert_eq!(
        usage["limits"],
        json!({"daily_usd": 1.0, "monthly_usd": 5.0})
    );
    assert!(
        close(usage["today_usd"].as_f64().unwrap(), total),
        "{usage}"
    );
    assert!(
        close(usage["month_usd"].as_f64().unwrap(), total),
        "{usage}"
    );
    assert!(
        close(usage["left_today_usd"].as_f64().unwrap(), 1.0 - total),
        "{usage}"
    );
    let models = usage["by_model"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{usage}");
    assert_eq!(models[0]["model"], MODEL);
    assert_eq!(models[0]["calls"], 2);
    assert!(models[0]["prompt_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(
        usage.get("everyone").is_none(),
        "only admins see everyone: {usage}"
    );
}

#[tokio::test]
async fn a_named_principal_has_its_own_limits_and_sees_only_its_own_spending() {
    let fake = FakeVultr::start().await;
    let (_dir, file) = budgets(
        r#"{"*": {"daily_usd": 0.000001}, "alice": {"daily_usd": 1}, "ci-bot": {"per_call_usd": 0.0000001}}"#,
    );
    let server = server(&fake, &file, &[("VULTR_MCP_ADMINS", "root")]).await;
    let alice = server
        .client_acting_for(Principal::new("alice").unwrap())
        .await;
    let bot = server
        .client_acting_for(Principal::new("ci-bot").unwrap())
        .await;
    let root = server
        .client_acting_for(Principal::new("root").unwrap())
        .await;
    let chat = json!({"model": MODEL, "prompt": "hi", "max_tokens": 50});
    let spent = ok(&alice.call("chat_completion", chat.clone()).await)["cost_usd"]
        .as_f64()
        .unwrap();
    let per_call = err(&bot.call("chat_completion", chat.clone()).await);
    assert!(
        per_call.contains("per-call limit of $0.0000001"),
        "{per_call}"
    );
    let star = err(&server.call("chat_completion", chat.clone()).await);
    assert!(
        star.contains("daily spend limit is $0.000001"),
        "`local` gets `*`: {star}"
    );

    let own = usage(&alice).await;
    assert!(close(own["today_usd"].as_f64().unwrap(), spent), "{own}");
    assert_eq!(
        usage(&bot).await["today_usd"],
        0.0,
        "another's spending is not the bot's"
    );
    let admin = usage(&root).await;
    let everyone = admin["everyone"]
        .as_array()
        .expect("an admin sees everyone");
    let alice_row = everyone
        .iter()
        .find(|row| row["principal"] == "alice")
        .expect("alice's row");
    assert!(
        close(alice_row["today_usd"].as_f64().unwrap(), spent),
        "{admin}"
    );
    assert_eq!(alice_row["limits"], json!({"daily_usd": 1.0}));
}

#[tokio::test]
async fn concurrent_calls_stay_within_the_limit_and_leave_nothing_reserved() {
    let fake = FakeVultr::start().await;
    // Room for a few worst cases, not for twelve.
    let (_dir, file) = budgets(r#"{"*": {"daily_usd": 0.01}}"#);
    let server = server(&fake, &file, &[]).await;
    let chat = json!({"model": MODEL, "prompt": "hi", "max_tokens": 2000});
    let calls = (0..12).map(|_| server.call("chat_completion", chat.clone()));
    let results = futures_util::future::join_all(calls).await;
    let mut answered = 0;
    for result in &results {
        if result.is_error == Some(true) {
            let refused = err(result);
            assert!(refused.contains("daily spend limit"), "{refused}");
        } else {
            answered += 1;
        }
    }
    assert!(answered >= 1, "at least one worst case fits");
    // How many fit depends on how many are in flight at once (each settles to far less
    // than its worst case); the ledger's own test races them deterministically.
    let usage = usage(&server).await;
    assert!(usage["today_usd"].as_f64().unwrap() <= 0.01, "{usage}");
    assert_eq!(
        usage["in_flight_usd"], 0.0,
        "every hold was settled or released: {usage}"
    );
}

#[tokio::test]
async fn a_call_vultr_refuses_spends_nothing() {
    let fake = FakeVultr::start().await;
    let (_dir, file) = budgets(r#"{"*": {"daily_usd": 1}}"#);
    let server = server(&fake, &file, &[("VULTR_MCP_MAX_RETRIES", "0")]).await;
    fake.fail(
        "POST",
        "/v1/chat/completions",
        400,
        r#"{"error":{"message":"bad request"}}"#,
        1,
    )
    .await;
    let refused = err(&server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "hi", "max_tokens": 100}),
        )
        .await);
    assert!(refused.contains("400"), "{refused}");
    let usage = usage(&server).await;
    assert_eq!(usage["today_usd"], 0.0, "{usage}");
    assert_eq!(
        usage["in_flight_usd"], 0.0,
        "the reservation was given back: {usage}"
    );
}

#[tokio::test]
async fn a_comparison_is_one_call_under_the_per_call_limit() {
    let fake = FakeVultr::start().await;
    // Each answer's worst case (about $0.002 and $0.003) fits; their sum does not.
    let (_dir, path) = budgets(r#"{"*": {"per_call_usd": 0.004}}"#);
    let server = server(&fake, &path, &[]).await;
    let comparison =
        json!({"prompt": "hi", "models": ["kimi-k2-instruct", "glm-5.2"], "max_tokens": 1000});
    let refused = server.call("compare_models", comparison).await;
    assert_contains(
        &err(&refused),
        &[
            "refused before sending",
            "kimi-k2-instruct, glm-5.2",
            "per-call limit of $0.004",
        ],
    );
    assert!(fake.chat_requests().await.is_empty(), "nothing was sent");
    ok(&server
        .call(
            "chat_completion",
            json!({"model": "glm-5.2", "prompt": "hi", "max_tokens": 1000}),
        )
        .await);
    server.stop().await;
}
