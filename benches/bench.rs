//! End-to-end benchmark of the release binary against a fake Vultr server with instant
//! answers: start-up, added latency, concurrency, memory and streaming progress.
//!
//! Run with `cargo bench --bench bench` (a `harness = false` bench: it prints a table;
//! BENCHMARKS.md has the figures and what they mean). Settings, for investigations:
//! - `BENCH_SERVER_BINARY=/path/to/vultr-inference-mcp` measures that build instead of
//!   this checkout's (before/after comparisons);
//! - `BENCH_PHASES=startup,latency,http,concurrency,streaming,media,stores,replicas,sessions,bodies,tasks,connections`
//!   (any subset)
//!   runs only those phases, e.g. under `perf record`. `stores` and `replicas` start a
//!   private Postgres (tests/support/postgres.rs) and use this checkout's binary.
//!
//! The fake is the tests' own (`tests/support/fake_vultr/faults.rs`, its raw TCP server).

#[path = "../tests/support/mod.rs"]
mod support;

#[cfg(unix)]
#[path = "bench/stress.rs"]
mod stress;

#[cfg(target_os = "linux")]
#[path = "bench/http_calls.rs"]
mod http_calls;

#[path = "bench/media.rs"]
mod media;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientRequest, PingRequest, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use support::fake_vultr::faults::{FaultServer, INFERENCE_KEY, Standing};
use support::http::{Generation, HttpServer};
use support::postgres::PgServer;

/// A tool-capable model whose text output streams (in the fake's catalog).
const STREAM_MODEL: &str = "glm-5.2";
/// A model that does not stream (in the fake's catalog).
const PLAIN_MODEL: &str = "plain-chat-7b";
/// Starts measured for the start-up figure.
const STARTS: usize = 20;
/// Sequential calls measured for the added-latency figure (each way).
const SEQUENTIAL_CALLS: usize = 2_000;
/// Calls made before measuring, to fetch the catalog and warm every path.
const WARM_UP_CALLS: usize = 200;
/// Streamed calls measured for the progress figure.
const STREAMED_CALLS: usize = 4;
/// Content chunks per streamed answer, and the time between two of them.
const STREAM_CHUNKS: usize = 150;
const STREAM_INTERVAL: Duration = Duration::from_millis(20);

fn main() {
    let binary = server_binary();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let report = runtime.block_on(run(&binary));
    println!("{}", report.render());
    println!(
        "binary: {}\nbench wall time: {:.1} s",
        binary.display(),
        started.elapsed().as_secs_f64()
    );
}

/// The release binary of this checkout, built now (`cargo build --release`) so that it is
/// exactly what `cargo install` ships; `BENCH_SERVER_BINARY` overrides it.
///
/// Not `CARGO_BIN_EXE_vultr-inference-mcp`: the binary Cargo builds for a bench has the
/// dev-dependencies' features unified in (rmcp's client, tokio's test-util), so it is a
/// different program from the one users run.
fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BENCH_SERVER_BINARY") {
        return PathBuf::from(path);
    }
    // This bench runs from <target>/release/deps/bench-<hash>.
    let exe = std::env::current_exe().expect("the bench's own path");
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("the bench lives in <target>/release/deps")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    eprintln!("bench: building the release binary (cargo build --release)…");
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            "vultr-inference-mcp",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release failed");
    target_dir.join("release").join("vultr-inference-mcp")
}

/// The bench's MCP client: records when each progress notification arrives.
#[derive(Clone)]
struct BenchClient {
    progress: mpsc::UnboundedSender<(ProgressNotificationParam, Instant)>,
}

impl ClientHandler for BenchClient {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send((params, Instant::now()));
    }
}

/// A running server, the MCP session with it, and its pid (for /proc).
struct Server {
    client: RunningService<RoleClient, BenchClient>,
    progress: mpsc::UnboundedReceiver<(ProgressNotificationParam, Instant)>,
    pid: u32,
}

impl Server {
    /// Spawns the binary against `fake` and completes the `initialize` handshake; also
    /// returns how long that took from the spawn.
    async fn start(binary: &Path, fake: &FaultServer) -> (Server, Duration) {
        Server::start_with(binary, fake, &[]).await
    }

