//! A raw fake of the Vultr inference API that can inject transport-level faults.
//!
//! Unlike [`super::FakeVultr`] (wiremock), this server speaks HTTP/1.1 by hand on a plain
//! [`tokio::net::TcpListener`] bound to `127.0.0.1:0`, so it can misbehave in ways an HTTP
//! library would refuse to: reset the connection, truncate a body, stall forever, send a
//! huge body, or answer slowly. Keep-alive is supported (several requests per connection),
//! unless the server is started with [`FaultServer::start_without_keep_alive`].
//!
//! Routes (wire shapes from `/work/shared/vultr-api.md`, Part B/C):
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/models` | always 200 with `tests/fixtures/catalog-2.4.json` |
//! | `POST /v1/chat/completions` | the next [`Fault`] of the script (FIFO); when it is empty, the [`Standing`] answer (by default [`Fault::Normal`]) |
//! | anything else | 404 `{"error":"Not found","status":404}` |
//!
//! [`Fault::Stream`] answers with server-sent events (`text/event-stream`, one HTTP/1.1
//! chunk of the chunked transfer encoding per event) and then ends per [`StreamEnd`];
//! [`content_chunks`] builds OpenAI-style delta chunks for it, [`empty_chunks`] chunks
//! whose delta carries nothing.
//!
//! In front of the wiremock fake ([`FaultServer::in_front_of`]), it relays to it every request
//! that neither the script nor a [`Rule`] answers: the full fake with timed streams and stalls
//! for the prompts a rule picks (what the Python interop run uses, via `examples/fake_vultr.rs`).
//!
//! Limits: request heads over 64 KiB, bodies over 64 MiB and `Transfer-Encoding` request
//! bodies (chunked) are not supported; such a request gets a 400/413 and the connection closes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::{CATALOG_DOCUMENT_24, CHAT_PATH, MODELS_PATH};

/// The catalog fixture without its whitespace. Kept under 8 KiB with its head, so the
/// client reads the whole answer in one read and hyper returns its connection to the pool
/// before the next request looks for one: the tests of a kept-alive connection closing
/// need the chat request to go out on the catalog's connection, every time.
static COMPACT_CATALOG: LazyLock<String> = LazyLock::new(|| {
    let catalog: Value =
        serde_json::from_str(CATALOG_DOCUMENT_24).expect("the catalog fixture is JSON");
    let compact = catalog.to_string();
    assert!(
        compact.len() < 7_800,
        "the compact catalog ({} bytes) no longer fits one 8 KiB read",
        compact.len()
    );
    compact
});

/// A key to configure for the server under test: the fault server accepts every key.
pub const INFERENCE_KEY: &str = "FAULT-SERVER-ACCEPTS-ANY-KEY-0001";

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Chunk size used when writing [`Fault::Oversized`] bodies.
const CHUNK: usize = 64 * 1024;
/// Declared `Content-Length` of a [`Fault::Truncated`] answer.
const TRUNCATED_DECLARED: usize = 1000;
/// Bytes actually sent by a [`Fault::Truncated`] answer.
const TRUNCATED_SENT: usize = 20;
/// Polling period of the `wait_*` helpers.
const POLL: Duration = Duration::from_millis(10);

/// One scripted behaviour for a `POST /v1/chat/completions` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    Normal,
    /// Answer with this status, extra headers and body (e.g. 429 with Retry-After, 500, a 200 with malformed JSON).
    Status {
        /// HTTP status code.
        status: u16,
        /// Extra headers (a `Content-Type` here replaces the default; `Content-Length` is always computed).
        headers: Vec<(String, String)>,
        /// Response body, sent as is.
        body: String,
    },
    /// Answer normally after this delay.
    Delay(Duration),
    /// Read the request, then reset the connection (TCP RST via `SO_LINGER` 0 and drop).
    Reset,
    /// Read the request, then close the connection (FIN) without writing a byte: what a
    /// server closing an idle kept-alive connection looks like when a request races the close.
    Close,
    /// Send a 200 head with `Content-Length: 1000`, then 20 bytes of JSON, then close.
    Truncated,
    /// Read the request and never answer; keep the socket open until the client closes it, and record that it did.
    Stall,
    /// Send a 200 with `Content-Length: n` and an n-byte body (`{"choices":[` padded with spaces), in 64 KiB chunks.
    Oversized(usize),
    /// Stream server-sent events: a 200 `text/event-stream` head with
    /// `Transfer-Encoding: chunked`, then each of `chunks` as `data: <chunk>\n\n` (one
    /// HTTP chunk each), waiting `interval` between two consecutive chunks, then the end
    /// given by `then`, right after the last chunk.
    Stream {
        /// The `data` of each event, e.g. from [`content_chunks`].
        chunks: Vec<String>,
        /// Pause between two consecutive chunks (none before the first or after the last).
        interval: Duration,
        /// How the stream ends.
        then: StreamEnd,
    },
}

/// How a [`Fault::Stream`] ends after its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// `data: [DONE]\n\n`, then the last chunk of the chunked encoding; the connection stays usable.
    Done,
    /// Nothing more: keep the connection open until the client closes it, and record that it did
    /// (as [`Fault::Stall`] does, counted by [`FaultServer::stalls_closed_by_client`]).
    Stall,
    /// Close the connection abruptly, without `[DONE]` and without the last chunk of the
    /// chunked encoding: a stream truncated at the HTTP level.
    Cut,
    /// End the HTTP body properly (last chunk of the chunked encoding) without `[DONE]`:
    /// an event stream that simply stops.
    Eof,
    /// `data: {not json\n\n`, then the last chunk of the chunked encoding.
    Garbage,
}

/// How chat requests are answered when the script is empty: the steady load of the
/// benchmark. By default at once, with [`Fault::Normal`] even when a stream was asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Wait before answering.
    pub delay: Duration,
    /// For requests with `"stream": true`: this many content chunks (`word0 `, `word1 `,
    /// ...) this far apart, then the finish chunk and `[DONE]`.
    pub stream: Option<(usize, Duration)>,
}

impl Standing {
    /// The answer to an unscripted chat request for `model`.
    fn fault(&self, model: &str, asks_to_stream: bool) -> Fault {
        match self.stream {
            Some((chunks, interval)) if asks_to_stream => {
                let words: Vec<String> = (0..chunks).map(|i| format!("word{i} ")).collect();
                let pieces: Vec<&str> = words.iter().map(String::as_str).collect();
                Fault::Stream {
                    chunks: content_chunks(model, &pieces, true),
                    interval,
                    then: StreamEnd::Done,
                }
            }
            _ if self.delay.is_zero() => Fault::Normal,
            _ => Fault::Delay(self.delay),
        }
    }
}

/// OpenAI-style streamed chat chunks: one per piece,
/// `{"id":"x","model":model,"choices":[{"index":0,"delta":{"content":piece}}]}`, and when
/// `finish` one more, `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
/// "usage":{"prompt_tokens":5,"completion_tokens":N,"total_tokens":5+N}}` with N the number of pieces.
pub fn content_chunks(model: &str, pieces: &[&str], finish: bool) -> Vec<String> {
    let mut chunks: Vec<String> = pieces
        .iter()
        .map(|piece| {
            json!({
                "id": "x",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}}],
            })
            .to_string()
        })
        .collect();
    if finish {
        let n = pieces.len();
        chunks.push(
            json!({
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n},
            })
            .to_string(),
        );
    }
    chunks
}

