//! The Postgres store's schema: migrations applied in order at start-up, each recorded in
//! `schema_migrations`, under an advisory lock so that replicas starting together apply
//! each one exactly once.

use tokio_postgres::Client;

/// The migrations this build knows, version 1 first; a database's version is its highest
/// recorded one.
const MIGRATIONS: [&str; 5] = [V1, V2, V3, V4, V5];

/// The newest schema version this build knows.
pub(in crate::store) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock held while migrating (any constant that other applications sharing
/// the database are unlikely to use).
const MIGRATION_LOCK: i64 = 0x7675_6c74_726d_6370; // "vultrmcp"

/// Version 1: conversations (their owner, title, model, turn count, unix-second times,
/// and `touched`, a recency stamp drawn from one sequence on every create and append) and
/// their messages (JSON text at consecutive positions, with why a cut-off reply stopped).
const V1: &str = "
CREATE SEQUENCE conversation_uses;
CREATE TABLE conversations (
    id         text    PRIMARY KEY,
    owner      text    NOT NULL,
    title      text    NOT NULL,
    model      text    NOT NULL,
    turns      bigint  NOT NULL,
    created_at bigint  NOT NULL,
    updated_at bigint  NOT NULL,
    touched    bigint  NOT NULL DEFAULT nextval('conversation_uses')
);
CREATE INDEX conversations_by_owner ON conversations (owner, touched DESC);
CREATE INDEX conversations_by_update ON conversations (updated_at);
CREATE TABLE messages (
    conversation_id text   NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    body            text   NOT NULL,
    cut_off         text,
    PRIMARY KEY (conversation_id, seq)
);
";

/// Version 2: tasks (long calls a client polls, owned by a principal; times in unix
/// milliseconds from the caller; the outcome as JSON text, kept exactly) and the legacy
/// HTTP sessions every replica can restore (rmcp's session state as JSON text, the
/// principal that opened it, and when it was last used, in unix seconds).
const V2: &str = "
CREATE TABLE tasks (
    id               text    PRIMARY KEY,
    owner            text    NOT NULL,
    status           text    NOT NULL,
    status_message   text,
    outcome          text,
    cancel_requested boolean NOT NULL,
    created_at       bigint  NOT NULL,
    updated_at       bigint  NOT NULL,
    heartbeat_at     bigint  NOT NULL,
    expires_at       bigint  NOT NULL
);
CREATE INDEX tasks_by_expiry ON tasks (expires_at);
CREATE TABLE legacy_sessions (
    id      text   PRIMARY KEY,
    owner   text,
    state   text,
    used_at bigint NOT NULL
);
CREATE INDEX legacy_sessions_by_use ON legacy_sessions (used_at);
";

/// Version 3: media (speech, images) made for a principal, kept until `expires_at` (unix
/// milliseconds), the total per owner bounded by evicting the oldest; and the Vultr
/// vector-store collections each principal created (a collection id belongs to one owner).
const V3: &str = "
CREATE TABLE media (
    id         text   PRIMARY KEY,
    owner      text   NOT NULL,
    mime       text   NOT NULL,
    name       text   NOT NULL,
    size       bigint NOT NULL,
    bytes      bytea  NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX media_by_owner ON media (owner, created_at);
CREATE INDEX media_by_expiry ON media (expires_at);
CREATE TABLE collections (
    id         text   PRIMARY KEY,
    owner      text   NOT NULL,
    name       text   NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX collections_by_owner ON collections (owner, created_at);
";

/// Version 4: the spend ledger. `spend` has one row per principal, model and UTC day
/// (days since 1970-01-01); `spend_reservations` holds the worst cases of calls in flight
/// until they settle, each counting until `expires_at` (unix seconds) at the latest.
const V4: &str = "
CREATE TABLE spend (
    owner             text             NOT NULL,
    day               bigint           NOT NULL,
    model             text             NOT NULL,
    usd               double precision NOT NULL,
    calls             bigint           NOT NULL,
    prompt_tokens     bigint           NOT NULL,
    completion_tokens bigint           NOT NULL,
    PRIMARY KEY (owner, day, model)
);
CREATE INDEX spend_by_day ON spend (day);
CREATE TABLE spend_reservations (
    id         text             PRIMARY KEY,
    owner      text             NOT NULL,
    day        bigint           NOT NULL,
    usd        double precision NOT NULL,
    expires_at bigint           NOT NULL
);
CREATE INDEX spend_reservations_by_owner ON spend_reservations (owner, day);
";

/// The model that answered each reply (a fallback model when the one asked for was
/// unavailable).
const V5: &str = "ALTER TABLE messages ADD COLUMN model text;";

/// What migrating found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Migrated {
    /// The schema is this build's version (now, or already).
    Current,
    /// A newer build wrote this version; nothing was changed.
    TooNew(i32),
}

/// The schema version the database is at, read without changing anything: 0 when this
/// server never set it up.
pub(in crate::store) async fn version(client: &Client) -> Result<i32, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0))
}

/// Brings the database up to [`SCHEMA_VERSION`] in one transaction under the migration
/// lock, or finds that a newer build owns it.
pub(super) async fn migrate(client: &mut Client) -> Result<Migrated, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Ok(Migrated::TooNew(found));
    }
    for (version, migration) in (1..).zip(MIGRATIONS).skip(found as usize) {
        tx.batch_execute(migration).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Migrated::Current)
}
