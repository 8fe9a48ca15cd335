//! Conversations in the SQLite store: one row per conversation (its owner, title, model,
//! turn count, timestamps) and one row per message (the message as JSON, with its
//! position and why it was cut off).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::failure::{Failed, out_of_space};
use super::{Database, SqliteStore, sql_count, write_transaction};
use crate::principal::Principal;
use crate::store::StoreResult;
use crate::store::conversation::{stored_message, title_of};
use crate::store::{
    Conversation, ConversationId, ConversationStore, ConversationSummary, StoreError, Turn,
};

// Recency: `touched` counts every create and append of an owner's conversations (the
// next value is one look at the end of the owner's part of the `(owner, touched)`
// index), so two uses within the same second still come out in the order they
// happened, and `touched DESC` is most recently used first. The statements below that
// run on every use read only the owner's part of that index (a test pins their plans).

/// Saves a new conversation: id ?1, title ?2, model ?3, time ?4, owner ?5.
pub(super) const INSERT_CONVERSATION: &str = "
    INSERT INTO conversations (id, title, model, turns, created_at, updated_at, owner, touched)
    VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5,
        (SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations WHERE owner = ?5))";

/// Counts one more turn of conversation ?1 of owner ?4 on model ?2 at time ?3.
pub(super) const COUNT_TURN: &str = "
    UPDATE conversations SET turns = turns + 1, model = ?2, updated_at = ?3,
        touched = (SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations WHERE owner = ?4)
    WHERE id = ?1 AND owner = ?4";

/// Up to ?2 summaries of owner ?1, most recently used first.
pub(super) const LIST_OWNED: &str = "
    SELECT id, title, model, turns, created_at, updated_at
    FROM conversations WHERE owner = ?1 ORDER BY touched DESC LIMIT ?2";

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create(&self, owner: &Principal, turn: &Turn<'_>) -> StoreResult<ConversationId> {
        let (title, turn) = (title_of(turn.messages), Encoded::of(turn)?);
        let owner = owner.clone();
        self.run(move |db| db.create(&owner, &title, &turn)).await
    }

    async fn append(&self, owner: &Principal, id: &ConversationId, turn: &Turn) -> StoreResult<()> {
        let turn = Encoded::of(turn)?;
        let (owner, id) = (owner.clone(), id.clone());
        self.run(move |db| db.append(&owner, &id, &turn)).await
    }

    async fn get(&self, owner: &Principal, id: &ConversationId) -> StoreResult<Conversation> {
        let (owner, id) = (owner.clone(), id.clone());
        self.run(move |db| db.get(&owner, &id)).await
    }

    async fn list(&self, owner: &Principal, limit: usize) -> StoreResult<Vec<ConversationSummary>> {
        let owner = owner.clone();
        self.run(move |db| db.list(&owner, limit)).await
    }

    async fn delete(&self, owner: &Principal, id: &ConversationId) -> StoreResult<bool> {
        let (owner, id) = (owner.clone(), id.clone());
        self.run(move |db| db.delete(&owner, &id)).await
    }

    async fn prune(&self) -> StoreResult<usize> {
        self.run(Database::prune).await
    }
}

/// A turn ready to write (it moves to a blocking thread): its model, its messages as JSON
/// text and the cut-off reason of each.
struct Encoded {
    model: String,
    bodies: Vec<String>,
    cut_offs: Vec<Option<String>>,
    answered_bys: Vec<Option<String>>,
}

impl Encoded {
    /// Serialises each message of `turn` to JSON text.
    fn of(turn: &Turn<'_>) -> StoreResult<Self> {
        Ok(Self {
            model: turn.model.to_owned(),
            bodies: turn.bodies()?,
            cut_offs: turn
                .cut_offs()
                .into_iter()
                .map(|reason| reason.map(str::to_owned))
                .collect(),
            answered_bys: turn
                .answered_bys()
                .into_iter()
                .map(|model| model.map(str::to_owned))
                .collect(),
        })
    }
}

impl Database {
    /// Inserts a new conversation of `owner` (turn 1) and applies retention, sparing it.
    fn create(
        &self,
        owner: &Principal,
        title: &str,
        turn: &Encoded,
    ) -> StoreResult<ConversationId> {
        let id = ConversationId::generate();
        let now = (self.now)();
        self.with("saving a new conversation", |conn| {
            let tx = write_transaction(conn)?;
            tx.prepare_cached(INSERT_CONVERSATION)?.execute(params![
                id.as_ref(),
                title,
                turn.model,
                now,
                owner.as_str()
            ])?;
            insert_messages(&tx, &id, 0, turn)?;
            let dropped = self.make_room(&tx, owner, &id, now)?;
            tx.commit()?;
            self.count_created(owner, dropped);
            Ok(())
        })?;
        Ok(id)
    }

