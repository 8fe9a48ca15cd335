//! Asking several models at once (`compare_models`): every model checked and the whole
//! run's worst case held to the caller's budget before anything is sent, the answers run
//! side by side (one failing leaves the others), each reported as it finishes, then an
//! optional judge reads them anonymised as Answer A, B, ... and writes a synthesis. No MCP
//! types: the tool layer (src/mcp/compare.rs) decodes and renders around it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use crate::chat::{
    ChatError, ChatInput, ChatService, Progress, ProgressSink, ProgressUpdate, new_messages,
};
use crate::spend::{CallSpend, Quote};
use crate::vultr::chat::{ChatOptions, Content, Message, Role, TokenUsage};

/// Fewest models a comparison asks.
pub const MIN_MODELS: usize = 2;
/// Most models a comparison asks.
pub const MAX_MODELS: usize = 6;
/// Longest stance, in characters.
pub const MAX_STANCE_CHARS: usize = 2_000;
/// What the judge is told to do.
const JUDGE_INSTRUCTIONS: &str = "You compare answers that different assistants gave to the same question. They are shown anonymised as Answer A, Answer B, and so on; refer to them only by those letters. Write a synthesis: where the answers agree, where they disagree, which answer you find best and why, and the best combined answer to the question.";

/// A comparison as asked for.
#[derive(Debug, Clone, Default)]
pub struct CompareRequest {
    /// A single user message (instead of `messages`).
    pub prompt: Option<String>,
    /// The conversation, OpenAI style (instead of `prompt`).
    pub messages: Option<Vec<Message>>,
    /// The models to ask: 2 to 6 distinct chat model ids.
    pub models: Vec<String>,
    /// One stance per model, added to its system prompt.
    pub stances: Option<Vec<String>>,
    /// The model that writes the synthesis, if any.
    pub judge: Option<String>,
    /// Most tokens per answer (and for the synthesis).
    pub max_tokens: Option<u32>,
    /// Most the whole run may cost in USD, checked before anything is sent.
    pub budget_usd: Option<f64>,
    /// A system instruction sent before `prompt`.
    pub system: Option<String>,
    /// Sampling temperature of the answers.
    pub temperature: Option<f64>,
    /// The subscription whose key to use.
    pub subscription: Option<String>,
}

/// One model's answer, or why it has none.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Answer {
    /// The model asked.
    pub model: String,
    /// The stance it was asked to take.
    pub stance: Option<String>,
    /// What it answered.
    pub content: Option<String>,
    /// Why it stopped: stop, length, ...
    pub finish_reason: Option<String>,
    /// Its token counts.
    pub usage: Option<TokenUsage>,
    /// What it cost in USD.
    pub cost_usd: Option<f64>,
    /// Milliseconds from sending to the end of the answer.
    pub latency_ms: Option<u64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The judge's synthesis, or why it has none.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Synthesis {
    /// The judge.
    pub model: String,
    /// What it wrote.
    pub content: Option<String>,
    /// Its token counts.
    pub usage: Option<TokenUsage>,
    /// What it cost in USD.
    pub cost_usd: Option<f64>,
    /// Which model gave each answer the judge saw, by letter (never shown to the judge).
    pub labels: BTreeMap<String, String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A finished comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// Each model's answer, in the order the models were given.
    pub answers: Vec<Answer>,
    /// The judge's synthesis, when a judge was asked.
    pub synthesis: Option<Synthesis>,
    /// What everything cost in USD, as far as the catalog prices it.
    pub cost_usd: Option<f64>,
}

