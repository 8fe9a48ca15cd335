//! Self-test of the raw fault-injecting fake (`tests/support/fake_vultr/faults.rs`),
//! driven with `reqwest`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fake_vultr::faults::{
    Fault, FaultServer, INFERENCE_KEY, Rule, Standing, refused_base_url,
};
use support::fake_vultr::{DEFAULT_SUBSCRIPTION_KEY, FakeVultr, MODELS_PATH};

/// A plain client, as the crate builds it (connection reuse on).
fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("build client")
}

/// A minimal chat request body.
fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// Sends a chat request with a bearer key.
async fn post_chat(
    client: &reqwest::Client,
    server: &FaultServer,
    model: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/chat/completions", server.base_url()))
        .bearer_auth(INFERENCE_KEY)
        .json(&chat_body(model))
        .send()
        .await
}

#[tokio::test]
async fn normal_answer_and_recording() {
    let server = FaultServer::start(vec![]).await;
    let resp = post_chat(&client(), &server, "glm-5.2")
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"id":"chatcmpl-raw","object":"chat.completion","created":1,"model":"glm-5.2",
            "choices":[{"index":0,"message":{"role":"assistant","content":"ok from raw fake"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}})
    );
    assert_eq!(server.chat_requests(), 1);
    assert_eq!(server.chat_bodies(), vec![chat_body("glm-5.2")]);
    assert_eq!(
        server.chat_authorizations(),
        vec![Some(format!("Bearer {INFERENCE_KEY}"))]
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = FaultServer::start(vec![Fault::Normal, Fault::Normal]).await;
    let client = client();
    for model in ["a", "b", "c"] {
        let resp = post_chat(&client, &server, model).await.expect("send");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["model"], model);
    }
    // Also a GET on the same client in between chat requests.
    let models = client
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .expect("models");
    assert_eq!(models.status(), 200);
    let resp = post_chat(&client, &server, "d").await.expect("send");
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");
    assert_eq!(server.chat_requests(), 4);
    let models: Vec<Value> = server
        .chat_bodies()
        .into_iter()
        .map(|b| b["model"].clone())
        .collect();
    assert_eq!(models, vec![json!("a"), json!("b"), json!("c"), json!("d")]);
    assert_eq!(server.connections(), 1, "one kept-alive connection");
}

#[tokio::test]
async fn models_route_serves_the_catalog() {
    let server = FaultServer::start(vec![Fault::Reset]).await;
    let resp = client()
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let expected: Value =
        serde_json::from_str(include_str!("fixtures/catalog-2.4.json")).expect("fixture");
    assert_eq!(body, expected);
    // The models route does not consume the script.
    assert_eq!(server.chat_requests(), 0);
}

#[tokio::test]
async fn unknown_path_is_404() {
    let server = FaultServer::start(vec![]).await;
    let client = client();
    for (method, path) in [
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::GET, "/chat/completions"),
        (reqwest::Method::POST, "/embeddings"),
    ] {
        let resp = client
            .request(method, format!("{}{path}", server.base_url()))
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body, json!({"error":"Not found","status":404}));
    }
    assert_eq!(server.chat_requests(), 0);
}

#[tokio::test]
async fn status_fault_keeps_headers_and_body() {
    let server = FaultServer::start(vec![
        Fault::Status {
            status: 429,
            headers: vec![("Retry-After".to_owned(), "7".to_owned())],
            body: r#"{"error":"Too many requests","status":429}"#.to_owned(),
        },
        Fault::Status {
            status: 200,
            headers: vec![],
            body: "{not json".to_owned(),
        },
    ])
    .await;
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_eq!(
        resp.text().await.expect("text"),
        r#"{"error":"Too many requests","status":429}"#
    );
    // Malformed JSON on a 200, same connection.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.is_err());
    // Script empty: normal again.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.chat_requests(), 3);
}

