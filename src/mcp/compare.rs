//! The `compare_models` tool: decodes the arguments, runs the comparison (src/compare.rs)
//! and renders each model's answer and the judge's synthesis.

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use serde::{Deserialize, Serialize};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry, cancelled};
use crate::compare::{Answer, CompareRequest, Comparison, Synthesis};
use crate::setting;
use crate::settings::Toolset;
use crate::vultr::chat::{Message, TokenUsage};

/// Room kept per answer (and for the synthesis) for its heading and footer when the
/// texts are cut to the result limit.
const RENDERING_ROOM: usize = 300;
/// Characters of a stance shown in an answer's heading (within the room above).
const SHOWN_STANCE_CHARS: usize = 120;

/// Arguments of `compare_models`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CompareModelsArgs {
    /// A single user message (instead of messages).
    #[serde(default)]
    prompt: Option<String>,
    /// OpenAI-format messages (instead of prompt).
    #[serde(default)]
    #[schemars(with = "Option<Vec<serde_json::Map<String, serde_json::Value>>>")]
    messages: Option<Vec<Message>>,
    /// 2 to 6 distinct model ids (list_models).
    models: Vec<String>,
    /// One per model, for its system prompt ("argue for"...).
    #[serde(default)]
    stances: Option<Vec<String>>,
    /// Model that synthesises the anonymised answers.
    #[serde(default)]
    judge: Option<String>,
    /// Most tokens per answer and synthesis.
    #[serde(default)]
    max_tokens: Option<u32>,
    /// Refuse unsent if the worst-case USD exceeds this.
    #[serde(default)]
    budget_usd: Option<f64>,
    /// System instruction sent before prompt.
    #[serde(default)]
    system: Option<String>,
    /// 0 to 2, for the answers.
    #[serde(default)]
    temperature: Option<f64>,
}

impl From<CompareModelsArgs> for CompareRequest {
    fn from(args: CompareModelsArgs) -> Self {
        CompareRequest {
            prompt: args.prompt,
            messages: args.messages,
            models: args.models,
            stances: args.stances,
            judge: args.judge,
            max_tokens: args.max_tokens,
            budget_usd: args.budget_usd,
            system: args.system,
            temperature: args.temperature,
            subscription: None,
        }
    }
}

/// The `compare_models` entry.
pub(super) fn compare_models() -> ToolEntry {
    ToolEntry {
        name: "compare_models",
        toolset: Toolset::Core,
        description: "Ask 2 to 6 models the same prompt at once (a stance each, optionally) and get every answer with its cost; an optional judge synthesises the anonymised answers.".to_owned(),
        input_schema: input_schema::<CompareModelsArgs>,
        behaviour: Behaviour::MODEL_RUN,
        guide: "- compare_models: ask several models at once (`models`, 2 to 6), e.g. for a second opinion or a debate (`stances`, one per model); `judge` writes a synthesis of where they agree and disagree and which answer is best. Not saved as a conversation.\n".to_owned(),
        handler: |server, call| Box::pin(server.compare_models(call)),
    }
}

impl VultrServer {
    /// Runs a comparison and renders it; a cancelled call drops every request in flight.
    async fn compare_models(&self, call: Call) -> CallToolResult {
        let Call {
            arguments,
            progress,
            cancel,
            spend,
            ..
        } = call;
        let comparison = async {
            let args = decode::<CompareModelsArgs>(arguments)?;
            let comparison = self.app.comparer.run(args.into(), spend, progress).await?;
            Ok::<_, ToolError>(comparison)
        };
        let comparison = tokio::select! {
            comparison = comparison => comparison,
            () = cancel.cancelled() => return cancelled(),
        };
        self.respond(comparison.map(|comparison| self.render_comparison(comparison)))
    }

    /// A comparison as the tool's result, its texts cut to fit the result limit.
    fn render_comparison(&self, mut comparison: Comparison) -> CallToolResult {
        let sections = comparison.answers.len() + usize::from(comparison.synthesis.is_some());
        let room = self
            .app
            .max_result_chars
            .saturating_sub(RENDERING_ROOM * (sections + 1))
            / sections.max(1);
        let mut truncated = false;
        let contents = comparison
            .answers
            .iter_mut()
            .map(|a| &mut a.content)
            .chain(comparison.synthesis.iter_mut().map(|s| &mut s.content));
        for content in contents.flatten() {
            truncated |= cut(content, room.max(1));
        }
        let text = render(&comparison, truncated);
        self.success(
            text,
            CompareResult {
                comparison: &comparison,
                truncated,
            },
        )
    }
}