/// Why a comparison could not run; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The request makes no sense as given; the text names the field.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// A model (or the judge) cannot serve the request; `at` names which.
    #[error("{at}: {error}")]
    Model {
        /// Which argument names it: "`models[1]`" or "`judge`".
        at: String,
        /// Why.
        error: ChatError,
    },
    /// The worst case is above `budget_usd`; nothing was sent.
    #[error(
        "nothing was sent: the worst case of this comparison is ${worst_case_usd:.6} ({parts}), above budget_usd ${budget_usd:.6}. To fit, lower max_tokens{}, ask fewer models, or leave out the judge.",
        match .max_tokens { Some(n) => format!(" (now {n})"), None => " (unset: each model may answer up to its output limit)".to_owned() }
    )]
    OverBudget {
        /// The sum of every request's worst case.
        worst_case_usd: f64,
        /// The caller's budget.
        budget_usd: f64,
        /// Each request's worst case, in words.
        parts: String,
        /// The `max_tokens` given.
        max_tokens: Option<u32>,
    },
    /// A budget was given but the worst case cannot be told; nothing was sent.
    #[error(
        "nothing was sent: budget_usd is given but the worst case of {model} cannot be told ({why}). Pass max_tokens, choose models the catalog prices, or leave out budget_usd (each request is still held to your spend limits)."
    )]
    Unbounded {
        /// The model whose worst case is unknown.
        model: String,
        /// Why it is unknown.
        why: String,
    },
    /// The user's spend rules refused the run (a declined confirmation, a client that
    /// cannot be asked); nothing was sent.
    #[error(transparent)]
    Spend(#[from] crate::spend::SpendError),
    /// Every model failed.
    #[error("every model failed:{}", .0.iter().map(|(m, e)| format!("\n- {m}: {e}")).collect::<String>())]
    AllFailed(Vec<(String, String)>),
}

/// Runs comparisons: built once per process (by `App`) over the chat service, so every
/// request takes its own spend hold.
pub struct Comparer {
    chat: Arc<ChatService>,
}

impl Comparer {
    /// A comparer sending through `chat`.
    pub fn new(chat: Arc<ChatService>) -> Comparer {
        Comparer { chat }
    }

    /// Checks `request`, holds its worst case to `budget_usd`, asks every model at once
    /// (reporting each as it finishes to `progress`), then the judge.
    pub async fn run<S: ProgressSink>(
        &self,
        request: CompareRequest,
        spend: CallSpend,
        progress: Option<S>,
    ) -> Result<Comparison, CompareError> {
        let stances = check_models(&request)?;
        let base = base_messages(&request)?;
        let options = ChatOptions {
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            ..ChatOptions::default()
        };
        let asked: Vec<(String, Option<String>, Vec<Message>)> = request
            .models
            .iter()
            .zip(stances)
            .map(|(model, stance)| {
                let messages = with_stance(base.clone(), stance.as_deref());
                (model.clone(), stance, messages)
            })
            .collect();
        let judge_options = ChatOptions {
            max_tokens: request.max_tokens,
            ..ChatOptions::default()
        };
        let whole = self
            .check_budget(&request, &asked, &options, &judge_options)
            .await?;
        // Held to the caller's limits as one call, and asked about once, before any is sent.
        spend.check_all(whole).await.map_err(CompareError::Spend)?;
        let subscription = request.subscription.as_deref();
        let answers = self
            .answers(&asked, &options, subscription, &spend, progress.as_ref())
            .await;
        if answers.iter().all(|a| a.error.is_some()) {
            return Err(CompareError::AllFailed(
                answers
                    .into_iter()
                    .map(|a| (a.model, a.error.unwrap_or_default()))
                    .collect(),
            ));
        }
        let synthesis = match &request.judge {
            Some(judge) => {
                if let Some(sink) = &progress {
                    let update = ProgressUpdate {
                        tokens: answers.len() as u64 + 1,
                        message: format!("judging: {judge}"),
                    };
                    sink.clone().send(update).await;
                }
                let question = question_of(&base);
                Some(
                    self.judge(
                        judge,
                        &question,
                        &answers,
                        &judge_options,
                        subscription,
                        spend,
                    )
                    .await,
                )
            }
            None => None,
        };
        let costs = answers
            .iter()
            .map(|a| a.cost_usd)
            .chain(synthesis.iter().map(|s| s.cost_usd));
        let cost_usd = costs
            .flatten()
            .fold(None, |sum, c| Some(sum.unwrap_or(0.0) + c));
        Ok(Comparison {
            answers,
            synthesis,
            cost_usd,
        })
    }

