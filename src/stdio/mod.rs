//! The stdio transport rmcp serves over: one JSON-RPC message per line in each direction.
//!
//! Unlike rmcp's own line transport it answers every line: a line that is not JSON, not a
//! request, too long, or a request reusing the id of one still running gets a JSON-RPC
//! error (`"id": null` when the id cannot be read) instead of silence. It bounds the
//! requests read but not yet answered and stops reading stdin while that many are
//! pending, so a flood (or a client that does not read our stdout) cannot grow memory
//! without limit. End of stdin, or a client that closes our stdout, cancels the calls in
//! flight through the `client_gone` token.

mod hangup;
mod incoming;
mod lines;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ErrorCode, JsonRpcMessage, RequestId,
    ServerJsonRpcMessage,
};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use hangup::stdout_hung_up;
use incoming::{ErrorAnswer, Incoming, classify};
use lines::{Line, LineReader};

/// The longest line (one JSON-RPC message) accepted on stdin: 16 MiB.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// How many requests may be read but not yet answered before stdin is left unread.
pub const MAX_PENDING_REQUESTS: usize = 1024;
/// Lines queued for stdout; senders wait beyond this.
const OUTPUT_QUEUE: usize = 64;
/// Messages read and waiting for rmcp to take them.
const INPUT_QUEUE: usize = 64;
/// How long closing waits for the answers already queued to reach stdout.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The bounds of a [`StdioTransport`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest line accepted, in bytes.
    pub max_line_bytes: usize,
    /// The most requests read but not yet answered.
    pub max_pending_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_bytes: MAX_LINE_BYTES,
            max_pending_requests: MAX_PENDING_REQUESTS,
        }
    }
}

/// JSON-RPC over a reader and a writer (stdin and stdout), for rmcp to serve over.
pub struct StdioTransport {
    messages: mpsc::Receiver<ClientJsonRpcMessage>,
    output: Option<mpsc::Sender<OutputLine>>,
    reader: JoinHandle<()>,
    writer: Option<JoinHandle<()>>,
    output_closed: CancellationToken,
    client_gone: CancellationToken,
}

impl StdioTransport {
    /// Reads `input` and writes `output` in tasks of their own. `client_gone` is cancelled
    /// at end of input, and when `output` fails or `output_hangup` resolves (the client
    /// closed it).
    pub fn new<R, W, H>(
        input: R,
        output: W,
        output_hangup: H,
        limits: Limits,
        client_gone: CancellationToken,
    ) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
        H: Future<Output = ()> + Send + 'static,
    {
        let pending = Pending::new(limits.max_pending_requests);
        let output_closed = CancellationToken::new();
        let (lines_tx, lines_rx) = mpsc::channel(OUTPUT_QUEUE);
        let (messages_tx, messages) = mpsc::channel(INPUT_QUEUE);
        let writer = tokio::spawn(write_lines(
            output,
            lines_rx,
            output_hangup,
            pending.clone(),
            output_closed.clone(),
            client_gone.clone(),
        ));
        let reader = tokio::spawn(read_lines(
            input,
            limits.max_line_bytes,
            messages_tx,
            lines_tx.clone(),
            pending,
        ));
        Self {
            messages,
            output: Some(lines_tx),
            reader,
            writer: Some(writer),
            output_closed,
            client_gone,
        }
    }
}

impl Transport<RoleServer> for StdioTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let output = self.output.clone();
        let line = OutputLine::encode(&item);
        async move {
            let output = output.ok_or_else(|| closed("the transport is closed"))?;
            // Once the client has closed stdout, the writer drops what it is given: the
            // client is gone, and failing here would only log errors for it.
            output
                .send(line)
                .await
                .map_err(|_| closed("the stdout writer has stopped"))
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        tokio::select! {
            biased;
            () = self.output_closed.cancelled() => None,
            message = self.messages.recv() => {
                if message.is_none() {
                    // End of stdin, noticed only after every message read before it.
                    self.client_gone.cancel();
                }
                message
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.output = None;
        if let Some(writer) = self.writer.take() {
            // The writer ends once the answers already queued are out (or dropped).
            let _ = tokio::time::timeout(CLOSE_GRACE, writer).await;
        }
        Ok(())
    }
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn closed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, what)
}

