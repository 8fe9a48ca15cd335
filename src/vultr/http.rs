//! The one place requests to Vultr are sent: timeouts, retries with backoff, a cap on
//! response size, and every failure turned into a [`VultrError`].

use std::error::Error as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{RequestBuilder, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::{Api, VultrError, error_message, snippet};
use crate::observe::trace;

/// When and how often a failed request is tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// A longer `Retry-After` is reported instead of waited for.
    pub retry_after_cap: Duration,
    /// First backoff delay (doubled each time, with jitter).
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Only statuses that say the request was not carried out (408, 429) are retried: for
    /// writes that must not happen twice (adding an item, uploading a file), where a 5xx
    /// may come after the write was made.
    pub unapplied_only: bool,
}

impl RetryPolicy {
    /// Whether `error` is worth another attempt: 408, 409, 429 and 5xx only (408 and 429
    /// only for writes), and not when Vultr asks to wait longer than the cap.
    fn should_retry(&self, error: &VultrError) -> bool {
        match error {
            VultrError::Status {
                status,
                retry_after,
                ..
            } => {
                let retryable = if self.unapplied_only {
                    matches!(status, 408 | 429)
                } else {
                    matches!(status, 408 | 409 | 429 | 500..=599)
                };
                retryable && retry_after.is_none_or(|wait| wait <= self.retry_after_cap)
            }
            _ => false,
        }
    }

    /// The wait before retrying a request Vultr asked to wait `asked` for: never less,
    /// plus a random extra that spreads callers told the same thing (see [`retry_after_wait`]).
    fn retry_after_wait(&self, asked: Duration) -> Duration {
        retry_after_wait(asked, self.retry_after_cap, fastrand::f64())
    }
}

/// The least spread of the extra wait after a `Retry-After`: a quarter of a short wait
/// would still bunch callers within milliseconds of each other.
const MIN_RETRY_AFTER_SPREAD: Duration = Duration::from_millis(250);

/// `asked` plus `fraction` (in `[0, 1)`) of a spread of a quarter of `asked`, at least
/// [`MIN_RETRY_AFTER_SPREAD`]; never past `cap` unless `asked` itself is. A quarter keeps
/// the retry close to the time the rate limiter named while spreading a burst of callers
/// told "wait 1 s" over 250 ms instead of the same instant.
fn retry_after_wait(asked: Duration, cap: Duration, fraction: f64) -> Duration {
    let spread = (asked / 4).max(MIN_RETRY_AFTER_SPREAD);
    let jittered = asked + spread.mul_f64(fraction.clamp(0.0, 1.0));
    jittered.min(cap.max(asked))
}

/// How long a kept-alive connection may wait unused in the pool. Below the shortest
/// keep-alive common among servers (5 s: Node.js, uvicorn, Apache; nginx keeps 75 s and
/// load balancers often 60 s), so the server does not close a connection just as a request
/// is sent on it; a new TLS handshake after 4 s idle costs little next to a model call.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// What bounds every request to Vultr.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// Retries after HTTP 408, 409, 429 or 5xx.
    pub max_retries: usize,
    /// The longest `Retry-After` waited for; a longer one is reported instead.
    pub retry_after_cap: Duration,
    /// The largest response body accepted, in bytes.
    pub max_response_bytes: usize,
}

/// Where a request goes: its API, the base URL errors name, and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// Which Vultr API.
    pub api: Api,
    /// Its base URL.
    pub base_url: &'a str,
    /// How long the whole answer may take.
    pub timeout: Duration,
}

/// The HTTP client shared by both Vultr APIs, with its limits.
#[derive(Clone)]
pub struct VultrHttp {
    /// Built once, off the start-up path: loading the system's root certificates takes
    /// milliseconds that the MCP handshake should not wait for.
    /// Or why it could not be built (no root certificates could be loaded, say).
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    connect_timeout: Duration,
    retry: RetryPolicy,
    max_response_bytes: usize,
}

