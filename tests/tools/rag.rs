//! The `rag` toolset in process against the fake vector store: every collection tool,
//! what is sent upstream, the shapes Vultr may answer with, each principal's collections
//! apart (ids derived from names never mapped onto another's), `top_k`, documents, and
//! RAG chat (its route, body, conversation and cost).

use base64::Engine as _;
use serde_json::{Value, json};
use vultr_inference_mcp::principal::Principal;

use crate::support::fake_vultr::vector_store::{RAG_PATH, VECTOR_STORE_PATH};
use crate::support::fake_vultr::{
    CHAT_PATH, DEFAULT_SUBSCRIPTION_ID, FakeVultr, SUBSCRIPTIONS_PATH,
};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

const RAG: (&str, &str) = ("VULTR_MCP_TOOLSETS", "core,rag");

async fn rag_server(fake: &FakeVultr) -> Server {
    Server::with_fake(fake, &[RAG]).await
}

fn principal(name: &str) -> Principal {
    Principal::new(name).expect("a valid principal")
}

/// Creates the collection `name` as `client`; returns the id the result gives.
async fn create(client: &Server, name: &str) -> String {
    let created = ok(&client
        .call("create_collection", json!({"name": name}))
        .await);
    created["collection"]["id"].as_str().unwrap().to_owned()
}

/// Adds `texts` as items of `collection`.
async fn add(client: &Server, collection: &str, texts: &[&str]) -> Value {
    let items: Vec<Value> = texts.iter().map(|t| json!({"content": t})).collect();
    ok(&client
        .call(
            "add_to_collection",
            json!({"collection": collection, "items": items}),
        )
        .await)
}

/// JSON bodies of the requests sent to `path` with `method`.
async fn bodies(fake: &FakeVultr, method: &str, path: &str) -> Vec<Value> {
    fake.requests()
        .await
        .into_iter()
        .filter(|r| {
            r.method == method
                && percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy() == path
        })
        .map(|r| r.body.unwrap_or(Value::Null))
        .collect()
}

const FACTS: [&str; 3] = [
    "The office opens at nine in the morning.",
    "Lunch is served in the cafeteria at noon.",
    "Parking permits are renewed every January.",
];

#[tokio::test]
async fn a_collection_is_created_filled_listed_searched_and_deleted() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;

    let created = server
        .call("create_collection", json!({"name": "office-handbook-2026"}))
        .await;
    let created_text = text(&created);
    let created = ok(&created);
    assert_eq!(
        created["collection"]["id"], "office-handboo",
        "the id is Vultr's, derived from the name"
    );
    assert!(
        created_text.contains("first 14 characters"),
        "{created_text}"
    );
    assert_eq!(created["cost"], "not priced");
    assert_eq!(
        bodies(&fake, "POST", VECTOR_STORE_PATH).await,
        [json!({"name": "office-handbook-2026"})]
    );
    let id = "office-handboo";

    let added = ok(&server
        .call(
            "add_to_collection",
            json!({"collection": id, "items": [
                {"content": FACTS[0], "description": "hours"},
                {"content": FACTS[1]},
                {"content": FACTS[2]}]}),
        )
        .await);
    assert_eq!(added["items"].as_array().unwrap().len(), 3);
    let items_path = format!("{VECTOR_STORE_PATH}/{id}/items");
    assert_eq!(
        bodies(&fake, "POST", &items_path).await[0],
        json!({"content": FACTS[0], "description": "hours"})
    );

    let listed = ok(&server.call("list_collections", json!({})).await);
    assert_eq!(listed["collections"][0]["id"], id);
    assert_eq!(listed["collections"][0]["name"], "office-handbook-2026");

    let items = ok(&server
        .call("list_collection_items", json!({"collection": id}))
        .await);
    let item_ids: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(item_ids.len(), 3);
    assert_eq!(items["items"][0]["description"], "hours");

    let found = server
        .call(
            "search_collection",
            json!({"collection": id, "query": "when is lunch served", "top_k": 1}),
        )
        .await;
    let found_text = text(&found);
    let found = ok(&found);
    assert_eq!(
        found["results"].as_array().unwrap().len(),
        1,
        "top_k is applied by us"
    );
    assert_eq!(found["returned"], 3, "Vultr returned them all");
    assert_eq!(found["results"][0]["content"], FACTS[1]);
    assert!(
        found_text.contains(FACTS[1]) && found_text.contains("[item "),
        "{found_text}"
    );
    assert_eq!(
        bodies(&fake, "POST", &format!("{VECTOR_STORE_PATH}/{id}/search")).await,
        [json!({"input": "when is lunch served"})],
        "only `input` is sent: Vultr ignores top_k"
    );

    let first = item_ids[0];
    ok(&server
        .call(
            "delete_collection_item",
            json!({"collection": id, "item_id": first}),
        )
        .await);
    assert_eq!(fake.collections()[0].items.len(), 2);

    let deleted = ok(&server
        .call("delete_collection", json!({"collection": id}))
        .await);
    assert_eq!(deleted["existed"], true);
    assert!(fake.collections().is_empty());
    let listed = server.call("list_collections", json!({})).await;
    assert!(
        text(&listed).contains("no collections"),
        "{}",
        text(&listed)
    );
    let gone = err(&server
        .call("search_collection", json!({"collection": id, "query": "x"}))
        .await);
    assert!(
        gone.contains(id) && gone.contains("list_collections"),
        "{gone}"
    );
}

