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
    match server.waiting().await {
        Ok(reason) => {
            tracing::info!(?reason, "server stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server stopped with an error");
            ExitCode::FAILURE
        }
    }
}
