//! The `images` toolset: `generate_image` against the fake's image generation
//! (`fake_vultr/images.rs`): real PNGs as MCP image content, the size and cost per
//! megapixel, arguments checked against the catalog before anything is sent, images given
//! as URLs fetched only from the inference host, media links apart per principal, waiting
//! progress, cancellation, and the call as a task.

use base64::Engine as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ReadResourceRequestParams, Request,
    ResourceContents, ServerResult,
};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

use vultr_inference_mcp::principal::Principal;

use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::images::{
    FOREIGN_IMAGE_HOST, IMAGE_FILES_PATH, IMAGES_PATH, PNG_SIDE,
};
use crate::support::in_process::Server;
use crate::support::session::{err, ok, text};

const IMAGE_MODEL: &str = "z-image-turbo";

async fn images() -> (FakeVultr, Server) {
    images_with(&[]).await
}

async fn images_with(extra: &[(&str, &str)]) -> (FakeVultr, Server) {
    let fake = FakeVultr::start().await;
    let mut settings = vec![("VULTR_MCP_TOOLSETS", "images")];
    settings.extend_from_slice(extra);
    let server = Server::with_fake(&fake, &settings).await;
    (fake, server)
}

/// The `resource_link`s of a result: uri, MIME type, size.
fn links_of(result: &CallToolResult) -> Vec<(String, Option<String>, Option<u64>)> {
    result
        .content
        .iter()
        .filter_map(|c| c.as_resource_link())
        .map(|link| (link.uri.clone(), link.mime_type.clone(), link.size))
        .collect()
}

/// The bytes and MIME type `resources/read` gives for `uri`, or the protocol error.
async fn read_blob(server: &Server, uri: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let result = server
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .map_err(|e| e.to_string())?;
    match &result.contents[..] {
        [
            ResourceContents::BlobResourceContents {
                blob, mime_type, ..
            },
        ] => Ok((
            base64::engine::general_purpose::STANDARD
                .decode(blob)
                .expect("the blob is base64"),
            mime_type.clone(),
        )),
        other => panic!("one blob expected: {other:?}"),
    }
}

/// The images of a result: MIME type and decoded bytes.
fn images_of(result: &CallToolResult) -> Vec<(String, Vec<u8>)> {
    result
        .content
        .iter()
        .filter_map(|c| c.as_image())
        .map(|image| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&image.data)
                .expect("image data is base64");
            (image.mime_type.clone(), bytes)
        })
        .collect()
}

/// Width and height from a PNG's signature and IHDR chunk; fails the test on anything else.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "the first chunk is IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(word(8), 13, "IHDR is 13 bytes");
    if (word(16), word(20)) == (4, 4) && bytes[24..29] == [8, 2, 0, 0, 0] {
        // zlib.crc32 of this IHDR, computed apart from the fake's own CRC code.
        assert_eq!(word(29), 0x2693_0929, "the IHDR checksum");
    }
    assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
    (word(16), word(20))
}

#[tokio::test]
async fn an_image_comes_back_as_png_content_with_its_size_and_cost() {
    let (fake, server) = images().await;
    let result = server
        .call("generate_image", json!({"prompt": "a lighthouse at dusk"}))
        .await;
    let body = ok(&result);
    let made = images_of(&result);
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].0, "image/png");
    assert_eq!(png_size(&made[0].1), (PNG_SIDE, PNG_SIDE));
    assert_eq!(body["model"], IMAGE_MODEL, "the only image model");
    assert_eq!(body["size"], "512x512", "the catalog's first size");
    assert_eq!(body["megapixels"], 0.262144);
    assert_eq!(body["cost_usd"], 0.000786432, "0.262144 MP at $0.003");
    let uri = body["images"][0]["uri"].as_str().expect("a media uri");
    assert!(uri.starts_with("vultr://media/"), "{uri}");
    assert_eq!(
        body["images"],
        json!([{"uri": uri, "mime_type": "image/png", "bytes": made[0].1.len()}])
    );
    assert_eq!(
        links_of(&result),
        [(
            uri.to_owned(),
            Some("image/png".to_owned()),
            Some(made[0].1.len() as u64)
        )]
    );
    let (read, mime) = read_blob(&server, uri)
        .await
        .expect("readable by its owner");
    assert_eq!(read, made[0].1);
    assert_eq!(mime.as_deref(), Some("image/png"));
    let shown = text(&result);
    assert!(
        shown.contains(
            "1 image (512x512) made by z-image-turbo: 0.262144 megapixels; cost $0.000786432"
        ),
        "{shown}"
    );
    assert_eq!(
        fake.posted_bodies(IMAGES_PATH).await,
        [
            json!({"model": IMAGE_MODEL, "prompt": "a lighthouse at dusk", "n": 1,
                "size": "512x512", "response_format": "b64_json"})
        ]
    );
}

