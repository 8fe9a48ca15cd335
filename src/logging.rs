//! Logging to stderr, quiet by default: clients show our stderr to their users, so an
//! ordinary client mistake (an unknown tool, a missing resource) is not logged as a warning.

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// JSON-RPC's code for an internal error: a problem of ours, always worth a warning.
const INTERNAL_ERROR: i64 = -32603;

/// Logs to stderr at `RUST_LOG` (default `warn`). `reveal_keys` keeps rmcp's debug logs
/// off, since revealed keys are in the responses they print.
pub fn init(reveal_keys: bool) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    if reveal_keys && level > LevelFilter::INFO {
        filter = filter.add_directive("rmcp=info".parse().expect("a valid directive"));
    }
    // At warn or quieter, rmcp's warning for each error answer is left out unless the
    // error is ours; asking for info or more shows everything.
    let quiet = level <= LevelFilter::WARN;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter.and(QuietClientMistakes { quiet }));
    tracing_subscriber::registry().with(layer).init();
}

/// Drops rmcp's warnings about error answers that are the client's mistake.
struct QuietClientMistakes {
    quiet: bool,
}

impl<S> Filter<S> for QuietClientMistakes {
    fn enabled(&self, _metadata: &Metadata<'_>, _context: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _context: &Context<'_, S>) -> bool {
        !(self.quiet && is_client_mistake(event))
    }
}

/// Whether `event` is rmcp's warning about an error answer other than an internal error.
fn is_client_mistake(event: &Event<'_>) -> bool {
    let metadata = event.metadata();
    if *metadata.level() != Level::WARN || !metadata.target().starts_with("rmcp") {
        return false;
    }
    let mut code = ErrorCodeField::default();
    event.record(&mut code);
    code.0.is_some_and(|code| code != INTERNAL_ERROR)
}

/// The JSON-RPC error code in an event's `error` field, if it holds rmcp's `ErrorData`.
#[derive(Default)]
struct ErrorCodeField(Option<i64>);

impl Visit for ErrorCodeField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "error" {
            self.0 = error_code(&format!("{value:?}"));
        }
    }
}

/// The code in the `Debug` form of rmcp's `ErrorData`: `ErrorData { code: ErrorCode(-32602), .. }`.
fn error_code(debug: &str) -> Option<i64> {
    let rest = debug.strip_prefix("ErrorData {")?;
    let start = rest.find("ErrorCode(")? + "ErrorCode(".len();
    let end = rest[start..].find(')')? + start;
    rest[start..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ErrorData;

    #[test]
    fn the_code_is_read_from_rmcps_error_data() {
        let unknown_tool = ErrorData::invalid_params("unknown tool", None);
        assert_eq!(error_code(&format!("{unknown_tool:?}")), Some(-32602));
        let ours = ErrorData::internal_error("broken", None);
        assert_eq!(error_code(&format!("{ours:?}")), Some(INTERNAL_ERROR));
        assert_eq!(error_code("connection reset"), None);
    }
}
