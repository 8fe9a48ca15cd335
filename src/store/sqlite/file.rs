//! The store's file on disk: private to its owner (folders 0700, files 0600, whatever
//! the umask), and looked at read-only before anything writes to it, so a file that is
//! not a conversation store is refused unchanged.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, StoreError, open_error, schema};

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The files SQLite keeps next to a database, by suffix.
#[cfg(unix)]
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Gets `path` ready for SQLite: its folder made (private), an existing file checked to
/// be a conversation store (read-only), a missing one created private, and any of our
/// files that others can read made private.
pub(super) fn prepare(path: &Path, label: &str) -> Result<(), StoreError> {
    create_parent(path)?;
    if fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() > 0) {
        check_existing(path, label)?;
    }
    create_private(path).map_err(|source| StoreError::File {
        location: label.to_owned(),
        source,
    })?;
    keep_private(path);
    Ok(())
}

/// Refuses a file that is not SQLite, or not our schema, without writing to it.
fn check_existing(path: &Path, label: &str) -> Result<(), StoreError> {
    let file_err = |source| StoreError::File {
        location: label.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    fs::File::open(path)
        .and_then(|file| file.take(SQLITE_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(file_err)?;
    if head != SQLITE_MAGIC {
        return Err(StoreError::NotAStore {
            location: label.to_owned(),
            what: "a file that is not an SQLite database".to_owned(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| open_error(label, source))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|source| open_error(label, source))?;
    schema::check_ours(&conn, label)
}

/// The schema version of the existing store file at `path`, read without writing to it;
/// `Err` when it is not a conversation store or a newer build wrote it.
pub(in crate::store) fn existing_version(path: &Path, label: &str) -> Result<i64, StoreError> {
    check_existing(path, label)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| open_error(label, source))?;
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| open_error(label, source))
}

/// Creates the folder a store file goes in; folders we create are private.
fn create_parent(path: &Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StoreError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates the store file, private, when it is missing (SQLite gives its `-wal` and
/// `-shm` files the database file's permissions); an existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Makes the store file and its companions private when others can read them (files
/// made by older builds, or by hand), saying so in the log.
#[cfg(unix)]
fn keep_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let files = std::iter::once(path.to_path_buf()).chain(COMPANIONS.map(|s| companion(path, s)));
    for file in files {
        let Ok(meta) = fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        match fs::set_permissions(&file, fs::Permissions::from_mode(0o600)) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                was = %format_args!("{mode:o}"),
                "the conversation store could be read by other users; made it private (0600)"
            ),
            Err(error) => tracing::warn!(
                file = %file.display(),
                was = %format_args!("{mode:o}"),
                %error,
                "the conversation store can be read by other users and could not be made private; run chmod 600 on it"
            ),
        }
    }
}

/// Elsewhere permissions are the folder's business.
#[cfg(not(unix))]
fn keep_private(_path: &Path) {}

/// `path` with `suffix` appended to its file name, as SQLite names its companion files.
#[cfg(unix)]
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
