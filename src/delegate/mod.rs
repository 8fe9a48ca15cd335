//! Delegation: a Vultr model runs a bounded tool loop over the MCP servers named in the
//! delegate servers file. `config` reads the file, `servers` keeps the downstream
//! connections, `run` is the loop. No MCP server types: src/mcp/delegate.rs renders.

mod config;
mod run;
mod servers;

pub use config::{ServerSpec, ServersFileError, Transport, load};
pub use run::{DelegateRequest, Delegation, Delegator, Step, Stopped, TurnSkipped};
pub use servers::Downstream;

use crate::chat::ChatError;

/// Model turns of a delegation unless the caller says otherwise.
pub const DEFAULT_MAX_TURNS: u32 = 10;
/// Most model turns a caller may ask for.
pub const MAX_TURNS_LIMIT: u32 = 50;

/// Why a delegation could not run.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// The arguments make no sense; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// No chosen downstream server could be reached.
    #[error(
        "no downstream server could be used: {0}. Check the server's entry in the delegate servers file, or choose other `servers`."
    )]
    Unavailable(String),
    /// The first model turn failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
}