    /// Like [`Server::start`], with `extra` variables on top.
    async fn start_with(
        binary: &Path,
        fake: &FaultServer,
        extra: &[(&str, &str)],
    ) -> (Server, Duration) {
        let mut command = tokio::process::Command::new(binary);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("VULTR_")) {
                command.env_remove(&name);
            }
        }
        command
            .env("VULTR_INFERENCE_API_KEY", INFERENCE_KEY)
            .env("VULTR_INFERENCE_BASE_URL", fake.base_url())
            .env("VULTR_MCP_CONVERSATIONS", "memory")
            .env("RUST_LOG", "off")
            .env("NO_PROXY", "127.0.0.1,localhost");
        for (name, value) in extra {
            command.env(name, value);
        }
        let (tx, progress) = mpsc::unbounded_channel();
        let spawned = Instant::now();
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server binary starts");
        let pid = transport.id().expect("the child's pid");
        let client = BenchClient { progress: tx }
            .serve(transport)
            .await
            .expect("the MCP handshake succeeds");
        let elapsed = spawned.elapsed();
        (
            Server {
                client,
                progress,
                pid,
            },
            elapsed,
        )
    }

    fn peer(&self) -> Peer<RoleClient> {
        self.client.peer().clone()
    }

    async fn stop(self) {
        let _ = self.client.cancel().await;
    }
}

/// One `chat_completion` through the server; panics on anything but a success.
async fn chat(peer: &Peer<RoleClient>, model: &str) -> Value {
    let arguments = json!({ "model": model, "prompt": "Say hello." });
    let result = peer
        .call_tool(
            CallToolRequestParams::new("chat_completion")
                .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
        )
        .await
        .expect("chat_completion answers");
    assert_ne!(
        result.is_error,
        Some(true),
        "chat_completion failed: {:?}",
        result.content
    );
    result.structured_content.unwrap_or(Value::Null)
}

/// The fields `names` of a process's `/proc/PID/status`, in KiB (0 when missing).
fn status_kib<const N: usize>(pid: u32, names: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    })
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let [rss, peak] = status_kib(pid, ["VmRSS:", "VmHWM:"]);
    (rss, peak)
}

/// `RssAnon` and `RssFile` of a process, in KiB: memory of its own, and pages of mapped
/// files (mostly the binary's code, shared and reclaimable).
fn rss_split_kib(pid: u32) -> (u64, u64) {
    let [anon, file] = status_kib(pid, ["RssAnon:", "RssFile:"]);
    (anon, file)
}

/// The 1-minute load average: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// CPU time a process has used so far, all its threads together (from schedstat).
fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// The `p`-th percentile (nearest rank) of `samples`, which it sorts.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One line of the table.
struct Row {
    metric: String,
    figure: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn info(&mut self, metric: impl Into<String>, figure: impl Into<String>) {
        self.rows.push(Row {
            metric: metric.into(),
            figure: figure.into(),
            target: String::new(),
            met: None,
        });
    }

    fn check(
        &mut self,
        metric: impl Into<String>,
        figure: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) {
        self.rows.push(Row {
            metric: metric.into(),
            figure: figure.into(),
            target: target.into(),
            met: Some(met),
        });
    }

