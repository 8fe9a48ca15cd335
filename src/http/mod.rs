//! The streamable HTTP transport: the same MCP server for remote clients at `/mcp`, behind
//! Host and Origin checks and authentication, each request acting for its principal.
//! Both protocol generations are served: 2026-07-28 statelessly, older clients in rmcp's
//! sessions (each bound to the principal that opened it).

pub mod auth;
mod body_budget;
mod connections;
mod gate;
pub(crate) mod guard;
pub mod metrics;
mod session_limits;
mod sessions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Url;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::session::store::SessionStore;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::mcp::VultrServer;
use crate::setting;
use crate::settings::HttpSettings;
use connections::ConnectionLimits;
use session_limits::SessionLimits;

pub use auth::{AuthSettings, Authenticator, OAuthSettings};
pub use guard::{Guard, Refusal};

/// The largest request body accepted (413 above it).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where RFC 9728 protected-resource metadata is served.
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// How long a legacy session with nothing in progress keeps its worker in memory before it
/// is parked (restored at its next request).
const PARK_SESSIONS_AFTER: Duration = Duration::from_secs(10);

/// How long, after the calls in flight were cancelled, their answers have to go out.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A non-loopback address without any authentication.
    #[error(
        "refusing to serve {addr} without authentication: anyone who can reach it could spend your Vultr account's budget. Set {} (a tokens file) or {} (an OAuth issuer), bind a loopback address such as 127.0.0.1, or set {} if something in front of this server authenticates every request.",
        setting::AUTH_TOKENS,
        setting::OAUTH_ISSUER,
        setting::ALLOW_UNAUTHENTICATED
    )]
    Unprotected {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error(
        "could not listen on {addr}: {error}. Pick another address or port ({}).",
        setting::HTTP
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// The public URL is not one.
    #[error(
        "{} must be the endpoint's full URL, e.g. https://mcp.example.com/mcp: {reason}",
        setting::PUBLIC_URL
    )]
    PublicUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The authentication settings are unusable.
    #[error("{error} ({} / {})", setting::AUTH_TOKENS, setting::OAUTH_ISSUER)]
    Auth {
        /// What is wrong.
        #[from]
        error: auth::AuthSetupError,
    },
    /// The conversation store cannot be used by this build.
    #[error("{error}")]
    Store {
        /// Why.
        error: crate::store::StoreError,
    },
    /// Serving failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) guard: Guard,
    pub(crate) auth: Option<Authenticator>,
    pub(crate) sessions: sessions::SessionOwners,
    /// How many sessions are open, in total and per principal.
    pub(crate) live_sessions: Arc<session_limits::LiveSessions>,
    /// Bytes of request bodies that may be held in memory at once.
    pub(crate) body_budget: Arc<body_budget::BodyBudget>,
    /// Set once a shutdown began: new calls are refused with 503.
    pub(crate) draining: CancellationToken,
    /// The protected-resource metadata URL, when OAuth is configured.
    pub(crate) resource_metadata: Option<String>,
    /// The metadata document itself, when OAuth is configured.
    pub(crate) metadata: Option<serde_json::Value>,
}

