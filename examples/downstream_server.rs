//! A downstream MCP server over stdio for the delegation tests (built by
//! `tests/support/downstream.rs`): tools that add, fail, sleep, return large output, are
//! marked destructive, and report the environment and process id. With `--log FILE`,
//! every call (and every cancelled sleep) is appended to FILE as one JSON line, so tests
//! assert on what the server actually received.
//!
//! ```sh
//! cargo run --example downstream_server -- --log /tmp/calls.jsonl
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
    /// Appends one event to the log file, when there is one.
    fn record(&self, event: Value) {
        if let Some(path) = &self.log {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the call log");
            writeln!(file, "{event}").expect("write the call log");
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

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut log = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--log" => log = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other:?}; usage: downstream_server [--log FILE]"),
        }
    }
    eprintln!("downstream test server starting");
    let server = Downstream {
        log,
        tool_router: Downstream::tool_router(),
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .expect("MCP handshake");
    let _ = running.waiting().await;
}
