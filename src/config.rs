//! Configuration: every setting is an environment variable and a command-line flag.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

use crate::secret::KeyArg;
use crate::setting;
use crate::settings::{
    AuditTarget, CallLimits, DelegateSettings, HttpSettings, Limits, MediaSettings,
    OperatorSettings, Settings, StoreSettings, TaskSettings, ToolSettings, Toolsets, VultrSettings,
};
pub use crate::settings::{DEFAULT_ACCOUNT_BASE_URL, DEFAULT_INFERENCE_BASE_URL};
use crate::store::StoreLocation;
pub use crate::vultr::BaseUrl;

/// The version `--version` prints: the package's and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VULTR_MCP_COMMIT"),
    ")"
);

/// The server's settings. Environment variables are the usual way to set them, since an
/// MCP client passes `env` to the process it starts; flags override them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vultr-inference-mcp",
    version = VERSION,
    about = "MCP server for Vultr Serverless Inference: subscriptions, the live model catalog, and chat completions with tool calling.",
    long_about = None,
    // Every setting works before or after a command (`doctor --http ADDR` as well as
    // `--http ADDR doctor`), so `doctor` sees exactly what the server would.
    mut_args(|arg| arg.global(true)),
    after_help = "By default the server speaks MCP over stdin/stdout and is started by an MCP client; with --http it serves streamable HTTP at /mcp. \
Logs go to stderr (RUST_LOG, e.g. RUST_LOG=debug). No .env file is read. -h lists the common settings; --help lists every one. Prefer environment variables for keys: command-line flags are visible to other local users. `vultr-inference-mcp doctor` checks the settings and says what to fix."
)]
pub struct Config {
    /// A command other than serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Vultr account API key: enables the subscription tools and finds the inference key for you.
    #[arg(
        long,
        env = setting::API_KEY,
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<KeyArg>,