#[tokio::test]
async fn the_other_shapes_vultr_may_answer_with_read_the_same() {
    let fake = FakeVultr::builder().lenient_vector_store().start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "notes").await;
    assert_eq!(id, "notes");
    let added = add(&server, &id, &FACTS).await;
    assert!(added["items"][0]["id"].as_str().is_some(), "{added}");
    let listed = ok(&server.call("list_collections", json!({})).await);
    assert_eq!(listed["collections"][0]["id"], "notes");
    let items = ok(&server
        .call("list_collection_items", json!({"collection": id}))
        .await);
    assert_eq!(items["items"].as_array().unwrap().len(), 3);
    let found = ok(&server
        .call(
            "search_collection",
            json!({"collection": id, "query": "parking permits"}),
        )
        .await);
    assert_eq!(found["results"][0]["content"], FACTS[2]);
    assert_eq!(
        found["results"].as_array().unwrap().len(),
        3,
        "default top_k 5"
    );
    assert!(found.get("usage").is_none());
}

#[tokio::test]
async fn each_principal_sees_and_reaches_only_its_own_collections() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let alice = server.client_acting_for(principal("alice")).await;
    let bob = server.client_acting_for(principal("bob")).await;
    let id = create(&alice, "shared-docs").await;
    add(&alice, &id, &FACTS).await;

    let listed = ok(&bob.call("list_collections", json!({})).await);
    assert_eq!(listed["collections"], json!([]));
    let requests_before = fake.requests().await.len();
    for (tool, arguments) in [
        (
            "search_collection",
            json!({"collection": id, "query": "lunch"}),
        ),
        ("list_collection_items", json!({"collection": id})),
        (
            "add_to_collection",
            json!({"collection": id, "items": [{"content": "mine now"}]}),
        ),
        (
            "delete_collection_item",
            json!({"collection": id, "item_id": "item-1"}),
        ),
        ("delete_collection", json!({"collection": id})),
        (
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi", "collection": id}),
        ),
    ] {
        let refused = err(&bob.call(tool, arguments).await);
        assert!(
            refused.contains(&format!("no collection `{id}` of yours"))
                && refused.contains("list_collections"),
            "{tool}: {refused}"
        );
    }
    assert_eq!(
        fake.requests().await.len(),
        requests_before,
        "nothing of alice's reached Vultr for bob"
    );

    // The same name: the id is predictably alice's, so nothing is sent.
    let refused = err(&bob
        .call("create_collection", json!({"name": "shared-docs"}))
        .await);
    assert!(
        refused.contains("another user's") && refused.contains(&id),
        "{refused}"
    );
    assert_eq!(bodies(&fake, "POST", VECTOR_STORE_PATH).await.len(), 1);

    // A name Vultr sanitizes onto the same id: refused once the id comes back.
    let refused = err(&bob
        .call("create_collection", json!({"name": "Shared Docs"}))
        .await);
    assert!(
        refused.contains("another user's") && refused.contains(&id),
        "{refused}"
    );
    assert_eq!(
        fake.collections()[0].items.len(),
        3,
        "alice's collection is untouched"
    );
    let listed = ok(&bob.call("list_collections", json!({})).await);
    assert_eq!(listed["collections"], json!([]));
    let listed = ok(&alice.call("list_collections", json!({})).await);
    assert_eq!(listed["collections"][0]["id"], id.as_str());

    // Alice making it again finds her own.
    let again = ok(&alice
        .call("create_collection", json!({"name": "shared-docs"}))
        .await);
    assert_eq!(again["new"], false);
}

