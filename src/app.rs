//! The application core, built once per process and shared (behind an `Arc`) by every MCP
//! session: the Vultr clients, the catalog and key caches, the concurrency limit and the
//! conversation and task stores. Transports create one MCP handler per session over it.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::catalog::{CATALOG_TTL, ModelCatalog};
use crate::config::Config;
use crate::delegate::{self, Downstream, ServersFileError};
use crate::fair_share::CallShares;
use crate::keys::InferenceKeys;
use crate::rate_limit::CallRateLimit;
use crate::secret::KnownKeys;
use crate::store::{self, ConversationStore, Retention, SharedSessions, StoreLocation};
use crate::tasks::Tasks;
use crate::vultr::account::AccountClient;
use crate::vultr::http::VultrHttp;
use crate::vultr::inference::InferenceClient;
use crate::vultr::stream::StreamDeadlines;

/// Everything the tools of every session share.
pub struct App {
    pub(crate) account: Option<AccountClient>,
    pub(crate) keys: InferenceKeys,
    pub(crate) inference: InferenceClient,
    pub(crate) catalog: ModelCatalog,
    pub(crate) default_model: Option<String>,
    pub(crate) reveal_keys: bool,
    pub(crate) known_keys: Arc<KnownKeys>,
    pub(crate) max_result_chars: usize,
    pub(crate) stream_deadlines: StreamDeadlines,
    /// One permit per tool call allowed to run at once, across all sessions.
    pub(crate) calls: Semaphore,
    /// How many permits `calls` has.
    pub(crate) max_concurrent_calls: usize,
    /// Tool calls in flight per principal.
    pub(crate) shares: Arc<CallShares>,
    /// The tool calls running or waiting for a permit, so a shutdown can let them finish.
    pub(crate) calls_in_flight: TaskTracker,
    /// Tool calls per principal per minute, when limited.
    pub(crate) rate_limit: Option<CallRateLimit>,
    /// The conversation store, opened on first use; an open that failed is tried again.
    pub(crate) conversations: Arc<dyn ConversationStore>,
    /// Long calls of clients that accept tasks, kept where conversations are.
    pub(crate) tasks: Arc<Tasks>,
    /// The legacy HTTP sessions every replica shares, when the store is Postgres.
    pub(crate) legacy_sessions: Option<Arc<SharedSessions>>,
    /// The downstream servers `delegate` uses, when a delegate servers file is set.
    pub(crate) delegation: Option<Arc<Downstream>>,
}

impl App {
    /// The core for `config`. Nothing is fetched or opened until a tool needs it.
    ///
    /// # Panics
    /// When the delegate servers file is bad; the binary uses [`App::try_new`] to say so.
    pub fn new(config: Config) -> Arc<App> {
        Self::try_new(config).unwrap_or_else(|error| panic!("{error}"))
    }

    /// The core for `config`, or why the delegate servers file cannot be used (read and
    /// checked now; its servers start on first use).
    pub fn try_new(config: Config) -> Result<Arc<App>, ServersFileError> {
        let file = config
            .delegate_servers
            .as_ref()
            .filter(|path| !path.as_os_str().is_empty());
        let delegation = match file {
            Some(path) => Some(Arc::new(Downstream::new(
                delegate::load(path)?,
                config.delegate_tool_timeout,
            ))),
            None => None,
        };
        let serving_http = config.http.addr.is_some();
        let config = config.normalized();
        let limits = &config.limits;
        let http = VultrHttp::new(limits.http());
        let known_keys = Arc::new(KnownKeys::default());
        if let Some(key) = config.inference_api_key() {
            known_keys.remember(&key);
        }
        let account = config.api_key().map(|key| {
            AccountClient::new(
                http.clone(),
                config.api_base_url.clone(),
                key,
                limits.account_timeout,
                known_keys.clone(),
            )
        });
        let location = config
            .conversations
            .as_deref()
            .map_or_else(StoreLocation::default_file, StoreLocation::parse);
        let pool_size = usize::try_from(config.db_pool).unwrap_or(usize::MAX);
        let stores = store::open_stores(
            location,
            Retention {
                max_conversations: config.max_conversations,
                max_age: config.conversation_max_age,
            },
            pool_size,
        );
        let inference = InferenceClient::new(
            http,
            config.inference_base_url.clone(),
            limits.account_timeout,
            limits.chat_timeout,
        );
        Ok(Arc::new(App {
            keys: InferenceKeys::new(
                config.inference_api_key(),
                account.clone(),
                config.inference_subscription.clone(),
            ),
            catalog: ModelCatalog::new(inference.clone(), CATALOG_TTL),
            account,
            inference,
            default_model: config.default_model,
            reveal_keys: config.reveal_keys,
            known_keys,
            max_result_chars: limits.max_result_chars,
            stream_deadlines: StreamDeadlines {
                first_chunk: limits.first_token_timeout,
                stall: limits.stall_timeout,
                total: limits.chat_timeout,
            },
            calls: Semaphore::new(limits.max_concurrent_calls as usize),
            max_concurrent_calls: limits.max_concurrent_calls as usize,
            shares: CallShares::new(config.max_calls_per_principal.map_or_else(
                || CallShares::default_share(limits.max_concurrent_calls as usize, serving_http),
                |share| share as usize,
            )),
            calls_in_flight: TaskTracker::new(),
            rate_limit: config
                .rate_limit
                .map(|limit| CallRateLimit::per_minute(limit.per_minute)),
            tasks: Arc::new(
                Tasks::new(stores.tasks, config.task_after, config.task_ttl)
                    .with_max_per_principal(config.max_tasks_per_principal),
            ),
            conversations: stores.conversations,
            legacy_sessions: stores.sessions,
            delegation,
        }))
    }
}

impl App {
    /// Opens (and migrates) the conversation store now instead of at first use. `Err` only
    /// for a store this build must not use (a newer schema); a store that cannot be reached
    /// is logged and tried again at first use.
    pub async fn open_store_now(&self) -> Result<(), crate::store::StoreError> {
        use crate::store::StoreError;
        match self.conversations.open().await {
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
        if let Some(downstream) = &self.delegation {
            downstream.close().await;
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