/// One line for stdout, with the id of the request it answers.
#[derive(Debug)]
struct OutputLine {
    bytes: Vec<u8>,
    answers: Option<RequestId>,
}

impl OutputLine {
    /// `message` as a line; an error response without an id carries `"id": null`.
    fn encode(message: &ServerJsonRpcMessage) -> Self {
        let answers = match message {
            JsonRpcMessage::Response(response) => Some(response.id.clone()),
            JsonRpcMessage::Error(error) => error.id.clone(),
            _ => None,
        };
        let encoded = match message {
            JsonRpcMessage::Error(error) if error.id.is_none() => {
                serde_json::to_value(error).map(|mut value| {
                    value["id"] = Value::Null;
                    value.to_string().into_bytes()
                })
            }
            _ => serde_json::to_vec(message),
        };
        let bytes = encoded.unwrap_or_else(|error| {
            ErrorAnswer {
                id: answers.clone(),
                code: ErrorCode::INTERNAL_ERROR,
                message: format!("Internal error: the response could not be encoded ({error})."),
            }
            .to_json()
        });
        Self::new(bytes, answers)
    }

    /// An error answer written by the transport itself; it frees no pending id.
    fn refusal(answer: &ErrorAnswer) -> Self {
        Self::new(answer.to_json(), None)
    }

    fn new(mut bytes: Vec<u8>, answers: Option<RequestId>) -> Self {
        bytes.push(b'\n');
        Self { bytes, answers }
    }
}

/// The requests read but not yet answered, by id; each holds one of the permits that
/// bound how many there may be.
#[derive(Clone)]
struct Pending {
    slots: Arc<Semaphore>,
    ids: Arc<Mutex<HashMap<RequestId, OwnedSemaphorePermit>>>,
}

impl Pending {
    fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            ids: Arc::default(),
        }
    }

    /// Waits for room for one more request.
    async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Records `id` as pending in `slot`; gives the slot back if `id` is pending already.
    fn start(&self, id: RequestId, slot: OwnedSemaphorePermit) -> Result<(), OwnedSemaphorePermit> {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        if ids.contains_key(&id) {
            return Err(slot);
        }
        ids.insert(id, slot);
        Ok(())
    }

    /// `id` is answered (or will never be) and may be used again; its slot is free again
    /// once the returned permit is dropped.
    fn finish(&self, id: &RequestId) -> Option<OwnedSemaphorePermit> {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }
}

/// Reads stdin line by line: messages go to rmcp, refusals straight to stdout. Stops
/// reading while `pending` is full; ends at end of input.
async fn read_lines<R: AsyncRead + Unpin>(
    input: R,
    max_line_bytes: usize,
    messages: mpsc::Sender<ClientJsonRpcMessage>,
    output: mpsc::Sender<OutputLine>,
    pending: Pending,
) {
    let mut lines = LineReader::new(BufReader::new(input), max_line_bytes);
    let mut spare_slot = None;
    loop {
        let slot = match spare_slot.take() {
            Some(slot) => slot,
            None => pending.slot().await,
        };
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(%error, "could not read stdin; stopping as at its end");
                break;
            }
        };
        let incoming = match line {
            Line::Complete(bytes) => classify(&bytes),
            Line::TooLong => Incoming::Refused(too_long(max_line_bytes)),
        };
        let message = match incoming {
            Incoming::Message(message) => *message,
            Incoming::Refused(answer) => {
                spare_slot = Some(slot);
                if output.send(OutputLine::refusal(&answer)).await.is_err() {
                    break;
                }
                continue;
            }
            Incoming::Nothing => {
                spare_slot = Some(slot);
                continue;
            }
        };
        match &message {
            JsonRpcMessage::Request(request) => {
                if let Err(slot) = pending.start(request.id.clone(), slot) {
                    spare_slot = Some(slot);
                    let refusal = OutputLine::refusal(&duplicate(&request.id));
                    if output.send(refusal).await.is_err() {
                        break;
                    }
                    continue;
                }
            }
            JsonRpcMessage::Notification(notification) => {
                spare_slot = Some(slot);
                // rmcp drops the answer of a cancelled request, so its slot is free now.
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    drop(pending.finish(id));
                }
            }
            JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_) => spare_slot = Some(slot),
        }
        if messages.send(message).await.is_err() {
            break;
        }
    }
}