#[tokio::test]
async fn delay_fault_answers_late() {
    let server = FaultServer::start(vec![Fault::Delay(Duration::from_millis(300))]).await;
    let started = Instant::now();
    let resp = post_chat(&client(), &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.expect("json");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn reset_fault_errors_the_request() {
    let server = FaultServer::start(vec![Fault::Reset]).await;
    let client = client();
    let err = post_chat(&client, &server, "m")
        .await
        .expect_err("reset must fail the request");
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(server.chat_requests(), 1);
    // The server still accepts new connections.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn faults_on_a_reused_connection_are_not_retried_by_reqwest() {
    let server = FaultServer::start(vec![Fault::Normal, Fault::Reset]).await;
    server.push(Fault::Truncated);
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    resp.bytes().await.expect("body");
    post_chat(&client, &server, "m")
        .await
        .expect_err("reset on a reused connection fails");
    assert_eq!(server.chat_requests(), 2, "no hidden retry");
    let resp = post_chat(&client, &server, "m").await.expect("head");
    resp.bytes().await.expect_err("truncated");
    assert_eq!(server.chat_requests(), 3);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn close_fault_closes_a_kept_alive_connection_without_an_answer() {
    let server = FaultServer::start(vec![Fault::Normal, Fault::Close]).await;
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    resp.bytes().await.expect("body");
    let err = post_chat(&client, &server, "m")
        .await
        .expect_err("a close without an answer fails the request");
    assert!(err.is_request() && !err.is_timeout(), "{err:?}");
    assert_eq!(
        server.chat_connections(),
        vec![1, 1],
        "both on one connection"
    );
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.chat_connections(), vec![1, 1, 2]);
}

#[tokio::test]
async fn without_keep_alive_every_request_comes_on_a_new_connection() {
    let server = FaultServer::start_without_keep_alive(vec![]).await;
    let client = client();
    for _ in 0..2 {
        let resp = post_chat(&client, &server, "m").await.expect("send");
        assert_eq!(
            resp.headers().get("connection").map(|v| v.as_bytes()),
            Some(&b"close"[..])
        );
        resp.bytes().await.expect("body");
    }
    assert_eq!(server.chat_connections(), vec![1, 2]);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn truncated_fault_errors_while_reading_the_body() {
    let server = FaultServer::start(vec![Fault::Truncated]).await;
    let resp = post_chat(&client(), &server, "m")
        .await
        .expect("the head arrives");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(1000));
    let err = resp.bytes().await.expect_err("body is truncated");
    assert!(err.is_body() || err.is_decode(), "{err:?}");
}

#[tokio::test]
async fn stall_fault_times_out_and_records_the_client_close() {
    let server = FaultServer::start(vec![Fault::Stall]).await;
    let err = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .timeout(Duration::from_millis(200))
        .json(&chat_body("m"))
        .send()
        .await
        .expect_err("stall must time out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(server.wait_chat_requests(1, Duration::from_secs(1)).await);
    assert!(server.wait_stalls_closed(1, Duration::from_secs(2)).await);
    assert_eq!(server.stalls_closed_by_client(), 1);
}

#[tokio::test]
async fn oversized_fault_sends_the_whole_body() {
    const SIZE: usize = 3 * 1024 * 1024;
    let server = FaultServer::start(vec![Fault::Oversized(SIZE)]).await;
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(SIZE as u64));
    let bytes = resp.bytes().await.expect("body");
    assert_eq!(bytes.len(), SIZE);
    assert!(bytes.starts_with(b"{\"choices\":["));
    // Keep-alive still works after it.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn oversized_fault_survives_a_client_hanging_up() {
    let server = FaultServer::start(vec![Fault::Oversized(32 * 1024 * 1024)]).await;
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    drop(resp); // hang up mid-body
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.chat_requests(), 2);
}

#[tokio::test]
async fn push_appends_to_the_script() {
    let server = FaultServer::start(vec![]).await;
    server.push(Fault::Status {
        status: 500,
        headers: vec![],
        body: r#"{"error":"boom","status":500}"#.to_owned(),
    });
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 500);
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn refused_url_refuses_connections() {
    let url = refused_base_url();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"));
    let err = client()
        .get(format!("{url}/models"))
        .send()
        .await
        .expect_err("nothing listens");
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = FaultServer::start(vec![Fault::Stall]).await;
    let url = server.base_url();
    let client = client();
    let stalled = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/chat/completions"))
                .json(&chat_body("m"))
                .send()
                .await
        }
    });
    assert!(server.wait_chat_requests(1, Duration::from_secs(2)).await);
    drop(server);
    // The stalled connection is closed by the server: the request fails quickly.
    let result = tokio::time::timeout(Duration::from_secs(2), stalled)
        .await
        .expect("stalled request ends once the server is dropped")
        .expect("join");
    assert!(result.is_err());
    // And new connections are refused.
    let err = client
        .get(format!("{url}/models"))
        .send()
        .await
        .expect_err("server is gone");
    assert!(err.is_connect(), "{err:?}");
}

// ---------------------------------------------------------------------------
// Fault::Stream (server-sent events) and content_chunks
// ---------------------------------------------------------------------------

use support::fake_vultr::faults::{StreamEnd, content_chunks, empty_chunks};

/// The SSE body `chunks` make, each as `data: <chunk>\n\n`.
fn events(chunks: &[String]) -> String {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

/// Reads a response body chunk by chunk until it ends or fails; returns what arrived and
/// the error, if any.
async fn read_chunks(mut resp: reqwest::Response) -> (String, Option<reqwest::Error>) {
    let mut body = String::new();
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => body.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(None) => return (body, None),
            Err(e) => return (body, Some(e)),
        }
    }
}