    /// Every model checked against the catalog, and the sum of every request's worst case
    /// (the judge's prompt holding every answer at its longest), held to the budget when
    /// one is given: the whole run's quote.
    async fn check_budget(
        &self,
        request: &CompareRequest,
        asked: &[(String, Option<String>, Vec<Message>)],
        options: &ChatOptions,
        judge_options: &ChatOptions,
    ) -> Result<Quote, CompareError> {
        let subscription = request.subscription.as_deref();
        let mut quotes = Vec::with_capacity(asked.len() + 1);
        let mut longest = Vec::with_capacity(asked.len());
        for (i, (model, stance, messages)) in asked.iter().enumerate() {
            let at = || format!("`models[{i}]`");
            let worst = self
                .chat
                .worst_case(model, messages.clone(), options, subscription, 0)
                .await
                .map_err(|error| CompareError::Model { at: at(), error })?;
            quotes.push(worst.quote);
            if request.judge.is_some() {
                longest.push((worst.longest_answer, stance.clone()));
            }
        }
        if let Some(judge) = &request.judge {
            // The judge's prompt: the question and the stances as sent, plus every answer
            // at its longest, counted rather than written out.
            let empty = longest
                .iter()
                .map(|(_, stance)| (stance.clone(), String::new()))
                .collect::<Vec<_>>();
            let answers = longest
                .iter()
                .map(|(tokens, _)| tokens.unwrap_or(0))
                .fold(0u64, u64::saturating_add);
            let messages = judge_messages(&question_of(&asked[0].2), &empty);
            let quote = self
                .chat
                .worst_case(judge, messages, judge_options, subscription, answers)
                .await
                .map_err(|error| CompareError::Model {
                    at: "`judge`".to_owned(),
                    error,
                })?
                .quote;
            quotes.push(quote);
        }
        let label = whole_label(request);
        let unbounded_answer = longest
            .iter()
            .zip(&request.models)
            .find(|((tokens, _), _)| tokens.is_none())
            .map(|(_, model)| model);
        const UNBOUNDED_ANSWER: &str = "the catalog states no output limit for it, so the judge's prompt holding its answer cannot be bounded; pass max_tokens";
        let Some(budget_usd) = request.budget_usd else {
            let total = quotes.iter().map(|q| q.worst_case_usd).sum::<Option<f64>>();
            return Ok(match (total, unbounded_answer) {
                (Some(usd), None) => Quote::at_most(&label, usd),
                (_, Some(model)) => {
                    Quote::unbounded(&label, format!("for {model}, {UNBOUNDED_ANSWER}"))
                }
                (None, None) => Quote::unbounded(
                    &label,
                    "the worst case of one of its requests cannot be told",
                ),
            });
        };
        if let Some(model) = unbounded_answer {
            return Err(CompareError::Unbounded {
                model: model.clone(),
                why: UNBOUNDED_ANSWER.to_owned(),
            });
        }
        let mut worst_case_usd = 0.0;
        let mut parts = Vec::with_capacity(quotes.len());
        for (i, quote) in quotes.iter().enumerate() {
            let Some(usd) = quote.worst_case_usd else {
                return Err(CompareError::Unbounded {
                    model: quote.model.clone(),
                    why: quote.unbounded_because.clone().unwrap_or_default(),
                });
            };
            worst_case_usd += usd;
            let role = if i < asked.len() { "" } else { "judge " };
            parts.push(format!("{role}{} ${usd:.6}", quote.model));
        }
        if worst_case_usd > budget_usd {
            return Err(CompareError::OverBudget {
                worst_case_usd,
                budget_usd,
                parts: parts.join(", "),
                max_tokens: request.max_tokens,
            });
        }
        Ok(Quote::at_most(&label, worst_case_usd))
    }

