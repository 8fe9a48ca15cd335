//! The `rag` toolset's tools over the collections service (src/collections.rs):
//! list_collections, create_collection, delete_collection, add_to_collection,
//! list_collection_items, delete_collection_item, search_collection. RAG chat is
//! chat_completion's `collection` argument (src/mcp/chat.rs).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rmcp::model::{CallToolResult, JsonObject};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::VultrServer;
use super::args::{decode, input_schema};
use super::error::ToolError;
use super::registry::{Behaviour, Call, ToolEntry, cancelled};
use crate::collections::{ID_CHARS, MAX_DOCUMENT_BYTES, MAX_ITEMS_PER_CALL, NewItem};
use crate::local_file::{self, LocalFileError};
use crate::settings::Toolset;
use crate::vultr::vector_store::{Hit, Item};

/// What every result says of cost: Vultr's catalog prices no vector-store call.
const NOT_PRICED: &str = "not priced";

/// Arguments of `list_collections`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListCollectionsArgs {}

/// Arguments of `create_collection`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateCollectionArgs {
    /// The collection's name; Vultr derives its id from the first 14 characters.
    name: String,
}

/// Arguments naming one collection.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CollectionArgs {
    /// The collection id (from create_collection or list_collections).
    collection: String,
}

/// One text item to add.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ItemArg {
    /// The text to store (Vultr embeds it).
    content: String,
    /// A short free-form description.
    #[serde(default)]
    description: Option<String>,
}

/// Arguments of `add_to_collection`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AddToCollectionArgs {
    /// The collection id.
    collection: String,
    /// Text items to add (instead of a document).
    #[serde(default)]
    items: Option<Vec<ItemArg>>,
    /// A document on this machine to upload (stdio only).
    #[serde(default)]
    path: Option<String>,
    /// A document as base64 (with filename).
    #[serde(default)]
    data: Option<String>,
    /// The document's file name, with its extension.
    #[serde(default)]
    filename: Option<String>,
}

/// Arguments of `delete_collection_item`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeleteItemArgs {
    /// The collection id.
    collection: String,
    /// The item id (from list_collection_items or add_to_collection).
    item_id: String,
}

/// Arguments of `search_collection`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchCollectionArgs {
    /// The collection id.
    collection: String,
    /// What to look for.
    query: String,
    /// How many results to return, 1 to 50 (default 5).
    #[serde(default)]
    top_k: Option<usize>,
}

/// The `list_collections` entry.
pub(super) fn list_collections() -> ToolEntry {
    ToolEntry {
        name: "list_collections",
        toolset: Toolset::Rag,
        description: "List your Vultr vector-store collections (ids, names).".to_owned(),
        input_schema: input_schema::<ListCollectionsArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- list_collections: your vector-store collections and their ids.\n".to_owned(),
        handler: |server, call| Box::pin(server.list_collections(call)),
    }
}

/// The `create_collection` entry.
pub(super) fn create_collection() -> ToolEntry {
    ToolEntry {
        name: "create_collection",
        toolset: Toolset::Rag,
        description: "Create a Vultr vector-store collection. Vultr derives the id from the first 14 characters of the name: use the id the result gives.".to_owned(),
        input_schema: input_schema::<CreateCollectionArgs>,
        behaviour: Behaviour::UPSTREAM_ADD,
        guide: "- create_collection: make a collection (name); use the id it returns (derived from the name's first 14 characters). Then add_to_collection, search_collection, or chat_completion with `collection` for an answer grounded in it.\n".to_owned(),
        handler: |server, call| Box::pin(server.create_collection(call)),
    }
}

/// The `delete_collection` entry.
pub(super) fn delete_collection() -> ToolEntry {
    ToolEntry {
        name: "delete_collection",
        toolset: Toolset::Rag,
        description: "Delete one of your collections and everything in it.".to_owned(),
        input_schema: input_schema::<CollectionArgs>,
        behaviour: Behaviour::UPSTREAM_DELETE,
        guide: "- delete_collection: delete a collection and its items.\n".to_owned(),
        handler: |server, call| Box::pin(server.delete_collection(call)),
    }
}

