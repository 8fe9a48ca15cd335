//! The stress figures of issue 15 on the release binary over HTTP: memory per idle
//! session and after sessions are reaped (three rounds), memory while 200 clients hold
//! 4 MiB bodies, idle CPU with 1,000 pending tasks, and `/healthz` under 2,000 slow
//! connections at a 1,024 open-files limit.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::fake_vultr::faults::{FaultServer, INFERENCE_KEY, Standing};
use super::support::http::HttpServer;
use super::support::mcp::Home;
use super::{Report, cpu_time, memory_kib, mib};

/// Sessions opened per round.
const SESSIONS: usize = 10_000;
/// Rounds of sessions opened and reaped.
const ROUNDS: usize = 3;
/// Clients holding a large body, and its size.
const HOLDERS: usize = 200;
const HELD_BODY: usize = 4 * 1024 * 1024;
/// Pending tasks for the idle-CPU figure, and how long CPU is measured.
const PENDING_TASKS: usize = 1_000;
const CPU_WINDOW: Duration = Duration::from_secs(10);
/// Slow connections opened at a 1,024 open-files limit.
const SLOW_CONNECTIONS: usize = 2_000;

/// The release binary serving HTTP against `fake` with `extra` settings, optionally under
/// an open-files limit.
pub async fn start(
    binary: &Path,
    fake: &FaultServer,
    extra: &[(&str, &str)],
    open_files: Option<u64>,
) -> HttpServer {
    let home = Home::new();
    let mut command = tokio::process::Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("VULTR_")) {
            command.env_remove(&name);
        }
    }
    home.apply(&mut command);
    command
        .env("VULTR_INFERENCE_API_KEY", INFERENCE_KEY)
        .env("VULTR_INFERENCE_BASE_URL", fake.base_url())
        .env("VULTR_MCP_CONVERSATIONS", "memory")
        .env("VULTR_MCP_HTTP", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .env("NO_PROXY", "127.0.0.1,localhost");
    for (name, value) in extra {
        command.env(name, value);
    }
    if let Some(limit) = open_files {
        // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
        unsafe {
            command.as_std_mut().pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    HttpServer::spawn(command, home)
        .await
        .unwrap_or_else(|(status, stderr)| panic!("no server ({status}): {stderr}"))
}

/// POSTs `body` as a client of the session generation; the status and session id.
async fn post_initialize(client: &reqwest::Client, url: &str) -> Option<String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "stress", "version": "1"}}});
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = response.bytes().await;
    id
}

/// Sends `notifications/initialized` in `session`.
async fn post_initialized(client: &reqwest::Client, url: &str, session: &str) {
    let body = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    if let Ok(response) = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string())
        .send()
        .await
    {
        let _ = response.bytes().await;
    }
}

/// Opens [`SESSIONS`] sessions, 50 at a time, initialised (`notifications/initialized`
/// sent) or not; how many opened.
async fn open_sessions(client: &reqwest::Client, url: &str, initialized: bool) -> usize {
    let mut opened = 0;
    for _ in 0..SESSIONS / 50 {
        let answers = join_all((0..50).map(|_| async {
            let session = post_initialize(client, url).await?;
            if initialized {
                post_initialized(client, url, &session).await;
            }
            Some(session)
        }))
        .await;
        opened += answers.iter().filter(|id| id.is_some()).count();
    }
    opened
}

