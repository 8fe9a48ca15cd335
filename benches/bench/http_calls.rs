//! Server CPU per call over HTTP (issue 16): stateless 2026-07-28 `tools/call` requests,
//! one after another on one keep-alive connection, against the release binary serving
//! `--http` on loopback and the fake Vultr answering at once. CPU is the server process's
//! `utime + stime` (`/proc/PID/stat`) over the measured calls, so it counts every thread
//! (the runtime's workers, the blocking pool, the allocator's purge thread).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::stress;
use super::support::fake_vultr::faults::{FaultServer, Standing};
use super::{PLAIN_MODEL, Report, ms};

/// Calls made before measuring: catalog fetched, connections and caches warm.
const WARM_UP: usize = 300;
/// Calls measured, per tool.
const MEASURED: usize = 3_000;

/// CPU per call and calls/s per core for a cached `list_models` and a `chat_completion`.
pub async fn calls(binary: &Path, fake: &FaultServer, report: &mut Report) {
    eprintln!("bench: HTTP CPU per call ({MEASURED} stateless calls of each tool)…");
    fake.set_standing(Standing::default());
    // The default log level (warn), as users run it.
    let server = stress::start(binary, fake, &[("RUST_LOG", "warn")], None).await;
    let pid = server.pid();
    // One connection, kept alive: no connect or handshake in the figures.
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .expect("an HTTP client");
    for (tool, arguments, target) in [
        (
            "list_models",
            json!({}),
            Duration::from_micros(100), // cached after the first call
        ),
        (
            "chat_completion",
            json!({ "model": PLAIN_MODEL, "prompt": "Say hello." }),
            Duration::from_micros(300),
        ),
    ] {
        let body = call_body(tool, &arguments);
        for _ in 0..WARM_UP {
            post(&client, server.url(), tool, &body).await;
        }
        let cpu_before = process_cpu(pid);
        let started = Instant::now();
        for _ in 0..MEASURED {
            post(&client, server.url(), tool, &body).await;
        }
        let wall = started.elapsed() / MEASURED as u32;
        let cpu = process_cpu(pid).saturating_sub(cpu_before) / MEASURED as u32;
        report.check(
            format!("HTTP stateless {tool}: server CPU per call (utime+stime)"),
            ms(cpu),
            format!("≤ {}", ms(target)),
            cpu <= target,
        );
        report.info(
            format!("HTTP stateless {tool}: calls/s per core; wall time per call"),
            format!("{:.0}/s; {}", 1.0 / cpu.as_secs_f64().max(1e-9), ms(wall)),
        );
    }
    drop(server);
}

/// A self-contained 2026-07-28 `tools/call` of `tool`.
fn call_body(tool: &str, arguments: &serde_json::Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool,
        "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}
        }
    }})
    .to_string()
}

/// POSTs `body` (a call of `tool`); panics unless it is a successful tool result.
async fn post(client: &reqwest::Client, url: &str, tool: &str, body: &str) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_owned())
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a whole answer");
    assert!(
        status.is_success() && text.contains("\"result\"") && !text.contains("\"isError\":true"),
        "{tool} failed ({status}): {text}"
    );
}

/// `utime + stime` of a process (all its threads), from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces):
    // state is field 3, utime 14 and stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}
