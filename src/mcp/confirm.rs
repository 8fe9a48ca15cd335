//! Asking the user before an expensive call (`VULTR_MCP_CONFIRM_ABOVE_USD`): elicitation
//! (`elicitation/create`, a form) for 2025-era clients that declared it, the input-required
//! result (SEP-2322) for 2026-07-28 clients that declared elicitation in their request's
//! `_meta`. Any other client cannot be asked (no approver: the call is refused, naming the
//! setting).
//!
//! A 2026-07-28 call is asked in two rounds: the first ends with an input-required result
//! carrying the question and a sealed `requestState` (what was asked: the model and its
//! worst case, bound to the caller, the tool and its arguments, valid [`STATE_TTL`]); the
//! client makes the call again with the user's answer and that state. The state is sealed
//! with an HMAC key made at start-up, so only this process opens it: a retry that reaches
//! another replica is simply asked again.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability, ElicitationSchema, InputRequest, InputRequests,
    InputRequiredResult, ProtocolVersion, RequestStateCodec, SealOptions,
};
use rmcp::service::{Peer, RequestContext};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::principal::Principal;
use crate::spend::{Approval, Approve, Quote};

/// How long a 2025-era client's user has to answer; no answer in time is a no.
const ASK_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a question put to a 2026-07-28 client can be answered.
const STATE_TTL: Duration = Duration::from_secs(900);
/// The question's key among the input requests.
const QUESTION: &str = "confirm_cost";
/// The form's one field: true sends the call.
const FIELD: &str = "send";

/// Who asks the user about `request`'s cost, when its client can be asked: `caller` pays,
/// `as_task` says the call may outlive its request (then the question is not withdrawn
/// when the task handle is sent).
pub(super) fn approver(
    context: &RequestContext<RoleServer>,
    request: &CallToolRequestParams,
    caller: &Principal,
    as_task: bool,
) -> Option<Arc<dyn Approve>> {
    let capabilities = context.client_capabilities()?;
    if !asks_forms(capabilities.elicitation.as_ref()?) {
        return None;
    }
    let stateless = context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if stateless {
        Some(Arc::new(AskInResult::new(request, caller)))
    } else {
        Some(Arc::new(Elicit {
            peer: context.peer.clone(),
            withdrawn: (!as_task).then(|| context.ct.clone()),
        }))
    }
}

/// The call's answer: `response`, or the question the approver put to a 2026-07-28 client
/// when the call stopped to ask it.
pub(super) fn answer(
    approver: Option<&Arc<dyn Approve>>,
    response: CallToolResponse,
) -> CallToolResponse {
    let Some(ask) = approver.and_then(|approver| {
        let approver: &dyn std::any::Any = approver.as_ref();
        approver.downcast_ref::<AskInResult>()
    }) else {
        return response;
    };
    match response {
        // The call refused itself to ask (a task handle or a success never carries it).
        CallToolResponse::Complete(result) if result.is_error == Some(true) => {
            match ask
                .question
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                Some(question) => CallToolResponse::InputRequired(question),
                None => result.into(),
            }
        }
        other => other,
    }
}

/// Whether an elicitation capability includes forms (declared with neither mode: forms,
/// as before modes existed).
fn asks_forms(capability: &ElicitationCapability) -> bool {
    capability.form.is_some() || capability.url.is_none()
}

/// Asks a 2025-era client's user with `elicitation/create`, while the call waits.
struct Elicit {
    peer: Peer<RoleServer>,
    /// Fires when the call's request is cancelled (calls that cannot become tasks).
    withdrawn: Option<CancellationToken>,
}

#[async_trait]
impl Approve for Elicit {
    async fn approve(&self, quote: &Quote) -> Approval {
        let asked = self
            .peer
            .create_elicitation_with_timeout(question(quote), Some(ASK_TIMEOUT));
        let answer = match &self.withdrawn {
            Some(withdrawn) => tokio::select! {
                answer = asked => answer,
                () = withdrawn.cancelled() => return Approval::Declined,
            },
            None => asked.await,
        };
        match answer {
            Ok(answer) => approval_of(&answer),
            Err(error) => {
                // No answer (timed out, or the client failed): not sent.
                tracing::warn!(%error, model = %quote.model, "the user's confirmation of a call's cost did not come; the call is not sent");
                Approval::Declined
            }
        }
    }
}

