//! Remote MCP over streamable HTTP (`--http`): the same tools in both protocol
//! generations, the Host/Origin guard, size and path answers, the start-up refusal of an
//! unprotected public address, progress and cancellation over HTTP, and the SIGTERM drain.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientRequest, ReadResourceRequestParams, Request, ServerResult,
};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

use crate::support::fake_vultr::faults::{Fault, FaultServer, StreamEnd, content_chunks};
use crate::support::fake_vultr::{DEFAULT_SUBSCRIPTION_ID, FakeVultr};
use crate::support::http::{Generation, HttpServer, post_initialize};
use crate::support::raw::stateless_meta;
use crate::support::session::{CORE_TOOLS, err, ok, overridden};

/// Long enough for anything that is going to happen on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A server pointed at `fake`, with `extra` settings.
async fn server_for(fake: &FakeVultr, extra: &[(&str, &str)]) -> HttpServer {
    let settings = fake.settings();
    HttpServer::start(&overridden(&settings, extra)).await
}

#[tokio::test]
async fn every_tool_and_resource_answers_over_http_in_both_protocol_generations() {
    let fake = FakeVultr::start().await;
    let server = server_for(&fake, &[]).await;
    for generation in Generation::BOTH {
        let session = server.connect(generation, None).await;
        let info = session.client.peer_info().expect("server info");
        assert_eq!(
            info.protocol_version,
            generation.version(),
            "{generation:?}"
        );

        let tools = session.client.list_all_tools().await.expect("tools/list");
        let names: Vec<_> = tools.iter().map(|tool| tool.name.to_string()).collect();
        assert_eq!(names, CORE_TOOLS, "{generation:?}");

        ok(&session.call("list_models", json!({})).await);
        ok(&session.call("list_subscriptions", json!({})).await);
        ok(&session
            .call(
                "get_subscription",
                json!({"subscription": DEFAULT_SUBSCRIPTION_ID}),
            )
            .await);

        let first = session.chat_hi().await;
        ok(&first);
        let id = first.structured_content.as_ref().expect("structured")["conversation_id"]
            .as_str()
            .expect("a conversation id")
            .to_owned();
        let again = session
            .call(
                "chat_completion",
                json!({"model": "kimi-k2-instruct", "prompt": "and again", "conversation_id": id}),
            )
            .await;
        ok(&again);

        let listed = session
            .client
            .list_all_resources()
            .await
            .expect("resources/list");
        assert!(
            listed.iter().any(|resource| resource.uri.contains(&id)),
            "{generation:?}: {listed:?}"
        );
        let transcript = session
            .client
            .read_resource(ReadResourceRequestParams::new(format!(
                "vultr://conversations/{id}"
            )))
            .await
            .expect("resources/read");
        assert!(
            format!("{transcript:?}").contains("and again"),
            "{transcript:?}"
        );

        ok(&session
            .call("delete_conversation", json!({"conversation_id": id}))
            .await);
        let gone = session
            .call(
                "chat_completion",
                json!({"model": "kimi-k2-instruct", "prompt": "more", "conversation_id": id}),
            )
            .await;
        assert!(err(&gone).contains(&id), "{gone:?}");
        session.client.cancel().await.ok();
    }
    let (status, _) = server.terminate().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn foreign_hosts_and_origins_get_403_big_bodies_413_other_paths_404_and_healthz_200() {
    let fake = FakeVultr::start().await;
    let server = server_for(&fake, &[]).await;
    let own_origin = format!("http://{}", server.authority());

    let fine = post_initialize(server.url(), &[("origin", &own_origin)]).await;
    assert_eq!(fine.status(), 200, "the server's own origin");
    let no_origin = post_initialize(server.url(), &[]).await;
    assert_eq!(no_origin.status(), 200, "no Origin (not a browser)");

    let rebound = post_initialize(server.url(), &[("host", "attacker.example")]).await;
    assert_eq!(rebound.status(), 403, "a DNS name rebound to loopback");
    let page = post_initialize(server.url(), &[("origin", "https://attacker.example")]).await;
    assert_eq!(page.status(), 403, "a page on another site");
    assert!(page.text().await.unwrap().contains("Origin"));

    let huge = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(vec![b' '; 5 * 1024 * 1024])
        .send()
        .await
        .expect("an answer");
    assert_eq!(huge.status(), 413);

    for path in ["/", "/mcp/extra", "/admin"] {
        let response = reqwest::get(server.at(path)).await.expect("an answer");
        assert_eq!(response.status(), 404, "{path}");
    }
    let health = reqwest::get(server.at("/healthz"))
        .await
        .expect("an answer");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap().trim(), "ok");
    let metadata = reqwest::get(server.at("/.well-known/oauth-protected-resource"))
        .await
        .expect("an answer");
    assert_eq!(metadata.status(), 404, "no metadata without OAuth");

    let (status, _) = server.terminate().await;
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_public_address_without_authentication_is_refused_at_start_unless_allowed() {
    let fake = FakeVultr::start().await;
    let settings = fake.settings();
    let public = overridden(&settings, &[("VULTR_MCP_HTTP", "0.0.0.0:0")]);
    let (status, stderr) = match HttpServer::try_start(&public).await {
        Ok(_) => panic!("an unprotected public address was served"),
        Err(refused) => refused,
    };
    assert!(!status.success());
    assert!(
        stderr.contains("VULTR_MCP_AUTH_TOKENS")
            && stderr.contains("VULTR_MCP_OAUTH_ISSUER")
            && stderr.contains("VULTR_MCP_ALLOW_UNAUTHENTICATED"),
        "the refusal says what to set: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let allowed = overridden(
        &settings,
        &[
            ("VULTR_MCP_HTTP", "0.0.0.0:0"),
            ("VULTR_MCP_ALLOW_UNAUTHENTICATED", "true"),
        ],
    );
    let server = HttpServer::start(&allowed).await;
    let health = reqwest::get(server.at("/healthz").replace("0.0.0.0", "127.0.0.1"))
        .await
        .expect("an answer");
    assert_eq!(health.status(), 200);
    server.terminate().await;
}

/// Starts a chat call on `session` that the fault server will hold; returns its handle.
async fn start_call(
    session: &crate::support::session::Session,
    prompt: &str,
) -> rmcp::service::RequestHandle<rmcp::RoleClient> {
    let arguments = json!({"model": "kimi-k2-instruct", "prompt": prompt});
    session
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("chat_completion")
                    .with_arguments(arguments.as_object().unwrap().clone()),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("the request is sent")
}

#[tokio::test]
async fn cancelling_a_call_over_http_closes_its_upstream_request_in_both_generations() {
    let faults = FaultServer::start(vec![Fault::Stall, Fault::Stall]).await;
    let settings = faults.settings();
    let server = HttpServer::start(&overridden(&settings, &[])).await;
    for (n, generation) in Generation::BOTH.into_iter().enumerate() {
        let session = server.connect(generation, None).await;
        let call = start_call(&session, "wait for me").await;
        assert!(
            faults.wait_chat_requests(n + 1, PROMPTLY).await,
            "{generation:?}: the call reached the fake"
        );
        call.cancel(None).await.expect("cancel sent");
        assert!(
            faults.wait_stalls_closed(n + 1, PROMPTLY).await,
            "{generation:?}: the upstream request went on after the call was cancelled"
        );
        session.client.cancel().await.ok();
    }
    server.terminate().await;
}

#[tokio::test]
async fn sigterm_lets_calls_in_flight_finish_within_the_drain_timeout_and_cancels_the_rest() {
    let faults = FaultServer::start(vec![
        Fault::Delay(Duration::from_millis(1500)),
        Fault::Stall,
    ])
    .await;
    let settings = faults.settings();
    let server =
        HttpServer::start(&overridden(&settings, &[("VULTR_MCP_DRAIN_TIMEOUT", "4s")])).await;
    let session = server.connect(Generation::Stateless, None).await;
    let finishing = start_call(&session, "almost done").await;
    assert!(faults.wait_chat_requests(1, PROMPTLY).await);
    let stuck = start_call(&session, "never done").await;
    assert!(faults.wait_chat_requests(2, PROMPTLY).await);

    let terminated = tokio::spawn(server.terminate());
    let finished = finishing
        .await_response()
        .await
        .expect("the finishing call answers");
    let ServerResult::CallToolResult(finished) = finished else {
        panic!("{finished:?}")
    };
    ok(&finished);
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the call still running after the drain timeout was not cancelled upstream"
    );
    // The stuck call is answered as cancelled, or its stream ends with the server.
    if let Ok(ServerResult::CallToolResult(result)) = stuck.await_response().await {
        assert!(err(&result).contains("cancelled"), "{result:?}");
    }
    let (status, stderr) = terminated.await.expect("terminated");
    assert!(status.success(), "exit status {status}: {stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

#[tokio::test]
async fn a_slow_stream_sends_progress_on_the_requests_own_sse_stream() {
    let pieces: Vec<String> = (1..=12).map(|n| format!("{n} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let faults = FaultServer::start(vec![Fault::Stream {
        chunks: content_chunks("glm-5.2", &pieces, true),
        interval: Duration::from_millis(250),
        then: StreamEnd::Done,
    }])
    .await;
    let settings = faults.settings();
    let server = HttpServer::start(&overridden(&settings, &[])).await;
    let mut meta = stateless_meta("raw", json!({}));
    meta["progressToken"] = json!("p-1");
    let params = json!({
        "name": "chat_completion",
        "arguments": {"model": "glm-5.2", "prompt": "count"},
        "_meta": meta});
    let response = server.post_stateless(7, "tools/call", params).await;
    assert_eq!(response.status(), 200);
    let events = response.text().await.expect("the stream");
    let messages: Vec<Value> = events
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    let (result, before) = messages.split_last().expect("messages");
    assert_eq!(result["id"], 7, "{result}");
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("12")),
        "{result}"
    );
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "notifications/progress"
                && m["params"]["progressToken"] == "p-1"),
        "no progress before the result: {messages:?}"
    );
    server.terminate().await;
}

