//! The server's settings as plain values: what `config.rs` reads from flags and the
//! environment, and what tests build directly. Nothing here knows clap; every default is
//! the documented one, so `Settings::default()` is the server started with no setting.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::secret::ApiKey;
use crate::setting;
use crate::store::StoreLocation;
use crate::vultr::BaseUrl;
use crate::vultr::http::HttpLimits;

/// Default base URL of the Vultr account API.
pub const DEFAULT_ACCOUNT_BASE_URL: &str = "https://api.vultr.com/v2";
/// Default base URL of the Vultr inference API.
pub const DEFAULT_INFERENCE_BASE_URL: &str = "https://api.vultrinference.com/v1";

/// Everything the server runs with.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Keys, base URLs and the default model.
    pub vultr: VultrSettings,
    /// Timeouts, retries and size limits of upstream calls and results.
    pub limits: Limits,
    /// How many tool calls may run, in total and per principal.
    pub calls: CallLimits,
    /// Where conversations (and tasks) are kept, and for how long.
    pub store: StoreSettings,
    /// Long calls as MCP tasks.
    pub tasks: TaskSettings,
    /// The `delegate` tool's downstream servers.
    pub delegate: DelegateSettings,
    /// Which tools are listed.
    pub tools: ToolSettings,
    /// Generated media (speech, images): how long they are kept and how they are returned.
    pub media: MediaSettings,
    /// Streamable HTTP, when the server serves it instead of stdio.
    pub http: Option<HttpSettings>,
    /// What the operator controls and sees: spend limits, confirmation, metrics, audit.
    pub operator: OperatorSettings,
}

/// Where the audit log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Standard error, one line per call among the logs.
    Stderr,
    /// A file (created 0600, appended to).
    File(PathBuf),
}

/// What the operator of a shared bridge controls and sees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorSettings {
    /// The budgets file: spend limits per principal (none: unlimited).
    pub budgets_file: Option<PathBuf>,
    /// Principals who see everyone's spending in `vultr://usage`.
    pub admins: Vec<String>,
    /// Ask the user before a call whose worst case costs more than this, in USD.
    pub confirm_above_usd: Option<f64>,
    /// Where `/metrics` is served (its own listener), when at all.
    pub metrics_addr: Option<SocketAddr>,
    /// Whether metrics carry principal names as labels.
    pub metrics_principals: bool,
    /// Where the audit log goes, when one is kept.
    pub audit_log: Option<AuditTarget>,
}

/// How the server reaches Vultr.
#[derive(Debug, Clone)]
pub struct VultrSettings {
    /// The account API key: the subscription tools, and the inference key found for you.
    pub api_key: Option<ApiKey>,
    /// A subscription's inference key, used as given.
    pub inference_api_key: Option<ApiKey>,
    /// Which subscription's key to use (id or label) when the account has several.
    pub inference_subscription: Option<String>,
    /// Base URL of the account API.
    pub api_base_url: BaseUrl,
    /// Base URL of the inference API.
    pub inference_base_url: BaseUrl,
    /// The model of a chat call that names none.
    pub default_model: Option<String>,
    /// Models a chat or delegation falls back to, in order, when its model is unavailable
    /// and the call names none of its own.
    pub fallback_models: Vec<String>,
    /// Show full keys in `get_subscription`.
    pub reveal_keys: bool,
}

impl Default for VultrSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            inference_api_key: None,
            inference_subscription: None,
            api_base_url: DEFAULT_ACCOUNT_BASE_URL.parse().expect("a valid URL"),
            inference_base_url: DEFAULT_INFERENCE_BASE_URL.parse().expect("a valid URL"),
            default_model: None,
            fallback_models: Vec::new(),
            reveal_keys: false,
        }
    }
}