    /// A Markdown table, readable as is on a terminal.
    fn render(&self) -> String {
        let headers = ["metric", "figure", "target", "met?"];
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.metric.clone(),
                    r.figure.clone(),
                    r.target.clone(),
                    match r.met {
                        Some(true) => "yes".to_owned(),
                        Some(false) => "NO".to_owned(),
                        None => String::new(),
                    },
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: [&str; 4]| {
            out.push('|');
            for (cell, w) in row.iter().zip(widths) {
                let _ = write!(out, " {cell:<w$} |");
            }
            out.push('\n');
        };
        line(&mut out, headers);
        let dashes = widths.map(|w| "-".repeat(w));
        line(&mut out, [&dashes[0], &dashes[1], &dashes[2], &dashes[3]]);
        for row in &cells {
            line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }
}

async fn run(binary: &Path) -> Report {
    let fake = fake_on_its_own_thread();
    let mut report = Report::default();
    let load_before = load_average();
    // BENCH_PHASES=latency,streaming (say) runs only those, e.g. under a profiler.
    let phases = std::env::var("BENCH_PHASES").unwrap_or_default();
    let wanted = |phase: &str| phases.is_empty() || phases.split(',').any(|p| p.trim() == phase);
    if wanted("startup") {
        start_up(binary, &fake, &mut report).await;
    }
    if wanted("latency") {
        added_latency(binary, &fake, &mut report).await;
    }
    #[cfg(target_os = "linux")]
    if wanted("http") {
        http_calls::calls(binary, &fake, &mut report).await;
    }
    if wanted("concurrency") {
        concurrency_and_memory(binary, &fake, &mut report).await;
    }
    if wanted("streaming") {
        streaming(binary, &fake, &mut report).await;
    }
    if wanted("media") {
        media::speak(binary, &fake, &mut report).await;
    }
    if wanted("stores") {
        stores(binary, &fake, &mut report).await;
    }
    if wanted("replicas") {
        replicas(&fake, &mut report).await;
    }
    #[cfg(unix)]
    {
        if wanted("sessions") {
            stress::sessions(binary, &fake, &mut report).await;
        }
        if wanted("bodies") {
            stress::bodies(binary, &fake, &mut report).await;
        }
        if wanted("tasks") {
            stress::pending_tasks(binary, &mut report).await;
        }
        if wanted("connections") {
            stress::slow_connections(binary, &fake, &mut report).await;
        }
    }
    report.info(
        "machine load average (1 min) before → after; 2 cores",
        format!("{load_before} → {}", load_average()),
    );
    report
}

/// The fake Vultr of the tests (its raw TCP server: instant answers, or a fixed delay,
/// and timed streams) on a runtime of its own, so it never waits on the bench.
fn fake_on_its_own_thread() -> FaultServer {
    on_its_own_thread("fake-vultr", || async {
        (FaultServer::start(Vec::new()).await, ())
    })
}

/// What `start` makes (its first value), served from a thread with a runtime of its own
/// that keeps the second value alive for as long as the bench runs.
fn on_its_own_thread<T, K, F, Fut>(name: &str, start: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = (T, K)>,
{
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the fake's runtime");
            runtime.block_on(async move {
                let (made, _kept) = start().await;
                sender.send(made).expect("the bench waits for its fake");
                // Serve until the bench ends.
                std::future::pending::<()>().await;
            });
        })
        .expect("the fake's thread");
    receiver.recv().expect("the fake starts")
}

/// Process spawn to `initialize` answered, over [`STARTS`] fresh processes.
async fn start_up(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: start-up ({STARTS} starts)…");
    // One unmeasured start, so the binary is in the page cache like the ones after it.
    let (server, _) = Server::start(binary, fake).await;
    server.stop().await;
    let mut times = Vec::with_capacity(STARTS);
    let mut fresh_rss = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let (server, took) = Server::start(binary, fake).await;
        times.push(took);
        fresh_rss.push(memory_kib(server.pid).0);
        server.stop().await;
    }
    let median = percentile(&mut times, 50.0);
    report.check(
        "start-up: spawn → initialize answered, median",
        ms(median),
        "≤ 10 ms",
        median <= Duration::from_millis(10),
    );
    report.info(
        "start-up: spawn → initialize answered, p90",
        ms(percentile(&mut times, 90.0)),
    );
    fresh_rss.sort_unstable();
    report.info(
        "RSS just after initialize (median of starts)",
        mib(fresh_rss[fresh_rss.len() / 2]),
    );
}

