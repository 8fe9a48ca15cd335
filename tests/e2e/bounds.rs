//! A shared bridge one client cannot take down, on the real binary over real sockets:
//! slow or idle connections are closed on deadlines and shed under a connection cap (so
//! `/healthz` and calls go on at a 1,024 open-files limit), sessions are capped in total
//! and per principal and dropped when never initialised, and request bodies held in
//! memory share one budget.

use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::fake_vultr::FakeVultr;
use crate::support::fake_vultr::faults::{FaultServer, Standing};
use crate::support::http::{Generation, HttpServer};
use crate::support::mcp::{Home, server_command};
use crate::support::session::{ok, overridden};

const ALICE_TOKEN: &str = "alice-bounds-token-4f1c9e2b7a";
const BOB_TOKEN: &str = "bob-bounds-token-8d2e5a1c3f";
const CAROL_TOKEN: &str = "carol-bounds-token-2b7f4e9d1a";

/// The start of a request whose headers never end.
fn partial_headers(authority: &str) -> String {
    format!("POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n")
}

/// Reads until the peer closes the connection (or `limit` passes): how long it took, or
/// `None` if it was still open at `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let read_until_closed = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_until_closed)
        .await
        .ok()
        .map(|()| started.elapsed())
}

/// Sends `request` on a new connection and reads the response head (status line and
/// headers), lower-cased.
async fn response_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test]
async fn two_thousand_slow_connections_at_a_1024_file_limit_leave_healthz_and_calls_working() {
    let fake = FakeVultr::start().await;
    let home = Home::new();
    let mut command = server_command(&home);
    for (name, value) in fake.settings() {
        command.env(name, value);
    }
    command
        .env("VULTR_MCP_CONVERSATIONS", "memory")
        .env("VULTR_MCP_HTTP", "127.0.0.1:0");
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        command.as_std_mut().pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = HttpServer::spawn(command, home)
        .await
        .unwrap_or_else(|(status, stderr)| panic!("no server ({status}): {stderr}"));

    let mut slow = Vec::new();
    for _ in 0..2000 {
        let Ok(mut stream) = TcpStream::connect(server.authority()).await else {
            continue;
        };
        let _ = stream
            .write_all(partial_headers(server.authority()).as_bytes())
            .await;
        slow.push(stream);
    }
    assert!(
        slow.len() > 1024,
        "only {} connections were made",
        slow.len()
    );

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health = client
        .get(server.at("/healthz"))
        .send()
        .await
        .expect("/healthz answers under 2,000 slow connections");
    assert_eq!(health.status(), 200);
    let session = tokio::time::timeout(
        Duration::from_secs(20),
        server.connect(Generation::Stateless, None),
    )
    .await
    .expect("a client connects under 2,000 slow connections");
    let models = tokio::time::timeout(
        Duration::from_secs(20),
        session.call("list_models", json!({})),
    )
    .await
    .expect("a tool call is answered under 2,000 slow connections");
    ok(&models);
    let stderr = server.stderr();
    assert!(
        stderr.contains("closed the oldest idle connection")
            && stderr.contains("VULTR_MCP_MAX_CONNECTIONS"),
        "a WARN line says why connections were closed:\n{stderr}"
    );
    drop(slow);
}

