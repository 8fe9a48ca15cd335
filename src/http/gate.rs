//! What every request to `/mcp` passes before rmcp sees it: the Host and Origin guard,
//! authentication (the principal goes into the request's extensions), the session's
//! owner, the body size cap, and one log line per request.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;

use super::body_budget::{HeldBytes, OverBudget};
use super::session_limits::SessionRefusal;
use super::{MAX_BODY_BYTES, Shared};
use crate::principal::Principal;

/// How much of an oversized body is read (and dropped) before answering 413.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// How long reading a body may take.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The header that carries a legacy session's id.
const SESSION_HEADER: &str = "mcp-session-id";

/// Checks, authenticates and logs one request to `/mcp`, then hands it to rmcp.
pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let (response, principal, call) = admit_and_run(&shared, request, next).await;
    tracing::info!(
        principal = principal.as_ref().map(Principal::as_str),
        method = call.method.as_deref(),
        tool = call.tool.as_deref(),
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// The JSON-RPC method and tool name of a request, for the log.
#[derive(Default)]
struct Call {
    method: Option<String>,
    tool: Option<String>,
}

async fn admit_and_run(
    shared: &Shared,
    request: Request,
    next: Next,
) -> (Response, Option<Principal>, Call) {
    let mut call = Call::default();
    if let Err(refusal) = shared.guard.check(request.headers()) {
        return (
            refuse(StatusCode::FORBIDDEN, &refusal.to_string()),
            None,
            call,
        );
    }
    if shared.draining.is_cancelled() {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; retry in a moment",
        );
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        return (response, None, call);
    }
    let principal = match &shared.auth {
        Some(auth) => match auth.authenticate(request.headers()).await {
            Ok(principal) => principal,
            Err(failure) => {
                tracing::debug!(%failure, "request refused");
                return (
                    failure.into_response(shared.resource_metadata.as_deref()),
                    None,
                    call,
                );
            }
        },
        None => Principal::local(),
    };
    let session = session_of(request.headers());
    if let Some(session) = &session
        && !shared.sessions.may_use(session, &principal).await
    {
        // The same answer rmcp gives for a session that does not exist.
        let response = refuse(StatusCode::NOT_FOUND, "Not Found: Session not found");
        return (response, Some(principal), call);
    }

    let (parts, body) = request.into_parts();
    // Held until the response ends: the body, and what rmcp parsed from it, are in memory
    // while the call runs (for a session, the answer comes on the response's stream).
    let mut body_memory = None;
    let body = if parts.method == Method::POST {
        let held = shared.body_budget.start(&principal);
        match read_capped(body, content_length(&parts.headers), held).await {
            Ok((bytes, held)) => {
                if needs_peek(&bytes, session.is_some()) {
                    call = peek(&bytes);
                }
                body_memory = Some(held);
                Body::from(bytes)
            }
            Err(response) => return (response, Some(principal), call),
        }
    } else {
        body
    };
    let mut reservation = None;
    // Held until the response ends: the session is not parked while a request is open.
    let mut session_busy = None;
    match &session {
        Some(session) => session_busy = Some(shared.live_sessions.begin(session, &principal).await),
        None if call.method.as_deref() == Some("initialize") => {
            match shared.live_sessions.reserve(&principal) {
                Ok(admitted) => reservation = Some(admitted),
                Err(refusal) => {
                    let status = match refusal {
                        SessionRefusal::ServerFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
                        SessionRefusal::PrincipalFull { .. } => StatusCode::TOO_MANY_REQUESTS,
                    };
                    tracing::debug!(%refusal, "initialize refused");
                    return (
                        retry_later(status, &refusal.to_string(), RETRY_SESSION_SECS),
                        Some(principal),
                        call,
                    );
                }
            }
        }
        None => {}
    }
    let closing = parts.method == Method::DELETE;
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(principal.clone());

    let mut response = next.run(request).await;
    match (&session, session_of(response.headers())) {
        (None, Some(opened)) => {
            match reservation {
                Some(reservation) => reservation.opened(&opened),
                None => shared.live_sessions.adopt(&opened, &principal),
            }
            shared.sessions.opened(&opened, &principal).await;
        }
        (Some(session), _) if closing && response.status().is_success() => {
            shared.sessions.closed(session);
            shared.live_sessions.closed(session);
            // rmcp answers 202; clients (the Python SDK among them) expect 200 or 204.
            response = StatusCode::NO_CONTENT.into_response();
        }
        _ => {}
    }
    if session_busy.is_some() || body_memory.is_some() {
        response = response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _held = (&session_busy, &body_memory);
                frame
            }))
        });
    }
    (response, Some(principal), call)
}

/// Seconds a client refused for a full session table is asked to wait.
const RETRY_SESSION_SECS: u32 = 5;
/// Seconds a client refused for the body budget is asked to wait.
const RETRY_BODY_SECS: u32 = 1;

