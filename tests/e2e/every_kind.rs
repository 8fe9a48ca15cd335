//! What issue 17 promised, on the binary over stdio with every toolset on: a collection
//! is created, given a document, searched and asked about (RAG); passages are reranked and
//! texts embedded; a sentence is spoken and transcribed back; an image is made and read back
//! through its link. Each result says what it cost (or that it is not priced).

use base64::Engine as _;
use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::json;

use crate::support::fake_vultr::FakeVultr;
use crate::support::mcp::Server;
use crate::support::session::{ok, text};

#[tokio::test]
async fn with_every_toolset_each_kind_of_model_runs_through_mcp_with_its_cost() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_TOOLSETS", "all")]).await;
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    let listed: Vec<String> = server
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    for tool in [
        "create_collection",
        "search_collection",
        "rerank",
        "embed",
        "speak",
        "transcribe",
        "generate_image",
    ] {
        assert!(listed.iter().any(|t| t == tool), "{tool} in {listed:?}");
    }

    // RAG: a collection, a document, a search, a question answered over it.
    let created = ok(&server
        .call("create_collection", json!({"name": "handbook"}))
        .await);
    let id = created["collection"]["id"].as_str().unwrap().to_owned();
    let document = "The office opens at nine.\n\nLunch is served at noon in the garden.";
    let added = server
        .call(
            "add_to_collection",
            json!({"collection": id, "data": base64(document.as_bytes()), "filename": "handbook.txt"}),
        )
        .await;
    ok(&added);
    assert!(text(&added).contains("not priced"), "{}", text(&added));
    let found = server
        .call(
            "search_collection",
            json!({"collection": id, "query": "lunch", "top_k": 1}),
        )
        .await;
    assert!(
        text(&found).contains("Lunch is served at noon"),
        "{}",
        text(&found)
    );
    let answer = ok(&server
        .call(
            "chat_completion",
            json!({"model": "kimi-k2-instruct", "prompt": "When is lunch?", "collection": id}),
        )
        .await);
    assert!(
        answer["content"].as_str().unwrap().contains("noon"),
        "{answer}"
    );
    assert!(answer["cost_usd"].as_f64().unwrap() > 0.0, "{answer}");

    // Retrieval: rerank passages, embed texts.
    let ranked = ok(&server
        .call(
            "rerank",
            json!({"query": "lunch at noon", "documents": ["The office opens at nine.", "Lunch is served at noon."]}),
        )
        .await);
    assert_eq!(ranked["results"][0]["index"], 1, "{ranked}");
    assert!(ranked["cost_usd"].as_f64().is_some(), "{ranked}");
    let embedded = server
        .call("embed", json!({"input": ["lunch", "dinner"]}))
        .await;
    assert!(ok(&embedded)["dimensions"].as_u64().unwrap() > 0);
    assert!(text(&embedded).contains("Cosine similarity"));
    assert!(text(&embedded).contains("cost $"), "{}", text(&embedded));

    // Audio: speak a sentence, transcribe it back from its link.
    let sentence = "Lunch is served at noon.";
    let spoken = server
        .call("speak", json!({"text": sentence, "format": "wav"}))
        .await;
    let speech = ok(&spoken);
    assert!(spoken.content.iter().any(|c| c.as_audio().is_some()));
    assert!(speech["cost_usd"].as_f64().unwrap() > 0.0, "{speech}");
    let heard = ok(&server
        .call("transcribe", json!({"uri": speech["uri"]}))
        .await);
    assert_eq!(heard["text"], sentence);

    // Images: one image, inline and read back through its link.
    let made = server
        .call("generate_image", json!({"prompt": "a lighthouse at dusk"}))
        .await;
    ok(&made);
    let inline = made
        .content
        .iter()
        .find_map(|c| c.as_image())
        .expect("the image inline");
    let link = made
        .content
        .iter()
        .find_map(|c| match c {
            rmcp::model::ContentBlock::ResourceLink(link) => Some(link.uri.clone()),
            _ => None,
        })
        .expect("a media link");
    assert!(text(&made).contains("cost $"), "{}", text(&made));
    let read = server
        .client
        .read_resource(ReadResourceRequestParams::new(link))
        .await
        .unwrap();
    match &read.contents[0] {
        ResourceContents::BlobResourceContents {
            blob, mime_type, ..
        } => {
            assert_eq!(blob, &inline.data);
            assert_eq!(mime_type.as_deref(), Some("image/png"));
        }
        other => panic!("a blob, not {other:?}"),
    }
    server.stop().await;
}