    /// Asks every model at once; each answer (or its error) in the order of `asked`,
    /// each reported to `progress` as it finishes.
    async fn answers<S: ProgressSink>(
        &self,
        asked: &[(String, Option<String>, Vec<Message>)],
        options: &ChatOptions,
        subscription: Option<&str>,
        spend: &CallSpend,
        progress: Option<&S>,
    ) -> Vec<Answer> {
        let mut running: FuturesUnordered<_> = asked
            .iter()
            .enumerate()
            .map(|(i, (model, stance, messages))| {
                let input = ChatInput {
                    model: Some(model.clone()),
                    prompt: None,
                    system: None,
                    messages: Some(messages.clone()),
                    options: options.clone(),
                    subscription: subscription.map(str::to_owned),
                    history: Vec::new(),
                    stored_model: None,
                    collection: None,
                    spend: spend.clone(),
                    fallback_models: Vec::new(),
                };
                async move {
                    let mut quiet = Progress::<S>::new(None);
                    let outcome = self.chat.complete(input, &mut quiet).await;
                    (i, answer_of(model, stance.clone(), outcome))
                }
            })
            .collect();
        let total = asked.len();
        let mut answers: Vec<Option<Answer>> = vec![None; total];
        let mut done = 0;
        while let Some((i, answer)) = running.next().await {
            done += 1;
            if let Some(sink) = progress {
                let verb = if answer.error.is_some() {
                    "failed"
                } else {
                    "answered"
                };
                let update = ProgressUpdate {
                    tokens: done as u64,
                    message: format!("{done}/{total} {verb}: {}", answer.model),
                };
                sink.clone().send(update).await;
            }
            answers[i] = Some(answer);
        }
        answers.into_iter().flatten().collect()
    }

    /// The judge's synthesis of the answers that came, anonymised; its failure is
    /// reported in its place.
    async fn judge(
        &self,
        judge: &str,
        question: &str,
        answers: &[Answer],
        options: &ChatOptions,
        subscription: Option<&str>,
        spend: CallSpend,
    ) -> Synthesis {
        let shown: Vec<&Answer> = answers.iter().filter(|a| a.error.is_none()).collect();
        let labels: BTreeMap<String, String> = shown
            .iter()
            .enumerate()
            .map(|(i, a)| (letter(i), a.model.clone()))
            .collect();
        let texts: Vec<(Option<String>, String)> = shown
            .iter()
            .map(|a| (a.stance.clone(), a.content.clone().unwrap_or_default()))
            .collect();
        let input = ChatInput {
            model: Some(judge.to_owned()),
            prompt: None,
            system: None,
            messages: Some(judge_messages(question, &texts)),
            options: options.clone(),
            subscription: subscription.map(str::to_owned),
            history: Vec::new(),
            stored_model: None,
            collection: None,
            spend,
            fallback_models: Vec::new(),
        };
        let mut quiet = Progress::<NoSink>::new(None);
        match self.chat.complete(input, &mut quiet).await {
            Ok(outcome) => Synthesis {
                model: judge.to_owned(),
                content: outcome.reply.content,
                usage: outcome.reply.usage,
                cost_usd: outcome.cost_usd,
                labels,
                error: None,
            },
            Err(error) => Synthesis {
                model: judge.to_owned(),
                content: None,
                usage: None,
                cost_usd: None,
                labels,
                error: Some(error.to_string()),
            },
        }
    }
}

/// The models of a comparison in one line, as the user is asked about it: `glm-5.2,
/// kimi-k2-instruct (judge glm-5.2)`.
fn whole_label(request: &CompareRequest) -> String {
    let mut label = request.models.join(", ");
    if let Some(judge) = &request.judge {
        let _ = write!(label, " (judge {judge})");
    }
    label
}

/// A progress sink nobody listens to (the judge's stream reports nothing of its own).
#[derive(Clone)]
struct NoSink;

impl ProgressSink for NoSink {
    async fn send(self, _update: ProgressUpdate) {}
}

