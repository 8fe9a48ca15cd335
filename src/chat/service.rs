//! Running one chat completion: checked, sent (streamed when the model streams, with one
//! more try when a discovered key is refused), timed and priced.

use std::sync::Arc;

use tokio::time::Instant;

use super::model_check::check_model;
use super::price::cost_usd;
use super::progress::{Progress, ProgressSink};
use super::quote::{does_not_fit, quote, quote_with};
use super::validate::{check_options, new_messages, without_repeats};
use super::{ChatError, ChatInput, ChatOutcome, Skipped};
use crate::catalog::ModelCatalog;
use crate::keys::{InferenceKey, InferenceKeys, KeySource};
use crate::secret::KnownKeys;
use crate::spend::{Quote, Used};
use crate::vultr::chat::{ChatOptions, ChatReply, ChatRequest, Message};
use crate::vultr::error::VultrError;
use crate::vultr::inference::InferenceClient;
use crate::vultr::models::Model;
use crate::vultr::stream::{CutOff, StreamDeadlines};

/// A request's worst case on a model, before it is sent.
#[derive(Debug, Clone)]
pub struct WorstCase {
    /// The most it can cost.
    pub quote: Quote,
    /// The most tokens its answer can have (`max_tokens`, capped by the catalog's output
    /// limit, else that limit, else the context window); `None` when none is known.
    pub longest_answer: Option<u64>,
}

/// The most fallback models a call may name: each one tried costs the caller a wait.
pub const MAX_FALLBACK_MODELS: usize = 5;

/// Runs chat completions: built once per process (by `App`), shared by the chat turns,
/// tasks and delegation.
pub struct ChatService {
    /// Which inference key to use.
    pub(crate) keys: Arc<InferenceKeys>,
    /// The inference API.
    pub(crate) inference: InferenceClient,
    /// The catalog requests are checked against.
    pub(crate) catalog: Arc<ModelCatalog>,
    /// Keys to redact from messages compared and errors logged.
    pub(crate) known_keys: Arc<KnownKeys>,
    /// The model of a call that names none.
    pub(crate) default_model: Option<String>,
    /// How long a stream may take to start, stall, and last.
    pub(crate) deadlines: StreamDeadlines,
}