/// `chat_completion` through the server against the same request sent straight to the
/// fake, alternated call by call.
async fn added_latency(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: added latency ({SEQUENTIAL_CALLS} sequential calls each way)…");
    fake.set_standing(Standing::default());
    let (server, _) = Server::start(binary, fake).await;
    let peer = server.peer();
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let body = json!({
        "model": PLAIN_MODEL,
        "messages": [{ "role": "user", "content": "Say hello." }],
    });
    let send_direct = || async {
        let response = direct
            .post(format!("{}/chat/completions", fake.base_url()))
            .bearer_auth(INFERENCE_KEY)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .expect("the fake answers");
        assert!(response.status().is_success());
        let reply: Value = response.json().await.expect("a JSON completion");
        reply
    };
    for _ in 0..WARM_UP_CALLS {
        chat(&peer, PLAIN_MODEL).await;
        send_direct().await;
    }
    let mut through = Vec::with_capacity(SEQUENTIAL_CALLS);
    let mut straight = Vec::with_capacity(SEQUENTIAL_CALLS);
    let cpu_before = cpu_time(server.pid);
    for _ in 0..SEQUENTIAL_CALLS {
        let t = Instant::now();
        send_direct().await;
        straight.push(t.elapsed());
        let t = Instant::now();
        chat(&peer, PLAIN_MODEL).await;
        through.push(t.elapsed());
    }
    let cpu_per_call = cpu_time(server.pid).saturating_sub(cpu_before) / SEQUENTIAL_CALLS as u32;
    let [s50, s90, s99] = [50.0, 90.0, 99.0].map(|p| percentile(&mut through, p));
    let [d50, d90, d99] = [50.0, 90.0, 99.0].map(|p| percentile(&mut straight, p));
    report.info("chat_completion through the server, p50", ms(s50));
    report.info("chat_completion through the server, p90", ms(s90));
    report.info("chat_completion through the server, p99", ms(s99));
    report.info("same HTTP request straight to the fake, p50", ms(d50));
    report.info("same HTTP request straight to the fake, p90", ms(d90));
    report.info("same HTTP request straight to the fake, p99", ms(d99));
    let added50 = s50.saturating_sub(d50);
    report.check(
        "added latency, p50 (server p50 − direct p50)",
        ms(added50),
        "≤ 0.3 ms",
        added50 <= Duration::from_micros(300),
    );
    report.info(
        "added latency, p90 (server p90 − direct p90)",
        ms(s90.saturating_sub(d90)),
    );
    report.info(
        "added latency, p99 (server p99 − direct p99)",
        ms(s99.saturating_sub(d99)),
    );
    report.info(
        "server CPU time per chat_completion (all threads)",
        ms(cpu_per_call),
    );
    // The share of the MCP round trip itself (client, pipes, rmcp's service loop).
    let mut pings = Vec::with_capacity(SEQUENTIAL_CALLS);
    for _ in 0..SEQUENTIAL_CALLS {
        let t = Instant::now();
        peer.send_request(ClientRequest::PingRequest(PingRequest::default()))
            .await
            .expect("ping answers");
        pings.push(t.elapsed());
    }
    report.info(
        "of which MCP round trip alone (ping), p50",
        ms(percentile(&mut pings, 50.0)),
    );
    server.stop().await;
}

