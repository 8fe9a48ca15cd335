//! Local files a stdio caller names (`path` to read, `save_to` to write): read once
//! through one handle, regular files only and never the kernel's special trees, with a
//! byte cap enforced while reading; written only as new files, private to their owner.
//! No error carries the path (a tool's messages may be logged or shown elsewhere).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Trees whose files are not data: `/proc` (a process's environment, with its API keys,
/// reports a size of 0), `/sys`, and `/dev` (`/dev/zero` never ends, a FIFO never answers).
const SPECIAL_TREES: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Why a local file could not be read or written; each message says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocalFileError {
    /// Nothing at the path.
    #[error("no such file; check the path (an absolute path is safest)")]
    NotFound,
    /// The user running the server may not read or write there.
    #[error("permission denied; use a file the user running the server may access")]
    PermissionDenied,
    /// A path into `/proc`, `/sys` or `/dev`.
    #[error(
        "it is in /proc, /sys or /dev, and special files are not read; copy the content to an ordinary file first"
    )]
    Special,
    /// A directory, FIFO, socket or device.
    #[error(
        "it is not a regular file (a directory, pipe, socket or device), and special files are not read; give an ordinary file"
    )]
    NotRegular,
    /// More than the cap.
    #[error("the file is {bytes} bytes, more than the {max} bytes allowed; send a smaller file")]
    TooLarge {
        /// Its size (at least this, if it grew while read).
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// Something is at the path already.
    #[error(
        "a file (or link) already exists there, and existing files are never overwritten; choose another name"
    )]
    Exists,
    /// Any other I/O failure, by kind.
    #[error("{0}")]
    Io(String),
}

impl From<io::Error> for LocalFileError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => LocalFileError::NotFound,
            io::ErrorKind::PermissionDenied => LocalFileError::PermissionDenied,
            io::ErrorKind::AlreadyExists => LocalFileError::Exists,
            kind => LocalFileError::Io(kind.to_string()),
        }
    }
}

/// The bytes of the regular file at `path`, at most `max` of them (more is refused, not
/// cut). The path is resolved first and refused inside `/proc`, `/sys` or `/dev`; the file
/// is then opened once without blocking (a FIFO cannot hang the open), checked through
/// that handle to be a regular file, and read up to `max + 1` bytes, whatever size it
/// claims.
pub async fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, LocalFileError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || read_capped_blocking(&path, max))
        .await
        .unwrap_or_else(|e| Err(LocalFileError::Io(e.to_string())))
}

fn read_capped_blocking(path: &Path, max: u64) -> Result<Vec<u8>, LocalFileError> {
    let resolved = std::fs::canonicalize(path)?;
    if is_special(&resolved) {
        return Err(LocalFileError::Special);
    }
    let file = open_for_reading(&resolved)?;
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(LocalFileError::NotRegular);
    }
    if metadata.len() > max {
        return Err(LocalFileError::TooLarge {
            bytes: metadata.len(),
            max,
        });
    }
    let capacity = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    let read = bytes.len() as u64;
    if read > max {
        return Err(LocalFileError::TooLarge {
            bytes: read.max(metadata.len()),
            max,
        });
    }
    Ok(bytes)
}

/// Whether `resolved` (a canonical path) is in one of the special trees.
fn is_special(resolved: &Path) -> bool {
    SPECIAL_TREES.iter().any(|tree| resolved.starts_with(tree))
}

#[cfg(unix)]
fn open_for_reading(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking so that opening a FIFO returns at once (it is then refused as not a
    // regular file; on a regular file the flag changes nothing). No following a link
    // swapped in since the path was resolved.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_for_reading(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Writes `bytes` to a new file at `path`, readable and writable by its owner only (0600
/// on Unix). Anything already at `path` (a file, or a link, dangling or not) is refused
/// and left as it was; a link is never followed.
pub async fn create_private(path: &Path, bytes: Vec<u8>) -> Result<(), LocalFileError> {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || create_private_blocking(&path, &bytes))
        .await
        .unwrap_or_else(|e| Err(LocalFileError::Io(e.to_string())))
}

fn create_private_blocking(path: &Path, bytes: &[u8]) -> Result<(), LocalFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path)?;
    let written = (|| {
        // The umask may have taken bits away; this file is new and ours, so set exactly
        // 0600 through its handle.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.flush()
    })();
    if let Err(error) = written {
        drop(file);
        // The file was created by this call: do not leave half of it behind.
        let _ = std::fs::remove_file(path);
        return Err(error.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_regular_file_is_read_up_to_its_cap_and_refused_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_capped(&path, 5).await.unwrap(), b"12345");
        assert_eq!(
            read_capped(&path, 4).await,
            Err(LocalFileError::TooLarge { bytes: 5, max: 4 })
        );
        assert_eq!(
            read_capped(&dir.path().join("none"), 4).await,
            Err(LocalFileError::NotFound)
        );
        assert_eq!(
            read_capped(dir.path(), 4).await,
            Err(LocalFileError::NotRegular)
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn special_files_are_not_read_even_through_a_link() {
        for special in ["/dev/zero", "/proc/self/environ", "/sys/kernel"] {
            if !Path::new(special).exists() {
                continue;
            }
            let error = read_capped(Path::new(special), 1 << 20).await.unwrap_err();
            assert_eq!(error, LocalFileError::Special, "{special}");
            assert!(error.to_string().contains("special files are not read"));
        }
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("innocent.wav");
        std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
        assert_eq!(
            read_capped(&link, 1 << 20).await,
            Err(LocalFileError::Special)
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.wav");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            read_capped(&fifo, 1 << 20),
        )
        .await
        .expect("opening a FIFO must not hang");
        assert_eq!(read, Err(LocalFileError::NotRegular));
    }

    #[tokio::test]
    async fn a_new_file_is_private_and_an_existing_one_or_a_link_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.wav");
        create_private(&new, b"audio".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(&new).unwrap(), b"audio");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&new).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            create_private(&new, b"other".to_vec()).await,
            Err(LocalFileError::Exists)
        );
        assert_eq!(std::fs::read(&new).unwrap(), b"audio");
        #[cfg(unix)]
        {
            let target = dir.path().join("target");
            let link = dir.path().join("link.wav");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            assert_eq!(
                create_private(&link, b"x".to_vec()).await,
                Err(LocalFileError::Exists)
            );
            assert!(!target.exists(), "the dangling link was not followed");
        }
    }
}