/// The `add_to_collection` entry.
pub(super) fn add_to_collection() -> ToolEntry {
    ToolEntry {
        name: "add_to_collection",
        toolset: Toolset::Rag,
        description: format!("Add to a collection: `items` [{{content, description?}}] (up to {MAX_ITEMS_PER_CALL}), or one document as `data` (base64) + `filename`, or (stdio only) a local file `path`; documents up to {} MiB.", MAX_DOCUMENT_BYTES / (1024 * 1024)),
        input_schema: input_schema::<AddToCollectionArgs>,
        behaviour: Behaviour::UPSTREAM_ADD,
        guide: "- add_to_collection: add text `items`, or a document (`data` base64 + `filename`, or a local `path` over stdio).\n".to_owned(),
        handler: |server, call| Box::pin(server.add_to_collection(call)),
    }
}

/// The `list_collection_items` entry.
pub(super) fn list_collection_items() -> ToolEntry {
    ToolEntry {
        name: "list_collection_items",
        toolset: Toolset::Rag,
        description: "List the items of one of your collections (ids, descriptions).".to_owned(),
        input_schema: input_schema::<CollectionArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- list_collection_items: the items of a collection, with their ids.\n".to_owned(),
        handler: |server, call| Box::pin(server.list_collection_items(call)),
    }
}

/// The `delete_collection_item` entry.
pub(super) fn delete_collection_item() -> ToolEntry {
    ToolEntry {
        name: "delete_collection_item",
        toolset: Toolset::Rag,
        description: "Delete one item of one of your collections.".to_owned(),
        input_schema: input_schema::<DeleteItemArgs>,
        behaviour: Behaviour::UPSTREAM_DELETE,
        guide: "- delete_collection_item: delete one item (item_id) of a collection.\n".to_owned(),
        handler: |server, call| Box::pin(server.delete_collection_item(call)),
    }
}

/// The `search_collection` entry.
pub(super) fn search_collection() -> ToolEntry {
    ToolEntry {
        name: "search_collection",
        toolset: Toolset::Rag,
        description: "Experimental (the search endpoint is not in Vultr's docs): the passages of a collection most relevant to `query`, best first, with item ids; no scores.".to_owned(),
        input_schema: input_schema::<SearchCollectionArgs>,
        behaviour: Behaviour::UPSTREAM_READ,
        guide: "- search_collection (experimental): the passages of a collection matching a query, best first (top_k, default 5), to quote or cite.\n".to_owned(),
        handler: |server, call| Box::pin(server.search_collection(call)),
    }
}

/// `chat_completion`'s input schema when the `rag` toolset is on: with `collection`.
pub(super) fn chat_schema_with_collection(base: &JsonObject) -> Arc<JsonObject> {
    let mut schema = base.clone();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "collection".to_owned(),
            json!({"type": "string", "description": "Answer over this collection of yours (RAG; not streamed)."}),
        );
    }
    Arc::new(schema)
}

/// A document to upload, however the caller gave it.
struct Document {
    filename: String,
    bytes: Vec<u8>,
}

impl VultrServer {
    /// Runs `work` unless the call is cancelled, rendering its outcome.
    async fn collection_call<F>(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
        work: F,
    ) -> CallToolResult
    where
        F: Future<Output = Result<CallToolResult, ToolError>>,
    {
        tokio::select! {
            outcome = work => self.respond(outcome),
            () = cancel.cancelled() => cancelled(),
        }
    }

    async fn list_collections(&self, call: Call) -> CallToolResult {
        self.collection_call(&call.cancel, async {
            decode::<ListCollectionsArgs>(call.arguments)?;
            let listed = self.app.collections.list(&call.owner).await?;
            let mut text = String::new();
            if listed.collections.is_empty() {
                text.push_str("You have no collections; create_collection makes one.\n");
            }
            for collection in &listed.collections {
                let _ = write!(text, "- {}", collection.id);
                if let Some(name) = &collection.name {
                    let _ = write!(text, " (name {name})");
                }
                if let Some(created) = &collection.created {
                    let _ = write!(text, ", created {created}");
                }
                text.push('\n');
            }
            if !listed.missing.is_empty() {
                let _ = writeln!(
                    text,
                    "Yours but no longer on Vultr (deleted elsewhere): {}",
                    listed.missing.join(", ")
                );
            }
            let _ = write!(text, "[cost: {NOT_PRICED}]");
            Ok(self.success(
                text,
                json!({"collections": listed.collections, "missing": listed.missing, "cost": NOT_PRICED}),
            ))
        })
        .await
    }

