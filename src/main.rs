//! Entry point: read the configuration, log to stderr, serve MCP over stdio.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use vultr_inference_mcp::config::Config;
use vultr_inference_mcp::server::VultrServer;
use vultr_inference_mcp::shutdown::CancelOnEof;

fn main() -> ExitCode {
    let config = Config::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vultr-inference-mcp: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(config));
    // Do not wait for the thread blocked reading stdin (it cannot be interrupted): after a
    // signal stdin may still be open. Calls in flight are dropped, closing their connections.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn serve(config: Config) -> ExitCode {
    // stdout carries JSON-RPC; every log line goes to stderr. Quiet unless RUST_LOG says otherwise.
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    if config.reveal_keys {
        // rmcp logs whole responses at debug level, and revealed keys are in them.
        filter = filter.add_directive("rmcp=info".parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let mut signal = std::pin::pin!(shutdown_signal());
    // End of stdin cancels the calls in flight at once (rmcp would otherwise give them
    // seconds to finish before exiting).
    let client_gone = CancellationToken::new();
    let transport = (
        CancelOnEof::new(tokio::io::stdin(), client_gone.clone()),
        tokio::io::stdout(),
    );
    let server = VultrServer::new(config, client_gone.clone());
    let started = tokio::select! {
        started = server.serve(transport) => started,
        () = &mut signal => return ExitCode::SUCCESS,
    };
    let server = match started {
        Ok(server) => server,
        // The client went away before initializing: nothing to serve, nothing went wrong.
        Err(ServerInitializeError::ConnectionClosed(_)) => return ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "MCP session could not start");
            return ExitCode::FAILURE;
        }
    };
    // Ends at end of stdin or on SIGTERM/Ctrl-C; the runtime's shutdown then aborts every
    // call still in flight and so closes its upstream connection.
    let cancel = server.cancellation_token();
    tokio::select! {
        outcome = server.waiting() => match outcome {
            Ok(reason) => tracing::info!(?reason, "session ended"),
            Err(error) => {
                tracing::error!(%error, "session ended with an error");
                return ExitCode::FAILURE;
            }
        },
        () = &mut signal => {
            tracing::info!("shutting down on signal");
            client_gone.cancel();
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