/// `n` streamed chat chunks that carry nothing: `{"id":"x","model":model,
/// "choices":[{"index":0,"delta":{"content":""}}]}` (what a keep-alive of a busy model looks like).
pub fn empty_chunks(model: &str, n: usize) -> Vec<String> {
    let empty = json!({
        "id": "x",
        "model": model,
        "choices": [{"index": 0, "delta": {"content": ""}}],
    })
    .to_string();
    vec![empty; n]
}

/// A function from a chat request's JSON body to the fault to answer with, if any.
type Pick = dyn Fn(&Value) -> Option<Fault> + Send + Sync;

/// Picks the answer to a chat request from its JSON body; `None` leaves it to the default.
#[derive(Clone)]
pub struct Rule(Arc<Pick>);

impl Rule {
    /// A rule answering with what `pick` returns for a chat request body.
    pub fn new(pick: impl Fn(&Value) -> Option<Fault> + Send + Sync + 'static) -> Self {
        Self(Arc::new(pick))
    }
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rule")
    }
}

/// Where requests nobody scripted are relayed: another fake, e.g. the wiremock [`super::FakeVultr`].
#[derive(Debug, Clone)]
struct Upstream {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    origin: String,
    /// Client for relaying (never through a proxy).
    client: reqwest::Client,
}

