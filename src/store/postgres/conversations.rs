//! Conversations in the Postgres store: one row per conversation (its owner, title,
//! model, turn count, times) and one row per message (the message as JSON, with its
//! position), exactly the SQLite store's rules. Appends to one conversation lock its row
//! first, so concurrent continuations (from any replica) are stored one after the other,
//! none lost. Times come from the database's clock, so replicas agree on them.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::principal::Principal;
use crate::store::conversation::{stored_message, title_of};
use crate::store::{
    Conversation, ConversationId, ConversationStore, ConversationSummary, StoreError, StoreResult,
    Turn,
};

// Statements are prepared once per connection (deadpool's statement cache): each use is
// then one round trip.

/// Saves a new conversation: id $1, owner $2, title $3, model $4.
const INSERT_CONVERSATION: &str = concat!(
    "INSERT INTO conversations (id, owner, title, model, turns, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 1, ",
    now!(),
    ", ",
    now!(),
    ")"
);

/// Finds conversation $1 of owner $2 and locks it until the transaction ends.
const LOCK_OWNED: &str = "SELECT 1 FROM conversations WHERE id = $1 AND owner = $2 FOR UPDATE";

/// The position after the last message of conversation $1.
const NEXT_SEQ: &str = "SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation_id = $1";

/// Inserts messages of conversation $1 from position $2: bodies $3, cut-off reasons $4,
/// the models that answered $5.
const INSERT_MESSAGES: &str = "
    INSERT INTO messages (conversation_id, seq, body, cut_off, model)
    SELECT $1, $2 + ordinality - 1, body, cut_off, model
    FROM unnest($3::text[], $4::text[], $5::text[])
        WITH ORDINALITY AS turn (body, cut_off, model, ordinality)";

/// Counts one more turn of conversation $1 on model $2, and marks it the most recently used.
const COUNT_TURN: &str = concat!(
    "UPDATE conversations SET turns = turns + 1, model = $2, updated_at = ",
    now!(),
    ", touched = nextval('conversation_uses') WHERE id = $1"
);

/// The summary of conversation $1 of owner $2.
const SUMMARY_OWNED: &str = "
    SELECT id, title, model, turns, created_at, updated_at
    FROM conversations WHERE id = $1 AND owner = $2";

/// The messages of conversation $1, in order, with why each was cut off.
const MESSAGES: &str =
    "SELECT seq, body, cut_off, model FROM messages WHERE conversation_id = $1 ORDER BY seq";

/// Deletes conversation $1 of owner $2 (its messages go with it).
const DELETE_OWNED: &str = "DELETE FROM conversations WHERE id = $1 AND owner = $2";

/// Up to $2 summaries of owner $1, most recently used first.
const LIST_OWNED: &str = "
    SELECT id, title, model, turns, created_at, updated_at
    FROM conversations WHERE owner = $1 ORDER BY touched DESC LIMIT $2";

/// Drops conversations not updated for $1 seconds, sparing $2 (may be NULL); returns
/// how many went.
const DROP_EXPIRED: &str = concat!(
    "DELETE FROM conversations WHERE updated_at < ",
    now!(),
    " - $1 AND id IS DISTINCT FROM $2"
);

/// Drops all but owner $3's newest $1 conversations, sparing $2.
const DROP_PAST_NEWEST: &str = "
    DELETE FROM conversations WHERE owner = $3 AND id <> $2 AND touched <=
        (SELECT touched FROM conversations WHERE owner = $3
         ORDER BY touched DESC OFFSET $1 LIMIT 1)";

/// Drops all but each owner's newest $1 conversations.
const DROP_EVERY_EXCESS: &str = "
    DELETE FROM conversations WHERE id IN (
        SELECT id FROM (
            SELECT id, ROW_NUMBER() OVER (PARTITION BY owner ORDER BY touched DESC) AS position
            FROM conversations) ranked
        WHERE position > $1)";

impl PostgresStore {
    /// Drops `owner`'s conversations past their newest `max_conversations`, sparing `keep`.
    async fn drop_excess(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        owner: &Principal,
        keep: &ConversationId,
    ) -> Result<u64, tokio_postgres::Error> {
        let max = sql_count(self.retention.max_conversations);
        let drop_past_newest = tx.prepare_cached(DROP_PAST_NEWEST).await?;
        tx.execute(&drop_past_newest, &[&max, &keep.as_ref(), &owner.as_str()])
            .await
    }

