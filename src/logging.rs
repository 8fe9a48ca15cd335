//! Logging to stderr, quiet by default: clients show our stderr to their users, so an
//! ordinary client mistake (an unknown tool, a missing resource) is not logged as a warning.
//!
//! At `info` each HTTP request is one access line (ours); the libraries under us are held
//! back unless `RUST_LOG` names them: at `info` to their warnings, at `debug` to their info
//! lines, because their own info lines come several per request and their debug lines hold
//! whole messages (rmcp: prompts, replies, tool arguments) and SQL parameters
//! (tokio_postgres). Only `trace`, or naming the crate (`RUST_LOG=rmcp=trace`), shows those.

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use vultr_inference_mcp::observe::trace;

/// JSON-RPC's code for an internal error: a problem of ours, always worth a warning.
const INTERNAL_ERROR: i64 = -32603;

/// What `RUST_LOG` means when it is not set.
const DEFAULT_DIRECTIVES: &str = "warn";

/// Targets (crate-name prefixes) of the libraries held back unless named in `RUST_LOG`.
const LIBRARIES: [&str; 10] = [
    "rmcp",
    "hyper",
    "h2",
    "axum",
    "tower",
    "reqwest",
    "tokio_postgres",
    "postgres_protocol",
    "deadpool",
    "rustls",
];

/// Logs to stderr at `RUST_LOG` (default `warn`), the libraries held back as the module
/// says. `reveal_keys` keeps rmcp's debug logs off, since revealed keys are in the
/// responses they print.
///
/// When an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`), our spans are also
/// exported, whatever `RUST_LOG` says (the exporting layer has its own filter and never
/// writes to stdout or stderr): the returned exporter is shut down at exit.
pub fn init(reveal_keys: bool) -> Option<trace::Tracing> {
    let given = std::env::var("RUST_LOG").ok();
    let (filter, level) = filter_for(given.as_deref(), reveal_keys);
    // At warn or quieter, rmcp's warning for each error answer is left out unless the
    // error is ours; asking for info or more shows everything.
    let quiet = level <= LevelFilter::WARN;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter.and(QuietClientMistakes { quiet }));
    let (traces, tracing) = match trace::layer::<Registry>() {
        Ok(Some((traces, tracing))) => (Some(traces), Some(tracing)),
        Ok(None) => (None, None),
        Err(error) => {
            eprintln!("vultr-inference-mcp: {error}; traces are off");
            (None, None)
        }
    };
    tracing_subscriber::registry()
        .with(traces)
        .with(layer)
        .init();
    tracing
}

/// The filter for `RUST_LOG` = `given` (an unreadable value counts as unset), and the most
/// verbose level it lets through.
fn filter_for(given: Option<&str>, reveal_keys: bool) -> (EnvFilter, LevelFilter) {
    let given = given
        .filter(|spec| EnvFilter::try_new(spec).is_ok())
        .unwrap_or(DEFAULT_DIRECTIVES);
    let mut directives = given.to_owned();
    let cap = general_level(given).and_then(|level| {
        if level == LevelFilter::TRACE {
            None
        } else if level > LevelFilter::INFO {
            Some(LevelFilter::INFO)
        } else if level == LevelFilter::INFO {
            Some(LevelFilter::WARN)
        } else {
            None
        }
    });
    let named = named_targets(given);
    let is_named = |library: &str| {
        named
            .iter()
            .any(|target| target == library || target.starts_with(&format!("{library}::")))
    };
    for library in LIBRARIES {
        let level = match cap {
            Some(cap) if !is_named(library) => cap,
            _ => continue,
        };
        directives.push_str(&format!(",{library}={level}"));
    }
    let mut filter = EnvFilter::new(&directives);
    let level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    if reveal_keys && level > LevelFilter::INFO {
        filter = filter.add_directive("rmcp=info".parse().expect("a valid directive"));
    }
    (filter, level)
}

/// The level of `RUST_LOG`'s directives that name no target (the last one wins, as in
/// `EnvFilter`); `None` when every directive names a target.
fn general_level(spec: &str) -> Option<LevelFilter> {
    spec.rsplit(',')
        .map(str::trim)
        .find_map(|directive| directive.parse::<LevelFilter>().ok())
}