/// State shared between the [`FaultServer`] handle and its tasks.
#[derive(Debug, Default)]
struct State {
    /// Faults still to be used, first one next.
    script: VecDeque<Fault>,
    /// Chat requests whose head was received.
    chat_requests: usize,
    /// Chat request bodies (`Value::Null` when a body is not JSON).
    chat_bodies: Vec<Value>,
    /// Chat request `Authorization` headers.
    chat_authorizations: Vec<Option<String>>,
    /// For each chat request, the number of the connection it came on (1 for the first accepted).
    chat_connections: Vec<usize>,
    /// Whether every answer closes its connection (`Connection: close`).
    no_keep_alive: bool,
    /// Stalled requests whose client closed the connection.
    stalls_closed: usize,
    /// [`Fault::Stream`] answers the client hung up on before their end was sent.
    streams_abandoned: usize,
    /// TCP connections accepted.
    connections: usize,
    /// How unscripted chat requests are answered.
    standing: Standing,
    /// Chat requests received and not answered yet.
    in_flight: usize,
    /// When each event of the latest streamed answer was written.
    last_stream: Vec<Instant>,
    /// Rules consulted, after the script, for each chat request.
    rules: Vec<Rule>,
    /// Where requests the script and the rules leave alone are relayed, if anywhere.
    upstream: Option<Upstream>,
}

/// Shared, lockable [`State`].
#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<State>>);

impl Shared {
    /// Locks the state, ignoring poisoning (a panicking test must not hide the real failure).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running raw fake inference server; it stops when dropped.
#[derive(Debug)]
pub struct FaultServer {
    /// Local address of the listener.
    addr: SocketAddr,
    /// Shared state.
    state: Shared,
    /// The accept loop (owns every connection task through a `JoinSet`).
    accept: JoinHandle<()>,
}

impl FaultServer {
    /// Starts the server with a script of faults for successive chat requests.
    pub async fn start(script: Vec<Fault>) -> FaultServer {
        Self::start_with(script, false).await
    }

    /// Like [`FaultServer::start`], but every answer closes its connection
    /// (`Connection: close`), so each request comes on a new connection.
    pub async fn start_without_keep_alive(script: Vec<Fault>) -> FaultServer {
        Self::start_with(script, true).await
    }

    async fn start_with(script: Vec<Fault>, no_keep_alive: bool) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault server local address");
        let state = Shared::default();
        {
            let mut st = state.lock();
            st.script.extend(script);
            st.no_keep_alive = no_keep_alive;
        }
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        FaultServer {
            addr,
            state,
            accept,
        }
    }