/// Timeouts, retries and size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to open a connection to Vultr.
    pub connect_timeout: Duration,
    /// Time for an account API or catalog request.
    pub account_timeout: Duration,
    /// Time for a whole chat completion.
    pub chat_timeout: Duration,
    /// Wait for a stream's first chunk.
    pub first_token_timeout: Duration,
    /// Silence allowed between stream chunks.
    pub stall_timeout: Duration,
    /// Retries after 408, 409, 429 or 5xx.
    pub max_retries: usize,
    /// Longest Retry-After waited for.
    pub retry_after_cap: Duration,
    /// Largest response body read from Vultr.
    pub max_response_bytes: usize,
    /// Longest tool result text.
    pub max_result_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            account_timeout: Duration::from_secs(30),
            chat_timeout: Duration::from_secs(300),
            first_token_timeout: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_after_cap: Duration::from_secs(20),
            max_response_bytes: 16 * 1024 * 1024,
            max_result_chars: 100_000,
        }
    }
}

impl Limits {
    /// The limits of the Vultr HTTP client.
    pub fn http(&self) -> HttpLimits {
        HttpLimits {
            connect_timeout: self.connect_timeout,
            max_retries: self.max_retries,
            retry_after_cap: self.retry_after_cap,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// How many tool calls may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Upstream calls running at once, across every session.
    pub max_concurrent: usize,
    /// Upstream calls one principal may have in flight [default: a quarter of
    /// `max_concurrent` over HTTP, all of it over stdio].
    pub max_per_principal: Option<usize>,
    /// Tool calls per principal per minute, when limited.
    pub per_minute: Option<NonZeroU32>,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 256,
            max_per_principal: None,
            per_minute: None,
        }
    }
}

/// Where conversations and tasks are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The store [default: the SQLite file in the user's data directory].
    pub location: Option<StoreLocation>,
    /// Most conversations kept per owner.
    pub max_conversations: usize,
    /// How long an unused conversation is kept.
    pub conversation_max_age: Duration,
    /// Connections in the Postgres store's pool.
    pub db_pool: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            location: None,
            max_conversations: 500,
            conversation_max_age: Duration::from_secs(30 * 24 * 3600),
            db_pool: 8,
        }
    }
}

/// Long calls as MCP tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSettings {
    /// A call still running after this long becomes a task (zero: always).
    pub after: Duration,
    /// How long a task and its result are kept.
    pub ttl: Duration,
    /// Tasks one principal may have working at once.
    pub max_per_principal: u32,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(5),
            ttl: Duration::from_secs(3600),
            max_per_principal: 32,
        }
    }
}

/// The downstream MCP servers `delegate` gives a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegateSettings {
    /// The servers file (`{"mcpServers": {...}}`); without it, no delegation.
    pub servers_file: Option<PathBuf>,
    /// How long one downstream tool call may take.
    pub tool_timeout: Duration,
}

impl Default for DelegateSettings {
    fn default() -> Self {
        Self {
            servers_file: None,
            tool_timeout: Duration::from_secs(60),
        }
    }
}

/// Generated media (speech, images) kept for `vultr://media/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaSettings {
    /// How long a media item is kept after it was made.
    pub ttl: Duration,
    /// Largest media returned inline (base64) in a tool result, in bytes; larger ones
    /// come only as a resource link.
    pub inline_max: usize,
    /// Media bytes one principal may keep at once; beyond it the oldest are deleted.
    pub max_per_principal: usize,
    /// Media bytes all principals together may keep; beyond it the oldest of anyone go.
    pub max_total: usize,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            inline_max: 2 * 1024 * 1024,
            max_per_principal: 256 * 1024 * 1024,
            max_total: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// Which tools are listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSettings {
    /// The toolsets asked for.
    pub toolsets: Toolsets,
    /// List only the tools that change nothing (`readOnlyHint`).
    pub read_only: bool,
}

impl ToolSettings {
    /// The tools to list, given whether delegate servers are configured.
    pub fn select(&self, delegating: bool) -> Result<ToolSelection, ToolsetUnavailable> {
        Ok(ToolSelection {
            toolsets: self.toolsets.resolve(delegating)?,
            read_only: self.read_only,
        })
    }
}

/// The tools a server lists: those of its toolsets, only the read-only ones when asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolSelection {
    /// The toolsets listed.
    pub toolsets: BTreeSet<Toolset>,
    /// Only tools that change nothing.
    pub read_only: bool,
}