    async fn create_collection(&self, call: Call) -> CallToolResult {
        self.collection_call(&call.cancel, async {
            let args = decode::<CreateCollectionArgs>(call.arguments)?;
            let created = self.app.collections.create(&call.owner, &args.name).await?;
            let id = &created.collection.id;
            let mut text = if created.new {
                format!("Created the collection `{id}`.")
            } else {
                format!("The name maps to your existing collection `{id}`; nothing new was made.")
            };
            let _ = write!(
                text,
                " Use the id `{id}` in the other tools. Vultr derives ids from the first {ID_CHARS} characters of the name, so names that share them share one collection.\n[cost: {NOT_PRICED}]"
            );
            Ok(self.success(
                text,
                json!({"collection": created.collection, "new": created.new,
                    "warning": format!("ids come from the first {ID_CHARS} characters of the name"),
                    "cost": NOT_PRICED}),
            ))
        })
        .await
    }

    async fn delete_collection(&self, call: Call) -> CallToolResult {
        self.collection_call(&call.cancel, async {
            let args = decode::<CollectionArgs>(call.arguments)?;
            let existed = self
                .app
                .collections
                .delete(&call.owner, &args.collection)
                .await?;
            let text = if existed {
                format!("Deleted the collection `{}`.", args.collection)
            } else {
                format!(
                    "The collection `{}` was already gone on Vultr; it is forgotten here too.",
                    args.collection
                )
            };
            Ok(self.success(
                text,
                json!({"deleted": args.collection, "existed": existed, "cost": NOT_PRICED}),
            ))
        })
        .await
    }

    async fn add_to_collection(&self, call: Call) -> CallToolResult {
        let local_files = call.local_files;
        self.collection_call(&call.cancel, async {
            let args = decode::<AddToCollectionArgs>(call.arguments)?;
            let collections = &self.app.collections;
            if let Some(items) = args.items {
                if args.path.is_some() || args.data.is_some() {
                    return Err(ToolError::Invalid(
                        "give `items` or a document (`data` or `path`), not both".to_owned(),
                    ));
                }
                let items: Vec<NewItem> = items
                    .into_iter()
                    .map(|i| NewItem {
                        content: i.content,
                        description: i.description,
                    })
                    .collect();
                let added = collections
                    .add_items(&call.owner, &args.collection, &items)
                    .await?;
                let mut text = format!(
                    "Added {} item(s) to `{}`:\n",
                    added.len(),
                    args.collection
                );
                for item in &added {
                    let _ = writeln!(text, "- {}", item.id);
                }
                let _ = write!(text, "[cost: {NOT_PRICED}]");
                return Ok(self.success(
                    text,
                    json!({"collection": args.collection, "items": added, "cost": NOT_PRICED}),
                ));
            }
            let document = document(args.path, args.data, args.filename, local_files).await?;
            let upload = collections
                .add_document(&call.owner, &args.collection, &document.filename, &document.bytes)
                .await?;
            let mut text = format!(
                "Uploaded `{}` ({} bytes) to `{}`",
                document.filename,
                document.bytes.len(),
                args.collection
            );
            if let Some(status) = &upload.status {
                let _ = write!(text, "; Vultr says it is {status}");
            }
            let _ = write!(
                text,
                ". Vultr splits and embeds it; list_collection_items shows the items once it is done.\n[cost: {NOT_PRICED}]"
            );
            Ok(self.success(
                text,
                json!({"collection": args.collection, "filename": document.filename,
                    "bytes": document.bytes.len(), "upload": upload, "cost": NOT_PRICED}),
            ))
        })
        .await
    }

    async fn list_collection_items(&self, call: Call) -> CallToolResult {
        self.collection_call(&call.cancel, async {
            let args = decode::<CollectionArgs>(call.arguments)?;
            let items = self
                .app
                .collections
                .items(&call.owner, &args.collection)
                .await?;
            let mut text = format!("{} item(s) in `{}`:\n", items.len(), args.collection);
            for item in &items {
                let _ = writeln!(text, "- {}", item_line(item));
            }
            let _ = write!(text, "[cost: {NOT_PRICED}]");
            Ok(self.success(
                text,
                json!({"collection": args.collection, "items": items, "cost": NOT_PRICED}),
            ))
        })
        .await
    }

    async fn delete_collection_item(&self, call: Call) -> CallToolResult {
        self.collection_call(&call.cancel, async {
            let args = decode::<DeleteItemArgs>(call.arguments)?;
            self.app
                .collections
                .delete_item(&call.owner, &args.collection, &args.item_id)
                .await?;
            Ok(self.success(
                format!(
                    "Deleted the item `{}` of `{}`.",
                    args.item_id, args.collection
                ),
                json!({"collection": args.collection, "deleted": args.item_id, "cost": NOT_PRICED}),
            ))
        })
        .await
    }