/// RSS per session, live and parked, and after never-initialised sessions are reaped,
/// over [`ROUNDS`] rounds of [`SESSIONS`].
pub async fn sessions(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!(
        "bench: {SESSIONS} idle sessions, then {ROUNDS} rounds of {SESSIONS} never initialised…"
    );
    let server = start(
        binary,
        fake,
        &[
            ("VULTR_MCP_MAX_SESSIONS", "20000"),
            ("VULTR_MCP_MAX_SESSIONS_PER_PRINCIPAL", "20000"),
            // Quicker reaping than the default 30 s, for the bench's sake.
            ("VULTR_MCP_SESSION_INIT_TIMEOUT", "5s"),
        ],
        None,
    )
    .await;
    let pid = server.pid();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let before = memory_kib(pid).0;
    report.info("HTTP server RSS before any session", mib(before));

    // Initialised sessions holding no stream: live, then parked after 10 s idle.
    let opened = open_sessions(&client, server.url(), true).await;
    let live = memory_kib(pid).0;
    tokio::time::sleep(Duration::from_secs(13)).await;
    let parked = memory_kib(pid).0;
    let per = |rss: u64| rss.saturating_sub(before) as f64 / opened.max(1) as f64;
    report.info(
        format!("RSS per live session ({opened} initialised, just opened)"),
        format!("{:.1} KiB (RSS {})", per(live), mib(live)),
    );
    report.check(
        format!("RSS per idle session ({opened}, parked after 10 s idle)"),
        format!("{:.1} KiB (RSS {})", per(parked), mib(parked)),
        "≤ 32 KiB",
        per(parked) <= 32.0,
    );

    let mut open_rss = Vec::new();
    let mut after_reaping = Vec::new();
    for round in 0..ROUNDS {
        let started = Instant::now();
        let opened = open_sessions(&client, server.url(), false).await;
        open_rss.push(memory_kib(pid).0);
        eprintln!(
            "bench: round {round}: {opened} sessions in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // Never initialised: closed after the init timeout (5 s) and one sweep.
        tokio::time::sleep(Duration::from_secs(8)).await;
        after_reaping.push(memory_kib(pid).0);
    }
    let show = |figures: &[u64]| {
        figures
            .iter()
            .map(|kib| mib(*kib))
            .collect::<Vec<_>>()
            .join(" → ")
    };
    report.info(
        format!("RSS with {SESSIONS} never-initialised sessions open, each round"),
        show(&open_rss),
    );
    let last = *after_reaping.last().unwrap_or(&0);
    report.check(
        format!(
            "RSS after each of {ROUNDS} rounds was reaped (with {opened} parked sessions kept)"
        ),
        show(&after_reaping),
        "≤ 150 MiB",
        last <= 150 * 1024,
    );
    drop(server);
}

/// RSS while [`HOLDERS`] clients each hold a [`HELD_BODY`] body open.
pub async fn bodies(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: {HOLDERS} held bodies of {} MiB…", HELD_BODY >> 20);
    let server = start(binary, fake, &[], None).await;
    let pid = server.pid();
    let before = memory_kib(pid).0;
    let authority = server.authority().to_owned();
    let holders = join_all((0..HOLDERS).map(|_| {
        let authority = authority.clone();
        async move {
            let mut stream = TcpStream::connect(&authority).await.ok()?;
            let head = format!(
                "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {HELD_BODY}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.ok()?;
            // All but the last byte, then hold; a refused one reads its 503.
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < HELD_BODY - 1 {
                let n = chunk.len().min(HELD_BODY - 1 - sent);
                if stream.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                sent += n;
            }
            Some(stream)
        }
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (held_rss, peak) = memory_kib(pid);
    // One principal (loopback, no auth): its share is a quarter of the budget (429 over
    // it); the total (503) binds with many principals.
    let mut refused = 0;
    for mut stream in holders.into_iter().flatten() {
        let mut head = [0u8; 12];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(20), stream.read(&mut head)).await
            && (head[..n].starts_with(b"HTTP/1.1 503") || head[..n].starts_with(b"HTTP/1.1 429"))
        {
            refused += 1;
        }
    }
    report.info("HTTP server RSS before the held bodies", mib(before));
    report.check(
        format!(
            "RSS while {HOLDERS} clients hold {} MiB bodies (peak)",
            HELD_BODY >> 20
        ),
        format!(
            "{} (peak {}); {refused} refused with 503",
            mib(held_rss),
            mib(peak)
        ),
        "≤ 150 MiB",
        peak <= 150 * 1024,
    );
    drop(server);
}

/// A stateless 2026-07-28 `tools/call` declaring the tasks extension.
async fn post_task(client: &reqwest::Client, url: &str, id: usize) -> Option<Value> {
    let params = json!({
        "name": "chat_completion",
        "arguments": {"model": "plain-chat-7b", "prompt": "hi"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
            "io.modelcontextprotocol/clientInfo": {"name": "stress", "version": "1"}
        }
    });
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
    let text = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "chat_completion")
        .body(body.to_string())
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    std::iter::once(text.as_str())
        .chain(text.lines().filter_map(|line| line.strip_prefix("data:")))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message["id"] == id)
}

/// CPU used over [`CPU_WINDOW`] while [`PENDING_TASKS`] tasks wait on a slow upstream.
pub async fn pending_tasks(binary: &Path, report: &mut Report) {
    eprintln!("bench: idle CPU with {PENDING_TASKS} pending tasks…");
    let fake = FaultServer::start(Vec::new()).await;
    fake.set_standing(Standing {
        delay: Duration::from_secs(3600),
        stream: None,
    });
    let server = start(
        binary,
        &fake,
        &[
            ("VULTR_MCP_TASK_AFTER", "0"),
            ("VULTR_MCP_MAX_TASKS_PER_PRINCIPAL", "5000"),
            ("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "5000"),
            ("VULTR_MCP_CONVERSATIONS", "/tmp/idle-tasks-store.sqlite3"),
        ],
        None,
    )
    .await;
    let pid = server.pid();
    let client = reqwest::Client::new();
    let mut tasks = 0;
    for batch in 0..PENDING_TASKS / 50 {
        let answers =
            join_all((0..50).map(|i| post_task(&client, server.url(), batch * 50 + i + 1))).await;
        tasks += answers
            .iter()
            .flatten()
            .filter(|answer| answer.pointer("/result/taskId").is_some())
            .count();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    tokio::time::sleep(CPU_WINDOW).await;
    let share = (cpu_time(pid) - cpu_before).as_secs_f64() / started.elapsed().as_secs_f64();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
    report.check(
        format!("idle CPU with {tasks} pending tasks (in-memory store), {threads} threads"),
        format!("{:.2} % of a core", share * 100.0),
        "≤ 2 %",
        tasks == PENDING_TASKS && share <= 0.02,
    );
    report.info(
        format!("RSS with {tasks} pending tasks"),
        mib(memory_kib(pid).0),
    );
    drop(server);
}

/// `/healthz` and a tool call while [`SLOW_CONNECTIONS`] connections send headers slowly,
/// at a 1,024 open-files limit.
pub async fn slow_connections(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: {SLOW_CONNECTIONS} slow connections at a 1,024-file limit…");
    let server = start(binary, fake, &[], Some(1024)).await;
    let authority = server.authority().to_owned();
    let mut slow = Vec::new();
    for _ in 0..SLOW_CONNECTIONS {
        if let Ok(mut stream) = TcpStream::connect(&authority).await {
            let _ = stream
                .write_all(format!("POST /mcp HTTP/1.1\r\nHost: {authority}\r\n").as_bytes())
                .await;
            slow.push(stream);
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let health = client.get(server.at("/healthz")).send().await;
    let health_time = started.elapsed();
    let started = Instant::now();
    let call = post_initialize(&client, server.url()).await;
    let call_time = started.elapsed();
    report.check(
        format!(
            "/healthz under {} slow connections (1,024 files)",
            slow.len()
        ),
        match &health {
            Ok(response) => format!(
                "{} in {:.1} ms",
                response.status(),
                health_time.as_secs_f64() * 1e3
            ),
            Err(error) => format!("no answer: {error}"),
        },
        "answered",
        health.is_ok_and(|r| r.status() == 200),
    );
    report.check(
        "an initialize under the same load",
        format!(
            "{} in {:.1} ms",
            if call.is_some() {
                "answered"
            } else {
                "NOT answered"
            },
            call_time.as_secs_f64() * 1e3
        ),
        "answered",
        call.is_some(),
    );
    drop(slow);
    drop(server);
}
