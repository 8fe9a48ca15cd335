//! Asking the user before an expensive call (`VULTR_MCP_CONFIRM_ABOVE_USD`): elicitation
//! for 2025-era clients that declared it, the input-required result for 2026-07-28
//! clients. (Skeleton: filled in by issue 19.)

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::RequestContext;

use crate::spend::Approve;

/// Who asks the user about `request`'s cost, when its client can be asked.
pub(super) fn approver(
    context: &RequestContext<RoleServer>,
    request: &CallToolRequestParams,
) -> Option<Arc<dyn Approve>> {
    let _ = (context, request);
    None
}

/// The call's answer: `response`, or the question the approver put to a 2026-07-28 client.
pub(super) fn answer(
    approver: Option<&Arc<dyn Approve>>,
    response: CallToolResponse,
) -> CallToolResponse {
    let _ = approver;
    response
}