/// A group of tools that is listed, or not, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Toolset {
    /// Subscriptions, the model catalog, chat completions and conversations.
    Core,
    /// The `delegate` tool (needs a delegate servers file).
    Delegate,
    /// Vector-store collections, their search, and RAG chat over them.
    Rag,
    /// Rerank and embeddings.
    Retrieval,
    /// Text to speech, its voices, and transcription.
    Audio,
    /// Image generation.
    Images,
}

impl Toolset {
    /// Every toolset, in the order their tools are listed.
    pub const ALL: [Toolset; 6] = [
        Toolset::Core,
        Toolset::Delegate,
        Toolset::Rag,
        Toolset::Retrieval,
        Toolset::Audio,
        Toolset::Images,
    ];

    /// The toolset's name in `VULTR_MCP_TOOLSETS`.
    pub fn name(self) -> &'static str {
        match self {
            Toolset::Core => "core",
            Toolset::Delegate => "delegate",
            Toolset::Rag => "rag",
            Toolset::Retrieval => "retrieval",
            Toolset::Audio => "audio",
            Toolset::Images => "images",
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The toolsets asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Toolsets {
    /// `core`, plus `delegate` when delegate servers are configured; the model-kind
    /// toolsets (`rag`, `retrieval`, `audio`, `images`) only when asked for.
    #[default]
    Default,
    /// Every toolset this server can serve (`delegate` only with delegate servers).
    All,
    /// Exactly these.
    Only(BTreeSet<Toolset>),
}

/// Why a toolsets setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown toolset `{name}` in {setting}; the toolsets are: {known}, or all", setting = setting::TOOLSETS, known = known_toolsets())]
pub struct UnknownToolset {
    /// The name given.
    pub name: String,
}

fn known_toolsets() -> String {
    Toolset::ALL.map(Toolset::name).join(", ")
}

impl FromStr for Toolsets {
    type Err = UnknownToolset;

    /// A comma list of toolset names, or `all`; blank is the default.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let names: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect();
        if names.is_empty() {
            return Ok(Toolsets::Default);
        }
        if names.iter().any(|name| name.eq_ignore_ascii_case("all")) {
            return Ok(Toolsets::All);
        }
        names
            .into_iter()
            .map(|name| {
                Toolset::ALL
                    .into_iter()
                    .find(|toolset| toolset.name().eq_ignore_ascii_case(name))
                    .ok_or_else(|| UnknownToolset {
                        name: name.to_owned(),
                    })
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Toolsets::Only)
    }
}

impl Toolsets {
    /// The toolsets to list, given whether delegate servers are configured; `Err` names a
    /// toolset asked for by name that this server cannot serve, and why.
    pub fn resolve(&self, delegating: bool) -> Result<BTreeSet<Toolset>, ToolsetUnavailable> {
        let available = |toolset: &Toolset| *toolset != Toolset::Delegate || delegating;
        match self {
            Toolsets::Default => Ok([Toolset::Core, Toolset::Delegate]
                .into_iter()
                .filter(available)
                .collect()),
            Toolsets::All => Ok(Toolset::ALL.into_iter().filter(available).collect()),
            Toolsets::Only(asked) => match asked.iter().find(|toolset| !available(toolset)) {
                Some(&toolset) => Err(ToolsetUnavailable { toolset }),
                None => Ok(asked.clone()),
            },
        }
    }
}

/// A toolset asked for that this server cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the toolset `{toolset}` in {toolsets} needs {servers} (a file of MCP servers for delegate); set it, or leave `{toolset}` out", toolsets = setting::TOOLSETS, servers = setting::DELEGATE_SERVERS)]
pub struct ToolsetUnavailable {
    /// The toolset.
    pub toolset: Toolset,
}

/// Streamable HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// The URL clients use for the MCP endpoint [default: `http://<bound address>/mcp`].
    pub public_url: Option<BaseUrl>,
    /// Accepted `Host` header values; when set, they replace the defaults (loopback names and the public URL's host).
    pub allowed_hosts: Option<Vec<String>>,
    /// Accepted browser `Origin`s.
    pub allowed_origins: Option<Vec<String>>,
    /// The file of static bearer tokens' hashes.
    pub auth_tokens: Option<PathBuf>,
    /// The OAuth issuer whose access tokens are accepted.
    pub oauth_issuer: Option<String>,
    /// The audience an OAuth access token must carry [default: the public URL].
    pub oauth_audience: Option<String>,
    /// The scope an OAuth access token must carry.
    pub oauth_scope: Option<String>,
    /// Serve a non-loopback address with no authentication.
    pub allow_unauthenticated: bool,
    /// How long calls in flight may finish after SIGTERM.
    pub drain_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
    /// Connections open at once [default: 4096, lowered to fit the open-files limit].
    pub max_connections: Option<u32>,
    /// Legacy sessions open at once.
    pub max_sessions: u32,
    /// Legacy sessions one principal may have open at once.
    pub max_sessions_per_principal: u32,
    /// How long a new legacy session has to send `notifications/initialized`.
    pub session_init_timeout: Duration,
    /// Request bodies held in memory at once, in bytes.
    pub max_body_memory: u64,
}

impl HttpSettings {
    /// The defaults, listening on `addr`.
    pub fn on(addr: SocketAddr) -> Self {
        Self {
            addr,
            public_url: None,
            allowed_hosts: None,
            allowed_origins: None,
            auth_tokens: None,
            oauth_issuer: None,
            oauth_audience: None,
            oauth_scope: None,
            allow_unauthenticated: false,
            drain_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
            max_sessions: 1000,
            max_sessions_per_principal: 100,
            session_init_timeout: Duration::from_secs(30),
            max_body_memory: 64 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolsets_are_a_comma_list_or_all() {
        let only = |toolsets: &[Toolset]| Toolsets::Only(toolsets.iter().copied().collect());
        assert_eq!("".parse(), Ok(Toolsets::Default));
        assert_eq!(" core ".parse(), Ok(only(&[Toolset::Core])));
        assert_eq!(
            "delegate,CORE".parse(),
            Ok(only(&[Toolset::Core, Toolset::Delegate]))
        );
        assert_eq!("core,all".parse(), Ok(Toolsets::All));
    }

    #[test]
    fn an_unknown_toolset_is_refused_naming_the_known_ones() {
        let error = "core,video".parse::<Toolsets>().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "unknown toolset `video` in {}; the toolsets are: core, delegate, rag, retrieval, audio, images, or all",
                setting::TOOLSETS
            )
        );
    }

