//! A downstream MCP server over stdio for the delegation tests (built by
//! `tests/support/downstream.rs`): tools that add, fail, sleep, return large output, are
//! marked destructive, and report the environment and process id. With `--log FILE`,
//! every call (and every cancelled sleep) is appended to FILE as one JSON line, so tests
//! assert on what the server actually received. With `--http`, it serves streamable HTTP
//! on a free loopback port instead (printing `http://127.0.0.1:PORT/mcp` on stdout), and
//! with `--token T` refuses requests without `Authorization: Bearer T`.
//!
//! For the lifecycle tests: `--starts FILE` appends this process's id to FILE as it starts;
//! `--start-delay-ms N` waits N ms before serving; `--fail-start` exits with an error
//! instead of serving; `--ignore-eof` keeps running after end of input (logging `eof`,
//! then `term` on SIGTERM, and exiting then unless `--ignore-term` is given too).
//!
//! ```sh
//! cargo run --example downstream_server -- --log /tmp/calls.jsonl
//! cargo run --example downstream_server -- --http --token secret
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Two numbers to add.
#[derive(Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// First number.
    a: f64,
    /// Second number.
    b: f64,
}

/// How long to sleep.
#[derive(Deserialize, schemars::JsonSchema)]
struct SleepArgs {
    /// Milliseconds.
    ms: u64,
}

/// How much text to return.
#[derive(Deserialize, schemars::JsonSchema)]
struct BigArgs {
    /// Characters.
    chars: usize,
}

/// The test server: its tools and where it records calls.
#[derive(Clone)]
struct Downstream {
    log: Option<PathBuf>,
    tool_router: ToolRouter<Self>,
}

impl Downstream {
    /// Appends one event to the log file (one line, written at once), when there is one.
    fn record(&self, event: Value) {
        if let Some(path) = &self.log {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the call log");
            // One write per line, so concurrent calls never interleave their lines.
            file.write_all(format!("{event}\n").as_bytes())
                .expect("write the call log");
        }
    }
}

#[tool_router]
impl Downstream {
    /// Adds a and b.
    #[tool(annotations(read_only_hint = true))]
    async fn add(&self, Parameters(args): Parameters<AddArgs>) -> String {
        self.record(json!({"tool": "add", "a": args.a, "b": args.b}));
        (args.a + args.b).to_string()
    }

    /// Always fails.
    #[tool]
    async fn fail(&self) -> CallToolResult {
        self.record(json!({"tool": "fail"}));
        CallToolResult::error(vec![ContentBlock::text("it failed on purpose")])
    }

    /// Sleeps ms milliseconds, then says so.
    #[tool]
    async fn sleep(
        &self,
        Parameters(args): Parameters<SleepArgs>,
        context: RequestContext<RoleServer>,
    ) -> String {
        self.record(json!({"tool": "sleep", "ms": args.ms, "event": "start"}));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(args.ms)) => {
                self.record(json!({"tool": "sleep", "ms": args.ms, "event": "end"}));
                format!("slept {} ms", args.ms)
            }
            () = context.ct.cancelled() => {
                self.record(json!({"tool": "sleep", "ms": args.ms, "event": "cancelled"}));
                "cancelled".to_owned()
            }
        }
    }

    /// Returns chars characters of text.
    #[tool]
    async fn big(&self, Parameters(args): Parameters<BigArgs>) -> String {
        self.record(json!({"tool": "big", "chars": args.chars}));
        "x".repeat(args.chars)
    }

    /// Deletes everything (does nothing; marked destructive).
    #[tool(annotations(destructive_hint = true))]
    async fn wipe(&self) -> String {
        self.record(json!({"tool": "wipe"}));
        "wiped".to_owned()
    }

    /// The names of this process's environment variables, as a JSON array.
    #[tool]
    async fn env(&self) -> String {
        self.record(json!({"tool": "env"}));
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        json!(names).to_string()
    }

    /// This process's id.
    #[tool]
    async fn pid(&self) -> String {
        self.record(json!({"tool": "pid"}));
        std::process::id().to_string()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Downstream {}

/// What the command line asked for.
#[derive(Default)]
struct Options {
    log: Option<PathBuf>,
    http: bool,
    token: Option<String>,
    starts: Option<PathBuf>,
    start_delay: Duration,
    fail_start: bool,
    ignore_eof: bool,
    ignore_term: bool,
}

const USAGE: &str = "usage: downstream_server [--log FILE] [--http [--token T]] [--starts FILE] [--start-delay-ms N] [--fail-start] [--ignore-eof [--ignore-term]]";

impl Options {
    fn parse() -> Options {
        let mut args = std::env::args().skip(1);
        let mut options = Options::default();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--log" => options.log = args.next().map(PathBuf::from),
                "--http" => options.http = true,
                "--token" => options.token = args.next(),
                "--starts" => options.starts = args.next().map(PathBuf::from),
                "--start-delay-ms" => {
                    let ms = args.next().and_then(|ms| ms.parse().ok());
                    options.start_delay = Duration::from_millis(ms.expect(USAGE));
                }
                "--fail-start" => options.fail_start = true,
                "--ignore-eof" => options.ignore_eof = true,
                "--ignore-term" => options.ignore_term = true,
                other => panic!("unknown argument {other:?}; {USAGE}"),
            }
        }
        options
    }
}

/// Microseconds since the Unix epoch, to order events logged by different processes.
fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    if let Some(path) = &options.starts {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the starts file");
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .expect("write the starts file");
    }
    eprintln!("downstream test server starting");
    // Installed first, so a SIGTERM at any time is seen.
    let mut term = options.ignore_eof.then(|| {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler")
    });
    tokio::time::sleep(options.start_delay).await;
    if options.fail_start {
        eprintln!("downstream test server failing to start, as asked");
        std::process::exit(3);
    }
    let server = Downstream {
        log: options.log,
        tool_router: Downstream::tool_router(),
    };
    if options.http {
        serve_http(server, options.token).await;
        return;
    }
    let running = server
        .clone()
        .serve(rmcp::transport::stdio())
        .await
        .expect("MCP handshake");
    let _ = running.waiting().await;
    let Some(term) = term.as_mut() else {
        return;
    };
    server.record(json!({"event": "eof", "at_us": now_us()}));
    loop {
        term.recv().await;
        server.record(json!({"event": "term", "at_us": now_us()}));
        if !options.ignore_term {
            return;
        }
    }
}

/// Serves `server` over streamable HTTP on a free loopback port until stdin closes.
async fn serve_http(server: Downstream, token: Option<String>) {
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use axum::middleware::Next;
    use axum::response::IntoResponse;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };

    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let expected = token.map(|t| format!("Bearer {t}"));
    let app = axum::Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn(
            move |request: Request<axum::body::Body>, next: Next| {
                let expected = expected.clone();
                async move {
                    let given = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok());
                    match &expected {
                        Some(expected) if given != Some(expected.as_str()) => {
                            StatusCode::UNAUTHORIZED.into_response()
                        }
                        _ => next.run(request).await,
                    }
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    println!("http://{addr}/mcp");
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stdin_closed)
        .await
        .expect("serve HTTP");
}