#[tokio::test]
async fn unfinished_headers_are_cut_at_the_header_timeout_and_idle_connections_at_the_idle_timeout()
{
    let server = HttpServer::start(&[
        ("VULTR_MCP_HEADER_TIMEOUT", "1s"),
        ("VULTR_MCP_IDLE_TIMEOUT", "3s"),
    ])
    .await;

    let mut slow = TcpStream::connect(server.authority()).await.unwrap();
    slow.write_all(partial_headers(server.authority()).as_bytes())
        .await
        .unwrap();
    let idle = TcpStream::connect(server.authority()).await.unwrap();

    let cut = closed_within(&mut slow, Duration::from_secs(6))
        .await
        .expect("a connection with unfinished headers is closed");
    assert!(
        cut >= Duration::from_millis(500),
        "closed too early: {cut:?}"
    );

    // A connection that sent nothing is idle: the header timeout does not apply to it.
    let mut idle = idle;
    assert_eq!(
        closed_within(&mut idle, Duration::from_millis(500)).await,
        None,
        "an idle connection is kept for the idle timeout"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(8))
            .await
            .is_some(),
        "an idle connection is closed after the idle timeout"
    );

    // Keep-alive after a request: idle again, closed after the idle timeout.
    let mut kept = TcpStream::connect(server.authority()).await.unwrap();
    kept.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.authority()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(response_head(&mut kept).await.starts_with("http/1.1 200"));
    assert!(
        closed_within(&mut kept, Duration::from_secs(8))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_call_longer_than_both_timeouts_is_answered() {
    let faults = FaultServer::start(Vec::new()).await;
    faults.set_standing(Standing {
        delay: Duration::from_secs(3),
        stream: None,
    });
    let settings = faults.settings();
    let server = HttpServer::start(&overridden(
        &settings,
        &[
            ("VULTR_MCP_HEADER_TIMEOUT", "1s"),
            ("VULTR_MCP_IDLE_TIMEOUT", "1s"),
        ],
    ))
    .await;
    for generation in Generation::BOTH {
        let session = server.connect(generation, None).await;
        let result = session
            .call(
                "chat_completion",
                json!({"model": "plain-chat-7b", "prompt": "hi"}),
            )
            .await;
        ok(&result);
    }
}

/// A tokens file for alice and bob (removed when dropped).
fn tokens_file() -> tempfile::TempPath {
    let line = |name: &str, token: &str| {
        let hash: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{name} {hash}\n")
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        line("alice", ALICE_TOKEN) + &line("bob", BOB_TOKEN) + &line("carol", CAROL_TOKEN),
    )
    .unwrap();
    file.into_temp_path()
}

/// A raw MCP POST of `body` to `server`: as `token`'s (if any), in `session` (if any; then
/// with the 2025-11-25 protocol header), accepting JSON and event streams.
fn raw_post(
    server: &HttpServer,
    token: Option<&str>,
    session: Option<&str>,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request
}

/// The `initialize` request of a 2025-era client.
fn initialize_request() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

/// A raw `initialize` of a 2025-era client holding `token`.
async fn initialize(server: &HttpServer, token: &str) -> reqwest::Response {
    raw_post(server, Some(token), None, &initialize_request())
        .send()
        .await
        .expect("an answer")
}

fn session_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("mcp-session-id")
        .unwrap_or_else(|| panic!("a session id in {response:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sessions_are_capped_per_principal_and_in_total_and_uninitialised_ones_are_dropped() {
    let tokens = tokens_file();
    let server = HttpServer::start(&[
        ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
        ("VULTR_MCP_MAX_SESSIONS", "3"),
        ("VULTR_MCP_MAX_SESSIONS_PER_PRINCIPAL", "2"),
        ("VULTR_MCP_SESSION_INIT_TIMEOUT", "2s"),
    ])
    .await;

    let first = initialize(&server, ALICE_TOKEN).await;
    assert_eq!(first.status(), 200);
    let first = session_id(&first);
    assert_eq!(initialize(&server, ALICE_TOKEN).await.status(), 200);
    let over_share = initialize(&server, ALICE_TOKEN).await;
    assert_eq!(over_share.status(), 429);
    assert!(over_share.headers().contains_key("retry-after"));
    let text = over_share.text().await.unwrap();
    assert!(
        text.contains("VULTR_MCP_MAX_SESSIONS_PER_PRINCIPAL"),
        "{text}"
    );

    let bobs = initialize(&server, BOB_TOKEN).await;
    assert_eq!(bobs.status(), 200, "bob has his own share");
    let bobs = session_id(&bobs);
    // Bob keeps his session: he sends notifications/initialized.
    let initialized = raw_post(
        &server,
        Some(BOB_TOKEN),
        Some(&bobs),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    assert!(initialized.status().is_success(), "{initialized:?}");

    let full = initialize(&server, BOB_TOKEN).await;
    assert_eq!(full.status(), 503);
    assert!(full.headers().contains_key("retry-after"));
    let text = full.text().await.unwrap();
    assert!(text.contains("VULTR_MCP_MAX_SESSIONS"), "{text}");

    // Alice never initialised hers: they are closed after the init timeout, and her
    // share is free again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let reused = raw_post(&server, Some(ALICE_TOKEN), Some(&first), &ping)
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 404, "an uninitialised session is gone");
    assert_eq!(initialize(&server, ALICE_TOKEN).await.status(), 200);

    // Bob's initialised session lives on, and closing it answers 204.
    let closed = reqwest::Client::new()
        .delete(server.url())
        .header("authorization", format!("Bearer {BOB_TOKEN}"))
        .header("mcp-session-id", &bobs)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 204);
}

/// Opens a connection that starts a POST of `length` bytes for `token` and sends only the
/// start of its body, holding it.
async fn hold_body(server: &HttpServer, token: &str, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(server.authority()).await.unwrap();
    stream
        .write_all((body_head(server, token, length) + "{\"jsonrpc\"").as_bytes())
        .await
        .unwrap();
    stream
}

fn body_head(server: &HttpServer, token: &str, length: usize) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {length}\r\n\r\n",
        server.authority()
    )
}