    /// Starts a server in front of `upstream_origin` (`http://127.0.0.1:PORT`, e.g. the
    /// wiremock fake's): chat requests go to the first [`Rule`] that picks a fault, every
    /// other request (any route) is relayed to the upstream and its answer sent back.
    pub async fn in_front_of(upstream_origin: &str, rules: Vec<Rule>) -> FaultServer {
        let server = Self::start(Vec::new()).await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("build the relay client");
        {
            let mut st = server.state.lock();
            st.rules = rules;
            st.upstream = Some(Upstream {
                origin: upstream_origin.trim_end_matches('/').to_owned(),
                client,
            });
        }
        server
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The settings that point a server at this fake: its base URL and a configured
    /// inference key (no account API, so no key discovery).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VULTR_INFERENCE_BASE_URL", self.base_url()),
            ("VULTR_INFERENCE_API_KEY", INFERENCE_KEY.to_owned()),
        ]
    }

    /// Appends faults to the script.
    pub fn push(&self, fault: Fault) {
        self.state.lock().script.push_back(fault);
    }

    /// How many POST /v1/chat/completions requests were received (complete heads), whatever they got.
    pub fn chat_requests(&self) -> usize {
        self.state.lock().chat_requests
    }

    /// The JSON bodies of the chat requests, in order (`Value::Null` for a body that is not JSON).
    pub fn chat_bodies(&self) -> Vec<Value> {
        self.state.lock().chat_bodies.clone()
    }

    /// The Authorization header values of the chat requests, in order.
    pub fn chat_authorizations(&self) -> Vec<Option<String>> {
        self.state.lock().chat_authorizations.clone()
    }

    /// For each chat request in order, the number of the connection it came on (connections
    /// are numbered 1, 2, … as accepted), to see which requests shared a connection.
    pub fn chat_connections(&self) -> Vec<usize> {
        self.state.lock().chat_connections.clone()
    }

    /// How many TCP connections the server has accepted (to check connection reuse).
    pub fn connections(&self) -> usize {
        self.state.lock().connections
    }

    /// Number of stalled requests whose client has closed the connection so far.
    pub fn stalls_closed_by_client(&self) -> usize {
        self.state.lock().stalls_closed
    }

    /// Waits (polling every 10 ms, up to `timeout`) until `stalls_closed_by_client() >= n`; returns whether it got there.
    pub async fn wait_stalls_closed(&self, n: usize, timeout: Duration) -> bool {
        poll_until(timeout, || self.stalls_closed_by_client() >= n).await
    }

    /// Number of [`Fault::Stream`] answers whose client hung up before the end was sent
    /// (noticed when a later write fails, so within two chunks of the hang-up).
    pub fn streams_abandoned_by_client(&self) -> usize {
        self.state.lock().streams_abandoned
    }

    /// Waits (same polling) until `streams_abandoned_by_client() >= n`; returns whether it got there.
    pub async fn wait_streams_abandoned(&self, n: usize, timeout: Duration) -> bool {
        poll_until(timeout, || self.streams_abandoned_by_client() >= n).await
    }

    /// How chat requests are answered from now on when the script is empty.
    pub fn set_standing(&self, standing: Standing) {
        self.state.lock().standing = standing;
    }

    /// Chat requests received and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.state.lock().in_flight
    }

    /// When each event of the latest streamed answer was written, in order.
    pub fn last_stream_events(&self) -> Vec<Instant> {
        self.state.lock().last_stream.clone()
    }

    /// Waits until `chat_requests() >= n` (same polling), returns whether it got there.
    pub async fn wait_chat_requests(&self, n: usize, timeout: Duration) -> bool {
        poll_until(timeout, || self.chat_requests() >= n).await
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

/// A `http://127.0.0.1:PORT/v1` URL where connections are refused (nothing listens on PORT).
pub fn refused_base_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind probe listener");
    let port = listener
        .local_addr()
        .expect("probe listener address")
        .port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

/// Polls `done` every [`POLL`] until it holds or `timeout` has passed; returns its last value.
async fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Accepts connections forever, serving each one in a task of a `JoinSet`.
async fn accept_loop(listener: TcpListener, state: Shared) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            // Transient accept errors (e.g. too many open files): back off a little.
            tokio::time::sleep(POLL).await;
            continue;
        };
        let number = {
            let mut st = state.lock();
            st.connections += 1;
            st.connections
        };
        connections.spawn(serve_connection(stream, number, state.clone()));
    }
}

/// Counts a chat request (counted in by its maker) as in flight until dropped: answered,
/// or its connection gone.
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

/// A parsed request.
#[derive(Debug)]
struct Request {
    /// Method, e.g. `POST`.
    method: String,
    /// Path without the query string.
    path: String,
    /// Headers, names lowercased.
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header (name in lowercase).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close the connection after this request.
    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

/// What a connection does after one exchange.
enum Next {
    /// Serve the next request on the same connection.
    KeepAlive,
    /// End the connection.
    Close,
}

/// Serves requests on connection number `number` until the client hangs up or a fault ends it.
async fn serve_connection(mut stream: TcpStream, number: usize, state: Shared) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match serve_one(&mut stream, number, &mut buf, &state).await {
            Some(Next::KeepAlive) => {}
            Some(Next::Close) | None => return,
        }
    }
}