    #[test]
    fn the_model_kind_toolsets_are_listed_only_when_asked_for_and_delegate_only_with_servers() {
        let core = BTreeSet::from([Toolset::Core]);
        let both = BTreeSet::from([Toolset::Core, Toolset::Delegate]);
        assert_eq!(Toolsets::Default.resolve(false), Ok(core.clone()));
        assert_eq!(Toolsets::Default.resolve(true), Ok(both.clone()));
        let kinds = [
            Toolset::Rag,
            Toolset::Retrieval,
            Toolset::Audio,
            Toolset::Images,
        ];
        let all_but_delegate: BTreeSet<Toolset> =
            kinds.into_iter().chain([Toolset::Core]).collect();
        assert_eq!(Toolsets::All.resolve(false), Ok(all_but_delegate.clone()));
        let mut everything = all_but_delegate;
        everything.insert(Toolset::Delegate);
        assert_eq!(Toolsets::All.resolve(true), Ok(everything));
        let delegate_only = Toolsets::Only(BTreeSet::from([Toolset::Delegate]));
        let refused = delegate_only.resolve(false).unwrap_err();
        assert!(
            refused.to_string().contains(setting::DELEGATE_SERVERS),
            "{refused}"
        );
        assert_eq!(
            Toolsets::Only(core.clone()).resolve(true),
            Ok(core),
            "asking for core alone leaves delegate out even with servers"
        );
    }
}
