//! Noticing that the client closed our stdout while we have nothing to write.

/// Resolves when stdout is a pipe whose reading end has been closed; never resolves when
/// that cannot be watched (stdout is not a pipe, or not on Linux).
pub async fn stdout_hung_up() {
    #[cfg(target_os = "linux")]
    if let Some(watched) = linux::watch_stdout() {
        // A pipe whose readers are all gone reports an error condition to its writer.
        if watched.ready(tokio::io::Interest::ERROR).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

#[cfg(target_os = "linux")]
mod linux {
    use tokio::net::unix::pipe;

    /// A second handle on stdout, opened through `/proc/self/fd/1` so that the
    /// non-blocking mode it needs stays private to it; `None` if stdout is not a pipe.
    pub fn watch_stdout() -> Option<pipe::Sender> {
        pipe::OpenOptions::new().open_sender("/proc/self/fd/1").ok()
    }
}
