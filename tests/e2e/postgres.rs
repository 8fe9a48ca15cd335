//! The binary on a Postgres store (`VULTR_MCP_CONVERSATIONS=postgres://...`), over stdio:
//! a conversation outlives the process that started it, and deleting it works; the URL's
//! password never shows.

use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::mcp::Server;
use crate::support::postgres::PgServer;
use crate::support::session::{err, ok, text};

/// A model the fake's catalog has.
const MODEL: &str = "glm-5.2";

/// A password in the URL (the test server trusts loopback, so it is never checked).
const PASSWORD: &str = "pg-s3cret-e2e";

#[tokio::test]
async fn a_conversation_kept_in_postgres_continues_after_a_restart_and_can_be_deleted() {
    let fake = FakeVultr::start().await;
    let database = PgServer::shared().create_database().replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{PASSWORD}@"),
        1,
    );
    let settings = [("VULTR_MCP_CONVERSATIONS", database.as_str())];

    let first = Server::with_fake(&fake, &settings).await;
    let started = ok(&first
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "remember the number 42"}),
        )
        .await);
    let id = started["conversation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("saved in Postgres: {started}"))
        .to_owned();
    let logged = first.stderr();
    first.stop().await;

    let second = Server::with_fake(&fake, &settings).await;
    let continued = ok(&second
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "which number?"}),
        )
        .await);
    assert_eq!(continued["conversation_id"], id.as_str());
    let sent = fake.chat_requests().await.pop().expect("a chat request");
    let history: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        history,
        [
            "remember the number 42",
            "echo: remember the number 42",
            "which number?"
        ],
        "the new process sent the stored history"
    );

    let deleted = ok(&second
        .call("delete_conversation", json!({"conversation_id": id}))
        .await);
    assert_eq!(deleted["deleted"], id.as_str());
    let gone = second
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "still there?"}),
        )
        .await;
    assert!(err(&gone).contains(&id), "{gone:?}");
    let logged = logged + &second.stderr();
    second.stop().await;
    assert!(!logged.contains(PASSWORD), "{logged}");
}

#[tokio::test]
async fn while_postgres_is_down_a_chat_answers_unsaved_continuing_fails_naming_it_and_both_work_once_it_is_back()
 {
    let fake = FakeVultr::start().await;
    let postgres = PgServer::start();
    let database = postgres.create_database();
    let shown = database.trim_start_matches("postgres://");
    let server = Server::with_fake(&fake, &[("VULTR_MCP_CONVERSATIONS", &database)]).await;
    let saved = ok(&server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "first"}),
        )
        .await);
    let id = saved["conversation_id"].as_str().expect("saved").to_owned();

    postgres.stop();
    let unsaved = server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "second"}),
        )
        .await;
    assert_eq!(ok(&unsaved)["conversation_id"], serde_json::Value::Null);
    let said = text(&unsaved);
    assert!(said.contains("this turn was not saved"), "{said}");
    assert!(
        said.contains("(Postgres)"),
        "names the kind of store: {said}"
    );
    assert!(!said.contains(shown), "names the database: {said}");
    let continued = server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "third"}),
        )
        .await;
    let failed = err(&continued);
    assert!(
        failed.contains("(Postgres)") && failed.contains("is running and reachable"),
        "{failed}"
    );
    assert!(!failed.contains(shown), "{failed}");
    assert!(
        server.stderr().contains(shown),
        "the log names the database"
    );

    postgres.start_again();
    let continued = ok(&server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "fourth"}),
        )
        .await);
    assert_eq!(continued["conversation_id"], id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn a_store_error_tells_the_client_it_is_postgres_and_what_to_check_and_only_the_log_which_database()
 {
    let fake = FakeVultr::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (user, database) = ("qz_owner_5813", "qz_chats_2740");
    let url = format!("postgres://{user}:{PASSWORD}@127.0.0.1:{port}/{database}");
    let server = Server::with_fake(&fake, &[("VULTR_MCP_CONVERSATIONS", &url)]).await;

    let unsaved = text(
        &server
            .call(
                "chat_completion",
                json!({"model": MODEL, "prompt": "first"}),
            )
            .await,
    );
    assert!(unsaved.contains("this turn was not saved"), "{unsaved}");
    let failed = err(&server
        .call(
            "chat_completion",
            json!({"conversation_id": "c-00000000000000000000000000000000", "prompt": "more"}),
        )
        .await);
    for said in [&unsaved, &failed] {
        assert!(said.contains("(Postgres)"), "{said}");
        assert!(
            said.contains("VULTR_MCP_CONVERSATIONS") && said.contains("is running and reachable"),
            "says what to check: {said}"
        );
        for hidden in [user, database, "127.0.0.1", port.as_str(), PASSWORD] {
            assert!(!said.contains(hidden), "shows {hidden}: {said}");
        }
    }

    let logged = server.stderr();
    server.stop().await;
    let warning = logged
        .lines()
        .find(|line| line.contains(" WARN ") && line.contains(database))
        .unwrap_or_else(|| panic!("no warning names the database: {logged}"));
    for named in [user, "127.0.0.1", port.as_str()] {
        assert!(warning.contains(named), "{named}: {warning}");
    }
    assert!(!logged.contains(PASSWORD), "{logged}");
}
