//! Every HTTP connection is bounded: a client has [`ConnectionLimits::header_timeout`] to
//! send a request's headers once it started one, a keep-alive connection with no request
//! in progress is closed after [`ConnectionLimits::idle_timeout`], and at most
//! [`ConnectionLimits::max_connections`] are open: over it the oldest idle connection is
//! closed to make room, or, when every connection is busy with a request, the new one gets
//! a 503 and is closed. So slow or idle clients cannot use up the process's open files and
//! leave `/healthz` and everyone's calls unanswered.
//!
//! [`BoundedListener`] wraps the TCP listener axum serves; each accepted socket is a
//! [`BoundedIo`] whose reads enforce the deadlines. [`track_requests`], a middleware over
//! every route, tells the connection when a request is in progress (from its headers to the
//! end of its response body), so a long call or a server-sent event stream is never idle.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::setting;

/// Connections open at once when the setting does not say.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Open files kept free for everything but client connections: the listener, log and
/// store files, the database pool, downstream servers' pipes; upstream connections are
/// added to it by [`connection_cap`].
const RESERVED_FILES: u64 = 64;

/// How often at most a WARN line about refused or closed connections is written.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What a refused connection reads before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 60\r\nConnection: close\r\n\r\nthe server has too many connections open; retry in a moment\n";

/// The bounds every connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From the first byte of a request to the end of its headers.
    pub header_timeout: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Raises the soft open-files limit to the hard one (as nginx and Go do) and returns how
/// many connections fit under it: `configured` (or [`DEFAULT_MAX_CONNECTIONS`]), lowered
/// to leave room for `upstream` connections to Vultr and the process's own files.
pub fn connection_cap(configured: Option<u32>, upstream: usize) -> usize {
    let files = raise_open_files_limit();
    let reserve = RESERVED_FILES.saturating_add(upstream as u64);
    // Never less than a quarter of the files, so a tiny limit still serves someone.
    let fits = files.saturating_sub(reserve).max(files / 4).max(1);
    let fits = usize::try_from(fits).unwrap_or(usize::MAX);
    match configured {
        Some(wanted) if wanted as usize > fits => {
            tracing::warn!(
                wanted,
                open_files_limit = files,
                using = fits,
                "{} is above what the open-files limit leaves room for; raise the limit (ulimit -n, LimitNOFILE=) or lower the setting",
                setting::MAX_CONNECTIONS
            );
            fits
        }
        Some(wanted) => wanted as usize,
        None => DEFAULT_MAX_CONNECTIONS.min(fits),
    }
}