/// The refusal of a line longer than `max_line_bytes`.
fn too_long(max_line_bytes: usize) -> ErrorAnswer {
    ErrorAnswer::invalid_request(
        None,
        format!(
            "Invalid Request: the line is longer than the {} limit on one message, so it was skipped. Send smaller arguments.",
            describe_bytes(max_line_bytes)
        ),
    )
}

/// The refusal of a request whose id is that of one still running.
fn duplicate(id: &RequestId) -> ErrorAnswer {
    ErrorAnswer::invalid_request(
        Some(id.clone()),
        format!(
            "Invalid Request: request id {id} is already in use by a request that has not been answered yet, so this one was not run. Give each request in flight its own id."
        ),
    )
}

/// `bytes` for people: whole MiB when it is a multiple of them.
fn describe_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes}-byte")
    }
}

/// Writes lines to stdout in the order they were sent, each whole, freeing the pending
/// id each answers as it starts writing it and its slot once it is written. When stdout fails or hangs up, the client is
/// gone: every call in flight is cancelled and later lines are dropped.
async fn write_lines<W, H>(
    output: W,
    mut lines: mpsc::Receiver<OutputLine>,
    hangup: H,
    pending: Pending,
    output_closed: CancellationToken,
    client_gone: CancellationToken,
) where
    W: AsyncWrite + Unpin,
    H: Future<Output = ()>,
{
    let mut output = BufWriter::new(output);
    let mut hangup = std::pin::pin!(hangup);
    let mut open = true;
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            () = &mut hangup, if open => {
                open = false;
                gone(&output_closed, &client_gone, "stdout was closed by the client");
                continue;
            }
        };
        let Some(line) = line else { break };
        // The id is free before its answer can be read (a client may reuse it the moment
        // it has), but its slot only once the answer is written, so an unread stdout
        // still stops reading.
        let slot = line.answers.as_ref().and_then(|id| pending.finish(id));
        if open {
            let mut written = output.write_all(&line.bytes).await;
            if written.is_ok() && lines.is_empty() {
                written = output.flush().await;
            }
            if let Err(error) = written {
                open = false;
                gone(&output_closed, &client_gone, &error.to_string());
            }
        }
        drop(slot);
    }
    if open {
        let _ = output.flush().await;
    }
}