/// The structured result of `compare_models`.
#[derive(Serialize)]
struct CompareResult<'a> {
    #[serde(flatten)]
    comparison: &'a Comparison,
    /// True when an answer or the synthesis was cut to the result size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// Cuts `text` to `max` characters; whether it did.
fn cut(text: &mut String, max: usize) -> bool {
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            text.truncate(end);
            true
        }
        None => false,
    }
}

/// The comparison as text: each answer under its model's id, then the synthesis.
fn render(comparison: &Comparison, truncated: bool) -> String {
    let mut text = String::new();
    for answer in &comparison.answers {
        render_answer(&mut text, answer);
    }
    if let Some(synthesis) = &comparison.synthesis {
        render_synthesis(&mut text, synthesis);
    }
    if truncated {
        let _ = write!(
            text,
            "[answers were cut to the result size limit ({}); ask for shorter answers or a lower max_tokens]\n\n",
            setting::MAX_RESULT_CHARS
        );
    }
    match comparison.cost_usd {
        Some(cost) => {
            let _ = write!(text, "[total ${cost:.6}]");
        }
        None => text.push_str("[total cost unknown: the catalog prices none of these models]"),
    }
    text
}

fn render_answer(text: &mut String, answer: &Answer) {
    let _ = write!(text, "## {}", answer.model);
    if let Some(stance) = &answer.stance {
        // The heading names the stance; the structured content has it whole.
        let mut shown = stance.clone();
        if cut(&mut shown, SHOWN_STANCE_CHARS) {
            shown.push('…');
        }
        let _ = write!(text, " (stance: {shown})");
    }
    text.push('\n');
    if let Some(error) = &answer.error {
        let _ = write!(text, "[failed: {error}]\n\n");
        return;
    }
    match answer.content.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(content) => text.push_str(content.trim_end()),
        None => text.push_str("(the model returned no text)"),
    }
    text.push_str("\n[");
    let mut facts = Vec::new();
    if let Some(reason) = &answer.finish_reason {
        facts.push(format!("finish_reason {reason}"));
    }
    if let Some(ms) = answer.latency_ms {
        facts.push(format!("{ms} ms"));
    }
    facts.extend(tokens(answer.usage.as_ref()));
    if let Some(cost) = answer.cost_usd {
        facts.push(format!("${cost:.6}"));
    }
    text.push_str(&facts.join(", "));
    text.push_str("]\n\n");
}

fn render_synthesis(text: &mut String, synthesis: &Synthesis) {
    let labels: Vec<String> = synthesis
        .labels
        .iter()
        .map(|(letter, model)| format!("{letter} = {model}"))
        .collect();
    let _ = writeln!(
        text,
        "## Synthesis by {} (answers: {})",
        synthesis.model,
        labels.join(", ")
    );
    if let Some(error) = &synthesis.error {
        let _ = write!(
            text,
            "[the judge failed: {error}; the answers above stand]\n\n"
        );
        return;
    }
    match synthesis
        .content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        Some(content) => text.push_str(content.trim_end()),
        None => text.push_str("(the judge returned no text)"),
    }
    let mut facts: Vec<String> = tokens(synthesis.usage.as_ref()).into_iter().collect();
    if let Some(cost) = synthesis.cost_usd {
        facts.push(format!("${cost:.6}"));
    }
    if !facts.is_empty() {
        let _ = write!(text, "\n[{}]", facts.join(", "));
    }
    text.push_str("\n\n");
}

fn tokens(usage: Option<&TokenUsage>) -> Option<String> {
    let usage = usage?;
    match (usage.prompt_tokens, usage.completion_tokens) {
        (Some(p), Some(c)) => Some(format!("tokens {p} prompt + {c} completion")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::args::decode;

    #[test]
    fn cutting_keeps_whole_characters_and_says_so() {
        let mut text = "héllo".to_owned();
        assert!(cut(&mut text, 2));
        assert_eq!(text, "hé");
        assert!(!cut(&mut text, 2));
    }

    proptest::proptest! {
        /// Whatever a client sends, decoding it ends in a value or an error, never a panic.
        #[test]
        fn any_arguments_are_accepted_or_refused_without_panicking(arguments in crate::proptest_strategies::json_object()) {
            let _ = decode::<CompareModelsArgs>(arguments).map(CompareRequest::from);
        }
    }
}