#[test]
fn content_chunks_are_openai_deltas_with_a_finish_chunk_carrying_usage() {
    let chunks = content_chunks("glm-5.2", &["Hel", "lo"], true);
    let parsed: Vec<Value> = chunks
        .iter()
        .map(|c| serde_json::from_str(c).expect("each chunk is JSON"))
        .collect();
    assert_eq!(
        parsed,
        vec![
            json!({"id":"x","model":"glm-5.2","choices":[{"index":0,"delta":{"content":"Hel"}}]}),
            json!({"id":"x","model":"glm-5.2","choices":[{"index":0,"delta":{"content":"lo"}}]}),
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
                   "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}),
        ]
    );
    assert_eq!(content_chunks("m", &["a", "b", "c"], false).len(), 3);
    assert!(content_chunks("m", &[], false).is_empty());
}

#[test]
fn empty_chunks_are_deltas_without_content() {
    let chunks = empty_chunks("glm-5.2", 2);
    let empty = json!({"id":"x","model":"glm-5.2","choices":[{"index":0,"delta":{"content":""}}]});
    let parsed: Vec<Value> = chunks
        .iter()
        .map(|c| serde_json::from_str(c).expect("each chunk is JSON"))
        .collect();
    assert_eq!(parsed, vec![empty.clone(), empty]);
}

#[tokio::test]
async fn stream_fault_sends_each_event_in_time_then_done_and_keeps_the_connection() {
    let chunks = content_chunks("m", &["Hel", "lo"], true);
    let server = FaultServer::start(vec![Fault::Stream {
        chunks: chunks.clone(),
        interval: Duration::from_millis(150),
        then: StreamEnd::Done,
    }])
    .await;
    let client = client();
    let started = Instant::now();
    let mut resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    assert_eq!(resp.content_length(), None, "chunked, no Content-Length");
    let first = resp
        .chunk()
        .await
        .expect("first chunk")
        .expect("not the end");
    assert_eq!(String::from_utf8_lossy(&first), events(&chunks[..1]));
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "the first event comes at once"
    );
    let (rest, error) = read_chunks(resp).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rest, format!("{}data: [DONE]\n\n", events(&chunks[1..])));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "two pauses"
    );
    // The body ended properly: the same connection serves the next request.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");
    assert_eq!(server.connections(), 1);
    assert_eq!(server.chat_requests(), 2);
    assert_eq!(server.streams_abandoned_by_client(), 0);
}