impl ChatService {
    /// Checks `input`, sends it after its history, and returns the reply with what it
    /// cost and how long it took; a streamed reply reports its progress to `progress`.
    pub async fn complete<S: ProgressSink>(
        &self,
        input: ChatInput,
        progress: &mut Progress<S>,
    ) -> Result<ChatOutcome, ChatError> {
        let ChatInput {
            model,
            prompt,
            system,
            messages,
            options,
            subscription,
            history,
            stored_model,
            collection,
            spend,
            fallback_models,
        } = input;
        let (messages, repeated) = match messages {
            Some(messages) if !history.is_empty() => {
                let (kept, repeated) = without_repeats(messages, &history, &self.known_keys)?;
                (Some(kept), repeated)
            }
            messages => (messages, 0),
        };
        let turn = new_messages(prompt, system, messages, &history)?;
        check_options(&options)?;
        let model = model
            .filter(|m| !m.trim().is_empty())
            .or(stored_model)
            .or_else(|| self.default_model.clone())
            .ok_or(ChatError::NoModel)?;
        let key = self.keys.get(subscription.as_deref()).await?;
        let catalog = self.catalog_for(&key).await;
        let known = match &catalog {
            Some(catalog) => Some(check_model(&model, &options, catalog)?),
            None => None,
        };
        let history_len = history.len();
        let mut messages = history;
        messages.extend(turn);
        let mut request = ChatRequest {
            model,
            messages,
            options,
        };
        let asked = request.model.clone();
        let mut candidates = Vec::with_capacity(fallback_models.len());
        for model in fallback_models {
            let model = model.trim().to_owned();
            if !model.is_empty() && model != asked && !candidates.contains(&model) {
                candidates.push(model);
            }
        }
        if candidates.len() > MAX_FALLBACK_MODELS {
            return Err(ChatError::Invalid(format!(
                "fallback_models names {} models; at most {MAX_FALLBACK_MODELS} may be given: keep the ones you prefer, in order",
                candidates.len()
            )));
        }
        let falls_back = !candidates.is_empty();
        let mut candidates = candidates.into_iter();
        let mut skipped: Vec<Skipped> = Vec::new();
        let mut known = known;
        let started = Instant::now();
        loop {
            match self
                .attempt_on(
                    &request,
                    known,
                    &spend,
                    &key,
                    subscription.as_deref(),
                    collection.as_deref(),
                    progress,
                )
                .await
            {
                Ok((reply, cut_off, cost_usd)) => {
                    let latency_ms =
                        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let ChatRequest {
                        model: answered_by,
                        mut messages,
                        ..
                    } = request;
                    return Ok(ChatOutcome {
                        model: asked,
                        answered_by,
                        skipped,
                        turn: messages.split_off(history_len),
                        reply,
                        cut_off,
                        cost_usd,
                        latency_ms,
                        repeated,
                        truncated: false,
                    });
                }
                // No fallback configured, or the first model failed in a way any model would
                // (a bad request, a refused key, the caller's spend rules): its own error.
                Err(failed)
                    if !falls_back || (failed.unavailable.is_none() && skipped.is_empty()) =>
                {
                    return Err(failed.error);
                }
                // The caller's spend rules answer for the whole call (a limit, the user's no,
                // a question to answer first), on a fallback model too.
                Err(Failed {
                    error: error @ ChatError::Spend(_),
                    ..
                }) => return Err(error),
                Err(Failed {
                    error,
                    unavailable,
                    charged_usd,
                }) => {
                    let moves_on = unavailable.is_some();
                    skipped.push(Skipped {
                        model: request.model.clone(),
                        reason: unavailable.unwrap_or_else(|| error.to_string()),
                        charged_usd,
                    });
                    if !moves_on {
                        return Err(ChatError::NoneAnswered { tried: skipped });
                    }
                }
            }
            // The next fallback model that can serve the request, passing over the others.
            loop {
                let Some(next) = candidates.next() else {
                    return Err(ChatError::NoneAnswered { tried: skipped });
                };
                request.model = next;
                match &catalog {
                    None => {
                        known = None;
                        break;
                    }
                    Some(catalog) => match serves(&request, catalog) {
                        Ok(model) => {
                            known = Some(model);
                            break;
                        }
                        Err(reason) => skipped.push(Skipped {
                            model: request.model.clone(),
                            reason,
                            charged_usd: None,
                        }),
                    },
                }
            }
        }
    }

    /// One model's try at the request, under its own hold on the caller's spend: the
    /// reply with its cost, or why it failed and whether the next model may be asked.
    #[allow(clippy::too_many_arguments)]
    async fn attempt_on<S: ProgressSink>(
        &self,
        request: &ChatRequest,
        known: Option<&Model>,
        spend: &crate::spend::CallSpend,
        key: &InferenceKey,
        subscription: Option<&str>,
        collection: Option<&str>,
        progress: &mut Progress<S>,
    ) -> Result<(ChatReply, Option<CutOff>, Option<f64>), Failed> {
        // RAG chat is not known to stream: it is always asked for in one piece.
        let streaming = collection.is_none() && known.is_some_and(|m| m.streaming == Some(true));
        // The caller's spend rules (a limit, the user's no, a question to answer first)
        // hold whatever the model: never a reason to try the next one.
        let quote = quote(request, known, collection.is_some());
        let worst_case_usd = quote.worst_case_usd;
        let mut hold = spend.hold(quote).await.map_err(|error| Failed {
            error: error.into(),
            unavailable: None,
            charged_usd: None,
        })?;
        hold.sending();
        let mut streamed = false;
        let sent = self
            .send(
                request,
                key.clone(),
                subscription,
                Route {
                    streaming,
                    collection,
                },
                progress,
                &mut streamed,
            )
            .await;
        let (reply, cut_off) = match sent {
            Ok(answer) => answer,
            Err(error) => {
                // Tokens that streamed were generated (and billed) even though the stream
                // then failed: only a refusal before any output costs nothing.
                let charged_usd = if error.was_refused() && !streamed {
                    hold.release().await;
                    None
                } else {
                    // Dropped once sent, the hold is charged its worst case.
                    worst_case_usd
                };
                // Never an answer stitched from two models: once part of this one reached
                // the caller, its failure is the call's.
                let unavailable = if streamed { None } else { unavailable(&error) };
                return Err(Failed {
                    error,
                    unavailable,
                    charged_usd,
                });
            }
        };
        let cost_usd = known.and_then(|m| cost_usd(m, reply.usage.as_ref()));
        let usage = reply.usage.as_ref();
        hold.settle(Used {
            usd: cost_usd,
            prompt_tokens: usage.and_then(|u| u.prompt_tokens),
            completion_tokens: usage.and_then(|u| u.completion_tokens),
        })
        .await;
        Ok((reply, cut_off, cost_usd))
    }