impl VultrHttp {
    /// A client honouring `limits`. The underlying client is built on a background
    /// thread now, or on first use if that comes sooner.
    pub fn new(limits: HttpLimits) -> Self {
        let http = Self {
            client: Arc::new(OnceLock::new()),
            connect_timeout: limits.connect_timeout,
            retry: RetryPolicy {
                max_retries: limits.max_retries,
                retry_after_cap: limits.retry_after_cap,
                min_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(4),
                unapplied_only: false,
            },
            max_response_bytes: limits.max_response_bytes,
        };
        let warm = http.clone();
        let spawned = std::thread::Builder::new()
            .name("http-client-init".to_owned())
            .spawn(move || {
                let _ = warm.client();
            });
        if spawned.is_err() {
            let _ = http.client();
        }
        http
    }

    /// The underlying client, to build requests with, or why there is none: every request
    /// then fails with that reason instead of the process panicking.
    pub fn client(&self) -> Result<&reqwest::Client, VultrError> {
        let built = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .connector_layer(pooled::MarkOpened)
                .redirect(same_origin_redirects())
                .user_agent(concat!(
                    env!("CARGO_PKG_NAME"),
                    "/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()
                .map_err(|error| {
                    let mut detail = error.to_string();
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        detail = format!("{detail}: {cause}");
                        source = cause.source();
                    }
                    detail
                })
        });
        built.as_ref().map_err(|detail| VultrError::NoHttpsClient {
            detail: detail.clone(),
        })
    }

    /// Sends a request, retrying what is worth retrying, and decodes a JSON success body.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
    ) -> Result<T, VultrError> {
        self.send_json_retried(to, request, false).await
    }

    /// Like [`VultrHttp::send_json`] for a write that must not happen twice: retried only
    /// after a status saying it was not carried out (408, 429), never after a 5xx.
    pub async fn send_json_write<T: DeserializeOwned>(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
    ) -> Result<T, VultrError> {
        self.send_json_retried(to, request, true).await
    }

    /// [`VultrHttp::send_json`], retried as a write when `write`.
    async fn send_json_retried<T: DeserializeOwned>(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
        write: bool,
    ) -> Result<T, VultrError> {
        let attempt = || async {
            let response = self.accepting(to, &request, "application/json").await?;
            self.read_json(to, response).await
        };
        with_retries(self.policy(write), to.api, attempt).await
    }

    /// Like [`VultrHttp::send_json`] for a request that cannot be cloned (a multipart
    /// upload): `make` builds it afresh for each attempt; with `write`, retried as
    /// [`VultrHttp::send_json_write`] is.
    pub async fn send_json_built<T: DeserializeOwned>(
        &self,
        to: Endpoint<'_>,
        make: impl Fn() -> RequestBuilder,
        write: bool,
    ) -> Result<T, VultrError> {
        let attempt = || async {
            let request = make().header(header::ACCEPT, "application/json");
            let response = self.response_once(to, request).await?;
            self.read_json(to, response).await
        };
        with_retries(self.policy(write), to.api, attempt).await
    }

    /// The retry policy: the configured one, for writes only after statuses that say the
    /// request was not carried out.
    fn policy(&self, write: bool) -> RetryPolicy {
        RetryPolicy {
            unapplied_only: write,
            ..self.retry
        }
    }

    /// Sends a request, retrying what is worth retrying, and reads the success body as
    /// raw bytes with its `Content-Type`.
    pub async fn send_bytes(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
    ) -> Result<super::inference::Bytes, VultrError> {
        let attempt = || async {
            let response = self.accepting(to, &request, "*/*").await?;
            self.read_typed(to, response).await
        };
        self.with_retries(to.api, attempt).await
    }

    /// Like [`VultrHttp::send_bytes`] for a request that cannot be cloned (a multipart
    /// upload): `make` builds it afresh for each attempt.
    pub async fn send_bytes_built(
        &self,
        to: Endpoint<'_>,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<super::inference::Bytes, VultrError> {
        let attempt = || async {
            let request = make().header(header::ACCEPT, "application/json, text/plain;q=0.9");
            let response = self.response_once(to, request).await?;
            self.read_typed(to, response).await
        };
        self.with_retries(to.api, attempt).await
    }

    /// Reads a whole body as bytes with its `Content-Type`, refusing one over the size cap.
    async fn read_typed(
        &self,
        to: Endpoint<'_>,
        response: reqwest::Response,
    ) -> Result<super::inference::Bytes, VultrError> {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_bytes(to, response).await?;
        Ok(super::inference::Bytes { body, content_type })
    }

    /// Sends a request whose answer is read as it arrives (a stream), retrying failures
    /// that come before it starts. `to.timeout` bounds the whole answer.
    pub async fn send_streaming(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, VultrError> {
        let attempt = || self.accepting(to, &request, "text/event-stream");
        self.with_retries(to.api, attempt).await
    }

    /// One attempt of `request`, accepting `accept`.
    async fn accepting(
        &self,
        to: Endpoint<'_>,
        request: &RequestBuilder,
        accept: &'static str,
    ) -> Result<reqwest::Response, VultrError> {
        let request = self
            .prepare(to.api, request)?
            .header(header::ACCEPT, accept);
        self.response_once(to, request).await
    }

    /// Reads a whole body, refusing one over the size cap.
    pub async fn read_body(
        &self,
        to: Endpoint<'_>,
        response: reqwest::Response,
    ) -> Result<String, VultrError> {
        let body = self.read_bytes(to, response).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Reads a whole body as bytes, refusing one over the size cap.
    pub async fn read_bytes(
        &self,
        to: Endpoint<'_>,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, VultrError> {
        let Endpoint {
            api,
            base_url,
            timeout,
        } = to;
        let too_large = || VultrError::TooLarge {
            api,
            limit: self.max_response_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(api, base_url, timeout, &e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads a success body as JSON; an empty body or a 204 reads as `null`.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        to: Endpoint<'_>,
        response: reqwest::Response,
    ) -> Result<T, VultrError> {
        let api = to.api;
        let status = response.status();
        let body = self.read_body(to, response).await?;
        let body = if status == StatusCode::NO_CONTENT || body.trim().is_empty() {
            "null"
        } else {
            &body
        };
        serde_json::from_str(body).map_err(|e| VultrError::Decode {
            api,
            status: status.as_u16(),
            detail: e.to_string(),
            snippet: snippet(body, 200),
        })
    }

    /// The largest body accepted, in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    fn prepare(&self, api: Api, request: &RequestBuilder) -> Result<RequestBuilder, VultrError> {
        request.try_clone().ok_or_else(|| VultrError::Transport {
            api,
            detail: "the request could not be prepared".to_owned(),
        })
    }

    async fn with_retries<T, F, Fut>(&self, api: Api, attempt: F) -> Result<T, VultrError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, VultrError>>,
    {
        with_retries(self.retry, api, attempt).await
    }

    /// One attempt: a success response (body unread), or the error a failure stands for;
    /// timed and counted in the metrics.
    async fn response_once(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, VultrError> {
        let started = std::time::Instant::now();
        let answer = self.answer_once(to, request).await;
        crate::observe::metrics::upstream_request(to.api, started.elapsed(), answer.as_ref().err());
        answer
    }

    /// [`VultrHttp::response_once`], untimed.
    async fn answer_once(
        &self,
        to: Endpoint<'_>,
        request: RequestBuilder,
    ) -> Result<reqwest::Response, VultrError> {
        let Endpoint {
            api,
            base_url,
            timeout,
        } = to;
        trace::upstream_attempt(&request);
        let response = send(timeout, request)
            .await
            .map_err(|e| transport_error(api, base_url, timeout, &e))?;
        let status = response.status();
        trace::upstream_status(status.as_u16());
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let body = self.read_body(to, response).await?;
        Err(VultrError::Status {
            api,
            status: status.as_u16(),
            message: error_message(&body).or_else(|| plain_text_message(&body)),
            retry_after,
        })
    }
}

/// Redirects are followed only within the origin (scheme, host, port) of the request
/// that got them, at most 5: a request to Vultr (or to a URL one of its answers named, such
/// as an image) never ends up on another host. The 30x is the answer otherwise.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(reqwest::Url::origin);
        if attempt.previous().len() > 5 || first.as_ref() != Some(&attempt.url().origin()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Sends `request` within `timeout`. When it went out on a kept-alive connection from the
/// pool and that connection closed before any byte of the answer arrived (a server closing
/// an idle connection just as the request reached it), it is sent once more at once, within
/// what is left of `timeout`; the dead connection has left the pool. This is apart from the
/// status retries and uses none of them. A request on a connection opened for it is never
/// sent twice this way: there, a close means the server failed on this very request.
async fn send(
    timeout: Duration,
    request: RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    let again = request.try_clone();
    let (sent, opened) = pooled::track(request.timeout(timeout).send()).await;
    let error = match sent {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    match again {
        Some(again) if !opened && closed_before_answer(&error) && !left.is_zero() => {
            tracing::info!(
                detail = %root_cause(&error),
                "a kept-alive connection closed before answering; sending the request again"
            );
            again.timeout(left).send().await
        }
        _ => Err(error),
    }
}

/// Whether sending failed because the connection was closed or reset before the answer's
/// head was complete (in practice, before any byte of it): not a timeout, not a failure to
/// connect, and never a failure while reading a body, which comes after the head and is
/// not an error of sending.
fn closed_before_answer(error: &reqwest::Error) -> bool {
    if error.is_timeout() || error.is_connect() || !error.is_request() {
        return false;
    }
    let mut cause = error.source();
    while let Some(current) = cause {
        if current
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        if current.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        }) {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Which requests went out on a connection taken from the pool: a connector layer marks,
/// in the sending task, every connection opened while that task sends one request.
mod pooled {
    use std::cell::Cell;
    use std::task::{Context, Poll};

    tokio::task_local! {
        /// Set while one request is sent; true once a connection was opened for it.
        static OPENED: Cell<bool>;
    }

    /// Runs `send` and says whether a connection was opened for it (`false`: it used one
    /// from the pool, or failed before getting any).
    pub(super) async fn track<F: Future>(send: F) -> (F::Output, bool) {
        OPENED
            .scope(Cell::new(false), async {
                let output = send.await;
                (output, OPENED.with(Cell::get))
            })
            .await
    }

    /// The connector layer that marks connections as they are opened. The connection
    /// pool starts opening one in the requesting task only when it has no idle one at
    /// hand, so an unmarked request surely went out on a pooled connection.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct MarkOpened;

    impl<S> tower_layer::Layer<S> for MarkOpened {
        type Service = Marking<S>;

        fn layer(&self, inner: S) -> Marking<S> {
            Marking(inner)
        }
    }

    /// A connector that marks each connection it opens.
    #[derive(Debug, Clone)]
    pub(super) struct Marking<S>(S);

    impl<S, R> tower_service::Service<R> for Marking<S>
    where
        S: tower_service::Service<R>,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, destination: R) -> S::Future {
            let _ = OPENED.try_with(|opened| opened.set(true));
            self.0.call(destination)
        }
    }
}

/// Runs `attempt` until it succeeds or fails in a way `policy` does not retry: with
/// exponential backoff and jitter, or after a `Retry-After` with its own jitter on top.
async fn with_retries<T, F, Fut>(policy: RetryPolicy, api: Api, attempt: F) -> Result<T, VultrError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, VultrError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter();
    let retried = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e| policy.should_retry(e))
        .adjust(|e, delay| {
            let retry_after = match e {
                VultrError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            delay.map(|d| retry_after.map_or(d, |asked| policy.retry_after_wait(asked)))
        })
        .notify(|e, delay| {
            crate::observe::metrics::upstream_retry(api);
            tracing::info!(%api, status = ?e.status(), ?delay, "retrying a failed request");
        });
    trace::upstream(api, retried).await
}

/// A short non-JSON error body (a proxy's "Bad Gateway", say) is still worth showing.
fn plain_text_message(body: &str) -> Option<String> {
    let text = body.trim();
    let looks_like_text = !text.is_empty() && !text.starts_with('{') && !text.starts_with('<');
    looks_like_text.then(|| snippet(text, 200))
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

fn transport_error(
    api: Api,
    base_url: &str,
    timeout: Duration,
    error: &reqwest::Error,
) -> VultrError {
    if error.is_timeout() {
        return VultrError::Timeout {
            api,
            after: timeout,
        };
    }
    let detail = root_cause(error);
    if error.is_connect() {
        return VultrError::Unreachable {
            api,
            base_url: base_url.to_owned(),
            detail,
        };
    }
    if error.is_body() || error.is_decode() {
        return VultrError::Interrupted { api, detail };
    }
    VultrError::Transport { api, detail }
}

/// The innermost cause, which names the real problem ("connection refused"), without the URL.
fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.is_empty() {
        "unknown error".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<u64>) -> VultrError {
        VultrError::Status {
            api: Api::Inference,
            status,
            message: None,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            retry_after_cap: Duration::from_secs(20),
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            unapplied_only: false,
        }
    }

    #[test]
    fn the_wait_after_retry_after_is_never_shorter_and_at_most_a_quarter_longer() {
        let one_second = Duration::from_secs(1);
        let cap = Duration::from_secs(20);
        assert_eq!(retry_after_wait(one_second, cap, 0.0), one_second);
        assert_eq!(
            retry_after_wait(one_second, cap, 1.0),
            Duration::from_millis(1250)
        );
        assert_eq!(
            retry_after_wait(Duration::from_secs(8), cap, 0.5),
            Duration::from_secs(9)
        );
        // Short waits still get some spread.
        assert_eq!(
            retry_after_wait(Duration::ZERO, cap, 1.0),
            MIN_RETRY_AFTER_SPREAD
        );
        // The cap bounds the extra, never what Vultr asked for.
        assert_eq!(
            retry_after_wait(Duration::from_secs(18), cap, 1.0),
            Duration::from_secs(20)
        );
        assert_eq!(retry_after_wait(cap, cap, 1.0), cap);
    }

    #[test]
    fn waits_after_the_same_retry_after_are_spread_over_a_quarter_of_it() {
        let asked = Duration::from_secs(1);
        let waits: Vec<Duration> = (0..1000)
            .map(|_| policy().retry_after_wait(asked))
            .collect();
        let shortest = *waits.iter().min().unwrap();
        let longest = *waits.iter().max().unwrap();
        assert!(shortest >= asked, "{shortest:?}");
        assert!(longest <= Duration::from_millis(1250), "{longest:?}");
        assert!(
            longest - shortest >= Duration::from_millis(200),
            "the waits bunch together: {shortest:?}..{longest:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn callers_told_to_wait_one_second_retry_spread_out_and_never_early() {
        let started = tokio::time::Instant::now();
        let call = || async {
            let mut attempts = 0;
            with_retries(policy(), Api::Inference, || {
                attempts += 1;
                let first = attempts == 1;
                async move {
                    if first {
                        Err(status(429, Some(1)))
                    } else {
                        Ok(started.elapsed())
                    }
                }
            })
            .await
            .unwrap()
        };
        let retried_at = futures_util::future::join_all((0..64).map(|_| call())).await;
        let earliest = *retried_at.iter().min().unwrap();
        let latest = *retried_at.iter().max().unwrap();
        assert!(earliest >= Duration::from_secs(1), "{earliest:?}");
        assert!(latest <= Duration::from_millis(1250), "{latest:?}");
        assert!(
            latest - earliest >= Duration::from_millis(100),
            "64 callers retried within {:?} of each other",
            latest - earliest
        );
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        let policy = RetryPolicy {
            max_retries: 2,
            retry_after_cap: Duration::from_secs(20),
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            unapplied_only: false,
        };
        let writes = RetryPolicy {
            unapplied_only: true,
            ..policy
        };
        for retried in [408, 429] {
            assert!(writes.should_retry(&status(retried, None)), "{retried}");
        }
        for applied_maybe in [409, 500, 502, 503, 504] {
            assert!(
                !writes.should_retry(&status(applied_maybe, None)),
                "a write is not sent again after {applied_maybe}"
            );
        }
        for retried in [408, 409, 429, 500, 502, 503, 504] {
            assert!(policy.should_retry(&status(retried, None)), "{retried}");
        }
        for final_status in [400, 401, 403, 404, 422] {
            assert!(
                !policy.should_retry(&status(final_status, None)),
                "{final_status}"
            );
        }
        assert!(policy.should_retry(&status(429, Some(20))));
        assert!(!policy.should_retry(&status(429, Some(21))));
        let timeout = VultrError::Timeout {
            api: Api::Inference,
            after: Duration::from_secs(1),
        };
        assert!(!policy.should_retry(&timeout));
    }
}
