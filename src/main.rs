//! Entry point: read the configuration, log to stderr, serve MCP over stdio.

use std::process::ExitCode;

use clap::Parser;
use rmcp::service::ServerInitializeError;
use rmcp::{ServiceExt, transport::stdio};
use tracing_subscriber::EnvFilter;
use vultr_inference_mcp::config::Config;
use vultr_inference_mcp::server::VultrServer;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    // stdout carries JSON-RPC; every log line goes to stderr. Quiet unless RUST_LOG says otherwise.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let server = match VultrServer::new(config).serve(stdio()).await {
        Ok(server) => server,
        // The client went away before initializing: nothing to serve, nothing went wrong.
        Err(ServerInitializeError::ConnectionClosed(_)) => return ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "MCP session could not start");
            return ExitCode::FAILURE;
        }
    };
    // Ends at end of stdin or on SIGTERM/Ctrl-C; returning drops the runtime, which aborts
    // every call still in flight and so closes its upstream connection.
    let cancel = server.cancellation_token();
    tokio::select! {
        outcome = server.waiting() => match outcome {
            Ok(reason) => tracing::info!(?reason, "session ended"),
            Err(error) => {
                tracing::error!(%error, "session ended with an error");
                return ExitCode::FAILURE;
            }
        },
        () = shutdown_signal() => {
            tracing::info!("shutting down on signal");
            cancel.cancel();
        }
    }
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