#[tokio::test]
async fn over_the_rate_limit_a_call_is_an_error_saying_how_long_to_wait() {
    let fake = FakeVultr::start().await;
    let server = server_for(&fake, &[("VULTR_MCP_RATE_LIMIT", "2/min")]).await;
    let session = server.connect(Generation::Stateless, None).await;
    ok(&session.call("list_models", json!({})).await);
    ok(&session.call("list_models", json!({})).await);
    let refused = session.call("list_models", json!({})).await;
    let message = err(&refused);
    assert!(
        message.contains("2 tool calls per minute") && message.contains("Try again in"),
        "{message}"
    );
    let models_requests = fake.count("GET", "/v1/models").await;
    assert_eq!(models_requests, 1, "the refused call reached Vultr");
    server.terminate().await;
}

#[tokio::test]
async fn each_request_is_logged_at_info_with_principal_method_tool_and_status() {
    let fake = FakeVultr::start().await;
    let server = server_for(&fake, &[("RUST_LOG", "info")]).await;
    let session = server.connect(Generation::Stateless, None).await;
    ok(&session.call("list_models", json!({})).await);
    session.client.cancel().await.ok();
    let (_, stderr) = server.terminate().await;
    let line = stderr
        .lines()
        .find(|line| line.contains("tools/call"))
        .unwrap_or_else(|| panic!("no log line for the call: {stderr}"));
    for part in [
        "principal=\"local\"",
        "tool=\"list_models\"",
        "status=200",
        "ms=",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[tokio::test]
async fn closing_the_response_stream_of_a_call_cancels_it_and_its_upstream_request() {
    let faults = FaultServer::start(vec![Fault::Stall]).await;
    let settings = faults.settings();
    let server = HttpServer::start(&overridden(&settings, &[])).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}
    });
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "chat_completion",
        "arguments": {"model": "kimi-k2-instruct", "prompt": "take your time"},
        "_meta": meta}});
    let client = reqwest::Client::new();
    let pending = client
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "chat_completion")
        .body(body.to_string())
        .send();
    let call = tokio::spawn(pending);
    assert!(
        faults.wait_chat_requests(1, PROMPTLY).await,
        "the call reached the fake"
    );
    call.abort();
    drop(client);
    assert!(
        faults.wait_stalls_closed(1, PROMPTLY).await,
        "the upstream request went on after the client closed the call's stream"
    );
    let (status, _) = server.terminate().await;
    assert!(status.success());
}
