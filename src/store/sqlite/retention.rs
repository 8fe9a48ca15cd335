//! Retention in the SQLite store: conversations not updated within `max_age` are dropped,
//! and all but each owner's newest `max_conversations`, when one is created and when the
//! store is pruned. A memory store keeps its own count of each owner's conversations, so
//! a create needs no walk of the owner's newest N to know whether any must go.

use std::sync::PoisonError;

use rusqlite::{Connection, Transaction, params};

use super::{Database, sql_count, write_transaction};
use crate::principal::Principal;
use crate::store::{ConversationId, Retention, StoreError};

/// Drops owner ?3's ?1 + 1 least recently used conversations, sparing ?2.
pub(super) const DROP_OLDEST: &str = "
    DELETE FROM conversations WHERE owner = ?3 AND id IS NOT ?2 AND touched <=
        (SELECT touched FROM conversations WHERE owner = ?3
         ORDER BY touched ASC LIMIT 1 OFFSET ?1)";

/// Drops all but owner ?3's newest ?1 conversations, sparing ?2.
pub(super) const DROP_PAST_NEWEST: &str = "
    DELETE FROM conversations WHERE owner = ?3 AND id IS NOT ?2 AND touched <=
        (SELECT touched FROM conversations WHERE owner = ?3
         ORDER BY touched DESC LIMIT 1 OFFSET ?1)";

/// Drops all but each owner's newest ?1 conversations, returning the owner of each.
const DROP_EVERY_EXCESS: &str = "
    DELETE FROM conversations WHERE rowid IN (
        SELECT row FROM (
            SELECT rowid AS row,
                   ROW_NUMBER() OVER (PARTITION BY owner ORDER BY touched DESC) AS position
            FROM conversations)
        WHERE position > ?1)
    RETURNING owner";

/// What retention dropped as a conversation was created.
pub(super) struct Dropped {
    /// The owner of each conversation dropped for its age.
    expired: Vec<String>,
    /// How many of the creator's went for want of room.
    excess: usize,
}

impl Database {
    /// Applies retention in `tx`, where `owner` just created `keep` at `now`, sparing it.
    pub(super) fn make_room(
        &self,
        tx: &Transaction<'_>,
        owner: &Principal,
        keep: &ConversationId,
        now: i64,
    ) -> rusqlite::Result<Dropped> {
        let expired = drop_expired(tx, self.retention, now, Some(keep))?;
        let count = self.count(owner).map(|n| {
            let theirs_expired = expired.iter().filter(|o| *o == owner.as_str()).count();
            n + 1 - sql_count(theirs_expired)
        });
        let excess = drop_excess(tx, owner, self.retention, keep, count)?;
        Ok(Dropped { expired, excess })
    }

    /// Counts `owner`'s new conversation and what retention dropped, once committed.
    pub(super) fn count_created(&self, owner: &Principal, dropped: Dropped) {
        self.counted(owner.as_str(), 1 - sql_count(dropped.excess));
        self.forget(&dropped.expired);
    }

    /// Drops conversations not updated within `max_age`, and all but each owner's newest
    /// `max_conversations`; returns how many went.
    pub(super) fn prune(&self) -> Result<usize, StoreError> {
        let now = (self.now)();
        self.with("pruning old conversations", |conn| {
            let tx = write_transaction(conn)?;
            let expired = drop_expired(&tx, self.retention, now, None)?;
            let excess = tx
                .prepare(DROP_EVERY_EXCESS)?
                .query_map([sql_count(self.retention.max_conversations)], |row| {
                    row.get(0)
                })?
                .collect::<Result<Vec<String>, _>>()?;
            tx.commit()?;
            self.forget(&expired);
            self.forget(&excess);
            Ok(expired.len() + excess.len())
        })
    }

    /// How many conversations `owner` has, when this store alone can change that.
    pub(super) fn count(&self, owner: &Principal) -> Option<i64> {
        let counts = self.private_counts.as_ref()?;
        let counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
        Some(counts.get(owner.as_str()).copied().unwrap_or(0))
    }

    /// Records that `change` conversations of `owner` were added (or, negative, removed).
    pub(super) fn counted(&self, owner: &str, change: i64) {
        let Some(counts) = &self.private_counts else {
            return;
        };
        if change == 0 {
            return;
        }
        let mut counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
        match counts.get_mut(owner) {
            Some(count) => {
                *count += change;
                if *count <= 0 {
                    counts.remove(owner);
                }
            }
            None if change > 0 => {
                counts.insert(owner.to_owned(), change);
            }
            None => {}
        }
    }

    /// Records that conversations of these owners (one entry per conversation) were removed.
    fn forget(&self, owners: &[String]) {
        for owner in owners {
            self.counted(owner, -1);
        }
    }
}

/// Drops every conversation not updated within the retention's `max_age`, whoever owns
/// it, except `keep` (the conversation being created); returns the owner of each one
/// dropped.
fn drop_expired(
    conn: &Connection,
    retention: Retention,
    now: i64,
    keep: Option<&ConversationId>,
) -> rusqlite::Result<Vec<String>> {
    let keep = keep.map(AsRef::<str>::as_ref);
    let max_age = i64::try_from(retention.max_age.as_secs()).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(max_age);
    // Cached: this runs on every new conversation, and compiling the SQL each time cost
    // more than running it.
    conn.prepare_cached(
        "DELETE FROM conversations WHERE updated_at < ?1 AND id IS NOT ?2 RETURNING owner",
    )?
    .query_map(params![cutoff, keep], |row| row.get(0))?
    .collect()
}

/// Drops all but `owner`'s newest `max_conversations`, sparing `keep` (the conversation
/// being created); `count` is how many `owner` has, when known. Returns how many went.
fn drop_excess(
    conn: &Connection,
    owner: &Principal,
    retention: Retention,
    keep: &ConversationId,
    count: Option<i64>,
) -> rusqlite::Result<usize> {
    let max = sql_count(retention.max_conversations);
    let (owner, keep) = (owner.as_str(), keep.as_ref());
    match count {
        // The count is known: nothing to walk unless some must go, and then only the
        // excess, from the old end of the owner's part of the recency index.
        Some(count) => {
            let excess = count - max;
            if excess <= 0 {
                return Ok(0);
            }
            conn.prepare_cached(DROP_OLDEST)?
                .execute(params![excess - 1, keep, owner])
        }
        // `touched` is unique per owner and orders by recency, so everything past the
        // owner's newest N is what is at or below their N+1-th `touched`: one walk of the
        // owner's part of the recency index, no row lookups.
        None => conn
            .prepare_cached(DROP_PAST_NEWEST)?
            .execute(params![max, keep, owner]),
    }
}