/// Serves MCP over streamable HTTP per `args` until `shutdown` resolves, then stops
/// accepting, lets calls in flight finish for up to the drain timeout, cancels the rest
/// and returns. Prints `listening on http://ADDR/mcp` to stderr once it listens.
pub async fn serve(
    app: Arc<App>,
    args: &HttpSettings,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let auth_settings = AuthSettings {
        tokens_file: args.auth_tokens.clone(),
        oauth: None,
    };
    let protected = args.auth_tokens.is_some() || args.oauth_issuer.is_some();
    if !addr.ip().is_loopback() && !protected && !args.allow_unauthenticated {
        return Err(StartError::Unprotected { addr });
    }
    // Replicas migrate the store before they listen, so one with an older build refuses to
    // start rather than failing every call.
    app.open_store_now()
        .await
        .map_err(|error| StartError::Store { error })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| StartError::Bind { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| StartError::Bind { addr, error })?;
    let public_url = match &args.public_url {
        Some(url) => Url::parse(url.as_str()).map_err(|e| StartError::PublicUrl {
            reason: e.to_string(),
        })?,
        None => Url::parse(&format!("http://{bound}/mcp")).map_err(|e| StartError::PublicUrl {
            reason: e.to_string(),
        })?,
    };
    let auth_settings = AuthSettings {
        oauth: args.oauth_issuer.clone().map(|issuer| OAuthSettings {
            issuer,
            audience: args
                .oauth_audience
                .clone()
                .unwrap_or_else(|| public_url.to_string()),
            scope: args.oauth_scope.clone(),
        }),
        ..auth_settings
    };
    let auth = if protected {
        Some(Authenticator::new(auth_settings).await?)
    } else {
        None
    };
    let (resource_metadata, metadata) = match auth.as_ref().and_then(Authenticator::oauth) {
        Some(oauth) => (
            Some(metadata_url(&public_url)),
            Some(serde_json::json!({
                "resource": public_url.as_str(),
                "authorization_servers": [oauth.issuer],
                "scopes_supported": oauth
                    .scope
                    .as_deref()
                    .map(|scope| scope.split_whitespace().collect::<Vec<_>>())
                    .unwrap_or_default(),
                "bearer_methods_supported": ["header"],
                "resource_name": "Vultr Serverless Inference (vultr-inference-mcp)",
            })),
        ),
        None => (None, None),
    };
    // Legacy sessions any replica on the same Postgres can restore; without Postgres, the
    // parked sessions of this process.
    let (session_store, private_store): (Arc<dyn SessionStore>, bool) =
        match app.legacy_sessions.clone() {
            Some(shared) => (Arc::new(sessions::SharedSessionStore(shared)), false),
            None => (Arc::new(sessions::MemorySessionStore::default()), true),
        };
    let live_sessions = session_limits::LiveSessions::new(
        SessionLimits {
            max_total: args.max_sessions as usize,
            max_per_principal: args.max_sessions_per_principal as usize,
            init_timeout: args.session_init_timeout,
            park_after: PARK_SESSIONS_AFTER,
            idle_expiry: SessionConfig::DEFAULT_KEEP_ALIVE,
        },
        session_store.clone(),
        private_store,
    );
    let shared = Arc::new(Shared {
        guard: Guard::new(
            bound,
            &public_url,
            args.allowed_hosts.as_deref(),
            args.allowed_origins.as_deref(),
        ),
        auth,
        sessions: sessions::SessionOwners::new(app.legacy_sessions.clone()),
        live_sessions: live_sessions.clone(),
        body_budget: body_budget::BodyBudget::new(
            usize::try_from(args.max_body_memory).unwrap_or(usize::MAX),
            MAX_BODY_BYTES,
        ),
        draining: CancellationToken::new(),
        resource_metadata,
        metadata,
    });

    // Cancelling `sessions_ct` ends rmcp's sessions and streams; `calls_ct` cancels calls.
    let sessions_ct = CancellationToken::new();
    let calls_ct = CancellationToken::new();
    let factory_app = app.clone();
    let factory_calls = calls_ct.clone();
    let mut mcp_config = StreamableHttpServerConfig::default()
        // Our own guard checks Host and Origin before authentication.
        .disable_allowed_hosts()
        .with_json_response(true)
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(sessions_ct.clone());
    mcp_config.session_store = Some(session_store);
    let mut session_manager = LocalSessionManager::default();
    // Sessions that never sent `initialize` are closed by rmcp; those that never sent
    // `notifications/initialized` by `live_sessions`.
    session_manager.session_config.init_timeout = Some(args.session_init_timeout);
    let session_manager = Arc::new(session_manager);
    live_sessions.keep_sweeping(session_manager.clone());
    let mcp = StreamableHttpService::new(
        move || {
            Ok(VultrServer::new(
                factory_app.clone(),
                factory_calls.child_token(),
            ))
        },
        session_manager,
        mcp_config,
    );
    let mut router = Router::new()
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            gate::gate,
        ))
        .route("/healthz", get(healthz));
    // RFC 9728: the bare well-known path, and the one for the endpoint's path (ours, and
    // the public URL's when a proxy serves it under another path).
    let mut metadata_paths = vec![METADATA_PATH.to_owned(), format!("{METADATA_PATH}/mcp")];
    let public_path = public_url.path().trim_end_matches('/');
    if !public_path.is_empty() {
        metadata_paths.push(format!("{METADATA_PATH}{public_path}"));
    }
    metadata_paths.dedup();
    for path in metadata_paths {
        router = router.route(&path, get(protected_resource_metadata));
    }
    let router = router
        .fallback(not_found)
        .with_state(shared.clone())
        .layer(axum::middleware::from_fn(connections::track_requests));

    if !bound.ip().is_loopback() && args.public_url.is_none() && args.allowed_hosts.is_none() {
        tracing::warn!(
            "only loopback names are accepted in the Host header; set {} (or {}) to the name clients use to reach this server",
            setting::PUBLIC_URL,
            setting::ALLOWED_HOSTS
        );
    }
    eprintln!("listening on http://{bound}/mcp");
    tracing::info!(%bound, public_url = %public_url, "serving MCP over streamable HTTP");

    let stop_accepting = CancellationToken::new();
    let stopped = stop_accepting.clone();
    let limits = ConnectionLimits {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: connections::connection_cap(
            args.max_connections,
            app.upstream_connections(),
        ),
    };
    tracing::info!(max_connections = limits.max_connections, "connection limit");
    let listener = connections::BoundedListener::new(listener, limits);
    let server = tokio::spawn(
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<connections::ConnectionOf>(),
        )
        .with_graceful_shutdown(async move { stopped.cancelled().await })
        .into_future(),
    );
    let mut server = std::pin::pin!(server);
    tokio::select! {
        finished = &mut server => {
            return match finished {
                Ok(result) => result.map_err(StartError::Serve),
                Err(error) => Err(StartError::Serve(std::io::Error::other(error))),
            };
        }
        () = shutdown => {}
    }

    tracing::info!("shutting down: no new connections or calls; letting calls in flight finish");
    shared.draining.cancel();
    app.tasks.stop_creating();
    stop_accepting.cancel();
    if !app.calls_finished(args.drain_timeout).await {
        tracing::info!(drain_timeout = ?args.drain_timeout, "cancelling the calls still running");
    }
    calls_ct.cancel();
    // The cancelled calls answer at once; give the answers a moment to go out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    sessions_ct.cancel();
    let _ = tokio::time::timeout(CANCEL_GRACE, server).await;
    Ok(())
}