#[tokio::test]
async fn several_images_with_every_option_are_sent_and_priced_together() {
    let (fake, server) = images().await;
    let result = server
        .call(
            "generate_image",
            json!({"prompt": "a fox", "model": IMAGE_MODEL, "size": "1024x1024", "n": 3,
                   "steps": 12, "guidance_scale": 3.5, "seed": 42}),
        )
        .await;
    let body = ok(&result);
    assert_eq!(images_of(&result).len(), 3);
    assert_eq!(body["megapixels"], 3.0 * 1.048576);
    let cost = body["cost_usd"].as_f64().unwrap();
    assert!((cost - 3.0 * 1.048576 * 0.003).abs() < 1e-9, "{body}");
    assert_eq!(
        fake.posted_bodies(IMAGES_PATH).await[0],
        json!({"model": IMAGE_MODEL, "prompt": "a fox", "n": 3, "size": "1024x1024",
               "response_format": "b64_json", "steps": 12, "guidance_scale": 3.5, "seed": 42})
    );
}

#[tokio::test]
async fn images_over_the_inline_cap_come_only_as_links() {
    let (_fake, server) = images_with(&[("VULTR_MCP_MEDIA_INLINE_MAX", "10")]).await;
    let result = server
        .call("generate_image", json!({"prompt": "a boat", "n": 2}))
        .await;
    let body = ok(&result);
    assert!(images_of(&result).is_empty(), "nothing inline");
    let links = links_of(&result);
    assert_eq!(links.len(), 2);
    for (i, (uri, _, _)) in links.iter().enumerate() {
        assert_eq!(body["images"][i]["uri"], Value::from(uri.as_str()));
        let (bytes, _) = read_blob(&server, uri).await.expect("readable");
        assert_eq!(png_size(&bytes), (PNG_SIDE, PNG_SIDE));
    }
}

#[tokio::test]
async fn another_principals_images_are_not_found() {
    let (_fake, server) = images().await;
    let result = server
        .call("generate_image", json!({"prompt": "a secret map"}))
        .await;
    let uri = ok(&result)["images"][0]["uri"].as_str().unwrap().to_owned();
    let other = server
        .client_acting_for(Principal::authenticated("bob").unwrap())
        .await;
    let refused = read_blob(&other, &uri).await.expect_err("not bob's");
    assert!(refused.contains("no such media"), "{refused}");
    assert!(read_blob(&server, &uri).await.is_ok(), "still the owner's");
}

#[tokio::test]
async fn out_of_range_arguments_and_other_kinds_of_model_are_refused_before_sending() {
    let (fake, server) = images().await;
    let cases = [
        (
            json!({"prompt": "x", "size": "640x480"}),
            "`size` \"640x480\" is not offered by z-image-turbo: the catalog lists 512x512, 768x768, 1024x1024",
        ),
        (
            json!({"prompt": "x", "n": 5}),
            "`n` 5 is out of range: ask for 1 to 4 images",
        ),
        (json!({"prompt": "x", "n": 0}), "`n` 0 is out of range"),
        (
            json!({"prompt": "x", "steps": 51}),
            "`steps` 51 is out of range for z-image-turbo: the catalog allows from 1 to 50",
        ),
        (
            json!({"prompt": "x", "guidance_scale": 20.5}),
            "`guidance_scale` 20.5 is out of range",
        ),
        (json!({"prompt": "  "}), "`prompt` is empty"),
        (
            json!({"prompt": "x", "model": "bge-reranker-v2-m3"}),
            "`bge-reranker-v2-m3` is not a image generation model (it outputs rerank); the catalog's image generation models are z-image-turbo",
        ),
    ];
    for (arguments, expected) in cases {
        let message = err(&server.call("generate_image", arguments.clone()).await);
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    assert_eq!(fake.count("POST", IMAGES_PATH).await, 0, "nothing was sent");
}

#[tokio::test]
async fn images_given_as_urls_on_the_inference_host_are_fetched() {
    let (fake, server) = images().await;
    fake.answer_images_with_urls().await;
    let result = server
        .call("generate_image", json!({"prompt": "two moons", "n": 2}))
        .await;
    ok(&result);
    let made = images_of(&result);
    assert_eq!(made.len(), 2);
    for (mime, bytes) in &made {
        assert_eq!(mime, "image/png");
        assert_eq!(png_size(bytes), (PNG_SIDE, PNG_SIDE));
    }
    let fetched: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(IMAGE_FILES_PATH))
        .collect();
    assert_eq!(fetched.len(), 2);
    assert!(
        fetched.iter().all(|r| r.authorization.is_some()),
        "fetched with the key, on the inference host"
    );
}