/// Asks a 2026-07-28 client's user through the call's result (input required), and reads
/// the answer when the call is made again.
struct AskInResult {
    /// The user's yeses in this call's earlier rounds, when its state is ours (a call that
    /// falls back to another model may need one per model).
    approved: Vec<Asked>,
    /// Whether the latest answer was no.
    declined: bool,
    /// What sealed state is bound to: the caller, the tool and its arguments.
    binding: Vec<u8>,
    /// The question to return, once the call stopped to ask.
    question: Mutex<Option<InputRequiredResult>>,
}

/// What the user was asked about.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Asked {
    model: String,
    worst_case_usd: Option<f64>,
}

/// What is sealed into `requestState`: the question put, and the yeses given to the
/// call's earlier questions (so a yes is not asked for again in a later round).
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    asked: Asked,
    approved: Vec<Asked>,
}

/// The most yeses one call's state carries: more models than a call may fall back to.
const MAX_APPROVALS: usize = 8;

impl AskInResult {
    fn new(request: &CallToolRequestParams, caller: &Principal) -> AskInResult {
        let binding = binding(request, caller);
        let answered = request.request_state.as_deref().and_then(|state| {
            let sealed: Sealed = codec().open_json_with(state, &binding).ok()?;
            let response = request.input_responses.as_ref()?.get(QUESTION)?;
            let response = ElicitResult::deserialize(response).ok()?;
            Some((sealed, approval_of(&response)))
        });
        let (approved, declined) = match answered {
            Some((sealed, Approval::Accepted)) => {
                let mut approved = sealed.approved;
                approved.push(sealed.asked);
                (approved, false)
            }
            Some((sealed, _)) => (sealed.approved, true),
            None => (Vec::new(), false),
        };
        AskInResult {
            approved,
            declined,
            binding,
            question: Mutex::new(None),
        }
    }

    /// Whether the user's yes to `asked` covers `quote`: the same model, and at most what
    /// they saw (a yes to a cost that could not be told covers any).
    fn covers(asked: &Asked, quote: &Quote) -> bool {
        asked.model == quote.model
            && match (asked.worst_case_usd, quote.worst_case_usd) {
                (None, _) => true,
                (Some(seen), Some(worst)) => worst <= seen + 1e-12,
                (Some(_), None) => false,
            }
    }
}

#[async_trait]
impl Approve for AskInResult {
    async fn approve(&self, quote: &Quote) -> Approval {
        if self.declined {
            return Approval::Declined;
        }
        if self
            .approved
            .iter()
            .any(|asked| AskInResult::covers(asked, quote))
        {
            return Approval::Accepted;
        }
        let keep_from = self.approved.len().saturating_sub(MAX_APPROVALS - 1);
        let asked = Sealed {
            asked: Asked {
                model: quote.model.clone(),
                worst_case_usd: quote.worst_case_usd,
            },
            approved: self.approved[keep_from..].to_vec(),
        };
        let options = SealOptions::new()
            .associated_data(&self.binding)
            .ttl(STATE_TTL);
        let Ok(state) = codec().seal_json_with(&asked, &options) else {
            return Approval::CannotAsk;
        };
        let requests = InputRequests::from([(
            QUESTION.to_owned(),
            InputRequest::Elicitation(ElicitRequest::new(question(quote))),
        )]);
        *self.question.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(InputRequiredResult::new(Some(requests), Some(state)));
        Approval::InputRequired
    }
}

/// The form put to the user about `quote`.
fn question(quote: &Quote) -> ElicitRequestParams {
    let cost = match quote.worst_case_usd {
        Some(usd) => format!("could cost up to {}", dollars(usd)),
        None => format!(
            "has a cost that cannot be told in advance ({})",
            quote.unbounded_because.as_deref().unwrap_or("unknown")
        ),
    };
    let message = format!(
        "Send this request to {}? In the worst case it {cost}, which is above the amount the server's operator set for asking first.",
        quote.model
    );
    let schema = ElicitationSchema::builder()
        .required_bool_with(FIELD, |field| {
            field
                .title("Send it")
                .description("Tick to send the request and pay for it; leave it unticked or decline to send nothing.")
                .with_default(false)
        })
        .build_unchecked();
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    }
}

/// Yes only for an accepted form whose field is true.
fn approval_of(answer: &ElicitResult) -> Approval {
    let ticked = answer
        .content
        .as_ref()
        .and_then(|content| content.get(FIELD))
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    if matches!(answer.action, ElicitationAction::Accept) && ticked {
        Approval::Accepted
    } else {
        Approval::Declined
    }
}

/// `usd` for people: cents for a few dollars, more digits for fractions of a cent.
fn dollars(usd: f64) -> String {
    if usd >= 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.6}")
    }
}