#[tokio::test]
async fn a_document_is_uploaded_as_multipart_from_data_or_a_local_path() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "manuals").await;
    let document = "First paragraph about pumps.\n\nSecond paragraph about valves.";
    let data = base64::engine::general_purpose::STANDARD.encode(document);
    let uploaded = ok(&server
        .call(
            "add_to_collection",
            json!({"collection": id, "data": data, "filename": "pumps.txt"}),
        )
        .await);
    assert_eq!(uploaded["filename"], "pumps.txt");
    assert_eq!(uploaded["upload"]["status"], "completed");
    let items = &fake.collections()[0].items;
    assert_eq!(items.len(), 2, "the fake read the multipart `file` field");
    assert_eq!(items[1].content, "Second paragraph about valves.");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("valves.md");
    std::fs::write(&file, "Valves close clockwise.").unwrap();
    let uploaded = ok(&server
        .call(
            "add_to_collection",
            json!({"collection": id, "path": file.to_str().unwrap()}),
        )
        .await);
    assert_eq!(uploaded["filename"], "valves.md");
    assert_eq!(fake.collections()[0].items.len(), 3);

    for (arguments, expected) in [
        (json!({"collection": id, "data": data}), "filename"),
        (
            json!({"collection": id, "data": "%%%", "filename": "a.txt"}),
            "not base64",
        ),
        (json!({"collection": id}), "give `items`"),
        (
            json!({"collection": id, "items": [{"content": "x"}], "data": data, "filename": "a.txt"}),
            "not both",
        ),
        (
            json!({"collection": id, "items": [{"content": " "}]}),
            "items[0].content",
        ),
        (
            json!({"collection": id, "path": dir.path().join("missing.txt").to_str().unwrap()}),
            "cannot be read",
        ),
    ] {
        let refused = err(&server.call("add_to_collection", arguments.clone()).await);
        assert!(refused.contains(expected), "{arguments}: {refused}");
    }
    assert_eq!(
        fake.collections()[0].items.len(),
        3,
        "nothing more was sent"
    );
}

#[tokio::test]
async fn top_k_defaults_to_five_and_is_bounded() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "many").await;
    let texts: Vec<String> = (0..7).map(|i| format!("fact number {i}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    add(&server, &id, &texts).await;
    let found = ok(&server
        .call(
            "search_collection",
            json!({"collection": id, "query": "fact"}),
        )
        .await);
    assert_eq!(found["results"].as_array().unwrap().len(), 5);
    assert_eq!(found["returned"], 7);
    for top_k in [0, 51] {
        let refused = err(&server
            .call(
                "search_collection",
                json!({"collection": id, "query": "fact", "top_k": top_k}),
            )
            .await);
        assert!(refused.contains("`top_k` must be 1 to 50"), "{refused}");
    }
}

#[tokio::test]
async fn rag_chat_goes_to_the_rag_route_unstreamed_with_conversation_and_cost() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "handbook").await;
    add(&server, &id, &FACTS).await;

    // kimi-k2-instruct streams on the plain route; RAG chat is asked for in one piece.
    let answer = server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "When does the office open?",
                "collection": id, "max_tokens": 100}),
        )
        .await;
    let answer_text = text(&answer);
    let answer = ok(&answer);
    assert!(
        answer_text.contains(&format!("According to {id}: {}", FACTS[0])),
        "{answer_text}"
    );
    assert!(answer["cost_usd"].as_f64().unwrap() > 0.0, "{answer}");
    assert_eq!(answer["collection"], id.as_str());
    let sent = bodies(&fake, "POST", RAG_PATH).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0],
        json!({"model": "kimi-k2-instruct", "collection": id, "max_tokens": 100,
            "messages": [{"role": "user", "content": "When does the office open?"}]}),
        "the chat body with `collection`, not streamed"
    );
    assert_eq!(fake.count("POST", CHAT_PATH).await, 0);

    // The conversation continues over the collection.
    let conversation = answer["conversation_id"].as_str().unwrap();
    let next = ok(&server
        .call(
            "chat_completion",
            json!({"prompt": "And lunch?", "collection": id, "conversation_id": conversation}),
        )
        .await);
    assert!(
        next["content"].as_str().unwrap().contains(FACTS[1]),
        "{next}"
    );
    let sent = bodies(&fake, "POST", RAG_PATH).await;
    assert_eq!(sent[1]["model"], "kimi-k2-instruct");
    assert_eq!(
        sent[1]["messages"].as_array().unwrap().len(),
        3,
        "history first"
    );

    // An unknown model is refused from the catalog before anything is sent.
    let refused = err(&server
        .call(
            "chat_completion",
            json!({"model": "no-such-model", "prompt": "hi", "collection": id}),
        )
        .await);
    assert!(refused.contains("unknown model"), "{refused}");
    assert_eq!(bodies(&fake, "POST", RAG_PATH).await.len(), 2);
}