#[tokio::test]
async fn stream_fault_stall_keeps_the_connection_open_until_the_client_closes_it() {
    let chunks = content_chunks("m", &["partial"], false);
    let server = FaultServer::start(vec![Fault::Stream {
        chunks: chunks.clone(),
        interval: Duration::ZERO,
        then: StreamEnd::Stall,
    }])
    .await;
    let mut resp = post_chat(&client(), &server, "m").await.expect("send");
    let first = resp
        .chunk()
        .await
        .expect("first chunk")
        .expect("not the end");
    assert_eq!(String::from_utf8_lossy(&first), events(&chunks));
    let next = tokio::time::timeout(Duration::from_millis(300), resp.chunk()).await;
    assert!(next.is_err(), "nothing more arrives: {next:?}");
    assert_eq!(server.stalls_closed_by_client(), 0);
    drop(resp);
    assert!(server.wait_stalls_closed(1, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn stream_fault_cut_truncates_the_body_at_the_http_level() {
    let chunks = content_chunks("m", &["Hel", "lo"], false);
    let server = FaultServer::start(vec![Fault::Stream {
        chunks: chunks.clone(),
        interval: Duration::from_millis(10),
        then: StreamEnd::Cut,
    }])
    .await;
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    let (body, error) = tokio::time::timeout(Duration::from_secs(2), read_chunks(resp))
        .await
        .expect("a cut stream ends at once");
    assert_eq!(body, events(&chunks), "the events before the cut arrive");
    let error = error.expect("the truncated body is an error");
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    // The server still serves, on a new connection.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn stream_fault_eof_ends_the_body_cleanly_without_done() {
    let chunks = content_chunks("m", &["Hel"], false);
    let server = FaultServer::start(vec![Fault::Stream {
        chunks: chunks.clone(),
        interval: Duration::ZERO,
        then: StreamEnd::Eof,
    }])
    .await;
    let client = client();
    let resp = post_chat(&client, &server, "m").await.expect("send");
    let (body, error) = read_chunks(resp).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(body, events(&chunks));
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn stream_fault_garbage_sends_an_event_that_is_not_json() {
    let chunks = content_chunks("m", &["Hel"], false);
    let server = FaultServer::start(vec![Fault::Stream {
        chunks: chunks.clone(),
        interval: Duration::ZERO,
        then: StreamEnd::Garbage,
    }])
    .await;
    let resp = post_chat(&client(), &server, "m").await.expect("send");
    let (body, error) = read_chunks(resp).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(body, format!("{}data: {{not json\n\n", events(&chunks)));
}

#[tokio::test]
async fn stream_fault_records_a_client_hanging_up_mid_stream() {
    let chunks = content_chunks("m", &["a"; 40], true);
    let server = FaultServer::start(vec![Fault::Stream {
        chunks,
        interval: Duration::from_millis(20),
        then: StreamEnd::Done,
    }])
    .await;
    let client = client();
    let mut resp = post_chat(&client, &server, "m").await.expect("send");
    resp.chunk()
        .await
        .expect("first chunk")
        .expect("not the end");
    drop(resp);
    assert!(
        server
            .wait_streams_abandoned(1, Duration::from_secs(2))
            .await
    );
    // A fresh request is served normally.
    let resp = post_chat(&client, &server, "m").await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(server.chat_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn standing_answers_apply_when_the_script_is_empty_and_count_what_is_in_flight() {
    let server = FaultServer::start(vec![]).await;
    server.set_standing(Standing {
        delay: Duration::from_secs(1),
        stream: Some((3, Duration::from_millis(10))),
    });
    let client = client();

    // A plain request waits for the delay, counted in flight meanwhile.
    let pending = tokio::spawn({
        let client = client.clone();
        let url = format!("{}/chat/completions", server.base_url());
        async move {
            client
                .post(url)
                .bearer_auth(INFERENCE_KEY)
                .json(&chat_body("plain-chat-7b"))
                .send()
                .await
        }
    });
    assert!(server.wait_chat_requests(1, Duration::from_secs(5)).await);
    assert_eq!(server.in_flight(), 1);
    let answer = pending.await.expect("no panic").expect("an answer");
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "ok from raw fake");
    for _ in 0..100 {
        if server.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.in_flight(), 0);

    // A request asking to stream gets the standing stream, its events timed.
    let mut streamed = chat_body("glm-5.2");
    streamed["stream"] = json!(true);
    let text = client
        .post(format!("{}/chat/completions", server.base_url()))
        .bearer_auth(INFERENCE_KEY)
        .json(&streamed)
        .send()
        .await
        .expect("an answer")
        .text()
        .await
        .expect("the whole stream");
    for piece in [
        "\"word0 \"",
        "\"word1 \"",
        "\"word2 \"",
        "\"finish_reason\":\"stop\"",
        "data: [DONE]",
    ] {
        assert!(text.contains(piece), "{piece} in {text}");
    }
    let events = server.last_stream_events();
    assert_eq!(events.len(), 4, "three words and the finish chunk");

    // A scripted fault still comes first.
    server.push(Fault::Status {
        status: 503,
        headers: vec![],
        body: "busy".to_owned(),
    });
    let answer = post_chat(&client, &server, "plain-chat-7b")
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 503);
}

#[tokio::test]
async fn in_front_of_the_wiremock_fake_rules_answer_and_everything_else_is_relayed() {
    let wiremock = FakeVultr::start().await;
    let marked = Rule::new(|body: &Value| {
        body.to_string().contains("MARKED").then(|| Fault::Status {
            status: 418,
            headers: Vec::new(),
            body: json!({"picked": true}).to_string(),
        })
    });
    let server = FaultServer::in_front_of(&wiremock.mock_server().uri(), vec![marked]).await;
    let client = client();
    let chat = |content: &str| {
        client
            .post(format!("{}/chat/completions", server.base_url()))
            .bearer_auth(DEFAULT_SUBSCRIPTION_KEY)
            .json(&json!({"model": "glm-5.2", "messages": [{"role": "user", "content": content}]}))
            .send()
    };

    let picked = chat("MARKED").await.expect("send marked");
    assert_eq!(picked.status(), 418);
    assert_eq!(
        picked.json::<Value>().await.expect("json"),
        json!({"picked": true})
    );

    let relayed = chat("hello").await.expect("send plain");
    assert_eq!(relayed.status(), 200);
    let reply: Value = relayed.json().await.expect("json");
    assert_eq!(reply["choices"][0]["message"]["content"], "echo: hello");

    let models = client
        .get(format!("{}/models", server.base_url()))
        .send()
        .await
        .expect("send models");
    assert_eq!(models.status(), 200);
    let refused = client
        .post(format!("{}/chat/completions", server.base_url()))
        .bearer_auth("not-a-key")
        .json(&chat_body("glm-5.2"))
        .send()
        .await
        .expect("send with a wrong key");
    assert_eq!(
        refused.status(),
        401,
        "the relay keeps the Authorization header"
    );

    // The fault server saw every chat request; the wiremock fake only the relayed ones.
    assert_eq!(server.chat_requests(), 3);
    assert_eq!(wiremock.chat_requests().await.len(), 2);
    assert_eq!(wiremock.count("GET", MODELS_PATH).await, 1);
}