/// The soft open-files limit after raising it as far as allowed.
fn raise_open_files_limit() -> u64 {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => limit,
            Err(error) => {
                tracing::warn!(%error, "could not read or raise the open-files limit");
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

/// Where one connection is in its life, shared by its socket and its requests.
struct Phase {
    /// Requests whose response has not ended.
    in_flight: usize,
    /// When the connection last became idle (accepted, or its last response ended).
    idle_since: Instant,
    /// When the first byte of the next request arrived, while its headers are read.
    headers_since: Option<Instant>,
    /// Closed to make room for a new connection.
    shed: bool,
    /// The task reading the socket, to wake when the connection is shed.
    reader: Option<Waker>,
}

/// One connection's state.
pub struct Connection {
    id: u64,
    phase: Mutex<Phase>,
}

impl Connection {
    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request's headers were read: the connection is busy until the guard drops.
    fn begin(self: &Arc<Self>) -> RequestGuard {
        let mut phase = self.lock();
        phase.in_flight += 1;
        phase.headers_since = None;
        RequestGuard(Arc::clone(self))
    }
}

/// Held from a request's headers to the end (or drop) of its response body.
struct RequestGuard(Arc<Connection>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut phase = self.0.lock();
        phase.in_flight = phase.in_flight.saturating_sub(1);
        if phase.in_flight == 0 {
            phase.idle_since = Instant::now();
            phase.headers_since = None;
            // The reader re-arms its deadline for the idle connection.
            if let Some(reader) = phase.reader.take() {
                reader.wake();
            }
        }
    }
}

/// The connections open now.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    warned: Mutex<Option<(std::time::Instant, u64)>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection, first closing the oldest idle one when `max` are open.
    /// `None`: all `max` are busy with requests.
    fn admit(&self, max: usize) -> Option<Arc<Connection>> {
        let mut open = self.lock();
        if open.len() >= max {
            if !shed_oldest_idle(&mut open) {
                return None;
            }
            self.warn(&format!(
                "closed the oldest idle connection to make room: {max} connections are open ({} caps them)",
                setting::MAX_CONNECTIONS
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            phase: Mutex::new(Phase {
                in_flight: 0,
                idle_since: Instant::now(),
                headers_since: None,
                shed: false,
                reader: None,
            }),
        });
        open.insert(id, Arc::clone(&connection));
        Some(connection)
    }

    /// Closes the oldest idle connection, if any is idle.
    fn shed_one(&self) -> bool {
        shed_oldest_idle(&mut self.lock())
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Writes `line` at WARN at most once per [`WARN_EVERY`], with how many were skipped.
    fn warn(&self, line: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        match &mut *warned {
            Some((at, skipped)) if now.duration_since(*at) < WARN_EVERY => *skipped += 1,
            _ => {
                let skipped = warned.map_or(0, |(_, skipped)| skipped);
                if skipped > 0 {
                    tracing::warn!(similar_since_last = skipped, "{line}");
                } else {
                    tracing::warn!("{line}");
                }
                *warned = Some((now, 0));
            }
        }
    }
}

/// Closes the connection of `open` idle for longest; false when none is idle.
fn shed_oldest_idle(open: &mut HashMap<u64, Arc<Connection>>) -> bool {
    let mut idle: Vec<(Instant, u64)> = open
        .values()
        .filter_map(|connection| {
            let phase = connection.lock();
            (phase.in_flight == 0).then_some((phase.idle_since, connection.id))
        })
        .collect();
    idle.sort_unstable();
    for (_, id) in idle {
        let Some(candidate) = open.get(&id) else {
            continue;
        };
        let mut phase = candidate.lock();
        // A request may have begun since the look above: only a connection still idle
        // under this lock is shed.
        if phase.in_flight > 0 {
            continue;
        }
        phase.shed = true;
        if let Some(reader) = phase.reader.take() {
            reader.wake();
        }
        drop(phase);
        open.remove(&id);
        return true;
    }
    false
}

/// The TCP listener with every accepted connection bounded by [`ConnectionLimits`].
pub struct BoundedListener {
    inner: TcpListener,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
}

impl BoundedListener {
    /// Bounds the connections `inner` accepts.
    pub fn new(inner: TcpListener, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            limits,
            registry: Arc::default(),
        }
    }
}

impl Listener for BoundedListener {
    type Io = BoundedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let Some(connection) = self.registry.admit(self.limits.max_connections) else {
                        // Best effort: the client reads why before the socket closes.
                        let _ = stream.try_write(BUSY_RESPONSE);
                        self.registry.warn(&format!(
                            "refused a connection: all {} open connections are serving requests ({} caps them)",
                            self.limits.max_connections,
                            setting::MAX_CONNECTIONS
                        ));
                        continue;
                    };
                    let io = BoundedIo {
                        stream,
                        connection,
                        registry: Arc::clone(&self.registry),
                        limits: self.limits,
                        deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
                    };
                    return (io, addr);
                }
                Err(error) if is_connection_error(&error) => {}
                Err(error) => {
                    // Most likely out of open files: make room, and do not spin.
                    self.registry.warn(&format!(
                        "could not accept a connection ({error}); closing idle ones and trying again shortly"
                    ));
                    self.registry.shed_one();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted socket whose reads end with an error once its header or idle deadline
/// passed, or once it was closed to make room.
pub struct BoundedIo {
    stream: TcpStream,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    limits: ConnectionLimits,
    deadline: Pin<Box<Sleep>>,
}

impl Drop for BoundedIo {
    fn drop(&mut self) {
        self.registry.remove(self.connection.id);
    }
}

impl AsyncRead for BoundedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let deadline = {
            let mut phase = this.connection.lock();
            // A request that began before the shed was seen still finishes.
            if phase.shed && phase.in_flight == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "closed to make room for a new connection",
                )));
            }
            if phase.in_flight == 0 {
                if !phase
                    .reader
                    .as_ref()
                    .is_some_and(|reader| reader.will_wake(cx.waker()))
                {
                    phase.reader = Some(cx.waker().clone());
                }
                Some(match phase.headers_since {
                    Some(since) => since + this.limits.header_timeout,
                    None => phase.idle_since + this.limits.idle_timeout,
                })
            } else {
                None
            }
        };
        if let Some(deadline) = deadline {
            if Instant::now() >= deadline {
                tracing::debug!(
                    connection = this.connection.id,
                    "closing a connection: no complete request within its deadline"
                );
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete request in time",
                )));
            }
            if this.deadline.deadline() != deadline {
                this.deadline.as_mut().reset(deadline);
            }
            // Only to be woken at the deadline.
            let _ = this.deadline.as_mut().poll(cx);
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let mut phase = this.connection.lock();
            if phase.in_flight == 0 && phase.headers_since.is_none() {
                phase.headers_since = Some(Instant::now());
            }
        }
        read
    }
}

impl AsyncWrite for BoundedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The connection a request came on, for [`track_requests`].
#[derive(Clone)]
pub struct ConnectionOf(Arc<Connection>);

impl axum::extract::connect_info::Connected<IncomingStream<'_, BoundedListener>> for ConnectionOf {
    fn connect_info(stream: IncomingStream<'_, BoundedListener>) -> Self {
        Self(Arc::clone(&stream.io().connection))
    }
}

/// Marks the request's connection busy from now to the end of the response body.
pub async fn track_requests(
    ConnectInfo(connection): ConnectInfo<ConnectionOf>,
    request: Request,
    next: Next,
) -> Response {
    let guard = connection.0.begin();
    let response = next.run(request).await;
    response.map(|body| {
        axum::body::Body::new(body.map_frame(move |frame| {
            let _busy = &guard;
            frame
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_declares_its_body_length_exactly() {
        let text = std::str::from_utf8(BUSY_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, body.len());
    }

    fn idle_connection(registry: &Registry) -> Arc<Connection> {
        registry.admit(usize::MAX).unwrap()
    }

    #[tokio::test]
    async fn the_oldest_idle_connection_is_shed_and_a_busy_one_never() {
        let registry = Registry::default();
        let oldest = idle_connection(&registry);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let busy_but_older = idle_connection(&registry);
        let _request = busy_but_older.begin();
        let newer = idle_connection(&registry);
        // Make the busy one the oldest by idle time, too.
        busy_but_older.lock().idle_since = oldest.lock().idle_since - Duration::from_secs(1);

        assert!(registry.shed_one());
        assert!(oldest.lock().shed, "the oldest idle connection goes first");
        assert!(
            !busy_but_older.lock().shed,
            "a connection serving a request is never shed"
        );
        assert!(registry.shed_one());
        assert!(newer.lock().shed);
        assert!(!registry.shed_one(), "only busy connections are left");
        assert!(
            registry.admit(1).is_none(),
            "at the cap with none idle, a new one is refused"
        );
    }
}
