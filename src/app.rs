//! The application core, the composition root: built once per process from plain
//! `Settings` and shared (behind an `Arc`) by every MCP session. It builds each service
//! once (chat turns, conversations, models, subscriptions, delegation, tasks), holding only
//! the parts each needs, and the limits every call passes. Transports create one MCP
//! handler per session over it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::audio::Audio;
use crate::catalog::{CATALOG_TTL, ModelCatalog};
use crate::chat::ChatService;
use crate::collections::Collections;
use crate::compare::Comparer;
use crate::conversations::{ChatTurns, Conversations};
use crate::delegate::{self, Delegator, Downstream, ServersFileError};
use crate::fair_share::CallShares;
use crate::images::Images;
use crate::keys::InferenceKeys;
use crate::media::Media;
use crate::models::Models;
use crate::observe::{ObserveError, Observer};
use crate::rate_limit::CallRateLimit;
use crate::retrieval::Retrieval;
use crate::secret::KnownKeys;
use crate::settings::{Settings, ToolSelection, ToolsetUnavailable};
use crate::spend::{Budgets, BudgetsError, Spending};
use crate::store::{self, Retention, SharedSessions, StoreLocation};
use crate::subscriptions::Subscriptions;
use crate::tasks::Tasks;
use crate::vultr::account::AccountClient;
use crate::vultr::http::VultrHttp;
use crate::vultr::inference::InferenceClient;
use crate::vultr::stream::StreamDeadlines;

/// Everything the tools of every session share: one service per capability, built once,
/// and the limits every call passes.
pub struct App {
    /// Chat turns that continue and store conversations.
    pub(crate) turns: ChatTurns,
    /// Several models asked at once (`compare_models`).
    pub(crate) comparer: Comparer,
    /// Each owner's stored conversations.
    pub(crate) conversations: Conversations,
    /// The model catalog.
    pub(crate) models: Models,
    /// The account's subscriptions.
    pub(crate) subscriptions: Subscriptions,
    /// Speech, voices and transcription.
    pub(crate) audio: Audio,
    /// Each principal's vector-store collections.
    pub(crate) collections: Collections,
    /// Rerank and embeddings.
    pub(crate) retrieval: Retrieval,
    /// Image generation.
    pub(crate) images: Images,
    /// Media (speech, images) the tools made, for `vultr://media/{id}`.
    pub(crate) media: Media,
    /// The delegation loop, when delegate servers are configured.
    pub(crate) delegator: Option<Delegator>,
    /// Long calls of clients that accept tasks, kept where conversations are.
    pub(crate) tasks: Arc<Tasks>,
    /// Keys to redact from everything shown.
    pub(crate) known_keys: Arc<KnownKeys>,
    /// Longest tool result text.
    pub(crate) max_result_chars: usize,
    /// The models a chat or delegation falls back to when it names none of its own.
    pub(crate) fallback_models: Vec<String>,
    /// The tools listed.
    pub(crate) tools: ToolSelection,
    /// One permit per upstream call allowed to run at once, across all sessions.
    pub(crate) calls: Semaphore,
    /// How many permits `calls` has.
    pub(crate) max_concurrent_calls: usize,
    /// Upstream calls in flight per principal.
    pub(crate) shares: Arc<CallShares>,
    /// The tool calls running or waiting for a permit, so a shutdown can let them finish.
    pub(crate) calls_in_flight: TaskTracker,
    /// Tool calls per principal per minute, when limited.
    pub(crate) rate_limit: Option<CallRateLimit>,
    /// Whether the process serves HTTP (then no call may name local files).
    pub(crate) serves_http: bool,
    /// The legacy HTTP sessions every replica shares, when the store is Postgres.
    pub(crate) legacy_sessions: Option<Arc<SharedSessions>>,
    /// Spend limits, confirmation and the ledger.
    pub(crate) spending: Arc<Spending>,
    /// Where each call's record goes (audit log, metrics, traces).
    pub(crate) observer: Arc<Observer>,
}

impl App {
    /// The core for `settings`. Nothing is fetched or opened until a tool needs it.
    ///
    /// # Panics
    /// When the settings cannot be served; the binary uses [`App::try_new`] to say why.
    pub fn new(settings: Settings) -> Arc<App> {
        Self::try_new(settings).unwrap_or_else(|error| panic!("{error}"))
    }