/// What a sealed question is bound to: who asked, which tool, which arguments.
fn binding(request: &CallToolRequestParams, caller: &Principal) -> Vec<u8> {
    let arguments = serde_json::to_vec(&request.arguments).unwrap_or_default();
    let mut binding = format!("{}\n{}\n", caller.as_str(), request.name).into_bytes();
    binding.extend_from_slice(&Sha256::digest(&arguments));
    binding
}

/// The process's sealing key: 32 random bytes made at first use (two v4 UUIDs, from the
/// operating system's random source). Never leaves the process.
fn codec() -> &'static RequestStateCodec {
    static CODEC: OnceLock<RequestStateCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        RequestStateCodec::new_unchecked(key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(arguments: serde_json::Value) -> CallToolRequestParams {
        let serde_json::Value::Object(arguments) = arguments else {
            unreachable!()
        };
        CallToolRequestParams::new("chat_completion").with_arguments(arguments)
    }

    fn retry(
        first: &CallToolRequestParams,
        state: String,
        answer: ElicitResult,
    ) -> CallToolRequestParams {
        let mut again = first.clone();
        again.request_state = Some(state);
        again.input_responses = Some([(QUESTION.to_owned(), json!(answer))].into());
        again
    }

    async fn asked(request: &CallToolRequestParams, quote: &Quote) -> InputRequiredResult {
        let ask = AskInResult::new(request, &Principal::local());
        assert_eq!(ask.approve(quote).await, Approval::InputRequired);
        ask.question.lock().unwrap().take().expect("a question")
    }

    fn yes() -> ElicitResult {
        ElicitResult::new(ElicitationAction::Accept).with_content(json!({FIELD: true}))
    }

    #[tokio::test]
    async fn a_yes_covers_the_quote_it_saw_and_smaller_ones_only() {
        let first = request(json!({"prompt": "hi"}));
        let quote = Quote::at_most("m", 0.5);
        let question = asked(&first, &quote).await;
        let state = question.request_state.clone().unwrap();
        let again = AskInResult::new(&retry(&first, state, yes()), &Principal::local());
        assert_eq!(again.approve(&quote).await, Approval::Accepted);
        assert_eq!(
            again.approve(&Quote::at_most("m", 0.4)).await,
            Approval::Accepted
        );
        // More than was seen, or another model: asked again.
        assert_eq!(
            again.approve(&Quote::at_most("m", 0.6)).await,
            Approval::InputRequired
        );
        assert_eq!(
            again.approve(&Quote::at_most("other", 0.1)).await,
            Approval::InputRequired
        );
    }

    #[tokio::test]
    async fn no_tick_decline_and_cancel_are_no() {
        let first = request(json!({"prompt": "hi"}));
        let quote = Quote::at_most("m", 0.5);
        let state = asked(&first, &quote).await.request_state.unwrap();
        for answer in [
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({FIELD: false})),
            ElicitResult::new(ElicitationAction::Accept),
            ElicitResult::new(ElicitationAction::Decline),
            ElicitResult::new(ElicitationAction::Cancel),
        ] {
            let again = AskInResult::new(
                &retry(&first, state.clone(), answer.clone()),
                &Principal::local(),
            );
            assert_eq!(
                again.approve(&quote).await,
                Approval::Declined,
                "{answer:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_state_not_sealed_for_this_call_is_asked_again() {
        let first = request(json!({"prompt": "hi"}));
        let quote = Quote::at_most("m", 0.5);
        let state = asked(&first, &quote).await.request_state.unwrap();
        // Other arguments, another caller, a forged state: none is taken for a yes.
        let other = request(json!({"prompt": "something else"}));
        let cases = [
            (retry(&other, state.clone(), yes()), Principal::local()),
            (
                retry(&first, state.clone(), yes()),
                Principal::new("mallory").unwrap(),
            ),
            (
                retry(&first, format!("{state}x"), yes()),
                Principal::local(),
            ),
            (
                retry(&first, "rs1.e30.AAAA".to_owned(), yes()),
                Principal::local(),
            ),
        ];
        for (request, caller) in cases {
            let again = AskInResult::new(&request, &caller);
            assert_eq!(again.approve(&quote).await, Approval::InputRequired);
        }
    }

    #[test]
    fn forms_are_asked_for_unless_only_urls_were_declared() {
        let both = ElicitationCapability::default()
            .with_form(Default::default())
            .with_url(Default::default());
        assert!(asks_forms(&ElicitationCapability::default()));
        assert!(asks_forms(&both));
        assert!(!asks_forms(
            &ElicitationCapability::default().with_url(Default::default())
        ));
    }
}