/// Batches of 1, 16 and 256 calls at once on one session, against a 0 ms and a 1 s
/// upstream; RSS idle and with 256 calls in flight.
async fn concurrency_and_memory(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: concurrency and memory…");
    fake.set_standing(Standing::default());
    let (server, _) = Server::start(binary, fake).await;
    let peer = server.peer();
    chat(&peer, PLAIN_MODEL).await;
    chat(&peer, STREAM_MODEL).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = memory_kib(server.pid);
    report.check(
        "RSS idle (after a first call to each model)",
        mib(idle),
        "≤ 15 MiB",
        idle <= 15 * 1024,
    );
    let (anon, file) = rss_split_kib(server.pid);
    report.info(
        "  of which anonymous (heap, stacks) / file-backed (the binary's code)",
        format!("{} / {}", mib(anon), mib(file)),
    );

    let mut in_flight_rss = 0;
    for (delay, rounds) in [
        (Duration::ZERO, [200, 50, 8]),
        (Duration::from_secs(1), [3, 3, 3]),
    ] {
        fake.set_standing(Standing {
            delay,
            stream: None,
        });
        for (n, rounds) in [1usize, 16, 256].into_iter().zip(rounds) {
            let mut walls = Vec::with_capacity(rounds);
            let all = Instant::now();
            for _ in 0..rounds {
                let start = Instant::now();
                let calls: Vec<_> = (0..n)
                    .map(|_| {
                        let peer = peer.clone();
                        tokio::spawn(async move { chat(&peer, PLAIN_MODEL).await })
                    })
                    .collect();
                if n == 256 && !delay.is_zero() {
                    // Sample the RSS once every call waits on the upstream.
                    let until = Instant::now() + delay;
                    while fake.in_flight() < n && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if fake.in_flight() == n {
                        in_flight_rss = in_flight_rss.max(memory_kib(server.pid).0);
                    }
                }
                for call in calls {
                    call.await.expect("the call task ran");
                }
                walls.push(start.elapsed());
            }
            let total = all.elapsed();
            let wall = percentile(&mut walls, 50.0);
            let per_second = (n * rounds) as f64 / total.as_secs_f64();
            let metric = format!(
                "{n:>3} concurrent calls, {} upstream: wall time (median of {rounds}), calls/s",
                if delay.is_zero() { "0 ms" } else { "1 s" }
            );
            let figure = format!("{}, {per_second:.0}/s", ms(wall));
            if n == 256 && !delay.is_zero() {
                let worst = walls.iter().max().copied().unwrap_or_default();
                report.check(
                    metric,
                    format!("{figure} (worst {})", ms(worst)),
                    "≤ 1.3 s",
                    worst <= Duration::from_millis(1300),
                );
            } else {
                report.info(metric, figure);
            }
        }
    }
    let (_, peak) = memory_kib(server.pid);
    report.check(
        "RSS with 256 calls in flight (1 s upstream)",
        mib(in_flight_rss),
        "≤ 60 MiB",
        in_flight_rss > 0 && in_flight_rss <= 60 * 1024,
    );
    report.info("RSS peak of that process (VmHWM)", mib(peak));
    fake.set_standing(Standing::default());
    server.stop().await;
}

/// Time from the fake writing a chunk to the progress notification it caused arriving.
async fn streaming(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: streaming progress ({STREAMED_CALLS} streamed calls)…");
    fake.set_standing(Standing {
        delay: Duration::ZERO,
        stream: Some((STREAM_CHUNKS, STREAM_INTERVAL)),
    });
    let (mut server, _) = Server::start(binary, fake).await;
    let peer = server.peer();
    chat(&peer, PLAIN_MODEL).await; // fetches the catalog
    let mut delays = Vec::new();
    for _ in 0..STREAMED_CALLS {
        while server.progress.try_recv().is_ok() {}
        let reply = chat(&peer, STREAM_MODEL).await;
        assert_eq!(reply["finish_reason"], "stop", "{reply}");
        let sent = fake.last_stream_events();
        while let Ok((param, arrived)) = server.progress.try_recv() {
            // `progress` counts the content chunks so far: chunk n caused it.
            let n = param.progress as usize;
            if let Some(at) = n.checked_sub(1).and_then(|i| sent.get(i)) {
                delays.push(arrived.saturating_duration_since(*at));
            }
        }
    }
    let count = delays.len();
    report.info(
        format!("streaming: chunk sent → progress received, p50 ({count} notifications)"),
        ms(percentile(&mut delays, 50.0)),
    );
    report.info(
        "streaming: chunk sent → progress received, p90",
        ms(percentile(&mut delays, 90.0)),
    );
    report.info(
        "streaming: chunk sent → progress received, max",
        ms(percentile(&mut delays, 100.0)),
    );
    server.stop().await;
}

/// Conversations continued in turn, so histories stay short while the store works.
const CONVERSATIONS: usize = 50;
/// Measured rounds of continuing each of them.
const CONTINUE_ROUNDS: usize = 4;

