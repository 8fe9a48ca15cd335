//! The Postgres store, shared by every replica configured with the same URL: conversations
//! (`conversations.rs`), task records (`tasks.rs`), the legacy HTTP sessions
//! (`sessions.rs`) and media (`media.rs`) through one pool; its schema in `schema.rs`, its URL and TLS in
//! `url.rs` and `tls.rs`, its failures as clients see them in `failure.rs`. Every
//! statement but pruning names the owner, so no call reaches another owner's rows.
//!
//! A pool (deadpool-postgres) holds the connections; none waits longer than a few seconds
//! to connect or for a free connection, and a connection the server dropped is replaced
//! on its next use, so the store recovers by itself once Postgres is back.

pub(super) mod schema;
mod tls;
mod url;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::{Lazy, Retention, StoreError, StoreResult};

use failure::{DatabaseError, failure};
use url::Identifying;
pub use url::PostgresUrl;

/// How long a call waits for a free connection, or for a new one to be made (longer when
/// the URL's `connect_timeout` is).
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// The database's clock, in unix seconds, for the statements below.
macro_rules! now {
    () => {
        "EXTRACT(EPOCH FROM statement_timestamp())::bigint"
    };
}

mod collections;
mod conversations;
mod failure;
mod ledger;
mod media;
mod sessions;
mod tasks;

/// What a Postgres store's errors call it: clients learn the kind of store, never which
/// database (the log has that).
const SHOWN_LOCATION: &str = "Postgres database";

/// The Postgres conversation store; share it between tasks (it is `Send + Sync`).
pub struct PostgresStore {
    pool: Pool,
    /// The URL without its password, for the log.
    location: String,
    /// What names the database in a driver's message, hidden from clients.
    identifying: Identifying,
    retention: Retention,
}

impl fmt::Debug for PostgresStore {
    /// Shows where the store is (no password) and its retention.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` with a pool of `pool_size` connections, brings its
    /// schema up to date (refusing one a newer build wrote), and keeps conversations per
    /// `retention`.
    pub async fn open(
        url: &PostgresUrl,
        retention: Retention,
        pool_size: usize,
    ) -> StoreResult<Self> {
        let store = Self::connect(url, retention, pool_size)?;
        store.migrate().await?;
        Ok(store)
    }

    /// The store's pool of up to `pool_size` connections to the database at `url`, none
    /// made yet and the schema untouched.
    pub(super) fn connect(
        url: &PostgresUrl,
        retention: Retention,
        pool_size: usize,
    ) -> StoreResult<Self> {
        let location = url.to_string();
        let (config, tls) = url.config().map_err(|e| {
            failure(
                &location,
                &Identifying::default(),
                "reading its URL",
                e.into(),
            )
        })?;
        let identifying = Identifying::of(&config);
        let failed =
            |source: DatabaseError| failure(&location, &identifying, "connecting to it", source);
        let create_timeout = config
            .get_connect_timeout()
            .map_or(POOL_TIMEOUT, |connect| POOL_TIMEOUT.max(*connect));
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls
            .client_config()
            .map_err(|e| failed(DatabaseError::Message(e)))?
        {
            None => Manager::from_config(config, NoTls, manager_config),
            Some(client_config) => {
                let connector = tokio_postgres_rustls::MakeRustlsConnect::new(client_config);
                Manager::from_config(config, connector, manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(create_timeout))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| failed(DatabaseError::Message(e.to_string())))?;
        Ok(Self {
            pool,
            location,
            identifying,
            retention,
        })
    }

    /// The schema version the database is at (0: never set up), read without changing it.
    pub(super) async fn schema_version(&self) -> StoreResult<i32> {
        const ACTION: &str = "reading its schema version";
        let client = self.client(ACTION).await?;
        schema::version(&client)
            .await
            .map_err(|e| self.db(ACTION, e))
    }

    /// Applies the migrations this build knows, or refuses a newer schema.
    async fn migrate(&self) -> StoreResult<()> {
        const ACTION: &str = "setting up its tables";
        let mut client = self.client("connecting to it").await?;
        match schema::migrate(&mut client)
            .await
            .map_err(|e| self.db(ACTION, e))?
        {
            schema::Migrated::Current => Ok(()),
            schema::Migrated::TooNew(found) => {
                tracing::warn!(store = %self.location, found, "the Postgres database's schema is newer than this build's");
                Err(StoreError::SchemaTooNew {
                    location: SHOWN_LOCATION.to_owned(),
                    found: found.into(),
                    understood: schema::SCHEMA_VERSION.into(),
                })
            }
        }
    }

    /// A connection from the pool.
    async fn client(&self, action: &'static str) -> StoreResult<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| self.failed(action, DatabaseError::from(e)))
    }

    /// Wraps a driver error.
    fn db(&self, action: &'static str, source: tokio_postgres::Error) -> StoreError {
        self.failed(action, source.into())
    }

    /// The store error for a failure while doing `action`.
    fn failed(&self, action: &'static str, source: DatabaseError) -> StoreError {
        failure(&self.location, &self.identifying, action, source)
    }

    /// The one flag a statement returns; `None` when no row matched.
    async fn flag(
        &self,
        action: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Option<bool>> {
        let db = |e| self.db(action, e);
        let client = self.client(action).await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        let row = client.query_opt(&statement, params).await.map_err(db)?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Runs a write; true when it changed a row.
    async fn write(
        &self,
        action: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<bool> {
        Ok(self.write_count(action, sql, params).await? > 0)
    }

    /// Runs a write; how many rows it changed.
    async fn write_count(
        &self,
        action: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<u64> {
        let db = |e| self.db(action, e);
        let client = self.client(action).await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.execute(&statement, params).await.map_err(db)
    }
}

/// One Postgres store opened on first use and shared by the conversations, the tasks and
/// the legacy HTTP sessions of a process, so all three use one pool.
pub(super) type SharedPostgres = Lazy<Arc<PostgresStore>>;

/// The database at `url`, keeping conversations per `retention`, through up to `pool_size`
/// connections, opened on first use; nothing is opened yet.
pub(super) fn shared(url: PostgresUrl, retention: Retention, pool_size: usize) -> SharedPostgres {
    Lazy::new(move || {
        let url = url.clone();
        async move {
            PostgresStore::open(&url, retention, pool_size)
                .await
                .map(Arc::new)
        }
    })
}

/// Opens `shared` (or joins its open) and hands it out as a store of kind `S` (`view`
/// turns it into one): the opener of each lazy store of a Postgres location.
pub(super) fn opener<S: ?Sized + Send + Sync + 'static>(
    shared: &Arc<SharedPostgres>,
    view: fn(Arc<PostgresStore>) -> Arc<S>,
) -> impl Fn() -> BoxFuture<'static, StoreResult<Arc<S>>> + Send + Sync + 'static {
    let shared = Arc::clone(shared);
    move || {
        let shared = Arc::clone(&shared);
        Box::pin(async move { shared.opened().await.map(view) })
    }
}

// The tests start a private Postgres server, which needs a Unix system.
#[cfg(all(test, unix))]
mod tests;
