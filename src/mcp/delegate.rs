//! The `delegate` tool (listed only when a delegate servers file is set): decodes the
//! arguments, runs the loop (src/delegate/) and renders what it did.

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use serde::Deserialize;

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry};
use crate::delegate::{DEFAULT_MAX_TURNS, DelegateRequest, Delegation, Stopped, TurnSkipped};
use crate::settings::Toolset;

/// Characters of a step's arguments shown in the result text.
const SHOWN_ARGUMENT_CHARS: usize = 80;

/// Arguments of `delegate`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DelegateArgs {
    /// What to do, in words.
    task: String,
    /// Model id from list_models (must support tools); default VULTR_DEFAULT_MODEL.
    #[serde(default)]
    model: Option<String>,
    /// Names of configured servers whose tools to offer; default all.
    #[serde(default)]
    servers: Option<Vec<String>>,
    /// Most model turns, 1 to 50 (default 10).
    #[serde(default)]
    max_turns: Option<u32>,
    /// Most tokens per model turn.
    #[serde(default)]
    max_tokens: Option<u32>,
    /// Start no new turn once the cost so far reaches this many USD.
    #[serde(default)]
    budget_usd: Option<f64>,
    /// Extra system instruction for the model.
    #[serde(default)]
    system: Option<String>,
    /// Material the model should read for the task.
    #[serde(default)]
    context: Option<String>,
    /// Models to try in turn if the model is down (at most 5).
    #[serde(default)]
    fallback_models: Option<Vec<String>>,
}

impl DelegateArgs {
    /// The delegation asked for; `default_fallbacks` when the call names no fallback models.
    fn into_request(self, default_fallbacks: &[String]) -> DelegateRequest {
        DelegateRequest {
            task: self.task,
            model: self.model,
            servers: self.servers,
            max_turns: self.max_turns.unwrap_or(DEFAULT_MAX_TURNS),
            max_tokens: self.max_tokens,
            budget_usd: self.budget_usd,
            system: self.system,
            context: self.context,
            fallback_models: self
                .fallback_models
                .unwrap_or_else(|| default_fallbacks.to_vec()),
        }
    }
}

/// The `delegate` entry (listed only when a delegate servers file is set).
pub(super) fn delegate() -> ToolEntry {
    ToolEntry {
        name: "delegate",
        toolset: Toolset::Delegate,
        description: "Hand a multi-step task to a Vultr model that runs the tool loop itself over the MCP servers configured for delegation (tools named <server>__<tool>), within max_turns and budget_usd. Returns the answer and one line per tool call.".to_owned(),
        input_schema: input_schema::<DelegateArgs>,
        behaviour: Behaviour::MODEL_RUN,
        guide: "- delegate: hand a multi-step task to a Vultr model that calls the tools of the MCP servers configured for delegation itself, within max_turns and budget_usd; you get the answer and one line per tool call.\n".to_owned(),
        handler: |server, call| Box::pin(server.delegate(call)),
    }
}

impl VultrServer {
    /// Runs a delegation and renders its result; a cancelled call stops the loop, keeping
    /// what was done.
    async fn delegate(&self, call: Call) -> CallToolResult {
        let Call {
            arguments,
            progress,
            cancel,
            spend,
            ..
        } = call;
        let delegation = async {
            let args = decode::<DelegateArgs>(arguments)?;
            let delegator = self.app.delegator.as_ref().ok_or_else(|| {
                ToolError::Invalid("delegation is not configured on this server".to_owned())
            })?;
            Ok::<_, ToolError>(
                delegator
                    .run(
                        args.into_request(&self.app.fallback_models),
                        spend,
                        progress,
                        cancel,
                    )
                    .await?,
            )
        };
        self.respond(
            delegation
                .await
                .map(|delegation| self.success(render(&delegation), &delegation)),
        )
    }
}

/// The delegation as text: the answer, why it stopped if not done, one line per step.
fn render(delegation: &Delegation) -> String {
    let mut text = if delegation.answer.trim().is_empty() {
        "(no answer)".to_owned()
    } else {
        delegation.answer.clone()
    };
    text.push_str("\n\n");
    let reason = match delegation.stopped {
        Stopped::Done => None,
        Stopped::MaxTurns => Some(
            "stopped at max_turns before the model answered; raise max_turns or narrow the task",
        ),
        Stopped::Budget => Some("stopped: the cost reached budget_usd"),
        Stopped::Cancelled => Some("stopped: cancelled"),
        Stopped::Error => Some("stopped: a model turn failed"),
    };
    if let Some(reason) = reason {
        let _ = writeln!(text, "[{reason}]");
    }
    if let Some(error) = &delegation.error {
        let _ = writeln!(text, "[error: {error}]");
    }
    for TurnSkipped { turn, skipped } in &delegation.skipped {
        let charged = skipped
            .charged_usd
            .map(|usd| format!("; charged its worst case, ${usd:.6}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "[turn {turn}: {} skipped ({}{charged}); the fallback model ran from then on]",
            skipped.model, skipped.reason
        );
    }
    for step in &delegation.steps {
        let arguments = step.arguments.to_string();
        let mut shown: String = arguments.chars().take(SHOWN_ARGUMENT_CHARS).collect();
        if shown.len() < arguments.len() {
            shown.push('…');
        }
        let _ = writeln!(
            text,
            "{}. turn {}: {}({shown}) {}",
            step.n,
            step.turn,
            step.tool,
            if step.is_error { "error" } else { "ok" }
        );
    }
    let _ = write!(text, "[model {}", delegation.model);
    if let (Some(p), Some(c)) = (
        delegation.usage.prompt_tokens,
        delegation.usage.completion_tokens,
    ) {
        let _ = write!(text, ", tokens {p} prompt + {c} completion");
    }
    if let Some(cost) = delegation.cost_usd {
        let _ = write!(text, ", ${cost:.6}");
    }
    text.push(']');
    text
}