/// The targets `RUST_LOG`'s directives name (`rmcp` in `rmcp=debug`, `rmcp::service` in
/// `rmcp::service[span]=trace`, `hyper` in a bare `hyper`).
fn named_targets(spec: &str) -> Vec<String> {
    spec.split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty() && directive.parse::<LevelFilter>().is_err())
        .map(|directive| {
            let target = directive.split('=').next().unwrap_or_default();
            target.split('[').next().unwrap_or_default().to_owned()
        })
        .filter(|target| !target.is_empty())
        .collect()
}

/// Drops rmcp's warnings about error answers that are the client's mistake.
struct QuietClientMistakes {
    quiet: bool,
}

impl<S> Filter<S> for QuietClientMistakes {
    fn enabled(&self, _metadata: &Metadata<'_>, _context: &Context<'_, S>) -> bool {
        true
    }

    /// Lets everything through, so the level `RUST_LOG` allows stays the process's
    /// maximum: without a hint, the pair with `EnvFilter` has none, and every disabled
    /// `debug!`/`trace!` in the libraries (several per HTTP request) is looked up at run
    /// time instead of skipped by one comparison.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
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

    /// The directive for `target` in the filter built from `given`, as `EnvFilter` shows it.
    fn shown(given: &str) -> String {
        filter_for(Some(given), false).0.to_string()
    }

    #[test]
    fn at_info_the_libraries_are_held_to_warnings_and_at_debug_to_info() {
        let info = shown("info");
        for library in LIBRARIES {
            assert!(info.contains(&format!("{library}=warn")), "{info}");
        }
        let debug = shown("debug");
        for library in LIBRARIES {
            assert!(debug.contains(&format!("{library}=info")), "{debug}");
        }
        let ours = shown("warn,vultr_inference_mcp=debug");
        assert!(!ours.contains("rmcp"), "{ours}");
    }

    #[test]
    fn a_library_named_in_rust_log_gets_what_was_asked() {
        let asked = shown("debug,rmcp=trace,tokio_postgres::query=debug");
        assert!(asked.contains("rmcp=trace"), "{asked}");
        assert!(!asked.contains("rmcp=info"), "{asked}");
        assert!(!asked.contains("tokio_postgres=info"), "{asked}");
        assert!(asked.contains("hyper=info"), "{asked}");
        assert!(!shown("trace").contains("rmcp"), "trace shows everything");
        assert!(!shown("error").contains("rmcp"), "nothing to hold back");
    }

    #[test]
    fn rust_log_is_read_as_directives() {
        assert_eq!(general_level("rmcp=debug,info"), Some(LevelFilter::INFO));
        assert_eq!(general_level("rmcp=debug"), None);
        assert_eq!(
            named_targets("info, rmcp::service[serve]=debug,hyper,5"),
            ["rmcp::service", "hyper"]
        );
        let (_, level) = filter_for(Some("not a [valid directive"), false);
        assert_eq!(
            level,
            LevelFilter::WARN,
            "an unreadable RUST_LOG counts as unset"
        );
    }

    #[test]
    fn the_quiet_filter_keeps_rust_logs_level_as_the_maximum() {
        let (filter, _) = filter_for(Some("warn"), false);
        let combined = filter.and(QuietClientMistakes { quiet: true });
        assert_eq!(
            Filter::<tracing_subscriber::Registry>::max_level_hint(&combined),
            Some(LevelFilter::WARN)
        );
    }

    #[test]
    fn the_code_is_read_from_rmcps_error_data() {
        let unknown_tool = ErrorData::invalid_params("unknown tool", None);
        assert_eq!(error_code(&format!("{unknown_tool:?}")), Some(-32602));
        let ours = ErrorData::internal_error("broken", None);
        assert_eq!(error_code(&format!("{ours:?}")), Some(INTERNAL_ERROR));
        assert_eq!(error_code("connection reset"), None);
    }
}