    /// Inference API key of a subscription; when set, no discovery through the account API is needed.
    #[arg(
        long,
        env = setting::INFERENCE_API_KEY,
        value_name = "KEY",
        hide_env_values = true
    )]
    inference_api_key: Option<KeyArg>,

    /// Which subscription's key to use, by id or label [default: the only one].
    #[arg(long, env = setting::INFERENCE_SUBSCRIPTION, hide_env_values = true, value_name = "ID_OR_LABEL")]
    pub inference_subscription: Option<String>,

    /// Base URL of the Vultr account API.
    #[arg(long, env = setting::API_BASE_URL, hide_env_values = true, hide_short_help = true, value_name = "URL", default_value = DEFAULT_ACCOUNT_BASE_URL)]
    pub api_base_url: BaseUrl,

    /// Base URL of the Vultr inference API.
    #[arg(long, env = setting::INFERENCE_BASE_URL, hide_env_values = true, hide_short_help = true, value_name = "URL", default_value = DEFAULT_INFERENCE_BASE_URL)]
    pub inference_base_url: BaseUrl,

    /// Model used when a chat_completion call names none.
    #[arg(long, env = setting::DEFAULT_MODEL, hide_env_values = true, value_name = "MODEL_ID")]
    pub default_model: Option<String>,

    /// Models (comma list) a chat_completion or delegate falls back to, in order, when its
    /// model is overloaded (429), failing (5xx) or silent before the first token; a call's
    /// own fallback_models replaces this list.
    #[arg(long, env = setting::FALLBACK_MODELS, hide_env_values = true, value_name = "MODEL_IDS", value_parser = parse_fallback_models, default_value = "")]
    pub fallback_models: ModelIds,

    /// Show full inference keys in get_subscription. Anyone who reads the tool result (the
    /// model, the client's logs) can then spend the account's inference budget.
    #[arg(long, env = setting::REVEAL_KEYS, hide_env_values = true, hide_short_help = true)]
    pub reveal_keys: bool,

    /// Timeouts, retries and size limits.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Where conversations (and tasks) are kept: a SQLite file path, `memory` to keep them
    /// only while the server runs, or a `postgres://` URL shared by replicas [default:
    /// <data dir>/vultr-inference-mcp/conversations.sqlite3].
    #[arg(long, env = setting::CONVERSATIONS, value_name = "PATH|memory|URL", hide_env_values = true)]
    pub conversations: Option<String>,

    /// Connections in the Postgres store's pool.
    #[arg(long, env = setting::DB_POOL, hide_env_values = true, hide_short_help = true, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_pool: u32,

    /// For a client that accepts tasks, a chat_completion still running after this long is
    /// answered with a task to poll instead (0: always a task).
    #[arg(long, env = setting::TASK_AFTER, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub task_after: Duration,

    /// How long a task and its result are kept after it was created.
    #[arg(long, env = setting::TASK_TTL, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub task_ttl: Duration,

    /// A JSON file of MCP servers (`{"mcpServers": {...}}`, as MCP clients use) whose tools
    /// the `delegate` tool gives a Vultr model; without it, `delegate` is not offered.
    #[arg(long, env = setting::DELEGATE_SERVERS, hide_env_values = true, value_name = "FILE")]
    pub delegate_servers: Option<PathBuf>,

    /// How long one downstream tool call of a delegation may take.
    #[arg(long, env = setting::DELEGATE_TOOL_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub delegate_tool_timeout: Duration,

    /// Most conversations kept; the least recently used go first.
    #[arg(
        long,
        env = setting::MAX_CONVERSATIONS, hide_env_values = true, hide_short_help = true,
        value_name = "N",
        default_value_t = 500
    )]
    pub max_conversations: usize,

    /// Conversations unused for longer than this are deleted.
    #[arg(long, env = setting::CONVERSATION_MAX_AGE, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "30days", value_parser = parse_duration)]
    pub conversation_max_age: Duration,

    /// Calls to Vultr one principal may have in flight at once; more are refused at once
    /// [default: over HTTP a quarter of --max-concurrent-calls, at least 1; over stdio all].
    #[arg(long, env = setting::MAX_CALLS_PER_PRINCIPAL, hide_env_values = true, hide_short_help = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_calls_per_principal: Option<u32>,

    /// Tasks one principal may have working at once; a call that would become one more is
    /// refused at once.
    #[arg(long, env = setting::MAX_TASKS_PER_PRINCIPAL, hide_env_values = true, hide_short_help = true, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tasks_per_principal: u32,

    /// Tool calls each principal may make per minute, e.g. `60/min`; over it, a call returns
    /// an error saying how long to wait [default: unlimited].
    #[arg(long, env = setting::RATE_LIMIT, hide_env_values = true, value_name = "N/min")]
    pub rate_limit: Option<RateLimit>,

    /// Which groups of tools to list, as a comma list: `core` (subscriptions, models, chat,
    /// conversations), `delegate` (needs a delegate servers file), `rag` (collections,
    /// search, RAG chat), `retrieval` (rerank, embeddings), `audio` (speech,
    /// transcription), `images`, or `all` [default: core, plus delegate when delegate
    /// servers are set].
    #[arg(long, env = setting::TOOLSETS, hide_env_values = true, value_name = "NAMES", value_parser = parse_toolsets, default_value = "")]
    pub toolsets: Toolsets,

    /// List only the tools that change nothing (no chat, no deleting): a safe mode for
    /// reviewers and shared bridges.
    #[arg(long, env = setting::READ_ONLY, hide_env_values = true)]
    pub read_only: bool,

    /// How long generated speech and images are kept for `resources/read`.
    #[arg(long, env = setting::MEDIA_TTL, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub media_ttl: Duration,

    /// Largest speech or image returned inline in a tool result, in bytes; larger ones are
    /// returned only as a `vultr://media/{id}` link.
    #[arg(long, env = setting::MEDIA_INLINE_MAX, hide_env_values = true, hide_short_help = true, value_name = "BYTES", default_value_t = 2 * 1024 * 1024)]
    pub media_inline_max: usize,

    /// Media bytes one principal may keep at once; beyond it the oldest are deleted.
    #[arg(long, env = setting::MEDIA_MAX_PER_PRINCIPAL, hide_env_values = true, hide_short_help = true, value_name = "BYTES", default_value_t = 256 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub media_max_per_principal: u64,

    /// Media bytes all principals together may keep; beyond it the oldest of anyone are
    /// deleted.
    #[arg(long, env = setting::MEDIA_MAX_TOTAL, hide_env_values = true, hide_short_help = true, value_name = "BYTES", default_value_t = 2 * 1024 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub media_max_total: u64,

    /// Remote MCP over streamable HTTP.
    #[command(flatten)]
    pub http: HttpArgs,

    /// Spend limits, confirmation, metrics and the audit log.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// What the operator of a shared bridge controls and sees.
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    /// A JSON file of spend limits in USD per principal, `*` for anyone not named, e.g.
    /// {"*": {"daily_usd": 5, "monthly_usd": 50}, "ci-bot": {"per_call_usd": 0.05}}; a call
    /// whose worst case could pass a limit is refused before it is sent.
    #[arg(long, env = setting::BUDGETS, hide_env_values = true, value_name = "FILE")]
    pub budgets: Option<PathBuf>,

    /// Principals (comma list) who see everyone's spending in vultr://usage.
    #[arg(long, env = setting::ADMINS, hide_env_values = true, hide_short_help = true, value_name = "NAMES", value_delimiter = ',')]
    pub admins: Vec<String>,

    /// Ask the user (elicitation) before sending a call whose worst case costs more than
    /// this many USD; a client that cannot be asked is refused.
    #[arg(long, env = setting::CONFIRM_ABOVE_USD, hide_env_values = true, value_name = "USD", value_parser = parse_usd)]
    pub confirm_above_usd: Option<f64>,

    /// Serve Prometheus metrics at /metrics on this address (its own listener, never
    /// with /mcp), e.g. 127.0.0.1:9464.
    #[arg(long, env = setting::METRICS_ADDR, hide_env_values = true, hide_short_help = true, value_name = "ADDR", value_parser = parse_listen_address)]
    pub metrics_addr: Option<ListenAddr>,

    /// Label metrics with principal names (more series; names are visible to whoever
    /// scrapes).
    #[arg(long, env = setting::METRICS_PRINCIPALS, hide_env_values = true, hide_short_help = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_principals: bool,

    /// Write one JSON line per tool call (no prompt text, no keys) to this file (created
    /// 0600) or to `stderr`.
    #[arg(long, env = setting::AUDIT_LOG, hide_env_values = true, hide_short_help = true, value_name = "FILE|stderr")]
    pub audit_log: Option<PathBuf>,
}