#[tokio::test]
async fn images_given_as_urls_on_another_host_are_refused_unfetched() {
    let (fake, server) = images().await;
    fake.answer_images_with_foreign_urls().await;
    let message = err(&server
        .call("generate_image", json!({"prompt": "a tree"}))
        .await);
    assert!(
        message.contains(FOREIGN_IMAGE_HOST) && message.contains("Nothing was fetched"),
        "{message}"
    );
    assert!(
        !message.contains("sig="),
        "the URL itself is not shown: {message}"
    );
}

#[tokio::test]
async fn an_image_url_redirecting_off_the_inference_host_is_not_followed() {
    let (fake, server) = images().await;
    let elsewhere = wiremock::MockServer::start().await;
    let moved = format!("{IMAGE_FILES_PATH}/moved.png");
    let answer =
        json!({"created": 1, "data": [{"url": format!("{}{moved}", fake.mock_server().uri())}]});
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(IMAGES_PATH))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(answer))
        .with_priority(1)
        .mount(fake.mock_server())
        .await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(moved.as_str()))
        .respond_with(
            wiremock::ResponseTemplate::new(302)
                .insert_header("location", format!("{}/stolen.png", elsewhere.uri())),
        )
        .with_priority(1)
        .mount(fake.mock_server())
        .await;

    let message = err(&server
        .call("generate_image", json!({"prompt": "a tree"}))
        .await);

    let followed = elsewhere.received_requests().await.unwrap_or_default();
    assert!(
        followed.is_empty(),
        "the redirect was followed: {followed:?}"
    );
    assert!(message.contains("302"), "{message}");
}

#[tokio::test]
async fn generate_image_is_listed_only_with_its_toolset_and_writes_without_destroying() {
    let fake = FakeVultr::start().await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_TOOLSETS", "core,retrieval")]).await;
    let tools = server.client.list_all_tools().await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "generate_image"));
    let refused = server
        .try_call("generate_image", json!({"prompt": "x"}))
        .await
        .expect_err("not listed");
    assert!(
        refused.to_string().contains("toolset `images`"),
        "{refused}"
    );
    let (_fake, on) = images().await;
    let tools = on.client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 1);
    let annotations = tools[0].annotations.as_ref().unwrap();
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(false));
}

#[tokio::test]
async fn a_cancelled_call_stops_waiting_for_vultr_and_frees_its_slot() {
    let (fake, server) = images_with(&[("VULTR_MCP_MAX_CONCURRENT_CALLS", "1")]).await;
    // The first generation hangs far longer than the test runs.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(IMAGES_PATH))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(60)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(fake.mock_server())
        .await;
    let params = CallToolRequestParams::new("generate_image")
        .with_arguments(json!({"prompt": "slow"}).as_object().unwrap().clone());
    let mut call = server
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("the request is sent");
    for _ in 0..100 {
        if fake.count("POST", IMAGES_PATH).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.count("POST", IMAGES_PATH).await,
        1,
        "the call went upstream"
    );
    let (_keep, placeholder) = tokio::sync::oneshot::channel();
    let response = std::mem::replace(&mut call.rx, placeholder);
    call.cancel(None)
        .await
        .expect("notifications/cancelled is sent");
    // The one upstream slot is free again only when the cancelled call was dropped.
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        server.call("generate_image", json!({"prompt": "fast"})),
    )
    .await
    .expect("the next call runs at once");
    ok(&next);
    let late = tokio::time::timeout(std::time::Duration::from_millis(200), response).await;
    assert!(
        !matches!(late, Ok(Ok(Ok(ServerResult::CallToolResult(_))))),
        "a result came back for a cancelled call: {late:?}"
    );
}

