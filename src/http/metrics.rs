//! The `/metrics` listener (`VULTR_MCP_METRICS_ADDR`): its own socket, never the one
//! serving `/mcp`, so metrics are not exposed with the MCP endpoint by accident, and
//! served in stdio mode too. It answers only `GET /metrics`; its connections are bounded
//! as the MCP listener's are (a few at once, header and idle deadlines).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::connections::{self, BoundedListener, ConnectionLimits};
use crate::observe::metrics;
use crate::setting;

/// Scrapers connected at once; over it the oldest idle connection is closed.
const MAX_CONNECTIONS: usize = 16;

/// How long a scraper has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a kept-alive scraper connection may sit idle.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the metrics listener could not start: start-up stops.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr} ({setting}): {source}; choose a free address, or unset it", setting = setting::METRICS_ADDR)]
pub struct MetricsListenError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why binding failed.
    pub source: std::io::Error,
}

/// Binds `addr` and serves `/metrics` there in the background for the life of the
/// process, returning the bound address (a port of 0 is chosen by the system). Writes
/// `metrics at http://ADDR/metrics` to stderr once listening.
pub async fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, MetricsListenError> {
    let failed = |source| MetricsListenError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    let limits = ConnectionLimits {
        header_timeout: HEADER_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
        max_connections: MAX_CONNECTIONS,
    };
    let router = Router::new()
        .route("/metrics", get(scrape))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(connections::track_requests));
    let serving = axum::serve(
        BoundedListener::new(listener, limits),
        router.into_make_service_with_connect_info::<connections::ConnectionOf>(),
    );
    tokio::spawn(async move {
        if let Err(error) = serving.await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    eprintln!("metrics at http://{bound}/metrics");
    tracing::info!(%bound, "serving Prometheus metrics");
    Ok(bound)
}

/// Every metric, in the Prometheus text format.
async fn scrape() -> Response {
    match metrics::global() {
        Some(metrics) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics.encode(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not set up yet\n",
        )
            .into_response(),
    }
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "Not found: this listener serves only /metrics\n",
    )
}