/// A USD amount: a number, 0 or more.
fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!(
            "expected an amount of USD, 0 or more (e.g. 0.10), not {text:?}"
        )),
    }
}

/// Commands other than serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Read a bearer token on stdin and print the `NAME <sha256-hex>` line for the tokens
    /// file (--auth-tokens), so the file never holds a usable token.
    HashToken {
        /// The principal the token stands for (conversations are kept per principal).
        name: String,
    },
    /// Exit 0 when the local HTTP server's `/healthz` answers, else 1: a container's
    /// HEALTHCHECK, since the image has no shell or curl.
    Healthcheck {
        /// The URL to ask [default: /healthz at the --http address, 0.0.0.0 read as
        /// 127.0.0.1; without one, http://127.0.0.1:8080/healthz].
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Check the settings, keys, subscription, model catalog, store, HTTP settings,
    /// delegate servers and toolsets, and say what to fix; exit 0 when nothing failed, 1
    /// otherwise. Every setting applies, as an environment variable or a flag given before
    /// or after `doctor` (e.g. `vultr-inference-mcp doctor --http 0.0.0.0:8080`).
    Doctor {
        /// Print the report as one JSON document: {"checks":[{"name","status","found","fix"}],"ok":bool}.
        #[arg(long)]
        json: bool,
        /// Also make one small chat completion (a paid request) to the default or first chat model.
        #[arg(long)]
        live: bool,
    },
}