#[tokio::test]
async fn without_the_rag_toolset_chat_has_no_collection_and_refuses_one() {
    let fake = FakeVultr::start().await;
    let core = Server::with_fake(&fake, &[]).await;
    let tools = core.client.list_all_tools().await.unwrap();
    let chat = tools.iter().find(|t| t.name == "chat_completion").unwrap();
    assert!(chat.input_schema["properties"].get("collection").is_none());
    let refused = err(&core
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "hi", "collection": "docs"}),
        )
        .await);
    assert!(refused.contains("`rag` toolset"), "{refused}");
    assert_eq!(
        fake.requests()
            .await
            .iter()
            .filter(|r| r.path.contains("chat"))
            .count(),
        0
    );

    let rag = rag_server(&fake).await;
    let tools = rag.client.list_all_tools().await.unwrap();
    let chat = tools.iter().find(|t| t.name == "chat_completion").unwrap();
    assert_eq!(
        chat.input_schema["properties"]["collection"]["type"],
        "string"
    );
    let annotations = |name: &str| {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let a = tool.annotations.clone().unwrap();
        (a.read_only_hint, a.destructive_hint)
    };
    assert_eq!(annotations("search_collection").0, Some(true));
    assert_eq!(annotations("list_collections").0, Some(true));
    assert_eq!(annotations("delete_collection"), (Some(false), Some(true)));
    assert_eq!(
        annotations("delete_collection_item"),
        (Some(false), Some(true))
    );
    assert_eq!(annotations("add_to_collection"), (Some(false), Some(false)));
    let search = tools
        .iter()
        .find(|t| t.name == "search_collection")
        .unwrap();
    assert!(
        search
            .description
            .as_deref()
            .unwrap()
            .contains("Experimental")
    );
}

#[tokio::test]
async fn a_vultr_failure_is_an_actionable_error() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    fake.fail(
        "POST",
        VECTOR_STORE_PATH,
        400,
        r#"{"error":{"message":"name too long","code":400,"type":"invalid_request_error"}}"#,
        1,
    )
    .await;
    let refused = err(&server.call("create_collection", json!({"name": "x"})).await);
    assert!(refused.contains("name too long"), "{refused}");
    assert!(
        ok(&server.call("list_collections", json!({})).await)["collections"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rotated_subscription_key_is_read_again_once() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "keys").await;
    assert_eq!(fake.count("GET", SUBSCRIPTIONS_PATH).await, 1);
    fake.rotate_key(DEFAULT_SUBSCRIPTION_ID, "INFKEY-ROTATED-0000-1111")
        .await;
    let items = ok(&server
        .call("list_collection_items", json!({"collection": id}))
        .await);
    assert_eq!(items["items"], json!([]));
    assert_eq!(
        fake.count("GET", SUBSCRIPTIONS_PATH).await,
        2,
        "the refused key was read again, once"
    );
}