/// Reads one request and answers it; `None` when the connection is gone or unusable.
async fn serve_one(
    stream: &mut TcpStream,
    connection: usize,
    buf: &mut Vec<u8>,
    state: &Shared,
) -> Option<Next> {
    let head_len = read_head(stream, buf).await?;
    let Some(request) = parse_head(&buf[..head_len]) else {
        respond_error(stream, 400, "Bad request").await;
        return None;
    };
    buf.drain(..head_len);

    if request.header("transfer-encoding").is_some() {
        respond_error(
            stream,
            400,
            "Transfer-Encoding is not supported by the fake",
        )
        .await;
        return None;
    }
    let content_length = match request.header("content-length") {
        None => 0,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                respond_error(stream, 400, "Bad Content-Length").await;
                return None;
            }
        },
    };
    if content_length > MAX_BODY {
        respond_error(stream, 413, "Request body too large").await;
        return None;
    }

    let is_chat = request.method == "POST" && request.path == CHAT_PATH;
    let (scripted, _in_flight) = if is_chat {
        let mut st = state.lock();
        st.chat_requests += 1;
        st.chat_connections.push(connection);
        st.chat_authorizations
            .push(request.header("authorization").map(str::to_owned));
        st.in_flight += 1;
        (st.script.pop_front(), Some(InFlight(state.clone())))
    } else {
        (None, None)
    };

    read_exact_into(stream, buf, content_length).await?;
    let body: Vec<u8> = buf.drain(..content_length).collect();
    let close_after = request.wants_close() || state.lock().no_keep_alive;
    let keep = if close_after {
        Next::Close
    } else {
        Next::KeepAlive
    };

    let upstream = state.lock().upstream.clone();
    if !is_chat && let Some(upstream) = &upstream {
        let (status, headers, body) = relay(upstream, &request, body).await;
        write_response(stream, status, &headers, &body, close_after).await?;
        return Some(keep);
    }
    if !is_chat {
        let (status, body) = if request.method == "GET" && request.path == MODELS_PATH {
            (200, COMPACT_CATALOG.clone())
        } else {
            (
                404,
                json!({"error": "Not found", "status": 404}).to_string(),
            )
        };
        write_response(stream, status, &[], body.as_bytes(), close_after).await?;
        return Some(keep);
    }

    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = json_body.get("model").cloned().unwrap_or(Value::Null);
    let asks_to_stream = json_body.get("stream") == Some(&Value::Bool(true));
    let (fault, rules) = {
        let mut st = state.lock();
        st.chat_bodies.push(json_body.clone());
        (scripted, st.rules.clone())
    };
    let fault = fault.or_else(|| rules.iter().find_map(|rule| (rule.0)(&json_body)));
    let fault = match (fault, &upstream) {
        (Some(fault), _) => fault,
        (None, Some(upstream)) => {
            let (status, headers, body) = relay(upstream, &request, body).await;
            write_response(stream, status, &headers, &body, close_after).await?;
            return Some(keep);
        }
        (None, None) => state
            .lock()
            .standing
            .fault(model.as_str().unwrap_or_default(), asks_to_stream),
    };

    match fault {
        Fault::Normal => {
            write_response(stream, 200, &[], &normal_body(model), close_after).await?;
            Some(keep)
        }
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            write_response(stream, 200, &[], &normal_body(model), close_after).await?;
            Some(keep)
        }
        Fault::Status {
            status,
            headers,
            body,
        } => {
            write_response(stream, status, &headers, body.as_bytes(), close_after).await?;
            Some(keep)
        }
        Fault::Reset => {
            let _ = stream.set_zero_linger();
            None
        }
        Fault::Close => {
            let _ = stream.shutdown().await;
            None
        }
        Fault::Truncated => {
            let full = normal_body(model);
            let sent = &full[..TRUNCATED_SENT.min(full.len())];
            let head = response_head(200, &[], TRUNCATED_DECLARED, false);
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(sent).await;
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
            None
        }
        Fault::Stall => {
            wait_for_client_close(stream).await;
            state.lock().stalls_closed += 1;
            None
        }
        Fault::Oversized(n) => {
            let head = response_head(200, &[], n, close_after);
            stream.write_all(head.as_bytes()).await.ok()?;
            let mut first = true;
            let mut left = n;
            while left > 0 {
                let len = left.min(CHUNK);
                let mut chunk = vec![b' '; len];
                if first {
                    let prefix = b"{\"choices\":[";
                    let p = prefix.len().min(len);
                    chunk[..p].copy_from_slice(&prefix[..p]);
                    first = false;
                }
                stream.write_all(&chunk).await.ok()?;
                left -= len;
            }
            stream.flush().await.ok()?;
            Some(keep)
        }
        Fault::Stream {
            chunks,
            interval,
            then,
        } => {
            let sent = write_stream(stream, state, &chunks, interval, then, close_after).await;
            if sent.is_none() {
                state.lock().streams_abandoned += 1;
                return None;
            }
            match then {
                StreamEnd::Done | StreamEnd::Eof | StreamEnd::Garbage => Some(keep),
                StreamEnd::Stall | StreamEnd::Cut => None,
            }
        }
    }
}

