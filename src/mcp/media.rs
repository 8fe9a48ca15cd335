//! Media in MCP: the content blocks a tool returns for media it made (inline `audio` or
//! `image` within the inline cap, and always a `resource_link`), and `resources/read` of
//! `vultr://media/{id}` as a blob, for its owner only.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmcp::ErrorData;
use rmcp::model::{ContentBlock, ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use super::VultrServer;
use crate::media::{self, Kept, URI_PREFIX};
use crate::principal::Principal;

impl VultrServer {
    /// The content blocks for media a tool made: the bytes inline (as `audio` or `image`,
    /// by MIME type) when they fit the inline cap, and always a link to read them later.
    pub(super) fn media_blocks(&self, kept: &Kept, bytes: &[u8]) -> Vec<ContentBlock> {
        let mut blocks = Vec::with_capacity(2);
        if bytes.len() <= self.app.media.inline_max() {
            let data = STANDARD.encode(bytes);
            if kept.mime.starts_with("audio/") {
                blocks.push(ContentBlock::audio(data, kept.mime.clone()));
            } else if kept.mime.starts_with("image/") {
                blocks.push(ContentBlock::image(data, kept.mime.clone()));
            }
        }
        blocks.push(ContentBlock::resource_link(link(kept)));
        blocks
    }

    /// The template of media URIs, for servers that make media.
    pub(super) fn media_template() -> ResourceTemplate {
        ResourceTemplate::new(format!("{URI_PREFIX}{{id}}"), "media").with_description(
            "Speech or an image a tool made, as a blob, for a while after (the tool result links to it)",
        )
    }

    /// `resources/read` of `owner`'s media item `uri`; another owner's, an expired one or a
    /// made-up id are all the same "not found".
    pub(super) async fn read_media_resource(
        &self,
        owner: &Principal,
        uri: &str,
    ) -> Result<ReadResourceResult, ErrorData> {
        let not_found = || {
            ErrorData::resource_not_found(
                format!(
                    "no such media: {uri}. Media are kept for {} after a tool made them, for the user it made them for; make it again.",
                    humantime::format_duration(self.app.media.ttl())
                ),
                Some(json!({ "uri": uri })),
            )
        };
        let Some(id) = media::id_of(uri) else {
            return Err(not_found());
        };
        let stored = self
            .app
            .media
            .read(owner, id)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .ok_or_else(not_found)?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::blob(STANDARD.encode(&stored.bytes), uri).with_mime_type(stored.mime),
        ]))
    }
}

/// The `resource_link` of a kept item.
fn link(kept: &Kept) -> Resource {
    Resource::new(kept.uri.clone(), kept.name.clone())
        .with_mime_type(kept.mime.clone())
        .with_size(u64::try_from(kept.size).unwrap_or(u64::MAX))
        .with_description("Read with resources/read while it is kept")
}