/// Serving MCP over streamable HTTP instead of stdio.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Serve streamable HTTP on this address (e.g. `127.0.0.1:8787`, `[::]:8787`; port 0
    /// picks one) instead of stdio. The MCP endpoint is `/mcp`. Empty means stdio, so a
    /// container image that serves HTTP can be run as a stdio server with `VULTR_MCP_HTTP=`.
    #[arg(long = "http", env = setting::HTTP, hide_env_values = true, value_name = "ADDR", value_parser = parse_listen_address)]
    listen: Option<ListenAddr>,

    /// The URL clients use for the endpoint, e.g. `https://mcp.example.com/mcp` (resource id,
    /// token audience, metadata) [default: http://ADDR/mcp].
    #[arg(long, env = setting::PUBLIC_URL, hide_env_values = true, value_name = "URL")]
    pub public_url: Option<BaseUrl>,

    /// Comma list of accepted `Host` header values (a name, or name:port); others get 403
    /// [default: localhost, 127.0.0.1, [::1] and the public URL's host].
    #[arg(long, env = setting::ALLOWED_HOSTS, hide_env_values = true, hide_short_help = true, value_name = "HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,

    /// Comma list of accepted browser `Origin`s (scheme://host[:port]); a request with any
    /// other `Origin` gets 403, one without is fine [default: the public URL's origin and,
    /// on loopback, http://127.0.0.1:PORT and http://localhost:PORT].
    #[arg(long, env = setting::ALLOWED_ORIGINS, hide_env_values = true, hide_short_help = true, value_name = "ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,

    /// File of static bearer tokens: one `<principal> <sha256-hex-of-token>` per line, `#`
    /// comments (make lines with the hash-token command).
    #[arg(long, env = setting::AUTH_TOKENS, hide_env_values = true, value_name = "FILE")]
    pub auth_tokens: Option<PathBuf>,

    /// Accept OAuth 2.1 access tokens (JWT) from this issuer; its keys are found through
    /// its discovery document.
    #[arg(long, env = setting::OAUTH_ISSUER, hide_env_values = true, value_name = "URL")]
    pub oauth_issuer: Option<String>,

    /// The `aud` an access token must carry [default: the public URL].
    #[arg(long, env = setting::OAUTH_AUDIENCE, hide_env_values = true, hide_short_help = true, value_name = "AUDIENCE")]
    pub oauth_audience: Option<String>,

    /// A scope an access token must carry (in `scope` or `scp`) [default: none required].
    #[arg(long, env = setting::OAUTH_SCOPE, hide_env_values = true, value_name = "SCOPE")]
    pub oauth_scope: Option<String>,

    /// Serve a non-loopback address with no authentication: anyone who can reach it can
    /// spend the account's inference budget.
    #[arg(long, env = setting::ALLOW_UNAUTHENTICATED, hide_env_values = true)]
    pub allow_unauthenticated: bool,

    /// After SIGTERM, how long calls in flight may finish before they are cancelled.
    #[arg(long, env = setting::DRAIN_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// How long a client may take to send a request's headers before its connection is closed.
    #[arg(long, env = setting::HEADER_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// How long a keep-alive connection with no request in progress stays open.
    #[arg(long, env = setting::IDLE_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// HTTP connections open at once; over it the oldest idle one is closed, or the new one
    /// refused [default: 4096, lowered to fit under the open-files limit].
    #[arg(long, env = setting::MAX_CONNECTIONS, hide_env_values = true, hide_short_help = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Sessions of 2025-era clients open at once; over it `initialize` gets 503.
    #[arg(long, env = setting::MAX_SESSIONS, hide_env_values = true, hide_short_help = true, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: u32,

    /// Sessions one principal may have open at once; over it `initialize` gets 429.
    #[arg(long, env = setting::MAX_SESSIONS_PER_PRINCIPAL, hide_env_values = true, hide_short_help = true, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_principal: u32,

    /// A new session whose client has not sent `notifications/initialized` within this
    /// long is closed.
    #[arg(long, env = setting::SESSION_INIT_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub session_init_timeout: Duration,

    /// Bytes of request bodies held in memory at once, across all connections (at least
    /// 4 MiB, the largest body); over it a request gets 503 with Retry-After, and one
    /// principal may hold a quarter of it (429 over that).
    #[arg(long, env = setting::MAX_BODY_MEMORY, hide_env_values = true, hide_short_help = true, value_name = "BYTES", default_value_t = 64 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(4 * 1024 * 1024..))]
    pub max_body_memory: u64,
}