/// Relays `request` with `body` to the upstream fake; its status, `Content-Type` and body,
/// or a 502 saying the upstream could not be reached.
async fn relay(
    upstream: &Upstream,
    request: &Request,
    body: Vec<u8>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or_default();
    let mut relayed = upstream
        .client
        .request(method, format!("{}{}", upstream.origin, request.path))
        .body(body);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(value) = request.header(name) {
            relayed = relayed.header(name, value);
        }
    }
    let answer = match relayed.send().await {
        Ok(response) => response,
        Err(error) => {
            let body = json!({"error": format!("relay failed: {error}"), "status": 502});
            return (502, Vec::new(), body.to_string().into_bytes());
        }
    };
    let status = answer.status().as_u16();
    let headers: Vec<(String, String)> = answer
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(|value| ("Content-Type".to_owned(), value.to_owned()))
        .into_iter()
        .collect();
    let body = answer.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, headers, body)
}

/// Writes a [`Fault::Stream`] answer; `None` when the client hung up before its end.
async fn write_stream(
    stream: &mut TcpStream,
    state: &Shared,
    chunks: &[String],
    interval: Duration,
    then: StreamEnd,
    close: bool,
) -> Option<()> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n",
    );
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.flush().await.ok()?;
    let mut written = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        written.push(Instant::now());
        write_event(stream, chunk).await?;
    }
    state.lock().last_stream = written;
    match then {
        StreamEnd::Done => {
            write_event(stream, "[DONE]").await?;
            write_last_chunk(stream).await
        }
        StreamEnd::Garbage => {
            write_event(stream, "{not json").await?;
            write_last_chunk(stream).await
        }
        StreamEnd::Eof => write_last_chunk(stream).await,
        StreamEnd::Stall => {
            wait_for_client_close(stream).await;
            state.lock().stalls_closed += 1;
            Some(())
        }
        StreamEnd::Cut => {
            let _ = stream.shutdown().await;
            Some(())
        }
    }
}

/// Writes `data: <data>\n\n` as one chunk of the chunked transfer encoding.
async fn write_event(stream: &mut TcpStream, data: &str) -> Option<()> {
    let event = format!("data: {data}\n\n");
    let framed = format!("{:x}\r\n{event}\r\n", event.len());
    stream.write_all(framed.as_bytes()).await.ok()?;
    stream.flush().await.ok()
}

/// Writes the zero-length chunk that ends a chunked body.
async fn write_last_chunk(stream: &mut TcpStream) -> Option<()> {
    stream.write_all(b"0\r\n\r\n").await.ok()?;
    stream.flush().await.ok()
}

/// Reads until `buf` holds a whole request head; returns its length (terminator included).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut searched = 0;
    loop {
        if let Some(pos) = find_head_end(&buf[searched..]) {
            return Some(searched + pos + 4);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        searched = buf.len().saturating_sub(3);
        read_some(stream, buf).await?;
    }
}

/// Position of the first `\r\n\r\n` in `bytes`.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads until `buf` holds at least `len` bytes.
async fn read_exact_into(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> Option<()> {
    while buf.len() < len {
        read_some(stream, buf).await?;
    }
    Some(())
}

/// Appends one read's worth of bytes to `buf`; `None` on EOF or error.
async fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// Discards anything the client sends until it closes the connection (EOF or error).
async fn wait_for_client_close(stream: &mut TcpStream) {
    let mut chunk = [0u8; 8192];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            return;
        }
    }
}

/// Parses a request head (request line and headers).
fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?;
    parts.next()?; // HTTP version
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Some(Request {
        method,
        path,
        headers,
    })
}

/// The body of a normal chat completion for `model`.
fn normal_body(model: Value) -> Vec<u8> {
    json!({
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "ok from raw fake"},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    })
    .to_string()
    .into_bytes()
}

/// A response head; `Content-Type: application/json` unless `extra` has one, and
/// `Content-Length: content_length` (any `Content-Length` in `extra` is ignored).
fn response_head(
    status: u16,
    extra: &[(String, String)],
    content_length: usize,
    close: bool,
) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if !extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in extra {
        if !name.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {content_length}\r\n"));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Writes a whole response; `None` if the client has gone.
async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    extra: &[(String, String)],
    body: &[u8],
    close: bool,
) -> Option<()> {
    let mut bytes = response_head(status, extra, body.len(), close).into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.ok()?;
    stream.flush().await.ok()
}

/// Answers a request the fake cannot handle and closes (best effort).
async fn respond_error(stream: &mut TcpStream, status: u16, message: &str) {
    let body = json!({"error": message, "status": status}).to_string();
    let _ = write_response(stream, status, &[], body.as_bytes(), true).await;
    let _ = stream.shutdown().await;
}

/// Reason phrase for common status codes (clients ignore it anyway).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