    /// Adds a turn to the end of `owner`'s conversation `id`.
    fn append(&self, owner: &Principal, id: &ConversationId, turn: &Encoded) -> StoreResult<()> {
        let now = (self.now)();
        self.with("adding messages to a conversation", |conn| {
            let tx = write_transaction(conn)?;
            let next: i64 = tx
                .prepare_cached(
                    "SELECT COALESCE((SELECT MAX(seq) + 1 FROM messages WHERE conversation_id = ?1), 0)
                     FROM conversations WHERE id = ?1 AND owner = ?2",
                )?
                .query_row([id.as_ref(), owner.as_str()], |row| row.get(0))
                .optional()?
                .ok_or_else(|| not_found(id))?;
            insert_messages(&tx, id, next, turn)?;
            tx.prepare_cached(COUNT_TURN)?
                .execute(params![id.as_ref(), turn.model, now, owner.as_str()])?;
            Ok(tx.commit()?)
        })
    }

    /// `owner`'s conversation `id`: its summary and messages, a cut-off reply marked as such.
    fn get(&self, owner: &Principal, id: &ConversationId) -> StoreResult<Conversation> {
        let (summary, rows) = self.with("reading a conversation", |conn| {
            // One read transaction, so a concurrent delete cannot split summary from messages.
            let tx = conn.transaction()?;
            let summary = tx
                .query_row(
                    "SELECT id, title, model, turns, created_at, updated_at
                     FROM conversations WHERE id = ?1 AND owner = ?2",
                    [id.as_ref(), owner.as_str()],
                    summary_from_row,
                )
                .optional()?
                .ok_or_else(|| not_found(id))?;
            let rows = tx
                .prepare_cached(
                    "SELECT seq, body, cut_off, model FROM messages WHERE conversation_id = ?1 ORDER BY seq",
                )?
                .query_map([id.as_ref()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            tx.finish()?;
            Ok((summary, rows))
        })?;
        let messages = rows
            .iter()
            .map(|(seq, body, cut_off, _)| stored_message(id, *seq, body, cut_off.as_deref()))
            .collect::<Result<_, _>>()?;
        let answered_by = rows.into_iter().map(|(.., model)| model).collect();
        Ok(Conversation {
            summary,
            messages,
            answered_by,
        })
    }

    /// Up to `limit` of `owner`'s summaries, most recently used first.
    fn list(&self, owner: &Principal, limit: usize) -> StoreResult<Vec<ConversationSummary>> {
        self.with("listing conversations", |conn| {
            let mut stmt = conn.prepare_cached(LIST_OWNED)?;
            let summaries =
                stmt.query_map(params![owner.as_str(), sql_count(limit)], summary_from_row)?;
            Ok(summaries.collect::<Result<_, _>>()?)
        })
    }

    /// Deletes `owner`'s conversation `id` and its messages; true when it existed. Works
    /// on a full disk too, so that deleting is how a user makes room.
    fn delete(&self, owner: &Principal, id: &ConversationId) -> StoreResult<bool> {
        self.with("deleting a conversation", |conn| {
            let delete = || {
                conn.prepare_cached("DELETE FROM conversations WHERE id = ?1 AND owner = ?2")
                    .and_then(|mut delete| delete.execute([id.as_ref(), owner.as_str()]))
            };
            let deleted = match delete() {
                Err(error) if out_of_space(&error) => {
                    // The write-ahead log cannot grow. Copying it into the database and
                    // truncating it frees its space for the delete; truncating again after
                    // gives the delete's own log space back for the next save.
                    tracing::warn!(%error, location = %self.location, "the disk looks full; truncating the conversation store's log to delete");
                    truncate_log(conn);
                    let deleted = delete()?;
                    truncate_log(conn);
                    deleted
                }
                outcome => outcome?,
            };
            self.counted(owner.as_str(), -sql_count(deleted));
            Ok(deleted > 0)
        })
    }
}

/// Copies the write-ahead log into the database and truncates it to nothing (best effort).
fn truncate_log(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(%error, "could not truncate the conversation store's log");
    }
}

/// Inserts a turn's messages at positions `first`, `first + 1`, ..., each with its
/// cut-off reason.
fn insert_messages(
    conn: &Connection,
    id: &ConversationId,
    first: i64,
    turn: &Encoded,
) -> Result<(), Failed> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, body, cut_off, model) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (((seq, body), cut), model) in (first..)
        .zip(&turn.bodies)
        .zip(&turn.cut_offs)
        .zip(&turn.answered_bys)
    {
        stmt.execute(params![id.as_ref(), seq, body, cut, model])?;
    }
    Ok(())
}

/// Reads a summary from `id, title, model, turns, created_at, updated_at`.
fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationSummary> {
    Ok(ConversationSummary {
        id: ConversationId::stored(row.get(0)?),
        title: row.get(1)?,
        model: row.get(2)?,
        turns: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// The error for an id that is not in the store.
fn not_found(id: &ConversationId) -> StoreError {
    StoreError::NotFound { id: id.clone() }
}
