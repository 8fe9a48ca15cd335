//! Configuration: every setting is an environment variable and a command-line flag.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

use crate::secret::{ApiKey, KeyArg};
use crate::vultr::http::HttpLimits;

/// Default base URL of the Vultr account API.
pub const DEFAULT_ACCOUNT_BASE_URL: &str = "https://api.vultr.com/v2";
/// Default base URL of the Vultr inference API.
pub const DEFAULT_INFERENCE_BASE_URL: &str = "https://api.vultrinference.com/v1";

/// The name of every setting as an environment variable: the one place they are written.
/// Messages that tell a user what to set name a setting through these.
pub mod setting {
    /// Vultr account API key.
    pub const API_KEY: &str = "VULTR_API_KEY";
    /// Inference API key of a subscription.
    pub const INFERENCE_API_KEY: &str = "VULTR_INFERENCE_API_KEY";
    /// Which subscription's key to use.
    pub const INFERENCE_SUBSCRIPTION: &str = "VULTR_INFERENCE_SUBSCRIPTION";
    /// Base URL of the account API.
    pub const API_BASE_URL: &str = "VULTR_API_BASE_URL";
    /// Base URL of the inference API.
    pub const INFERENCE_BASE_URL: &str = "VULTR_INFERENCE_BASE_URL";
    /// Model used when a call names none.
    pub const DEFAULT_MODEL: &str = "VULTR_DEFAULT_MODEL";
    /// Show full keys in get_subscription.
    pub const REVEAL_KEYS: &str = "VULTR_MCP_REVEAL_KEYS";
    /// Where conversations are kept.
    pub const CONVERSATIONS: &str = "VULTR_MCP_CONVERSATIONS";
    /// Most conversations kept.
    pub const MAX_CONVERSATIONS: &str = "VULTR_MCP_MAX_CONVERSATIONS";
    /// How long unused conversations are kept.
    pub const CONVERSATION_MAX_AGE: &str = "VULTR_MCP_CONVERSATION_MAX_AGE";
    /// Connect timeout.
    pub const CONNECT_TIMEOUT: &str = "VULTR_MCP_CONNECT_TIMEOUT";
    /// Account API and catalog request timeout.
    pub const ACCOUNT_TIMEOUT: &str = "VULTR_MCP_ACCOUNT_TIMEOUT";
    /// Chat completion timeout.
    pub const CHAT_TIMEOUT: &str = "VULTR_MCP_CHAT_TIMEOUT";
    /// Wait for a stream's first chunk.
    pub const FIRST_TOKEN_TIMEOUT: &str = "VULTR_MCP_FIRST_TOKEN_TIMEOUT";
    /// Silence allowed between stream chunks.
    pub const STALL_TIMEOUT: &str = "VULTR_MCP_STALL_TIMEOUT";
    /// Retries after 408, 409, 429 or 5xx.
    pub const MAX_RETRIES: &str = "VULTR_MCP_MAX_RETRIES";
    /// Longest Retry-After waited for.
    pub const RETRY_AFTER_CAP: &str = "VULTR_MCP_RETRY_AFTER_CAP";
    /// Largest response body from Vultr.
    pub const MAX_RESPONSE_BYTES: &str = "VULTR_MCP_MAX_RESPONSE_BYTES";
    /// Longest tool result text.
    pub const MAX_RESULT_CHARS: &str = "VULTR_MCP_MAX_RESULT_CHARS";
    /// Tool calls running at once.
    pub const MAX_CONCURRENT_CALLS: &str = "VULTR_MCP_MAX_CONCURRENT_CALLS";
    /// Tool calls per principal per minute.
    pub const RATE_LIMIT: &str = "VULTR_MCP_RATE_LIMIT";
    /// Serve streamable HTTP on this address instead of stdio.
    pub const HTTP: &str = "VULTR_MCP_HTTP";
    /// The URL clients use for the MCP endpoint.
    pub const PUBLIC_URL: &str = "VULTR_MCP_PUBLIC_URL";
    /// Accepted `Host` header values.
    pub const ALLOWED_HOSTS: &str = "VULTR_MCP_ALLOWED_HOSTS";
    /// Accepted browser `Origin`s.
    pub const ALLOWED_ORIGINS: &str = "VULTR_MCP_ALLOWED_ORIGINS";
    /// File of static bearer tokens' hashes.
    pub const AUTH_TOKENS: &str = "VULTR_MCP_AUTH_TOKENS";
    /// OAuth issuer whose access tokens are accepted.
    pub const OAUTH_ISSUER: &str = "VULTR_MCP_OAUTH_ISSUER";
    /// Audience an OAuth access token must carry.
    pub const OAUTH_AUDIENCE: &str = "VULTR_MCP_OAUTH_AUDIENCE";
    /// Scope an OAuth access token must carry.
    pub const OAUTH_SCOPE: &str = "VULTR_MCP_OAUTH_SCOPE";
    /// Permit a non-loopback address with no authentication.
    pub const ALLOW_UNAUTHENTICATED: &str = "VULTR_MCP_ALLOW_UNAUTHENTICATED";
    /// How long calls in flight may finish after SIGTERM in HTTP mode.
    pub const DRAIN_TIMEOUT: &str = "VULTR_MCP_DRAIN_TIMEOUT";
    /// Connections in the Postgres store's pool.
    pub const DB_POOL: &str = "VULTR_MCP_DB_POOL";
    /// How long a call of a client that accepts tasks runs before it becomes a task.
    pub const TASK_AFTER: &str = "VULTR_MCP_TASK_AFTER";
    /// How long a task and its result are kept.
    pub const TASK_TTL: &str = "VULTR_MCP_TASK_TTL";
    /// The file of MCP servers whose tools `delegate` gives a model.
    pub const DELEGATE_SERVERS: &str = "VULTR_MCP_DELEGATE_SERVERS";
    /// How long one downstream tool call may take.
    pub const DELEGATE_TOOL_TIMEOUT: &str = "VULTR_MCP_DELEGATE_TOOL_TIMEOUT";
    /// Tool calls one principal may have in flight at once.
    pub const MAX_CALLS_PER_PRINCIPAL: &str = "VULTR_MCP_MAX_CALLS_PER_PRINCIPAL";
    /// Tasks one principal may have working at once.
    pub const MAX_TASKS_PER_PRINCIPAL: &str = "VULTR_MCP_MAX_TASKS_PER_PRINCIPAL";
    /// How long a client may take to send a request's headers.
    pub const HEADER_TIMEOUT: &str = "VULTR_MCP_HEADER_TIMEOUT";
    /// How long an idle keep-alive connection is kept open.
    pub const IDLE_TIMEOUT: &str = "VULTR_MCP_IDLE_TIMEOUT";
    /// HTTP connections open at once.
    pub const MAX_CONNECTIONS: &str = "VULTR_MCP_MAX_CONNECTIONS";
    /// Legacy (2025-era) HTTP sessions open at once.
    pub const MAX_SESSIONS: &str = "VULTR_MCP_MAX_SESSIONS";
    /// Legacy HTTP sessions one principal may have open at once.
    pub const MAX_SESSIONS_PER_PRINCIPAL: &str = "VULTR_MCP_MAX_SESSIONS_PER_PRINCIPAL";
    /// How long a new legacy session has to send `notifications/initialized`.
    pub const SESSION_INIT_TIMEOUT: &str = "VULTR_MCP_SESSION_INIT_TIMEOUT";
    /// Request bodies held in memory at once, in bytes, across all connections.
    pub const MAX_BODY_MEMORY: &str = "VULTR_MCP_MAX_BODY_MEMORY";
}