/// A continued `chat_completion` (the store reads the history and appends a turn) with a
/// SQLite file and with Postgres, alternated store by store on one machine.
async fn stores(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: continued conversations, SQLite file vs Postgres…");
    fake.set_standing(Standing::default());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("bench.sqlite3");
    let postgres = PgServer::start();
    let stores = [
        (
            "SQLite file",
            file.to_str().expect("a UTF-8 path").to_owned(),
        ),
        ("Postgres", postgres.create_database()),
    ];
    for (name, location) in &stores {
        let (server, _) =
            Server::start_with(binary, fake, &[("VULTR_MCP_CONVERSATIONS", location)]).await;
        let peer = server.peer();
        let mut ids = Vec::with_capacity(CONVERSATIONS);
        for _ in 0..CONVERSATIONS {
            ids.push(chat(&peer, PLAIN_MODEL).await["conversation_id"].clone());
        }
        let mut times = Vec::with_capacity(CONVERSATIONS * CONTINUE_ROUNDS);
        for round in 0..=CONTINUE_ROUNDS {
            for id in &ids {
                let arguments = json!({ "conversation_id": id, "prompt": "And again." });
                let started = Instant::now();
                let result = peer
                    .call_tool(
                        CallToolRequestParams::new("chat_completion")
                            .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
                    )
                    .await
                    .expect("chat_completion answers");
                assert_ne!(result.is_error, Some(true), "{:?}", result.content);
                // Round 0 warms the caches and the pool.
                if round > 0 {
                    times.push(started.elapsed());
                }
            }
        }
        report.info(
            format!("continued chat_completion, {name} store, p50 / p90"),
            format!(
                "{} / {}",
                ms(percentile(&mut times, 50.0)),
                ms(percentile(&mut times, 90.0))
            ),
        );
        server.stop().await;
    }
}

/// Clients calling at once, spread over the replicas.
const REPLICA_CLIENTS: usize = 64;
/// Calls each client makes, one after another.
const CALLS_PER_CLIENT: usize = 5;
/// Calls each replica runs at once (`VULTR_MCP_MAX_CONCURRENT_CALLS`).
const REPLICA_CONCURRENCY: &str = "16";

/// Calls per second through one and through two HTTP replicas sharing one Postgres, each
/// running at most 16 calls at once, against an upstream that answers in 200 ms.
async fn replicas(fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: one vs two replicas on one Postgres, 200 ms upstream…");
    fake.set_standing(Standing {
        delay: Duration::from_millis(200),
        stream: None,
    });
    let postgres = PgServer::start();
    for count in [1usize, 2] {
        let database = postgres.create_database();
        let settings = fake.settings();
        let mut env: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
        env.extend([
            ("VULTR_MCP_CONVERSATIONS", database.as_str()),
            ("VULTR_MCP_MAX_CONCURRENT_CALLS", REPLICA_CONCURRENCY),
            // Every client is the one local principal: its share is all the clients.
            ("VULTR_MCP_MAX_CALLS_PER_PRINCIPAL", "64"),
            ("RUST_LOG", "off"),
        ]);
        let mut servers = Vec::new();
        for _ in 0..count {
            servers.push(HttpServer::start(&env).await);
        }
        let mut sessions = Vec::with_capacity(REPLICA_CLIENTS);
        for n in 0..REPLICA_CLIENTS {
            sessions.push(
                servers[n % count]
                    .connect(Generation::Stateless, None)
                    .await,
            );
        }
        // One unmeasured call per client: catalog, pools and connections warm.
        futures_util::future::join_all(sessions.iter().map(|s| {
            s.call(
                "chat_completion",
                json!({ "model": PLAIN_MODEL, "prompt": "Say hello." }),
            )
        }))
        .await;
        let started = Instant::now();
        futures_util::future::join_all(sessions.iter().map(|session| async move {
            for _ in 0..CALLS_PER_CLIENT {
                let result = session
                    .call(
                        "chat_completion",
                        json!({ "model": PLAIN_MODEL, "prompt": "Say hello." }),
                    )
                    .await;
                assert_ne!(result.is_error, Some(true), "{:?}", result.content);
            }
        }))
        .await;
        let elapsed = started.elapsed();
        let calls = REPLICA_CLIENTS * CALLS_PER_CLIENT;
        report.info(
            format!(
                "{count} replica(s) × {REPLICA_CONCURRENCY} calls at once, {REPLICA_CLIENTS} clients, 200 ms upstream: calls/s"
            ),
            format!("{:.0}/s ({calls} calls in {})", calls as f64 / elapsed.as_secs_f64(), ms(elapsed)),
        );
        for session in sessions {
            session.client.cancel().await.ok();
        }
        for server in servers {
            server.terminate().await;
        }
    }
    fake.set_standing(Standing::default());
}
