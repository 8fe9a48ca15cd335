//! The `images` toolset on the real binary: generate_image over stdio (a PNG inline and a
//! media link read back), and over HTTP with two principals, whose images are apart.

use base64::Engine as _;
use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::json;

use crate::support::fake_vultr::images::IMAGES_PATH;
use crate::support::fake_vultr::{DEFAULT_SUBSCRIPTION_KEY, FakeVultr};
#[cfg(unix)]
use crate::support::http::{ALICE_TOKEN, BOB_TOKEN, Generation, for_alice_and_bob};
use crate::support::mcp::Server;
use crate::support::session::{Session, ok, text};

/// The bytes `resources/read` gives for `uri`, or the protocol error's text.
async fn read_blob(session: &Session, uri: &str) -> Result<Vec<u8>, String> {
    let result = session
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .map_err(|e| e.to_string())?;
    match &result.contents[..] {
        [ResourceContents::BlobResourceContents { blob, .. }] => {
            Ok(base64::engine::general_purpose::STANDARD
                .decode(blob)
                .expect("base64"))
        }
        other => panic!("one blob expected: {other:?}"),
    }
}

/// The first image of a result, decoded, and the uri of its media link.
fn first_image(result: &rmcp::model::CallToolResult) -> (Vec<u8>, String) {
    let image = result
        .content
        .iter()
        .find_map(|c| c.as_image())
        .expect("an image inline");
    let link = result
        .content
        .iter()
        .find_map(|c| c.as_resource_link())
        .expect("a media link");
    (
        base64::engine::general_purpose::STANDARD
            .decode(&image.data)
            .unwrap(),
        link.uri.clone(),
    )
}

#[tokio::test]
async fn generate_image_runs_over_stdio() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_TOOLSETS", "images")]).await;
    let result = server
        .call(
            "generate_image",
            json!({"prompt": "a red kite", "size": "768x768"}),
        )
        .await;
    let body = ok(&result);
    assert_eq!(body["size"], "768x768");
    let (png, uri) = first_image(&result);
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(read_blob(&server, &uri).await.unwrap(), png);
    assert!(text(&result).contains("cost $"), "{}", text(&result));
    assert_eq!(fake.count("POST", IMAGES_PATH).await, 1);
    assert!(!server.stderr().contains(DEFAULT_SUBSCRIPTION_KEY));
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn over_http_one_principals_images_are_not_readable_by_another() {
    let fake = FakeVultr::start().await;
    let (server, tokens) = for_alice_and_bob(&fake, &[("VULTR_MCP_TOOLSETS", "images")]).await;
    for generation in Generation::BOTH {
        let alice = server.connect(generation, Some(ALICE_TOKEN)).await;
        let bob = server.connect(generation, Some(BOB_TOKEN)).await;
        let result = alice
            .call("generate_image", json!({"prompt": "alice's garden"}))
            .await;
        ok(&result);
        let (png, uri) = first_image(&result);
        assert_eq!(
            read_blob(&alice, &uri).await.unwrap(),
            png,
            "{generation:?}"
        );
        let refused = read_blob(&bob, &uri).await.expect_err("not bob's");
        assert!(
            refused.contains("no such media"),
            "{generation:?}: {refused}"
        );
    }
    drop(tokens);
}