    /// The core for `settings`, or why they cannot be served (the delegate servers file is
    /// read and checked now; its servers start on first use).
    pub fn try_new(settings: Settings) -> Result<Arc<App>, AppError> {
        let Settings {
            vultr,
            limits,
            calls,
            store,
            tasks,
            delegate,
            tools,
            media,
            http: serving_http,
            operator,
        } = settings;
        let budgets = match &operator.budgets_file {
            Some(path) => Budgets::load(path)?,
            None => Budgets::default(),
        };
        let observer = Arc::new(Observer::new(&operator)?);
        let downstream = match &delegate.servers_file {
            Some(path) => Some(Arc::new(Downstream::new(
                delegate::load(path)?,
                delegate.tool_timeout,
            ))),
            None => None,
        };
        let tools = tools.select(downstream.is_some())?;
        let http = VultrHttp::new(limits.http());
        let known_keys = Arc::new(KnownKeys::default());
        if let Some(key) = &vultr.inference_api_key {
            known_keys.remember(key);
        }
        let account = vultr.api_key.clone().map(|key| {
            AccountClient::new(
                http.clone(),
                vultr.api_base_url.clone(),
                key,
                limits.account_timeout,
                known_keys.clone(),
            )
        });
        let stores = store::open_stores(
            store.location.unwrap_or_else(StoreLocation::default_file),
            Retention {
                max_conversations: store.max_conversations,
                max_age: store.conversation_max_age,
            },
            store.db_pool,
        );
        let inference = InferenceClient::new(
            http,
            vultr.inference_base_url.clone(),
            limits.account_timeout,
            limits.chat_timeout,
        );
        let keys = Arc::new(InferenceKeys::new(
            vultr.inference_api_key.clone(),
            account.clone(),
            vultr.inference_subscription.clone(),
        ));
        let catalog = Arc::new(ModelCatalog::new(inference.clone(), CATALOG_TTL));
        let audio = Audio::new(keys.clone(), inference.clone());
        let collections = Collections::new(inference.clone(), keys.clone(), stores.collections);
        let retrieval = Retrieval::new(
            Models::new(keys.clone(), catalog.clone()),
            keys.clone(),
            inference.clone(),
        );
        let images = Images::new(
            Models::new(keys.clone(), catalog.clone()),
            keys.clone(),
            inference.clone(),
        );
        let chat = Arc::new(ChatService {
            keys: keys.clone(),
            inference,
            catalog: catalog.clone(),
            known_keys: known_keys.clone(),
            default_model: vultr.default_model,
            deadlines: StreamDeadlines {
                first_chunk: limits.first_token_timeout,
                stall: limits.stall_timeout,
                total: limits.chat_timeout,
            },
        });
        let conversations = Conversations::new(stores.conversations, known_keys.clone());
        let spending = Arc::new(Spending::new(
            budgets,
            stores.ledger,
            operator.confirm_above_usd,
            operator.admins,
            limits.chat_timeout + Duration::from_secs(300),
        ));
        Ok(Arc::new(App {
            turns: ChatTurns::new(chat.clone(), conversations.clone()),
            comparer: Comparer::new(chat.clone()),
            conversations,
            models: Models::new(keys, catalog),
            subscriptions: Subscriptions::new(account, vultr.reveal_keys),
            audio,
            collections,
            retrieval,
            images,
            media: Media::new(stores.media, media),
            delegator: downstream
                .map(|servers| Delegator::new(chat, servers, limits.max_result_chars)),
            tasks: Arc::new(
                Tasks::new(stores.tasks, tasks.after, tasks.ttl)
                    .with_max_per_principal(tasks.max_per_principal),
            ),
            known_keys,
            max_result_chars: limits.max_result_chars,
            fallback_models: vultr.fallback_models,
            tools,
            calls: Semaphore::new(calls.max_concurrent),
            max_concurrent_calls: calls.max_concurrent,
            shares: CallShares::new(calls.max_per_principal.unwrap_or_else(|| {
                CallShares::default_share(calls.max_concurrent, serving_http.is_some())
            })),
            calls_in_flight: TaskTracker::new(),
            rate_limit: calls.per_minute.map(CallRateLimit::per_minute),
            serves_http: serving_http.is_some(),
            legacy_sessions: stores.sessions,
            spending,
            observer,
        }))
    }
}

/// Why the settings cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The delegate servers file is missing or wrong.
    #[error(transparent)]
    ServersFile(#[from] ServersFileError),
    /// A toolset was asked for that these settings cannot serve.
    #[error(transparent)]
    Toolset(#[from] ToolsetUnavailable),
    /// The budgets file is missing or wrong.
    #[error(transparent)]
    Budgets(#[from] BudgetsError),
    /// The audit log or metrics cannot be set up.
    #[error(transparent)]
    Observe(#[from] ObserveError),
}

impl App {
    /// Opens (and migrates) the conversation store now instead of at first use. `Err` only
    /// for a store this build must not use (a newer schema); a store that cannot be reached
    /// is logged and tried again at first use.
    pub async fn open_store_now(&self) -> Result<(), crate::store::StoreError> {
        use crate::store::StoreError;
        match self.conversations.store().open().await {
            Ok(_) => Ok(()),
            Err(StoreError::Unavailable(cause))
                if matches!(*cause, StoreError::SchemaTooNew { .. }) =>
            {
                Err(StoreError::Unavailable(cause))
            }
            Err(error @ StoreError::SchemaTooNew { .. }) => Err(error),
            Err(error) => {
                tracing::warn!(%error, "the conversation store could not be opened at start-up; it is tried again when first needed");
                Ok(())
            }
        }
    }

    /// Stops the delegation's downstream servers that are running, waiting (a few seconds
    /// at most) for each child to exit, so none outlives the bridge.
    pub async fn close_downstream(&self) {
        if let Some(delegator) = &self.delegator {
            delegator.servers().close().await;
        }
    }

    /// Upstream connections the process may open at once (one per call running).
    pub fn upstream_connections(&self) -> usize {
        self.max_concurrent_calls
    }

    /// Resolves once no tool call is running or waiting, or after `limit`; true when none is.
    pub async fn calls_finished(&self, limit: std::time::Duration) -> bool {
        self.calls_in_flight.close();
        tokio::time::timeout(limit, self.calls_in_flight.wait())
            .await
            .is_ok()
    }
}