/// The server's settings. Environment variables are the usual way to set them, since an
/// MCP client passes `env` to the process it starts; flags override them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vultr-inference-mcp",
    version,
    about = "MCP server for Vultr Serverless Inference: subscriptions, the live model catalog, and chat completions with tool calling.",
    long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = "By default the server speaks MCP over stdin/stdout and is started by an MCP client; with --http it serves streamable HTTP at /mcp. \
Logs go to stderr (RUST_LOG, e.g. RUST_LOG=debug). No .env file is read. -h lists the common settings; --help lists every one. Prefer environment variables for keys: command-line flags are visible to other local users."
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

    /// Show full inference keys in get_subscription. Anyone who reads the tool result (the
    /// model, the client's logs) can then spend the account's inference budget.
    #[arg(long, env = setting::REVEAL_KEYS, hide_env_values = true, hide_short_help = true)]
    pub reveal_keys: bool,

    /// Timeouts, retries and size limits.
    #[command(flatten)]
    pub limits: Limits,

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

    /// Remote MCP over streamable HTTP.
    #[command(flatten)]
    pub http: HttpArgs,
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
}

/// Serving MCP over streamable HTTP instead of stdio.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Serve streamable HTTP on this address (e.g. `127.0.0.1:8787`, `[::]:8787`; port 0
    /// picks one) instead of stdio. The MCP endpoint is `/mcp`.
    #[arg(long = "http", env = setting::HTTP, hide_env_values = true, value_name = "ADDR", value_parser = parse_listen_address)]
    pub addr: Option<SocketAddr>,

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
pub struct Limits {
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

impl Limits {
    /// The limits of every request to Vultr.
    pub fn http(&self) -> HttpLimits {
        HttpLimits {
            connect_timeout: self.connect_timeout,
            max_retries: self.max_retries,
            retry_after_cap: self.retry_after_cap,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// Reads an IP address and port to listen on (`127.0.0.1:8787`, `[::]:8787`).
fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
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

impl Config {
    /// The account API key, if one is set.
    pub fn api_key(&self) -> Option<ApiKey> {
        self.api_key.clone().and_then(|k| k.0)
    }

    /// The inference API key, if one is set.
    pub fn inference_api_key(&self) -> Option<ApiKey> {
        self.inference_api_key.clone().and_then(|k| k.0)
    }

    /// Drops settings given as empty strings, as MCP client configs often carry `"VAR": ""`.
    pub fn normalized(mut self) -> Self {
        let blank_to_none = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        self.inference_subscription = blank_to_none(self.inference_subscription);
        self.default_model = blank_to_none(self.default_model);
        self.conversations = blank_to_none(self.conversations);
        self.http.oauth_issuer = blank_to_none(self.http.oauth_issuer);
        self.http.oauth_audience = blank_to_none(self.http.oauth_audience);
        self.http.oauth_scope = blank_to_none(self.http.oauth_scope);
        self
    }
}

/// An `http(s)` base URL without a trailing slash, so paths can be appended to it.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }

    /// The base URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a base URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum BaseUrlError {
    /// Not a URL at all.
    #[error("`{0}` is not a URL: {1}")]
    Invalid(String, String),
    /// A URL, but not http or https.
    #[error("`{0}` must start with http:// or https://")]
    Scheme(String),
}

impl FromStr for BaseUrl {
    type Err = BaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let url = reqwest::Url::parse(trimmed)
            .map_err(|e| BaseUrlError::Invalid(trimmed.to_owned(), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BaseUrlError::Scheme(trimmed.to_owned()));
        }
        Ok(Self(trimmed.trim_end_matches('/').to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_work_with_or_without_a_trailing_slash() {
        let with: BaseUrl = "https://api.vultr.com/v2/".parse().unwrap();
        let without: BaseUrl = "https://api.vultr.com/v2".parse().unwrap();
        assert_eq!(with, without);
        assert_eq!(
            with.join("/inference"),
            "https://api.vultr.com/v2/inference"
        );
    }

    #[test]
    fn durations_read_units_or_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::try_parse_from(["vultr-inference-mcp"]).unwrap();
        assert_eq!(config.limits.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.limits.account_timeout, Duration::from_secs(30));
        assert_eq!(config.limits.chat_timeout, Duration::from_secs(300));
        assert_eq!(config.limits.max_retries, 2);
        assert_eq!(config.limits.max_response_bytes, 16 * 1024 * 1024);
        assert_eq!(config.limits.max_result_chars, 100_000);
        assert!(!config.reveal_keys);
        assert_eq!(config.db_pool, 8);
        assert_eq!(config.task_after, Duration::from_secs(5));
        assert_eq!(config.task_ttl, Duration::from_secs(3600));
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

    #[test]
    fn base_urls_must_be_http() {
        assert!("ftp://example.com".parse::<BaseUrl>().is_err());
        assert!("not a url".parse::<BaseUrl>().is_err());
    }
}