#[tokio::test]
async fn a_client_that_takes_tasks_gets_the_images_from_the_task_and_the_media_link_works() {
    use rmcp::ServiceExt as _;
    use rmcp::model::{
        CallToolResponse, ClientCapabilities, ClientConfig, GetTaskParams, Implementation,
        TaskPayload,
    };
    let fake = FakeVultr::start().await;
    let settings = fake.settings();
    let env = crate::support::session::overridden(
        &settings,
        &[
            ("VULTR_MCP_TOOLSETS", "images"),
            ("VULTR_MCP_TASK_AFTER", "0"),
        ],
    );
    let app = vultr_inference_mcp::app::App::new(crate::support::in_process::settings(&env));
    let (client_end, server_end) = tokio::io::duplex(1 << 20);
    let handler = vultr_inference_mcp::mcp::VultrServer::new(
        std::sync::Arc::clone(&app),
        tokio_util::sync::CancellationToken::new(),
    );
    tokio::spawn(async move {
        if let Ok(running) = handler.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    let client = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("images-tasks-test", "0"),
    )
    .serve(client_end)
    .await
    .expect("the MCP handshake succeeds");
    let params = CallToolRequestParams::new("generate_image").with_arguments(
        json!({"prompt": "a slow sunrise"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let CallToolResponse::Task(handle) = client.call_tool_once(params).await.unwrap() else {
        panic!("with VULTR_MCP_TASK_AFTER=0 the call becomes a task");
    };
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let task = client
                .get_task(GetTaskParams::new(handle.task.task_id.clone()))
                .await
                .unwrap()
                .task;
            if task.status().is_terminal() {
                return task;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the task ends");
    let TaskPayload::Completed { result } = &ended.payload else {
        panic!("expected a completed task, got {:?}", ended.payload);
    };
    let result: CallToolResult = serde_json::from_value(Value::Object(result.clone())).unwrap();
    let made = images_of(&result);
    assert_eq!(made.len(), 1);
    assert_eq!(png_size(&made[0].1), (PNG_SIDE, PNG_SIDE));
    let (uri, _, _) = links_of(&result).remove(0);
    let read = client
        .read_resource(ReadResourceRequestParams::new(&uri))
        .await
        .expect("the task's owner reads the image");
    assert_eq!(read.contents.len(), 1);
}

#[tokio::test]
async fn a_slow_generation_reports_waiting_progress_with_the_callers_token_and_never_after_the_result()
 {
    let fake = FakeVultr::start().await;
    // The first generation takes 2.5 s: updates after 1 s and 2 s fit in it.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(IMAGES_PATH))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(
                    json!({"data": [{"b64_json": base64::engine::general_purpose::STANDARD
                    .encode(crate::support::fake_vultr::images::png([1, 2, 3]))}]}),
                )
                .set_delay(std::time::Duration::from_millis(2500)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(fake.mock_server())
        .await;
    let settings = fake.settings();
    let env = crate::support::session::overridden(&settings, &[("VULTR_MCP_TOOLSETS", "images")]);
    let mut session = crate::support::in_process::RawSession::start(&env).await;
    let token = "image-progress-3";
    session
        .call_tool(
            7,
            "generate_image",
            json!({"prompt": "slowly"}),
            Some(json!({"progressToken": token})),
        )
        .await;
    let (before, response) = session.until_response(7).await;
    assert_eq!(
        response.value["result"]["isError"], false,
        "{}",
        response.value
    );
    let progress: Vec<&Value> = before
        .iter()
        .map(|line| {
            assert_eq!(
                line.value["method"], "notifications/progress",
                "{}",
                line.value
            );
            &line.value["params"]
        })
        .collect();
    // At 1 s and 2 s at least; one more if the catalog and key took long on a busy machine.
    assert!(
        (2..=4).contains(&progress.len()),
        "one a second after the first: {progress:?}"
    );
    for (i, params) in progress.iter().enumerate() {
        assert_eq!(params["progressToken"], token);
        assert_eq!(
            params["progress"],
            (i + 1) as f64,
            "seconds so far: {params}"
        );
        assert_eq!(
            params["message"],
            format!("waiting for Vultr to make 1 image: {} s", i + 1)
        );
    }
    let after = session
        .next_line(std::time::Duration::from_millis(1500))
        .await;
    assert!(after.is_none(), "nothing after the result: {after:?}");
}

#[tokio::test]
async fn a_catalog_without_an_image_model_says_which_kind_is_missing() {
    let fake = FakeVultr::builder()
        .catalog(crate::support::fake_vultr::Catalog::OpenAiList)
        .start()
        .await;
    let server = Server::with_fake(&fake, &[("VULTR_MCP_TOOLSETS", "images")]).await;
    let message = err(&server
        .call("generate_image", json!({"prompt": "anything"}))
        .await);
    assert!(
        message.contains("offers no image generation model")
            && message.contains("capability `image`"),
        "{message}"
    );
    assert_eq!(fake.count("POST", IMAGES_PATH).await, 0);
}

#[tokio::test]
async fn an_image_that_cannot_be_kept_still_comes_inline_with_the_reason() {
    let (_fake, server) = images_with(&[("VULTR_MCP_MEDIA_MAX_PER_PRINCIPAL", "10")]).await;
    let result = server
        .call("generate_image", json!({"prompt": "paid for already"}))
        .await;
    let body = ok(&result);
    let made = images_of(&result);
    assert_eq!(made.len(), 1, "the image is not lost");
    assert_eq!(png_size(&made[0].1), (PNG_SIDE, PNG_SIDE));
    assert!(links_of(&result).is_empty());
    assert!(body["images"][0].get("uri").is_none(), "{body}");
    let shown = text(&result);
    assert!(
        shown.contains("could not be kept as vultr://media links")
            && shown.contains("VULTR_MCP_MEDIA_MAX_PER_PRINCIPAL"),
        "{shown}"
    );
}
