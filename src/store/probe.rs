//! A look at a store for `doctor`: whether it opens, which schema version it is at, and
//! whether it takes a write (one probe conversation, created and deleted again). It never
//! migrates a store nor creates one that does not exist yet, and prunes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{ConversationStore, PostgresUrl, Retention, StoreError, StoreLocation, Turn};
use crate::principal::Principal;
use crate::vultr::chat::Message;

/// The owner of the probe conversation, a name no credential can claim by accident.
const PROBE_OWNER: &str = "vultr-inference-mcp-doctor-probe";

/// Why a store did not pass the look.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The store file does not exist yet and its folder takes no new file.
    #[error(
        "the store file does not exist yet and `{}` does not let this user create it: {source}. Make the folder writable, or set {} to a writable file path (or `memory`).",
        .folder.display(),
        crate::setting::CONVERSATIONS
    )]
    Folder {
        /// The folder that was tried.
        folder: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The store path names something that is not a file (a directory, a device, ...).
    #[error(
        "`{}` is {what}, not a database file; set {} to a file path (or `memory`)",
        .path.display(),
        crate::setting::CONVERSATIONS
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is, e.g. `a directory`.
        what: &'static str,
    },
    /// The store failed to open, read or write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What looking at a store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreProbe {
    /// The schema version the store is at; `None` for a file not created yet.
    pub schema_version: Option<i64>,
    /// The version this build writes.
    pub expected_version: i64,
    /// Whether a probe conversation was written and deleted again.
    pub wrote_probe: bool,
}

/// Looks at the SQLite file at `path` (see the module's doc): a missing file is not made,
/// only its folder is checked to take new files; an older schema is reported, not upgraded.
/// Without `write` the file is only read (opening it for writing would also make it
/// private, which is the user's to do).
pub async fn probe_file(path: &Path, write: bool) -> Result<StoreProbe, ProbeError> {
    let expected_version = super::sqlite::schema::SCHEMA_VERSION;
    let label = path.display().to_string();
    let meta = std::fs::metadata(path).ok();
    if let Some(meta) = &meta
        && !meta.is_file()
    {
        return Err(ProbeError::NotAFile {
            path: path.to_path_buf(),
            what: if meta.is_dir() {
                "a directory"
            } else {
                "a special file"
            },
        });
    }
    // An empty file is what the server starts from, as from none.
    let exists = meta.is_some_and(|meta| meta.len() > 0);
    if !exists {
        folder_takes_files(path)?;
        return Ok(StoreProbe {
            schema_version: None,
            expected_version,
            wrote_probe: false,
        });
    }
    let path_owned = path.to_path_buf();
    let found = tokio::task::spawn_blocking(move || {
        super::sqlite::file::existing_version(&path_owned, &label)
    })
    .await
    .map_err(|source| StoreError::Interrupted {
        location: path.display().to_string(),
        source,
    })?
    .map_err(ProbeError::Store)?;
    if found < expected_version || !write {
        return Ok(StoreProbe {
            schema_version: Some(found),
            expected_version,
            wrote_probe: false,
        });
    }
    let store = SqliteStore::open(&StoreLocation::File(path.to_path_buf()), no_pruning()).await?;
    write_probe(&store).await?;
    Ok(StoreProbe {
        schema_version: Some(found),
        expected_version,
        wrote_probe: true,
    })
}

/// Looks at the Postgres database at `url` through a pool of `pool_size` (see the
/// module's doc): an older schema is reported, not migrated; a newer one is an error.
pub async fn probe_postgres(url: &PostgresUrl, pool_size: usize) -> Result<StoreProbe, StoreError> {
    let expected_version = i64::from(super::postgres::schema::SCHEMA_VERSION);
    let store = PostgresStore::connect(url, no_pruning(), pool_size)?;
    let found = i64::from(store.schema_version().await?);
    if found > expected_version {
        return Err(StoreError::SchemaTooNew {
            location: "Postgres database".to_owned(),
            found,
            understood: expected_version,
        });
    }
    let wrote_probe = found == expected_version;
    if wrote_probe {
        write_probe(&store).await?;
    }
    Ok(StoreProbe {
        schema_version: Some(found),
        expected_version,
        wrote_probe,
    })
}

/// A retention that drops nothing, so the probe's write prunes no one's conversations.
fn no_pruning() -> Retention {
    Retention {
        max_conversations: usize::MAX,
        max_age: Duration::MAX,
    }
}

/// Creates one conversation under the probe owner and deletes it.
async fn write_probe(store: &dyn ConversationStore) -> Result<(), StoreError> {
    let owner = Principal::new(PROBE_OWNER).map_err(|e| StoreError::Open {
        location: "probe".to_owned(),
        source: e.to_string().into(),
    })?;
    let message: Message =
        serde_json::from_value(serde_json::json!({"role": "user", "content": "doctor probe"}))
            .map_err(|source| StoreError::Encode { source })?;
    let messages = [message];
    let id = store
        .create(&owner, &Turn::new("doctor-probe", &messages))
        .await?;
    store.delete(&owner, &id).await?;
    Ok(())
}

/// Checks that the folder of `path` (or, when it is missing, the nearest folder above it
/// that exists) lets this user create a file, by creating and removing an empty one.
fn folder_takes_files(path: &Path) -> Result<(), ProbeError> {
    let mut folder: PathBuf = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    while !folder.exists() {
        match folder.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => folder = parent.to_path_buf(),
            _ => break,
        }
    }
    let probe = folder.join(format!(
        ".vultr-inference-mcp-doctor-{}",
        std::process::id()
    ));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(ProbeError::Folder { folder, source }),
    }
}