/// At most this many tool calls per principal per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per minute (at least 1).
    pub per_minute: NonZeroU32,
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let count = text
            .strip_suffix("/min")
            .or_else(|| text.strip_suffix("/minute"))
            .unwrap_or(text)
            .trim();
        count
            .parse::<NonZeroU32>()
            .map(|per_minute| Self { per_minute })
            .map_err(|_| format!("`{text}` is not a rate; use calls per minute, e.g. 60/min"))
    }
}

/// Timeouts, retries and size limits. Durations take `30s`, `5m`, `500ms` or plain seconds.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// How long connecting to a Vultr API may take.
    #[arg(long, env = setting::CONNECT_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// How long one account API or model catalog request may take.
    #[arg(long, env = setting::ACCOUNT_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub account_timeout: Duration,

    /// How long one chat completion may take.
    #[arg(long, env = setting::CHAT_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub chat_timeout: Duration,

    /// Longest wait for the first streamed chunk of a chat completion.
    #[arg(long, env = setting::FIRST_TOKEN_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub first_token_timeout: Duration,

    /// Longest silence between streamed chunks; after it the partial answer is returned.
    #[arg(long, env = setting::STALL_TIMEOUT, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub stall_timeout: Duration,

    /// Retries after HTTP 408, 409, 429 or 5xx (never after other errors).
    #[arg(
        long,
        env = setting::MAX_RETRIES, hide_env_values = true, hide_short_help = true,
        value_name = "N",
        default_value_t = 2
    )]
    pub max_retries: usize,

    /// Longest Retry-After the server waits for; a longer one is reported instead.
    #[arg(long, env = setting::RETRY_AFTER_CAP, hide_env_values = true, hide_short_help = true, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub retry_after_cap: Duration,

    /// Largest response body accepted from Vultr, in bytes.
    #[arg(long, env = setting::MAX_RESPONSE_BYTES, hide_env_values = true, hide_short_help = true, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Longest tool result text, in characters; longer results are cut with a notice.
    #[arg(
        long,
        env = setting::MAX_RESULT_CHARS, hide_env_values = true, hide_short_help = true,
        value_name = "CHARS",
        default_value_t = 100_000
    )]
    pub max_result_chars: usize,

    /// Tool calls run at once; more wait their turn.
    #[arg(long, env = setting::MAX_CONCURRENT_CALLS, hide_env_values = true, hide_short_help = true, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,
}

/// Reads an IP address and port to listen on (`127.0.0.1:8787`, `[::]:8787`).
/// The `--http` setting: an address, or empty for stdio.
#[derive(Debug, Clone, Copy)]
pub struct ListenAddr(Option<SocketAddr>);

impl HttpArgs {
    /// The address to serve HTTP on; none means stdio.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.and_then(|listen| listen.0)
    }
}

fn parse_listen_address(text: &str) -> Result<ListenAddr, String> {
    if text.trim().is_empty() {
        return Ok(ListenAddr(None));
    }
    text.trim().parse().map(|addr| ListenAddr(Some(addr))).map_err(|_| {
        format!(
            "`{text}` is not an IP address and port; use e.g. 127.0.0.1:8787 (this machine only), 0.0.0.0:8787 or [::]:8787"
        )
    })
}

/// Reads `30s`, `5m`, `1m30s`, `500ms`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok(Duration::from_secs_f64(seconds));
        }
        return Err(format!("`{text}` is not a duration"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); use e.g. 30s, 5m or 500ms"))
}

/// A comma list of model ids, each once, blanks dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelIds(pub Vec<String>);

/// The fallback models: at most as many as a call may name.
fn parse_fallback_models(text: &str) -> Result<ModelIds, String> {
    let mut ids: Vec<String> = Vec::new();
    for id in text.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    let most = crate::chat::MAX_FALLBACK_MODELS;
    if ids.len() > most {
        return Err(format!(
            "names {} models; at most {most} may be given: keep the ones you prefer, in order",
            ids.len()
        ));
    }
    Ok(ModelIds(ids))
}

fn parse_toolsets(text: &str) -> Result<Toolsets, String> {
    text.parse()
        .map_err(|error: crate::settings::UnknownToolset| error.to_string())
}

