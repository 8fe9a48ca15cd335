//! The name of every setting as an environment variable: the one place they are written.
//! The command line (`config.rs`) and every message that tells a user what to set name a
//! setting through these. This module imports nothing of ours.

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
/// Models (comma list) a chat or delegation falls back to when its model is unavailable.
pub const FALLBACK_MODELS: &str = "VULTR_MCP_FALLBACK_MODELS";
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
/// Which groups of tools are listed.
pub const TOOLSETS: &str = "VULTR_MCP_TOOLSETS";
/// List only the tools that change nothing.
pub const READ_ONLY: &str = "VULTR_MCP_READ_ONLY";
/// How long generated media (speech, images) are kept for `resources/read`.
pub const MEDIA_TTL: &str = "VULTR_MCP_MEDIA_TTL";
/// Largest media returned inline in a tool result, in bytes; larger ones only as a link.
pub const MEDIA_INLINE_MAX: &str = "VULTR_MCP_MEDIA_INLINE_MAX";
/// Media bytes one principal may keep at once; the oldest go first beyond it.
pub const MEDIA_MAX_PER_PRINCIPAL: &str = "VULTR_MCP_MEDIA_MAX_PER_PRINCIPAL";
/// Media bytes all principals together may keep; beyond it the oldest of anyone go.
pub const MEDIA_MAX_TOTAL: &str = "VULTR_MCP_MEDIA_MAX_TOTAL";
/// The budgets file: spend limits per principal.
pub const BUDGETS: &str = "VULTR_MCP_BUDGETS";
/// Principals who see everyone's spending.
pub const ADMINS: &str = "VULTR_MCP_ADMINS";
/// Ask the user before a call whose worst case costs more than this (USD).
pub const CONFIRM_ABOVE_USD: &str = "VULTR_MCP_CONFIRM_ABOVE_USD";
/// Serve Prometheus metrics at `/metrics` on this address.
pub const METRICS_ADDR: &str = "VULTR_MCP_METRICS_ADDR";
/// Label metrics with principal names.
pub const METRICS_PRINCIPALS: &str = "VULTR_MCP_METRICS_PRINCIPALS";
/// Where the audit log goes: a file, or `stderr`.
pub const AUDIT_LOG: &str = "VULTR_MCP_AUDIT_LOG";