/// A refusal the client should retry after `seconds`.
fn retry_later(status: StatusCode, text: &str, seconds: u32) -> Response {
    let mut response = refuse(status, text);
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    response
}

/// The body's declared length, when the client sent one.
fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The legacy session id a request or response carries.
fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The whole body and the part of the body budget it holds; 413 once it is over
/// [`MAX_BODY_BYTES`], 503 (or 429 over the principal's share) when the bodies held in
/// memory would go over the budget. The rest of an oversized body is read and dropped (up
/// to a bound) before answering, so the client, still sending, gets to read the 413 instead
/// of a broken connection.
async fn read_capped(
    mut body: Body,
    declared: Option<usize>,
    mut held: HeldBytes,
) -> Result<(Bytes, HeldBytes), Response> {
    let over_budget = |over: OverBudget| {
        let status = match over {
            OverBudget::Server => StatusCode::SERVICE_UNAVAILABLE,
            OverBudget::Principal { .. } => StatusCode::TOO_MANY_REQUESTS,
        };
        retry_later(status, &over.to_string(), RETRY_BODY_SECS)
    };
    let mut kept = 0usize;
    let mut bytes = Vec::new();
    if let Some(length) = declared.filter(|length| *length <= MAX_BODY_BYTES) {
        held.grow(length).map_err(over_budget)?;
        kept = length;
        bytes.reserve_exact(length);
    }
    let mut total = 0usize;
    let mut oversized = declared.is_some_and(|length| length > MAX_BODY_BYTES);
    let read_all = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("could not read the request body: {error}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len();
            if total > MAX_BODY_BYTES && !oversized {
                // Nothing more is kept: drop what was, and the budget it held.
                oversized = true;
                bytes = Vec::new();
                held.release();
            }
            if oversized {
                if total > DRAIN_LIMIT_BYTES {
                    break;
                }
                continue;
            }
            if total > kept {
                held.grow(total - kept).map_err(over_budget)?;
                kept = total;
            }
            bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, read_all).await {
        Ok(read) => read?,
        Err(_) => {
            return Err(refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long to arrive",
            ));
        }
    }
    if oversized {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request body over {} MiB; send less (e.g. shorter messages or context)",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok((Bytes::from(bytes), held))
}

/// Whether the method and tool of a request are needed: for the access line (written at
/// `info`), or because a request outside any session may be `initialize`, which takes a
/// session slot. Most requests need neither, and parsing costs more than this look.
fn needs_peek(body: &[u8], in_session: bool) -> bool {
    tracing::enabled!(tracing::Level::INFO) || (!in_session && may_be_initialize(body))
}

/// Whether `body` may be an `initialize` request: it spells the word, or holds an escape
/// (which could spell it another way).
fn may_be_initialize(body: &[u8]) -> bool {
    const WORD: &[u8] = b"initialize";
    body.contains(&b'\\') || body.windows(WORD.len()).any(|window| window == WORD)
}

/// The method and tool name of a JSON-RPC request body, when it has them.
fn peek(body: &[u8]) -> Call {
    #[derive(serde::Deserialize)]
    struct Message {
        method: Option<String>,
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(message) => {
            let tool = match message.method.as_deref() {
                Some("tools/call") => message
                    .params
                    .and_then(|params| params.name)
                    .and_then(|name| name.as_str().map(str::to_owned)),
                _ => None,
            };
            Call {
                method: message.method,
                tool,
            }
        }
        Err(_) => Call::default(),
    }
}

/// A plain-text refusal.
fn refuse(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_body_that_may_be_initialize_is_read_when_nothing_is_logged() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_models","arguments":{}}}"#;
        assert!(!may_be_initialize(call));
        assert!(may_be_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#
        ));
        assert!(
            may_be_initialize(br#"{"jsonrpc":"2.0","id":1,"method":"\u0069nitialize"}"#),
            "an escape could spell it"
        );
        // No subscriber here: nothing is logged, so a session's request is not read.
        assert!(!needs_peek(call, true));
        assert!(!needs_peek(call, false));
        assert!(needs_peek(br#"{"method":"initialize"}"#, false));
    }

    #[test]
    fn the_log_names_the_method_and_for_a_tool_call_the_tool() {
        let call = peek(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_models","arguments":{}}}"#);
        assert_eq!(call.method.as_deref(), Some("tools/call"));
        assert_eq!(call.tool.as_deref(), Some("list_models"));
        let call =
            peek(br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}"#);
        assert_eq!(call.method.as_deref(), Some("resources/read"));
        assert_eq!(call.tool, None);
        let call = peek(b"not json");
        assert_eq!((call.method, call.tool), (None, None));
    }
}