    /// Seconds since an update after which a conversation is dropped.
    fn max_age(&self) -> i64 {
        i64::try_from(self.retention.max_age.as_secs()).unwrap_or(i64::MAX)
    }
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn create(&self, owner: &Principal, turn: &Turn<'_>) -> StoreResult<ConversationId> {
        const ACTION: &str = "saving a new conversation";
        let bodies = turn.bodies()?;
        let title = title_of(turn.messages);
        let id = ConversationId::generate();
        let db = |e| self.db(ACTION, e);
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        let insert = tx.prepare_cached(INSERT_CONVERSATION).await.map_err(db)?;
        tx.execute(
            &insert,
            &[&id.as_ref(), &owner.as_str(), &title, &turn.model],
        )
        .await
        .map_err(db)?;
        insert_messages(&tx, &id, 0, &bodies, turn)
            .await
            .map_err(db)?;
        let drop_expired = tx.prepare_cached(DROP_EXPIRED).await.map_err(db)?;
        tx.execute(&drop_expired, &[&self.max_age(), &Some(id.as_ref())])
            .await
            .map_err(db)?;
        self.drop_excess(&tx, owner, &id).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn append(&self, owner: &Principal, id: &ConversationId, turn: &Turn) -> StoreResult<()> {
        const ACTION: &str = "adding messages to a conversation";
        let bodies = turn.bodies()?;
        let db = |e| self.db(ACTION, e);
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        // The row lock makes concurrent appends to this conversation wait for each other,
        // so each reads the end the previous one left.
        let lock = tx.prepare_cached(LOCK_OWNED).await.map_err(db)?;
        let found = tx
            .query_opt(&lock, &[&id.as_ref(), &owner.as_str()])
            .await
            .map_err(db)?;
        if found.is_none() {
            return Err(not_found(id));
        }
        let next_seq = tx.prepare_cached(NEXT_SEQ).await.map_err(db)?;
        let next: i64 = tx
            .query_one(&next_seq, &[&id.as_ref()])
            .await
            .map_err(db)?
            .get(0);
        insert_messages(&tx, id, next, &bodies, turn)
            .await
            .map_err(db)?;
        let count_turn = tx.prepare_cached(COUNT_TURN).await.map_err(db)?;
        tx.execute(&count_turn, &[&id.as_ref(), &turn.model])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn get(&self, owner: &Principal, id: &ConversationId) -> StoreResult<Conversation> {
        const ACTION: &str = "reading a conversation";
        let db = |e| self.db(ACTION, e);
        let mut client = self.client(ACTION).await?;
        // One snapshot, so a concurrent delete or append cannot split summary from messages.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let select_summary = tx.prepare_cached(SUMMARY_OWNED).await.map_err(db)?;
        let summary = tx
            .query_opt(&select_summary, &[&id.as_ref(), &owner.as_str()])
            .await
            .map_err(db)?
            .ok_or_else(|| not_found(id))?;
        let summary = summary_from_row(&summary);
        let select_messages = tx.prepare_cached(MESSAGES).await.map_err(db)?;
        let rows = tx
            .query(&select_messages, &[&id.as_ref()])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let messages = rows
            .iter()
            .map(|row| stored_message(id, row.get(0), row.get(1), row.get(2)))
            .collect::<StoreResult<_>>()?;
        let answered_by = rows.iter().map(|row| row.get(3)).collect();
        Ok(Conversation {
            summary,
            messages,
            answered_by,
        })
    }

    async fn list(&self, owner: &Principal, limit: usize) -> StoreResult<Vec<ConversationSummary>> {
        const ACTION: &str = "listing conversations";
        let client = self.client(ACTION).await?;
        let statement = client
            .prepare_cached(LIST_OWNED)
            .await
            .map_err(|e| self.db(ACTION, e))?;
        let rows = client
            .query(&statement, &[&owner.as_str(), &sql_count(limit)])
            .await
            .map_err(|e| self.db(ACTION, e))?;
        Ok(rows.iter().map(summary_from_row).collect())
    }

    async fn delete(&self, owner: &Principal, id: &ConversationId) -> StoreResult<bool> {
        const ACTION: &str = "deleting a conversation";
        let db = |e| self.db(ACTION, e);
        let client = self.client(ACTION).await?;
        let delete = client.prepare_cached(DELETE_OWNED).await.map_err(db)?;
        let deleted = client
            .execute(&delete, &[&id.as_ref(), &owner.as_str()])
            .await
            .map_err(db)?;
        Ok(deleted > 0)
    }

    async fn prune(&self) -> StoreResult<usize> {
        const ACTION: &str = "pruning old conversations";
        let db = |e| self.db(ACTION, e);
        let mut client = self.client(ACTION).await?;
        let tx = client.transaction().await.map_err(db)?;
        let no_id: Option<&str> = None;
        let expired = tx
            .execute(DROP_EXPIRED, &[&self.max_age(), &no_id])
            .await
            .map_err(db)?;
        let excess = tx
            .execute(
                DROP_EVERY_EXCESS,
                &[&sql_count(self.retention.max_conversations)],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(usize::try_from(expired + excess).unwrap_or(usize::MAX))
    }
}

/// Inserts a turn's messages (`bodies`, its messages as JSON text) at positions `first`,
/// `first + 1`, ... in one statement; the last one marked cut off when the turn says why.
async fn insert_messages(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &ConversationId,
    first: i64,
    bodies: &[String],
    turn: &Turn<'_>,
) -> Result<(), tokio_postgres::Error> {
    if bodies.is_empty() {
        return Ok(());
    }
    let cut_offs = turn.cut_offs();
    let answered_bys = turn.answered_bys();
    let params: [&(dyn ToSql + Sync); 5] =
        [&id.as_ref(), &first, &bodies, &cut_offs, &answered_bys];
    let insert = tx.prepare_cached(INSERT_MESSAGES).await?;
    tx.execute(&insert, &params).await.map(drop)
}

/// A count as an SQL bigint, saturating.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads a summary from `id, title, model, turns, created_at, updated_at`.
fn summary_from_row(row: &tokio_postgres::Row) -> ConversationSummary {
    ConversationSummary {
        id: ConversationId::stored(row.get(0)),
        title: row.get(1),
        model: row.get(2),
        turns: u32::try_from(row.get::<_, i64>(3)).unwrap_or(u32::MAX),
        created_at: row.get(4),
        updated_at: row.get(5),
    }
}

/// The error for an id that is not in the store.
fn not_found(id: &ConversationId) -> StoreError {
    StoreError::NotFound { id: id.clone() }
}
