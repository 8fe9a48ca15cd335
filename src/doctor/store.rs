//! Check 6, the conversation store: it opens, takes a write (one probe conversation,
//! deleted again), is private to this user (file and its -wal/-shm/-journal companions
//! 0600, folder 0700) and at this build's
//! schema version; for Postgres, reachable, migrated, and its pool size. `memory` keeps
//! nothing, so there is nothing to check.

use std::path::Path;

use super::Check;
use crate::setting;
use crate::settings::StoreSettings;
use crate::store::{self, ProbeError, StoreError, StoreLocation, StoreProbe};

const NAME: &str = "conversation store";

/// How the fix for a store file others can read begins.
const FILE_OPEN: &str = "the file is";

/// How the fix for a companion file (`-wal`, `-shm`, `-journal`) others can read begins.
const COMPANION_OPEN: &str = "the companion file";

/// The files SQLite keeps beside a store file, by the suffix added to its name.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Check 6.
pub(super) async fn check(settings: &StoreSettings) -> Check {
    let location = settings
        .location
        .clone()
        .unwrap_or_else(StoreLocation::default_file);
    match &location {
        StoreLocation::InMemory => Check::ok(
            NAME,
            "memory: nothing kept (conversations and tasks end with the process)",
        ),
        StoreLocation::File(path) => file(path).await,
        StoreLocation::Postgres(url) => match store::probe_postgres(url, settings.db_pool).await {
            Ok(probe) => versioned(
                format!(
                    "Postgres {location} reachable, pool of {} connection(s)",
                    settings.db_pool
                ),
                &probe,
                Vec::new(),
            ),
            Err(error) => Check::fail(
                NAME,
                format!("Postgres {location}: {error}"),
                format!(
                    "start Postgres or fix the URL in {} (host, port, user, password, database)",
                    setting::CONVERSATIONS
                ),
            ),
        },
    }
}

/// The SQLite file at `path`.
async fn file(path: &Path) -> Check {
    let fixes = permission_fixes(path);
    // Opening a file others can read for writing makes it (and its companions) private:
    // leave that to the user.
    let private = !fixes
        .iter()
        .any(|fix| fix.starts_with(FILE_OPEN) || fix.starts_with(COMPANION_OPEN));
    let probe = match store::probe_file(path, private).await {
        Ok(probe) => probe,
        Err(error) => {
            let fix = match &error {
                ProbeError::NotAFile { .. } => format!(
                    "set {} to a file path, e.g. {}",
                    setting::CONVERSATIONS,
                    path.join("conversations.sqlite3").display()
                ),
                ProbeError::Store(StoreError::SchemaTooNew { .. }) => format!(
                    "upgrade vultr-inference-mcp to the version that wrote this store, or set {} to another file (or `memory`)",
                    setting::CONVERSATIONS
                ),
                _ => format!(
                    "make the folder writable by this user, or set {} to a writable file path (or `memory`)",
                    setting::CONVERSATIONS
                ),
            };
            return Check::fail(
                NAME,
                format!("SQLite file {}: {error}", path.display()),
                fix,
            );
        }
    };
    if probe.schema_version.is_none() {
        return Check::ok(
            NAME,
            format!(
                "SQLite file {} does not exist yet; this user may create it there, as the server does (0600) at first use",
                path.display()
            ),
        );
    }
    let mut place = format!("SQLite file {}", path.display());
    if !private {
        place.push_str(" (not opened for writing while other users can read it)");
    }
    versioned(place, &probe, fixes)
}

/// The outcome for a store that opened: its version, the probe, and `fixes` (warnings).
fn versioned(place: String, probe: &StoreProbe, mut fixes: Vec<String>) -> Check {
    let version = probe.schema_version.unwrap_or_default();
    let mut found = format!("{place}, schema version {version}");
    if probe.wrote_probe {
        found.push_str(", writable (a probe conversation was written and deleted)");
    }
    if version < probe.expected_version {
        found.push_str(&format!(
            "; older than this build's {} (so not opened for writing)",
            probe.expected_version
        ));
        fixes.push(format!(
            "nothing to do: the server upgrades the schema to version {} when it starts",
            probe.expected_version
        ));
    }
    if fixes.is_empty() {
        Check::ok(NAME, found)
    } else {
        Check::warn(NAME, found, fixes.join("; "))
    }
}

/// What to run when the file or its folder can be read by other users.
#[cfg(unix)]
fn permission_fixes(path: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|meta| meta.permissions().mode() & 0o7777)
    };
    let mut fixes = Vec::new();
    if let Some(file) = mode(path).filter(|mode| mode & 0o077 != 0) {
        fixes.push(format!(
            "{FILE_OPEN} {file:o}, readable by other users: run `chmod 600 {}`",
            path.display()
        ));
    }
    for suffix in COMPANIONS {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let companion = Path::new(&name);
        if let Some(file) = mode(companion).filter(|mode| mode & 0o077 != 0) {
            fixes.push(format!(
                "{COMPANION_OPEN} {} is {file:o}, readable by other users: run `chmod 600 {}`",
                companion.display(),
                companion.display()
            ));
        }
    }
    let folder = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    if let Some(folder) = folder
        // A shared folder such as /tmp (sticky) is not the store's to close.
        && let Some(dir) = mode(folder).filter(|mode| mode & 0o077 != 0 && mode & 0o1000 == 0)
    {
        fixes.push(format!(
            "the folder is {dir:o}, open to other users: run `chmod 700 {}`",
            folder.display()
        ));
    }
    fixes
}

/// Elsewhere permissions are the folder's business.
#[cfg(not(unix))]
fn permission_fixes(_path: &Path) -> Vec<String> {
    Vec::new()
}