    async fn search_collection(&self, call: Call) -> CallToolResult {
        self.collection_call(&call.cancel, async {
            let args = decode::<SearchCollectionArgs>(call.arguments)?;
            let found = self
                .app
                .collections
                .search(&call.owner, &args.collection, &args.query, args.top_k)
                .await?;
            Ok(self.success(
                search_text(&found.hits, found.returned, &args.collection),
                SearchResult {
                    collection: &args.collection,
                    results: &found.hits,
                    returned: found.returned,
                    usage: found.usage.as_ref(),
                    cost: NOT_PRICED,
                },
            ))
        })
        .await
    }
}

/// The structured result of `search_collection`.
#[derive(Serialize)]
struct SearchResult<'a> {
    collection: &'a str,
    /// Best first; Vultr gives no scores.
    results: &'a [Hit],
    /// How many results Vultr returned before top_k cut them.
    returned: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Value>,
    cost: &'static str,
}

/// Search results as text: each passage with its rank and item id.
fn search_text(hits: &[Hit], returned: usize, collection: &str) -> String {
    let mut text = if hits.is_empty() {
        format!("Nothing in `{collection}` matched.\n")
    } else {
        format!(
            "{} of {returned} result(s) from `{collection}`, best first (no scores):\n",
            hits.len()
        )
    };
    for (rank, hit) in hits.iter().enumerate() {
        let _ = write!(text, "{}.", rank + 1);
        if let Some(id) = &hit.id {
            let _ = write!(text, " [item {id}]");
        }
        let _ = writeln!(text, " {}", hit.content);
    }
    let _ = write!(text, "[experimental endpoint; cost: {NOT_PRICED}]");
    text
}

/// One item as a line of text.
fn item_line(item: &Item) -> String {
    let mut line = item.id.clone();
    if let Some(description) = &item.description {
        let _ = write!(line, ": {description}");
    }
    if let Some(created) = &item.created {
        let _ = write!(line, " (added {created})");
    }
    if let Some(content) = &item.content {
        let preview: String = content.chars().take(80).collect();
        let _ = write!(line, " — {preview}");
    }
    line
}

/// The document a caller gave: `data` + `filename`, or a local `path` (only when the call
/// may name local files: stdio).
async fn document(
    path: Option<String>,
    data: Option<String>,
    filename: Option<String>,
    local_files: bool,
) -> Result<Document, ToolError> {
    let invalid = |text: &str| ToolError::Invalid(text.to_owned());
    let named = |name: &str| {
        std::path::Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .filter(|n| !n.is_empty())
    };
    match (path, data) {
        (Some(_), Some(_)) => Err(invalid("give `data` or `path`, not both")),
        (None, None) => Err(invalid(
            "give `items`, or a document as `data` (base64) + `filename`, or (stdio only) `path`",
        )),
        (Some(_), None) if !local_files => Err(invalid(
            "`path` names a file on the server's machine, which only a local (stdio) client may do; send the document as `data` (base64) + `filename` instead",
        )),
        (Some(path), None) => {
            let filename = filename
                .as_deref()
                .and_then(named)
                .or_else(|| named(&path))
                .ok_or_else(|| invalid("`path` has no file name; give `filename`"))?;
            let bytes = local_file::read_capped(Path::new(&path), MAX_DOCUMENT_BYTES as u64)
                .await
                .map_err(|e| match e {
                    LocalFileError::TooLarge { bytes, .. } => ToolError::Invalid(format!(
                        "the file at `path` has {bytes} bytes; at most {MAX_DOCUMENT_BYTES} may be uploaded at once: split it"
                    )),
                    other => {
                        ToolError::Invalid(format!("the file at `path` cannot be read: {other}"))
                    }
                })?;
            Ok(Document { filename, bytes })
        }
        (None, Some(data)) => {
            let filename = filename.as_deref().and_then(named).ok_or_else(|| {
                invalid("`data` needs a `filename` with its extension (e.g. notes.txt)")
            })?;
            // Base64 of the largest document, plus room for line breaks.
            if data.len() > MAX_DOCUMENT_BYTES / 3 * 4 + 1024 {
                return Err(ToolError::Invalid(format!(
                    "`data` is larger than the {MAX_DOCUMENT_BYTES} bytes a document may have"
                )));
            }
            let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map_err(|e| ToolError::Invalid(format!("`data` is not base64: {e}")))?;
            Ok(Document { filename, bytes })
        }
    }
}