/// The stances, one per model (each `None` without stances), once the models are 2 to 6
/// distinct ids.
fn check_models(request: &CompareRequest) -> Result<Vec<Option<String>>, CompareError> {
    let invalid = |m: String| Err(CompareError::Invalid(m));
    let models = &request.models;
    if !(MIN_MODELS..=MAX_MODELS).contains(&models.len()) {
        return invalid(format!(
            "`models` must list {MIN_MODELS} to {MAX_MODELS} model ids (list_models shows them), not {}",
            models.len()
        ));
    }
    for (i, model) in models.iter().enumerate() {
        if model.trim().is_empty() {
            return invalid(format!("`models[{i}]` is empty"));
        }
        if let Some(first) = models[..i].iter().position(|m| m == model) {
            return invalid(format!(
                "`models[{i}]` repeats `models[{first}]` ({model}): each model is asked once"
            ));
        }
    }
    if request
        .judge
        .as_deref()
        .is_some_and(|j| j.trim().is_empty())
    {
        return invalid("`judge` is empty: name a model id, or leave judge out".to_owned());
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return invalid(format!("`temperature` must be between 0 and 2, got {t}"));
    }
    if request.max_tokens == Some(0) {
        return invalid("`max_tokens` must be at least 1".to_owned());
    }
    if let Some(budget) = request.budget_usd
        && !(budget.is_finite() && budget > 0.0)
    {
        return invalid(format!("`budget_usd` must be above 0, not {budget}"));
    }
    let Some(stances) = &request.stances else {
        return Ok(vec![None; models.len()]);
    };
    if stances.len() != models.len() {
        return invalid(format!(
            "`stances` must give exactly one stance per model: {} models, {} stances",
            models.len(),
            stances.len()
        ));
    }
    if let Some(i) = stances
        .iter()
        .position(|s| s.chars().count() > MAX_STANCE_CHARS)
    {
        return invalid(format!(
            "`stances[{i}]` is longer than {MAX_STANCE_CHARS} characters"
        ));
    }
    Ok(stances
        .iter()
        .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
        .collect())
}

/// The messages every model gets: `prompt` after `system`, or `messages` as given,
/// checked as `chat_completion` checks them.
fn base_messages(request: &CompareRequest) -> Result<Vec<Message>, CompareError> {
    new_messages(
        request.prompt.clone(),
        request.system.clone(),
        request.messages.clone(),
        &[],
    )
    .map_err(|error| match error {
        ChatError::Invalid(problem) => CompareError::Invalid(problem),
        other => CompareError::Invalid(other.to_string()),
    })
}

/// `messages` with `stance` added to the system prompt (a system message put first when
/// there is none).
fn with_stance(mut messages: Vec<Message>, stance: Option<&str>) -> Vec<Message> {
    let Some(stance) = stance else {
        return messages;
    };
    let line = format!("Take this stance: {stance}");
    match messages.first_mut() {
        Some(Message {
            role: Role::System,
            content: Some(Content::Text(system)),
            ..
        }) => {
            system.push_str("\n\n");
            system.push_str(&line);
        }
        _ => messages.insert(0, Message::text(Role::System, line)),
    }
    messages
}

