//! Entry point: read the configuration, log to stderr, serve MCP over stdio (or, with
//! `--http`, over streamable HTTP).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;
use tokio_util::sync::CancellationToken;
use vultr_inference_mcp::app::App;
use vultr_inference_mcp::config::{Command, Config};
use vultr_inference_mcp::http;
use vultr_inference_mcp::mcp::VultrServer;
use vultr_inference_mcp::settings::{HttpSettings, Settings};
use vultr_inference_mcp::stdio::{Limits, StdioTransport, stdout_hung_up};

mod logging;

/// jemalloc, whose background thread gives freed memory back to the system within about
/// a second after a burst (thousands of sessions, held request bodies), where glibc's
/// allocator kept it.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: purge with a background thread, dirty pages
/// after 1 s.
#[cfg(unix)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads at start-up.
#[cfg(unix)]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string.
#[cfg(unix)]
unsafe impl Sync for MallocConf {}

/// The shortest token `hash-token` accepts: a shorter one could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

/// Where `healthcheck` asks when no `--http` address is set: the container image's.
const DEFAULT_HEALTH_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// How long `healthcheck` waits for `/healthz`.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a signal leaves the session to send the answers of the calls it cancels.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let config = Config::parse();
    match &config.command {
        Some(Command::HashToken { name }) => return hash_token(name),
        Some(Command::Healthcheck { url }) => return healthcheck(url.clone(), config.http.addr()),
        Some(Command::Doctor { .. }) | None => {}
    }
    let doctor = match &config.command {
        Some(Command::Doctor { json, live }) => Some((*json, *live)),
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vultr-inference-mcp: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut settings = config.settings();
    if let Some((json, live)) = doctor {
        let code = runtime.block_on(run_doctor(settings, json, live));
        runtime.shutdown_timeout(Duration::from_millis(100));
        return code;
    }
    let tracing = logging::init(settings.vultr.reveal_keys);
    let code = runtime.block_on(async move {
        if let Some(addr) = settings.operator.metrics_addr
            && let Err(error) = http::metrics::serve_metrics(addr).await
        {
            eprintln!("vultr-inference-mcp: {error}");
            return ExitCode::FAILURE;
        }
        match settings.http.take() {
            Some(http) => serve_http(settings, http).await,
            None => serve(settings).await,
        }
    });
    // Do not wait for a thread blocked reading stdin (when stdin is not a pipe, the read
    // cannot be interrupted): after a signal stdin may still be open.
    runtime.shutdown_timeout(Duration::from_millis(100));
    // The last spans leave (off the runtime: the exporter's client blocks).
    if let Some(tracing) = tracing {
        tracing.shutdown();
    }
    code
}

/// Reads a token on stdin (one trailing newline dropped) and prints its tokens-file line.
fn hash_token(name: &str) -> ExitCode {
    let mut token = String::new();
    if let Err(error) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut token) {
        eprintln!("vultr-inference-mcp: could not read the token from stdin: {error}");
        return ExitCode::FAILURE;
    }
    let token = token
        .strip_suffix("\r\n")
        .or_else(|| token.strip_suffix('\n'))
        .unwrap_or(&token);
    let chars = token.chars().count();
    if chars > 0 && chars < MIN_TOKEN_CHARS {
        eprintln!(
            "vultr-inference-mcp: the token has {chars} characters; use at least {MIN_TOKEN_CHARS} (a short token can be guessed), e.g. one made by `openssl rand -hex 32`"
        );
        return ExitCode::FAILURE;
    }
    match http::auth::hash_token_line(name, token) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("vultr-inference-mcp: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Asks `/healthz` at `url` (by default at the `--http` address, the unspecified address
/// read as loopback) and exits 0 only when it answers 200 within a few seconds.
fn healthcheck(url: Option<String>, addr: Option<SocketAddr>) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let mut addr = addr.unwrap_or(DEFAULT_HEALTH_ADDR);
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/healthz")
    });
    let asked = async {
        let client = reqwest::Client::builder()
            .timeout(HEALTHCHECK_TIMEOUT)
            .no_proxy()
            .build()?;
        client.get(&url).send().await
    };
    let answer = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(asked),
        Err(error) => {
            eprintln!("vultr-inference-mcp: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match answer {
        Ok(response) if response.status() == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!(
                "vultr-inference-mcp: {url} answered {}; the server is not healthy",
                response.status()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!(
                "vultr-inference-mcp: no answer from {url} ({error}); is the server running with --http?"
            );
            ExitCode::FAILURE
        }
    }
}

/// Runs every check and prints the report (text, or JSON with `json`) on stdout; exit 1
/// when a check failed.
async fn run_doctor(settings: Settings, json: bool, live: bool) -> ExitCode {
    use vultr_inference_mcp::doctor;
    let environment = doctor::Environment::of_process();
    let report = doctor::run(settings, &environment, doctor::Options { live }).await;
    if json {
        println!("{}", doctor::json(&report));
    } else {
        print!("{}", doctor::text(&report));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Serves streamable HTTP on `addr` until a signal, then drains.
async fn serve_http(mut settings: Settings, http: HttpSettings) -> ExitCode {
    let addr = http.addr;
    settings.http = Some(http.clone());
    let app = match App::try_new(settings) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("vultr-inference-mcp: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = http::serve(app.clone(), &http, addr, shutdown_signal()).await;
    app.close_downstream().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vultr-inference-mcp: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves one MCP session over stdin/stdout, then stops the downstream servers.
async fn serve(settings: Settings) -> ExitCode {
    let app = match App::try_new(settings) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("vultr-inference-mcp: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = serve_session(app.clone()).await;
    app.close_downstream().await;
    code
}

/// Serves one MCP session over stdin/stdout with `app`.
async fn serve_session(app: Arc<App>) -> ExitCode {
    let mut signal = std::pin::pin!(shutdown_signal());
    // End of stdin, or the client closing our stdout, cancels the calls in flight at once
    // (rmcp would otherwise give them seconds to finish before exiting).
    let client_gone = CancellationToken::new();
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let transport = StdioTransport::new(
        stdin,
        stdout,
        stdout_hung_up(),
        Limits::default(),
        client_gone.clone(),
    );
    let server = VultrServer::new(app, client_gone.clone());
    let started = tokio::select! {
        started = server.serve(transport) => started,
        () = &mut signal => return ExitCode::SUCCESS,
    };
    let server = match started {
        Ok(server) => server,
        // The client went away before initializing: nothing to serve, nothing went wrong.
        Err(ServerInitializeError::ConnectionClosed(_)) => return ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "MCP session could not start");
            return ExitCode::FAILURE;
        }
    };
    // Ends at end of stdin, when the client closes stdout, or on a signal.
    let cancel = server.cancellation_token();
    let mut session = std::pin::pin!(server.waiting());
    let outcome = tokio::select! {
        outcome = &mut session => outcome,
        () = &mut signal => {
            tracing::info!("shutting down on signal");
            client_gone.cancel();
            cancel.cancel();
            // The cancelled calls answer at once; let those answers reach stdout whole.
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut session).await {
                Ok(outcome) => outcome,
                Err(_) => return ExitCode::SUCCESS,
            }
        }
    };
    match outcome {
        Ok(reason) => {
            tracing::info!(?reason, "session ended");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "session ended with an error");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM, SIGHUP (the terminal or the client went away) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