    /// What `messages` with `options` could cost on `model` at most, once the model is known
    /// to serve them (a chat model of the catalog that takes these options), their prompt to
    /// hold `quoted_tokens` more (answers quoted to a judge), and how long its answer can be:
    /// what a caller fanning out to several models checks against its budget before sending
    /// any. The worst case is unbounded when the catalog cannot be read.
    pub async fn worst_case(
        &self,
        model: &str,
        messages: Vec<Message>,
        options: &ChatOptions,
        subscription: Option<&str>,
        quoted_tokens: u64,
    ) -> Result<WorstCase, ChatError> {
        let key = self.keys.get(subscription).await?;
        let catalog = self.catalog_for(&key).await;
        let known = match &catalog {
            Some(catalog) => Some(check_model(model, options, catalog)?),
            None => None,
        };
        let limit = known.and_then(|m| m.max_output_tokens.or(m.context_window));
        let longest_answer = match (options.max_tokens.map(u64::from), limit) {
            (Some(asked), Some(limit)) => Some(asked.min(limit)),
            (asked, limit) => asked.or(limit),
        };
        let request = ChatRequest {
            model: model.to_owned(),
            messages,
            options: options.clone(),
        };
        Ok(WorstCase {
            quote: quote_with(&request, known, false, quoted_tokens),
            longest_answer,
        })
    }

    /// The catalog, to check the request against; `None` when it cannot be read, and
    /// then the request goes ahead unchecked: Vultr will judge it.
    async fn catalog_for(&self, key: &InferenceKey) -> Option<Arc<Vec<Model>>> {
        match self.catalog.models(Some(&key.key)).await {
            Ok(catalog) => Some(catalog),
            Err(error) => {
                let error = self.known_keys.redact(&error.to_string());
                tracing::warn!(%error, "model catalog unavailable; sending the request unchecked");
                None
            }
        }
    }

    /// Sends the request; a discovered key that is refused is looked up again, once.
    async fn send<S: ProgressSink>(
        &self,
        request: &ChatRequest,
        key: InferenceKey,
        subscription: Option<&str>,
        route: Route<'_>,
        progress: &mut Progress<S>,
        streamed: &mut bool,
    ) -> Result<(ChatReply, Option<CutOff>), ChatError> {
        match self.attempt(&key, request, route, progress, streamed).await {
            Err(VultrError::Status { status: 401, .. }) if self.keys.forget(&key).await => {
                tracing::info!("inference key refused; reading the subscription's key again");
                let fresh = self.keys.get(subscription).await?;
                let outcome = self
                    .attempt(&fresh, request, route, progress, streamed)
                    .await;
                outcome.map_err(|e| upstream_error(e, &fresh))
            }
            outcome => outcome.map_err(|e| upstream_error(e, &key)),
        }
    }

