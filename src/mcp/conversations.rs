//! Conversations as the client sees them: the `delete_conversation` tool and the
//! conversation resources, over the conversations service (src/conversations/).

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResult, ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde::Deserialize;
use serde_json::json;

use super::VultrServer;
use super::args::decode;
use super::args::input_schema;
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry};
use crate::principal::Principal;
use crate::settings::Toolset;
use crate::store::{Conversation, ConversationSummary, StoreError};
use crate::vultr::chat::{Content, Role};

/// The resource listing every conversation.
pub const LIST_URI: &str = "vultr://conversations";
/// The prefix of one conversation's resource.
const ONE_PREFIX: &str = "vultr://conversations/";
/// How many conversations `resources/list` names one by one.
const LISTED: usize = 50;

/// Arguments of `delete_conversation`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeleteConversationArgs {
    /// The conversation_id to delete, from a chat_completion result or the resource vultr://conversations.
    conversation_id: String,
}

/// The `delete_conversation` entry.
pub(super) fn delete_conversation() -> ToolEntry {
    ToolEntry {
        name: "delete_conversation",
        toolset: Toolset::Core,
        description:
            "Delete a stored conversation (its messages and transcript) by conversation_id."
                .to_owned(),
        input_schema: input_schema::<DeleteConversationArgs>,
        behaviour: Behaviour::LOCAL_DELETE,
        guide: "- delete_conversation: delete a stored conversation by conversation_id.\n"
            .to_owned(),
        handler: |server, call| Box::pin(server.delete_conversation(call)),
    }
}

impl VultrServer {
    /// Deletes the caller's conversation; another owner's is nothing to delete.
    async fn delete_conversation(&self, call: Call) -> CallToolResult {
        let deleted = async {
            let args = decode::<DeleteConversationArgs>(call.arguments)?;
            match self
                .app
                .conversations
                .delete(&call.owner, &args.conversation_id)
                .await?
            {
                (id, true) => Ok(id),
                (id, false) => Err(ToolError::NothingToDelete { id }),
            }
        };
        self.respond(deleted.await.map(|id| {
            self.success(
                format!("Deleted conversation {id}."),
                json!({ "deleted": id.to_string() }),
            )
        }))
    }

    /// `resources/list`: the conversation list, and `owner`'s most recent conversations.
    pub(super) async fn conversation_resources(
        &self,
        owner: &Principal,
    ) -> Result<ListResourcesResult, ErrorData> {
        let recent = self
            .app
            .conversations
            .recent(owner, LISTED)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let mut resources = vec![
            Resource::new(LIST_URI, "conversations")
                .with_mime_type("application/json")
                .with_description(
                    "Stored conversations, newest first: id, title, model, turns, updated time",
                ),
        ];
        // Redacted here too, for conversations stored before keys were redacted on saving.
        let redact = |text: &str| self.app.known_keys.redact(text);
        resources.extend(recent.iter().map(|c| {
            Resource::new(format!("{ONE_PREFIX}{}", c.id), redact(&c.title))
                .with_mime_type("text/markdown")
                .with_description(redact(&format!(
                    "{} turn(s) with {}, updated {}",
                    c.turns,
                    c.model,
                    timestamp(c.updated_at)
                )))
        }));
        Ok(ListResourcesResult::with_all_items(resources))
    }

    /// `resources/templates/list`: one conversation by id.
    pub(super) fn conversation_templates(&self) -> ListResourceTemplatesResult {
        ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{ONE_PREFIX}{{conversation_id}}"), "conversation")
                .with_mime_type("text/markdown")
                .with_description("The transcript of one stored conversation"),
        ])
    }

    /// `resources/read` for `owner`'s list or one of `owner`'s conversations; another
    /// owner's conversation is no such resource, as one that never existed.
    pub(super) async fn read_conversation_resource(
        &self,
        owner: &Principal,
        uri: &str,
    ) -> Result<ReadResourceResult, ErrorData> {
        let not_found = || {
            ErrorData::resource_not_found(
                format!("no such resource: {uri}. Read {LIST_URI} for the stored conversations."),
                Some(json!({ "uri": uri })),
            )
        };
        if uri == LIST_URI {
            let all = self
                .app
                .conversations
                .recent(owner, usize::MAX)
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            let listing: Vec<_> = all.iter().map(summary_json).collect();
            let mut listing = json!({ "conversations": listing });
            self.app.known_keys.redact_value(&mut listing);
            let body = serde_json::to_string_pretty(&listing)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            return Ok(ReadResourceResult::new(vec![
                ResourceContents::text(body, uri).with_mime_type("application/json"),
            ]));
        }
        let Some(id) = uri.strip_prefix(ONE_PREFIX) else {
            return Err(not_found());
        };
        let conversation = match self.app.conversations.load(owner, id).await {
            Ok(conversation) => conversation,
            Err(StoreError::NotFound { .. } | StoreError::InvalidId { .. }) => {
                return Err(not_found());
            }
            Err(error) => return Err(ErrorData::internal_error(error.to_string(), None)),
        };
        let transcript = self.app.known_keys.redact(&transcript(&conversation));
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(transcript, uri).with_mime_type("text/markdown"),
        ]))
    }
}

fn summary_json(c: &ConversationSummary) -> serde_json::Value {
    json!({
        "id": c.id.to_string(),
        "uri": format!("{ONE_PREFIX}{}", c.id),
        "title": c.title,
        "model": c.model,
        "turns": c.turns,
        "created": timestamp(c.created_at),
        "updated": timestamp(c.updated_at),
    })
}

/// RFC 3339 time of unix seconds.
fn timestamp(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A conversation as Markdown: one section per message.
fn transcript(conversation: &Conversation) -> String {
    let summary = &conversation.summary;
    let mut text = format!(
        "# {}\n\nconversation_id `{}` · model {} · {} turn(s) · updated {}\n",
        summary.title,
        summary.id,
        summary.model,
        summary.turns,
        timestamp(summary.updated_at)
    );
    for (i, message) in conversation.messages.iter().enumerate() {
        let role = match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        let _ = write!(text, "\n## {role}");
        if let Some(Some(model)) = conversation.answered_by.get(i) {
            let _ = write!(text, " ({model})");
        }
        if let Some(id) = &message.tool_call_id {
            let _ = write!(text, " (result of {id})");
        }
        text.push_str("\n\n");
        match &message.content {
            Some(Content::Text(t)) => text.push_str(t),
            Some(Content::Parts(parts)) => {
                text.push_str(&serde_json::to_string(parts).unwrap_or_default());
            }
            None => {}
        }
        for call in message.tool_calls.iter().flatten() {
            let _ = write!(
                text,
                "\n- tool call `{}`: {}({})",
                call.id, call.function.name, call.function.arguments.0
            );
        }
        text.push('\n');
    }
    text
}