/// RFC 9728's URL of the metadata for `resource`: the well-known path inserted before
/// the resource's path.
fn metadata_url(resource: &Url) -> String {
    let origin = resource.origin().ascii_serialization();
    let path = resource.path().trim_end_matches('/');
    format!("{origin}{METADATA_PATH}{path}")
}

/// For load balancers: up, and nothing else.
async fn healthz() -> &'static str {
    "ok\n"
}

/// RFC 9728 protected-resource metadata; 404 when OAuth is not configured.
async fn protected_resource_metadata(
    State(shared): State<Arc<Shared>>,
    headers: http::HeaderMap,
) -> Response {
    if let Err(refusal) = shared.guard.check(&headers) {
        return (http::StatusCode::FORBIDDEN, refusal.to_string()).into_response();
    }
    match &shared.metadata {
        Some(document) => axum::Json(document.clone()).into_response(),
        None => not_found().await.into_response(),
    }
}

/// Any other path.
async fn not_found() -> (http::StatusCode, &'static str) {
    (
        http::StatusCode::NOT_FOUND,
        "Not found: the MCP endpoint is /mcp\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        let url = Url::parse("https://mcp.example.com/mcp").unwrap();
        assert_eq!(
            metadata_url(&url),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let url = Url::parse("http://127.0.0.1:8787/mcp").unwrap();
        assert_eq!(
            metadata_url(&url),
            "http://127.0.0.1:8787/.well-known/oauth-protected-resource/mcp"
        );
    }
}
