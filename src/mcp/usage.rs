//! `vultr://usage`: the caller's spending today and this month per model, their limits
//! and what is left (an admin also sees everyone's).

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents};

use super::VultrServer;
use crate::principal::Principal;

/// The usage resource's URI.
pub(super) const USAGE_URI: &str = "vultr://usage";

impl VultrServer {
    /// The usage resource, as `resources/list` shows it.
    pub(super) fn usage_resource() -> Resource {
        Resource::new(USAGE_URI, "usage")
            .with_mime_type("application/json")
            .with_description(
                "Your spending today and this month (UTC) per model, your spend limits and what is left",
            )
    }

    /// `resources/read` of `vultr://usage` for `owner`.
    pub(super) async fn read_usage(
        &self,
        owner: &Principal,
    ) -> Result<ReadResourceResult, ErrorData> {
        let report = self.app.spending.report(owner).await.map_err(|error| {
            ErrorData::internal_error(
                format!("the spend ledger cannot be read: {error}. Try again shortly."),
                None,
            )
        })?;
        let body = serde_json::to_string_pretty(&report)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(body, USAGE_URI).with_mime_type("application/json"),
        ]))
    }
}