/// The response head to a POST of `length` bytes for `token` whose body is not sent.
async fn answer_to_body(server: &HttpServer, token: &str, length: usize) -> String {
    let mut stream = TcpStream::connect(server.authority()).await.unwrap();
    stream
        .write_all(body_head(server, token, length).as_bytes())
        .await
        .unwrap();
    response_head(&mut stream).await
}

#[tokio::test]
async fn request_bodies_held_in_memory_share_one_budget_and_no_principal_holds_it_all() {
    let tokens = tokens_file();
    // 8 MiB in all; a principal's share is a quarter, but at least the largest body (4 MiB).
    let server = HttpServer::start(&[
        ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
        ("VULTR_MCP_MAX_BODY_MEMORY", "8388608"),
    ])
    .await;
    let alices = hold_body(&server, ALICE_TOKEN, 4_000_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let over_share = answer_to_body(&server, ALICE_TOKEN, 1_000_000).await;
    assert!(over_share.starts_with("http/1.1 429"), "{over_share}");
    assert!(over_share.contains("retry-after:"), "{over_share}");

    let _bobs = hold_body(&server, BOB_TOKEN, 4_000_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let full = answer_to_body(&server, CAROL_TOKEN, 1_000_000).await;
    assert!(full.starts_with("http/1.1 503"), "{full}");
    assert!(full.contains("retry-after:"), "{full}");

    // Once alice's held body is gone, carol's fits.
    drop(alices);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    body.push_str(&" ".repeat(1_000_000 - body.len()));
    let fits = reqwest::Client::new()
        .post(server.url())
        .header("authorization", format!("Bearer {CAROL_TOKEN}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(![429, 503].contains(&fits.status().as_u16()), "{fits:?}");
}

#[tokio::test]
async fn a_body_budget_under_the_largest_body_is_refused_at_start() {
    let home = Home::new();
    let output = server_command(&home)
        .env("VULTR_MCP_MAX_BODY_MEMORY", "1000000")
        .env("VULTR_MCP_HTTP", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("4194304"), "{stderr}");
}

/// A request of a 2025-era client in `session`: its JSON-RPC answer (from JSON or SSE).
async fn in_session(
    server: &HttpServer,
    session: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = raw_post(server, None, Some(session), &body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let text = response.text().await.unwrap();
    std::iter::once(text.as_str())
        .chain(text.lines().filter_map(|line| line.strip_prefix("data:")))
        .find_map(|data| serde_json::from_str(data.trim()).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn an_idle_session_is_parked_and_its_next_request_restores_it() {
    let fake = FakeVultr::start().await;
    let settings = fake.settings();
    let server = HttpServer::start(&overridden(
        &settings,
        &[("RUST_LOG", "vultr_inference_mcp=debug")],
    ))
    .await;
    let opened = raw_post(&server, None, None, &initialize_request())
        .send()
        .await
        .unwrap();
    let session = session_id(&opened);
    in_session(
        &server,
        &session,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let call = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "list_models", "arguments": {"query": "glm"}}})
    };
    let first = in_session(&server, &session, call(2)).await;
    assert!(first["result"]["structuredContent"].is_object(), "{first}");

    // Idle past the parking time (10 s) and a sweep: its worker is closed.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        server.stderr().contains("parked an idle session"),
        "{}",
        server.stderr()
    );
    let after = in_session(&server, &session, call(3)).await;
    assert_eq!(
        after["result"], first["result"],
        "the restored session answers alike"
    );
}

#[tokio::test]
async fn a_parked_session_stays_counted_whatever_its_next_request_is() {
    let tokens = tokens_file();
    let server = HttpServer::start(&[
        ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
        ("VULTR_MCP_MAX_SESSIONS_PER_PRINCIPAL", "1"),
    ])
    .await;
    let opened = initialize(&server, ALICE_TOKEN).await;
    assert_eq!(opened.status(), 200);
    let session = session_id(&opened);
    // Parked after 10 s idle.
    tokio::time::sleep(Duration::from_secs(12)).await;
    // A request rmcp refuses before restoring anything (it accepts no JSON-only client).
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let refused = reqwest::Client::new()
        .post(server.url())
        .header("authorization", format!("Bearer {ALICE_TOKEN}"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(ping.to_string())
        .send()
        .await
        .unwrap();
    assert!(!refused.status().is_success(), "{refused:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        initialize(&server, ALICE_TOKEN).await.status(),
        429,
        "the parked session still counts against alice's share"
    );
}