#[tokio::test]
async fn a_collection_vultr_no_longer_has_is_forgotten_when_deleted() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "gone").await;
    let path = format!("{VECTOR_STORE_PATH}/{id}");
    let missing =
        r#"{"error":{"message":"Collection not found","code":404,"type":"not_found_error"}}"#;
    fake.fail("GET", VECTOR_STORE_PATH, 200, r#"{"collections":[]}"#, 1)
        .await;
    let listed = ok(&server.call("list_collections", json!({})).await);
    assert_eq!(listed["missing"], json!([id.as_str()]));
    fake.fail("DELETE", &path, 404, missing, 1).await;
    let deleted = ok(&server
        .call("delete_collection", json!({"collection": id}))
        .await);
    assert_eq!(deleted["existed"], false);
    let refused = err(&server
        .call("list_collection_items", json!({"collection": id}))
        .await);
    assert!(
        refused.contains("no collection `gone` of yours"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_write_that_may_have_been_made_is_never_sent_twice() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "notes").await;
    let items = format!("{VECTOR_STORE_PATH}/{id}/items");
    let busy = r#"{"error":{"message":"busy","code":503,"type":"server_error"}}"#;

    fake.fail("POST", &items, 503, busy, 1).await;
    let refused = err(&server
        .call(
            "add_to_collection",
            json!({"collection": id, "items": [{"content": "once"}]}),
        )
        .await);
    assert!(refused.contains("busy"), "{refused}");
    assert_eq!(
        bodies(&fake, "POST", &items).await.len(),
        1,
        "a 5xx may come after the item was added: not sent again"
    );

    fake.fail(
        "POST",
        &items,
        429,
        r#"{"error":{"message":"slow down"}}"#,
        1,
    )
    .await;
    add(&server, &id, &["twice"]).await;
    assert_eq!(
        bodies(&fake, "POST", &items).await.len(),
        3,
        "a 429 says nothing was added: sent again"
    );
}

#[tokio::test]
async fn a_collection_made_outside_this_server_is_never_handed_to_whoever_names_it() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    // Made in Vultr's console (or by another deployment): on the account, owned by no one here.
    let made = reqwest::Client::new()
        .post(format!("{}/vector_store", fake.inference_base_url()))
        .bearer_auth(crate::support::fake_vultr::DEFAULT_SUBSCRIPTION_KEY)
        .json(&json!({"name": "payroll"}))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success());
    let creates_before = bodies(&fake, "POST", VECTOR_STORE_PATH).await.len();

    for name in ["payroll", "Payroll"] {
        let refused = err(&server
            .call("create_collection", json!({"name": name}))
            .await);
        assert!(
            refused.contains("already exists on the Vultr account without belonging to you"),
            "{name}: {refused}"
        );
    }
    assert_eq!(
        bodies(&fake, "POST", VECTOR_STORE_PATH).await.len(),
        creates_before + 1,
        "a predictable name is refused before anything is sent; another only once Vultr gave its id"
    );
    let refused = err(&server
        .call("list_collection_items", json!({"collection": "payroll"}))
        .await);
    assert!(
        refused.contains("no collection `payroll` of yours"),
        "{refused}"
    );
}

#[tokio::test]
async fn items_added_before_one_failed_are_named_so_only_the_rest_is_sent_again() {
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "notes").await;
    let too_long = "x".repeat(crate::support::fake_vultr::vector_store::MAX_ITEM_CHARS + 1);
    let items = format!("{VECTOR_STORE_PATH}/{id}/items");

    let refused = err(&server
        .call(
            "add_to_collection",
            json!({"collection": id, "items": [
                {"content": "kept one"}, {"content": "kept two"},
                {"content": too_long}, {"content": "never sent"}]}),
        )
        .await);

    let sent = bodies(&fake, "POST", &items).await;
    assert_eq!(sent.len(), 3, "nothing after the refused item is sent");
    let listed = ok(&server
        .call("list_collection_items", json!({"collection": id}))
        .await);
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(refused.contains("too long"), "{refused}");
    assert!(
        refused.contains(&format!(
            "after 2 of the items were added, with ids {}, {}",
            ids[0], ids[1]
        )) && refused.contains("from `items[2]` on"),
        "{refused}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_document_path_reads_only_ordinary_files_within_the_cap_and_never_echoes_the_path() {
    use vultr_inference_mcp::collections::MAX_DOCUMENT_BYTES;
    let fake = FakeVultr::start().await;
    let server = rag_server(&fake).await;
    let id = create(&server, "local-files").await;
    let dir = tempfile::tempdir().unwrap();
    let mut refused = Vec::new();
    // /proc/self/environ holds the server's own keys and says it is empty; /dev/zero says
    // empty and never ends. Directly or through a link, neither is read.
    for (name, target) in [
        ("environ.txt", "/proc/self/environ"),
        ("zero.txt", "/dev/zero"),
    ] {
        if std::path::Path::new(target).exists() {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(target, &link).unwrap();
            refused.push((target.to_owned(), "special files are not read"));
            refused.push((
                link.to_str().unwrap().to_owned(),
                "special files are not read",
            ));
        }
    }
    let fifo = dir.path().join("pipe.txt");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only makes the node.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    refused.push((fifo.to_str().unwrap().to_owned(), "not a regular file"));
    // Sparse: over the cap on paper, nothing on disk.
    let big = dir.path().join("big.txt");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_DOCUMENT_BYTES as u64 + 1)
        .unwrap();
    refused.push((big.to_str().unwrap().to_owned(), "may be uploaded at once"));
    for (path, why) in refused {
        let call = server.call(
            "add_to_collection",
            json!({"collection": id, "path": path, "filename": "doc.txt"}),
        );
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .unwrap_or_else(|_| panic!("{path} hung"));
        let error = err(&result);
        assert!(error.contains(why), "{path}: {error}");
        assert!(!error.contains(&path), "the path is not echoed: {error}");
    }
    assert!(
        fake.collections()[0].items.is_empty(),
        "nothing was uploaded"
    );
}