/// The question as the judge reads it: the conversation's texts, one message a
/// paragraph (a lone user message as it is).
fn question_of(messages: &[Message]) -> String {
    let text = |m: &Message| match &m.content {
        Some(Content::Text(text)) => text.clone(),
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    };
    let said: Vec<&Message> = messages
        .iter()
        .filter(|m| m.role != Role::System && m.role != Role::Tool)
        .collect();
    if let [only] = said.as_slice() {
        return text(only);
    }
    said.iter()
        .map(|m| {
            let role = if m.role == Role::User {
                "user"
            } else {
                "assistant"
            };
            format!("{role}: {}", text(m))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// What the judge is sent: its instructions, then the question and each answer under its
/// letter (with the stance it was asked to argue), never a model id.
fn judge_messages(question: &str, answers: &[(Option<String>, String)]) -> Vec<Message> {
    let mut prompt = format!("Question:\n{question}\n");
    for (i, (stance, content)) in answers.iter().enumerate() {
        let _ = write!(prompt, "\nAnswer {}", letter(i));
        if let Some(stance) = stance {
            let _ = write!(prompt, " (asked to take this stance: {stance})");
        }
        let _ = write!(prompt, ":\n{content}\n");
    }
    vec![
        Message::text(Role::System, JUDGE_INSTRUCTIONS.to_owned()),
        Message::text(Role::User, prompt),
    ]
}

/// "A", "B", ... for the answer at `index` (at most [`MAX_MODELS`]).
fn letter(index: usize) -> String {
    char::from(b'A' + u8::try_from(index % 26).unwrap_or(0)).to_string()
}

/// One model's outcome as its answer.
fn answer_of(
    model: &str,
    stance: Option<String>,
    outcome: Result<crate::chat::ChatOutcome, ChatError>,
) -> Answer {
    match outcome {
        Ok(outcome) => Answer {
            model: model.to_owned(),
            stance,
            content: outcome.reply.content,
            finish_reason: outcome.reply.finish_reason,
            usage: outcome.reply.usage,
            cost_usd: outcome.cost_usd,
            latency_ms: Some(outcome.latency_ms),
            error: None,
        },
        Err(error) => Answer {
            model: model.to_owned(),
            stance,
            content: None,
            finish_reason: None,
            usage: None,
            cost_usd: None,
            latency_ms: None,
            error: Some(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(models: &[&str]) -> CompareRequest {
        CompareRequest {
            prompt: Some("Tabs or spaces?".to_owned()),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..CompareRequest::default()
        }
    }

    #[test]
    fn models_are_two_to_six_distinct_ids_and_stances_one_per_model() {
        let refused = |request: CompareRequest| check_models(&request).unwrap_err().to_string();
        assert!(refused(request(&["a"])).contains("2 to 6 model ids"));
        assert!(refused(request(&["a", "b", "c", "d", "e", "f", "g"])).contains("not 7"));
        assert!(refused(request(&["a", "b", "a"])).contains("`models[2]` repeats `models[0]`"));
        let mut stances = request(&["a", "b"]);
        stances.stances = Some(vec!["for".to_owned()]);
        assert!(refused(stances.clone()).contains("2 models, 1 stances"));
        stances.stances = Some(vec!["for".to_owned(), " ".to_owned()]);
        assert_eq!(
            check_models(&stances).unwrap(),
            [Some("for".to_owned()), None]
        );
        let mut budget = request(&["a", "b"]);
        budget.budget_usd = Some(0.0);
        assert!(refused(budget).contains("budget_usd"));
    }

    #[test]
    fn a_stance_joins_the_system_prompt_or_becomes_one() {
        let mut asked = request(&["a", "b"]);
        let plain = base_messages(&asked).unwrap();
        let argued = with_stance(plain.clone(), Some("argue for"));
        assert_eq!(argued.len(), 2);
        assert_eq!(
            argued[0].content,
            Some(Content::Text("Take this stance: argue for".to_owned()))
        );
        asked.system = Some("Be brief.".to_owned());
        let argued = with_stance(base_messages(&asked).unwrap(), Some("argue against"));
        assert_eq!(
            argued[0].content,
            Some(Content::Text(
                "Be brief.\n\nTake this stance: argue against".to_owned()
            ))
        );
        assert_eq!(with_stance(plain.clone(), None), plain);
    }

    #[test]
    fn the_judge_reads_letters_and_stances_never_model_ids() {
        let messages = judge_messages(
            "Tabs or spaces?",
            &[
                (Some("argue for".to_owned()), "Tabs.".to_owned()),
                (None, "Spaces.".to_owned()),
            ],
        );
        let Some(Content::Text(prompt)) = &messages[1].content else {
            panic!("a text prompt")
        };
        assert_eq!(
            prompt,
            "Question:\nTabs or spaces?\n\nAnswer A (asked to take this stance: argue for):\nTabs.\n\nAnswer B:\nSpaces.\n"
        );
        assert_eq!(messages[0].role, Role::System);
    }

    #[test]
    fn a_conversation_is_shown_to_the_judge_turn_by_turn() {
        let messages: Vec<Message> = serde_json::from_value(serde_json::json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Pick a number."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": "Why?"}
        ]))
        .unwrap();
        assert_eq!(
            question_of(&messages),
            "user: Pick a number.\n\nassistant: 7\n\nuser: Why?"
        );
        assert_eq!(question_of(&messages[..2]), "Pick a number.");
    }
}