impl Config {
    /// The settings as plain values: settings given as empty strings (as MCP client
    /// configs often carry `"VAR": ""`) count as not given.
    pub fn settings(self) -> Settings {
        let blank_to_none = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let limits = self.limits;
        let http = self.http;
        let operator = self.operator;
        Settings {
            vultr: VultrSettings {
                api_key: self.api_key.and_then(|k| k.0),
                inference_api_key: self.inference_api_key.and_then(|k| k.0),
                inference_subscription: blank_to_none(self.inference_subscription),
                api_base_url: self.api_base_url,
                inference_base_url: self.inference_base_url,
                default_model: blank_to_none(self.default_model),
                fallback_models: self.fallback_models.0,
                reveal_keys: self.reveal_keys,
            },
            limits: Limits {
                connect_timeout: limits.connect_timeout,
                account_timeout: limits.account_timeout,
                chat_timeout: limits.chat_timeout,
                first_token_timeout: limits.first_token_timeout,
                stall_timeout: limits.stall_timeout,
                max_retries: limits.max_retries,
                retry_after_cap: limits.retry_after_cap,
                max_response_bytes: limits.max_response_bytes,
                max_result_chars: limits.max_result_chars,
            },
            calls: CallLimits {
                max_concurrent: limits.max_concurrent_calls as usize,
                max_per_principal: self.max_calls_per_principal.map(|n| n as usize),
                per_minute: self.rate_limit.map(|limit| limit.per_minute),
            },
            store: StoreSettings {
                location: blank_to_none(self.conversations).map(|c| StoreLocation::parse(&c)),
                max_conversations: self.max_conversations,
                conversation_max_age: self.conversation_max_age,
                db_pool: self.db_pool as usize,
            },
            tasks: TaskSettings {
                after: self.task_after,
                ttl: self.task_ttl,
                max_per_principal: self.max_tasks_per_principal,
            },
            delegate: DelegateSettings {
                servers_file: self
                    .delegate_servers
                    .filter(|path| !path.as_os_str().is_empty()),
                tool_timeout: self.delegate_tool_timeout,
            },
            tools: ToolSettings {
                toolsets: self.toolsets,
                read_only: self.read_only,
            },
            media: MediaSettings {
                ttl: self.media_ttl,
                inline_max: self.media_inline_max,
                max_per_principal: usize::try_from(self.media_max_per_principal)
                    .unwrap_or(usize::MAX),
                max_total: usize::try_from(self.media_max_total).unwrap_or(usize::MAX),
            },
            operator: OperatorSettings {
                budgets_file: operator.budgets.filter(|path| !path.as_os_str().is_empty()),
                admins: operator
                    .admins
                    .into_iter()
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
                    .collect(),
                confirm_above_usd: operator.confirm_above_usd,
                metrics_addr: operator.metrics_addr.and_then(|addr| addr.0),
                metrics_principals: operator.metrics_principals,
                audit_log: operator
                    .audit_log
                    .filter(|path| !path.as_os_str().is_empty())
                    .map(|path| {
                        if path.as_os_str() == "stderr" {
                            AuditTarget::Stderr
                        } else {
                            AuditTarget::File(path)
                        }
                    }),
            },
            http: http.addr().map(|addr| HttpSettings {
                addr,
                public_url: http.public_url,
                allowed_hosts: http.allowed_hosts,
                allowed_origins: http.allowed_origins,
                auth_tokens: http.auth_tokens,
                oauth_issuer: blank_to_none(http.oauth_issuer),
                oauth_audience: blank_to_none(http.oauth_audience),
                oauth_scope: blank_to_none(http.oauth_scope),
                allow_unauthenticated: http.allow_unauthenticated,
                drain_timeout: http.drain_timeout,
                header_timeout: http.header_timeout,
                idle_timeout: http.idle_timeout,
                max_connections: http.max_connections,
                max_sessions: http.max_sessions,
                max_sessions_per_principal: http.max_sessions_per_principal,
                session_init_timeout: http.session_init_timeout,
                max_body_memory: http.max_body_memory,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_units_or_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn no_setting_gives_the_default_settings() {
        let parsed = Config::try_parse_from(["vultr-inference-mcp"])
            .unwrap()
            .settings();
        let defaults = Settings::default();
        assert_eq!(parsed.limits, defaults.limits);
        assert_eq!(parsed.calls, defaults.calls);
        assert_eq!(parsed.store, defaults.store);
        assert_eq!(parsed.tasks, defaults.tasks);
        assert_eq!(parsed.delegate, defaults.delegate);
        assert_eq!(parsed.tools, defaults.tools);
        assert_eq!(parsed.http, None);
        assert_eq!(
            format!("{:?}", parsed.vultr),
            format!("{:?}", defaults.vultr)
        );
    }

    #[test]
    fn http_settings_default_as_documented() {
        let parsed = Config::try_parse_from(["vultr-inference-mcp", "--http", "127.0.0.1:8787"])
            .unwrap()
            .settings();
        assert_eq!(
            parsed.http,
            Some(HttpSettings::on("127.0.0.1:8787".parse().unwrap()))
        );
    }

    #[test]
    fn blank_settings_count_as_not_given() {
        let parsed = Config::try_parse_from([
            "vultr-inference-mcp",
            "--default-model= ",
            "--conversations=",
            "--toolsets=",
        ])
        .unwrap()
        .settings();
        assert_eq!(parsed.vultr.default_model, None);
        assert_eq!(parsed.store.location, None);
        assert_eq!(parsed.tools.toolsets, Toolsets::Default);
    }

    #[test]
    fn fallback_models_are_a_comma_list_each_once_and_at_most_five() {
        let parsed = Config::try_parse_from([
            "vultr-inference-mcp",
            "--fallback-models= kimi-k2-instruct,,glm-5.2, kimi-k2-instruct ",
        ])
        .unwrap()
        .settings();
        assert_eq!(
            parsed.vultr.fallback_models,
            ["kimi-k2-instruct", "glm-5.2"]
        );
        let error =
            Config::try_parse_from(["vultr-inference-mcp", "--fallback-models=a,b,c,d,e,f"])
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("names 6 models; at most 5 may be given"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_toolset_stops_start_up_naming_the_known_ones() {
        let error = Config::try_parse_from(["vultr-inference-mcp", "--toolsets=core,nope"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown toolset `nope`")
                && error.contains("core, delegate, rag, retrieval, audio, images, or all"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_http_address_means_stdio() {
        let parse = |address: &str| {
            Config::try_parse_from(["vultr-inference-mcp", "--http", address])
                .unwrap()
                .settings()
                .http
        };
        assert!(parse("").is_none());
        assert!(parse("  ").is_none());
        assert_eq!(
            parse("127.0.0.1:8787").map(|http| http.addr),
            Some("127.0.0.1:8787".parse().unwrap())
        );
        assert!(Config::try_parse_from(["vultr-inference-mcp", "--http", "localhost"]).is_err());
    }

    #[test]
    fn doctor_takes_every_setting_before_or_after_it() {
        for args in [
            &[
                "vultr-inference-mcp",
                "--http",
                "0.0.0.0:8787",
                "doctor",
                "--live",
            ][..],
            &[
                "vultr-inference-mcp",
                "doctor",
                "--live",
                "--http",
                "0.0.0.0:8787",
            ][..],
        ] {
            let config = Config::try_parse_from(args).unwrap();
            assert!(
                matches!(
                    config.command,
                    Some(Command::Doctor {
                        json: false,
                        live: true
                    })
                ),
                "{args:?}"
            );
            let http = config.settings().http.expect("--http is seen");
            assert_eq!(http.addr, "0.0.0.0:8787".parse().unwrap(), "{args:?}");
        }
    }

    #[test]
    fn rates_are_calls_per_minute() {
        let per_minute = |n| RateLimit {
            per_minute: NonZeroU32::new(n).unwrap(),
        };
        assert_eq!("60/min".parse(), Ok(per_minute(60)));
        assert_eq!(" 5 /minute".parse(), Ok(per_minute(5)));
        assert_eq!("7".parse(), Ok(per_minute(7)));
        assert!("0/min".parse::<RateLimit>().is_err());
        assert!("10/s".parse::<RateLimit>().is_err());
    }
}