    /// One request to Vultr: over a collection (RAG), else streamed when the model can
    /// stream.
    async fn attempt<S: ProgressSink>(
        &self,
        key: &InferenceKey,
        request: &ChatRequest,
        Route {
            streaming,
            collection,
        }: Route<'_>,
        progress: &mut Progress<S>,
        streamed: &mut bool,
    ) -> Result<(ChatReply, Option<CutOff>), VultrError> {
        if let Some(collection) = collection {
            return self
                .inference
                .rag_chat(&key.key, request, collection)
                .await
                .map(|r| (r, None));
        }
        if !streaming {
            return self
                .inference
                .chat(&key.key, request)
                .await
                .map(|r| (r, None));
        }
        self.inference
            .chat_stream(&key.key, request, self.deadlines, |so_far| {
                *streamed = true;
                progress.on_chunk(so_far)
            })
            .await
    }
}

/// A model's failed try: the error, and when the model was unavailable (so the next
/// model may be asked), why, in a few words.
struct Failed {
    error: ChatError,
    unavailable: Option<String>,
    /// What the caller's ledger is charged for the try (its worst case, when it was sent
    /// and not refused).
    charged_usd: Option<f64>,
}

/// Why the model could not answer, in a few words, when that is a reason to ask the next
/// one: overloaded (429 after the retries), failing (5xx), or silent until a deadline.
/// Other errors (a refused key, a bad request, a broken stream) would fail on any model.
fn unavailable(error: &ChatError) -> Option<String> {
    let ChatError::Upstream(error) = error else {
        return None;
    };
    match error {
        VultrError::Status {
            status, message, ..
        } if *status == 429 || (500..=599).contains(status) => Some(format!(
            "HTTP {status}{}",
            message
                .as_deref()
                .map(|m| {
                    let m = m.trim_end_matches('.');
                    // Vultr's message may end with the code again: "overloaded (503)".
                    let m = m.strip_suffix(&format!(" ({status})")).unwrap_or(m);
                    format!(" ({m})")
                })
                .unwrap_or_default()
        )),
        VultrError::Timeout { after, .. } => Some(format!(
            "no answer within {}",
            crate::vultr::error::human_duration(*after)
        )),
        VultrError::NoFirstChunk { after, .. } => Some(format!(
            "no first token within {}",
            crate::vultr::error::human_duration(*after)
        )),
        _ => None,
    }
}

/// The catalog entry of a fallback model that can serve `request`, or why it cannot, in a
/// few words: not a ready chat model, without what the request uses (tools, reasoning,
/// its max_tokens), or too small a context window.
fn serves<'c>(request: &ChatRequest, catalog: &'c [Model]) -> Result<&'c Model, String> {
    let model =
        check_model(&request.model, &request.options, catalog).map_err(|error| match error {
            ChatError::UnknownModel { .. } => "not in the model catalog".to_owned(),
            ChatError::NotAChatModel { .. } => "not a chat model".to_owned(),
            ChatError::ToolsUnsupported { .. } => "does not support tool calling".to_owned(),
            ChatError::MaxTokensTooHigh { max, given, .. } => {
                format!("generates at most {max} tokens, and max_tokens is {given}")
            }
            ChatError::NoReasoning { .. } => "offers no reasoning_effort".to_owned(),
            ChatError::ReasoningEffort { given, .. } => {
                format!("does not offer reasoning_effort {given}")
            }
            other => other.to_string(),
        })?;
    if !model.ready {
        return Err("not ready (the catalog marks it so)".to_owned());
    }
    match does_not_fit(request, model) {
        Some(reason) => Err(reason),
        None => Ok(model),
    }
}

/// Where a request goes: over a collection (RAG chat), streamed, or in one piece.
#[derive(Clone, Copy)]
struct Route<'a> {
    streaming: bool,
    collection: Option<&'a str>,
}

/// A refused key read from a subscription needs other advice than a configured one.
fn upstream_error(error: VultrError, key: &InferenceKey) -> ChatError {
    match (error, &key.source) {
        (
            VultrError::Status {
                status: 401,
                message,
                ..
            },
            KeySource::Discovered(_),
        ) => ChatError::SubscriptionKeyRefused { message },
        (error, _) => ChatError::Upstream(error),
    }
}