/// The client can no longer read us: stop as at end of stdin.
fn gone(output_closed: &CancellationToken, client_gone: &CancellationToken, why: &str) {
    tracing::info!(why, "the client closed stdout; stopping as at end of stdin");
    output_closed.cancel();
    client_gone.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmptyResult, ErrorData, ServerResult};
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, DuplexStream, Lines};

    /// Long enough for anything that is going to happen to have happened (paused time).
    const A_WHILE: Duration = Duration::from_secs(60);

    struct Client {
        transport: StdioTransport,
        stdin: DuplexStream,
        stdout: Lines<BufReader<DuplexStream>>,
        client_gone: CancellationToken,
    }

    fn start(limits: Limits) -> Client {
        start_with(limits, 64 * 1024, std::future::pending())
    }

    fn start_with(
        limits: Limits,
        stdout_capacity: usize,
        hangup: impl Future<Output = ()> + Send + 'static,
    ) -> Client {
        let (stdin, server_stdin) = tokio::io::duplex(64 * 1024);
        let (server_stdout, stdout) = tokio::io::duplex(stdout_capacity);
        let client_gone = CancellationToken::new();
        let transport = StdioTransport::new(
            server_stdin,
            server_stdout,
            hangup,
            limits,
            client_gone.clone(),
        );
        Client {
            transport,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            client_gone,
        }
    }

    fn limits(max_line_bytes: usize, max_pending_requests: usize) -> Limits {
        Limits {
            max_line_bytes,
            max_pending_requests,
        }
    }

    impl Client {
        async fn write(&mut self, line: &str) {
            self.stdin.write_all(line.as_bytes()).await.unwrap();
            self.stdin.write_all(b"\n").await.unwrap();
        }

        async fn ping(&mut self, id: i64) {
            self.write(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string())
                .await;
        }

        /// The id of the next request rmcp would get; `None` if none comes for a while.
        async fn next_request_id(&mut self) -> Option<RequestId> {
            match tokio::time::timeout(A_WHILE, self.transport.receive()).await {
                Ok(Some(JsonRpcMessage::Request(request))) => Some(request.id),
                Ok(other) => panic!("expected a request, got {other:?}"),
                Err(_) => None,
            }
        }

        async fn answer(&mut self, id: i64) {
            let answer = ServerJsonRpcMessage::response(
                ServerResult::EmptyResult(EmptyResult {}),
                RequestId::Number(id),
            );
            self.transport.send(answer).await.unwrap();
        }

        /// An answer larger than any buffer on the way to stdout.
        async fn answer_at_length(&mut self, id: i64) {
            let error = ErrorData::internal_error("x".repeat(64 * 1024), None);
            let answer = ServerJsonRpcMessage::error(error, Some(RequestId::Number(id)));
            self.transport.send(answer).await.unwrap();
        }

        async fn next_output(&mut self) -> Value {
            let line = self.stdout.next_line().await.unwrap().expect("a line");
            serde_json::from_str(&line).unwrap()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn with_the_most_requests_unanswered_no_more_are_read_until_one_is_answered() {
        let mut client = start(limits(1024, 2));
        for id in 1..=3 {
            client.ping(id).await;
        }
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(1)));
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(2)));
        assert_eq!(
            client.next_request_id().await,
            None,
            "a third request was read"
        );

        client.answer(1).await;
        assert_eq!(client.next_output().await["id"], 1);
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_does_not_read_stdout_gets_no_more_requests_read() {
        // A small pipe for stdout, which nobody reads yet.
        let mut client = start_with(limits(1024, 2), 16, std::future::pending());
        for id in 1..=3 {
            client.ping(id).await;
        }
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(1)));
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(2)));
        client.answer_at_length(1).await;
        client.answer_at_length(2).await;
        assert_eq!(
            client.next_request_id().await,
            None,
            "a request was read while the answers before it could not be written"
        );
        assert_eq!(client.next_output().await["id"], 1);
        assert_eq!(client.next_output().await["id"], 2);
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_reusing_the_id_of_one_in_flight_is_refused_naming_the_id() {
        let mut client = start(limits(1024, 8));
        client.ping(7).await;
        client.ping(7).await;
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(7)));

        let refusal = client.next_output().await;
        assert_eq!(refusal["id"], 7, "{refusal}");
        assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
        let message = refusal["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("request id 7 is already in use"),
            "{message}"
        );
        assert_eq!(
            client.next_request_id().await,
            None,
            "the duplicate was passed on"
        );

        // Once answered, the id may be used again.
        client.answer(7).await;
        assert_eq!(client.next_output().await["id"], 7);
        client.ping(7).await;
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(7)));
    }

    /// A stdout whose bytes reach the client at once but whose flush waits for `release`.
    struct SlowToFlush {
        inner: DuplexStream,
        gate: Arc<Mutex<(bool, Option<std::task::Waker>)>>,
    }

    impl AsyncWrite for SlowToFlush {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bytes: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            std::pin::Pin::new(&mut self.inner).poll_write(cx, bytes)
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let mut gate = self.gate.lock().unwrap();
            if gate.0 {
                std::task::Poll::Ready(Ok(()))
            } else {
                gate.1 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }

        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_id_may_be_reused_as_soon_as_its_answer_can_be_read() {
        let (stdin, server_stdin) = tokio::io::duplex(64 * 1024);
        let (server_stdout, stdout) = tokio::io::duplex(64 * 1024);
        let gate = Arc::new(Mutex::new((false, None::<std::task::Waker>)));
        let slow = SlowToFlush {
            inner: server_stdout,
            gate: gate.clone(),
        };
        let client_gone = CancellationToken::new();
        let transport = StdioTransport::new(
            server_stdin,
            slow,
            std::future::pending(),
            limits(1024, 8),
            client_gone.clone(),
        );
        let mut client = Client {
            transport,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            client_gone,
        };
        client.ping(7).await;
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(7)));
        client.answer(7).await;
        assert_eq!(client.next_output().await["id"], 7);

        // The answer is readable while the server is still flushing it.
        client.ping(7).await;
        assert_eq!(
            client.next_request_id().await,
            Some(RequestId::Number(7)),
            "the reused id was refused"
        );
        let mut gate = gate.lock().unwrap();
        gate.0 = true;
        if let Some(waker) = gate.1.take() {
            waker.wake();
        }
    }

    #[tokio::test]
    async fn malformed_and_over_long_lines_are_answered_and_reading_goes_on() {
        let mut client = start(limits(64, 8));
        client.write("this is not json").await;
        client.write(&"x".repeat(200)).await;
        client.ping(1).await;

        let parse_error = client.next_output().await;
        assert_eq!(parse_error["error"]["code"], -32700, "{parse_error}");
        assert_eq!(parse_error["id"], Value::Null, "{parse_error}");
        let too_long = client.next_output().await;
        assert_eq!(too_long["error"]["code"], -32600, "{too_long}");
        assert_eq!(too_long["id"], Value::Null, "{too_long}");
        let message = too_long["error"]["message"].as_str().unwrap();
        assert!(message.contains("64-byte limit"), "{message}");
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(1)));
    }

    #[tokio::test]
    async fn end_of_input_cancels_the_calls_once_the_messages_before_it_are_taken() {
        let mut client = start(limits(1024, 8));
        client.ping(1).await;
        client.stdin.shutdown().await.unwrap();
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(1)));
        assert!(!client.client_gone.is_cancelled());
        assert!(client.transport.receive().await.is_none());
        assert!(client.client_gone.is_cancelled());
    }

    #[tokio::test]
    async fn a_failed_write_to_stdout_ends_input_and_cancels_the_calls() {
        let mut client = start(limits(1024, 8));
        client.ping(1).await;
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(1)));
        let Client {
            mut transport,
            stdout,
            client_gone,
            stdin: _stdin,
        } = client;
        drop(stdout);

        let answer = ServerJsonRpcMessage::response(
            ServerResult::EmptyResult(EmptyResult {}),
            RequestId::Number(1),
        );
        transport.send(answer).await.unwrap();
        assert!(transport.receive().await.is_none());
        assert!(client_gone.is_cancelled());
    }

    #[tokio::test]
    async fn stdout_hanging_up_cancels_the_calls_with_nothing_to_write() {
        let (hang_up, hung_up) = tokio::sync::oneshot::channel::<()>();
        let mut client = start_with(limits(1024, 8), 1024, async move {
            let _ = hung_up.await;
        });
        client.ping(1).await;
        assert_eq!(client.next_request_id().await, Some(RequestId::Number(1)));

        hang_up.send(()).unwrap();
        assert!(client.transport.receive().await.is_none());
        assert!(client.client_gone.is_cancelled());
    }

    #[test]
    fn an_error_answer_whose_request_id_is_unknown_carries_id_null() {
        let error = ServerJsonRpcMessage::error(ErrorData::invalid_request("bad", None), None);
        let line = OutputLine::encode(&error);
        assert_eq!(line.bytes.last(), Some(&b'\n'));
        let json: Value = serde_json::from_slice(&line.bytes).unwrap();
        assert_eq!(json["error"]["code"], -32600, "{json}");
        assert!(json.as_object().unwrap().contains_key("id"), "{json}");
        assert_eq!(json["id"], Value::Null, "{json}");
    }

    #[test]
    fn the_line_cap_is_named_in_mebibytes_when_it_is_whole_ones() {
        assert_eq!(describe_bytes(MAX_LINE_BYTES), "16 MiB");
        assert_eq!(describe_bytes(100), "100-byte");
    }
}
