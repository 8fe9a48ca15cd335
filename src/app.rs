//! The application core, built once per process and shared (behind an `Arc`) by every MCP
//! session: the Vultr clients, the catalog and key caches, the concurrency limit and the
//! conversation store. Transports create one MCP handler per session over it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;

use crate::catalog::{CATALOG_TTL, ModelCatalog};
use crate::config::Config;
use crate::conversations::{ConversationStore, Retention, StoreError, StoreLocation};
use crate::keys::InferenceKeys;
use crate::secret::KnownKeys;
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
    pub(crate) conversation_location: StoreLocation,
    conversation_retention: Retention,
    /// The conversation store, opened on first use; an open that failed is tried again.
    conversation_store: Mutex<Option<Arc<ConversationStore>>>,
}

impl App {
    /// The core for `config`. Nothing is fetched or opened until a tool needs it.
    pub fn new(config: Config) -> Arc<App> {
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
        let inference = InferenceClient::new(
            http,
            config.inference_base_url.clone(),
            limits.account_timeout,
            limits.chat_timeout,
        );
        Arc::new(App {
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
            conversation_location: config
                .conversations
                .as_deref()
                .map_or_else(StoreLocation::default_file, StoreLocation::parse),
            conversation_retention: Retention {
                max_conversations: config.max_conversations,
                max_age: config.conversation_max_age,
            },
            conversation_store: Mutex::new(None),
        })
    }

    /// The conversation store, opened (and pruned) on first use and then kept. An open
    /// that fails is not kept: the next use tries again (the lock, the full disk or the
    /// bad path may be gone by then).
    pub(crate) fn conversations(&self) -> Result<Arc<ConversationStore>, StoreError> {
        // Held while opening, so uses arriving meanwhile wait for this open instead of
        // starting their own.
        let mut slot = self
            .conversation_store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = slot.as_ref() {
            return Ok(Arc::clone(store));
        }
        let store =
            ConversationStore::open(&self.conversation_location, self.conversation_retention)?;
        if let Err(error) = store.prune() {
            tracing::warn!(%error, "could not prune old conversations");
        }
        let store = Arc::new(store);
        *slot = Some(Arc::clone(&store));
        Ok(store)
    }
}
