//! Vultr's vector store (collections, their items and files, search) and RAG chat on the
//! inference API. Paths and request bodies are documented by Vultr; the response shapes
//! come from third-party reports (see /work/shared/vultr-surfaces.md §1-2), so every shape
//! read here is read leniently, and this file is the one place that knows them: a fix
//! after a live check changes only this file.
//!
//! Accepted, per endpoint:
//! - a collection: `{collection:{..}}` or the bare object; a list: `{collections:[..]}`,
//!   `{data:[..]}` or a bare array;
//! - an item: `{item:{..}}` or the bare object; a list: `{items:[..]}`, `{data:[..]}` or a
//!   bare array (items may come without their content);
//! - a file upload: `{file:{..}}` or the bare object, read as opaque JSON with an optional
//!   `id` and `status`;
//! - search: `{results:[..]}`, `{data:[..]}` or a bare array of `{id?, content}`, plus
//!   `usage` when present (no score is known to exist);
//! - any 2xx status, and 204 (or an empty body) on delete.

use serde::Serialize;
use serde_json::{Value, json};

use super::chat::{ChatReply, ChatRequest};
use super::error::{Api, VultrError, snippet};
use super::inference::{InferenceClient, Patience, path_segment};
use crate::secret::ApiKey;

/// One collection as Vultr lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    /// The id Vultr assigned (derived from the name).
    pub id: String,
    /// The name it was created with, when Vultr says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it was created, as Vultr writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// One item of a collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Its id (Vultr's UUID).
    pub id: String,
    /// The text, when Vultr returns it (lists leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Its one free-form description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was added, as Vultr writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// A document uploaded to a collection: what Vultr said of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upload {
    /// Its id, when Vultr gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its processing status (`enqueued`, `processing`, `completed`, `failed`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The answer as sent, since its shape is not documented.
    pub answer: Value,
}

/// One search result, in Vultr's order (most relevant first; no score is given).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The item's id, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The matching text.
    pub content: String,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The results, most relevant first.
    pub hits: Vec<Hit>,
    /// The `usage` object, when Vultr sent one.
    pub usage: Option<Value>,
}

/// The body of `POST /chat/completions/RAG`: the chat request and the collection.
#[derive(Serialize)]
struct RagRequest<'a> {
    #[serde(flatten)]
    request: &'a ChatRequest,
    collection: &'a str,
}

/// The path of collection `id`, with `rest` after it.
fn collection_path(id: &str, rest: &str) -> String {
    format!("/vector_store/{}{rest}", path_segment(id))
}

impl InferenceClient {
    /// `POST /vector_store {name}`: the collection Vultr made (its id derives from the name).
    pub async fn create_collection(
        &self,
        key: &ApiKey,
        name: &str,
    ) -> Result<Collection, VultrError> {
        let body = self
            .post_write(
                key,
                "/vector_store",
                &json!({"name": name}),
                Patience::Quick,
            )
            .await?;
        read_collection(&body).ok_or_else(|| shape(&body, "no collection with an `id`"))
    }

    /// `GET /vector_store`: every collection of the key's account.
    pub async fn list_collections(&self, key: &ApiKey) -> Result<Vec<Collection>, VultrError> {
        let body = self
            .get_json(key, "/vector_store", &[], Patience::Quick)
            .await?;
        let list = list_of(&body, "collections").ok_or_else(|| shape(&body, "no list"))?;
        Ok(list.iter().filter_map(read_collection).collect())
    }

    /// `DELETE /vector_store/{id}`.
    pub async fn delete_collection(&self, key: &ApiKey, id: &str) -> Result<(), VultrError> {
        self.delete(key, &collection_path(id, ""), Patience::Quick)
            .await
            .map(drop)
    }

    /// `POST /vector_store/{id}/items {content, description?}`: the item added.
    pub async fn add_item(
        &self,
        key: &ApiKey,
        collection: &str,
        content: &str,
        description: Option<&str>,
    ) -> Result<Item, VultrError> {
        let mut request = json!({"content": content});
        if let Some(description) = description {
            request["description"] = json!(description);
        }
        let body = self
            .post_write(
                key,
                &collection_path(collection, "/items"),
                &request,
                Patience::Long,
            )
            .await?;
        read_item(&body).ok_or_else(|| shape(&body, "no item with an `id`"))
    }

    /// `GET /vector_store/{id}/items`: the collection's items (often without content).
    pub async fn list_items(
        &self,
        key: &ApiKey,
        collection: &str,
    ) -> Result<Vec<Item>, VultrError> {
        let body = self
            .get_json(
                key,
                &collection_path(collection, "/items"),
                &[],
                Patience::Quick,
            )
            .await?;
        let list = list_of(&body, "items").ok_or_else(|| shape(&body, "no list"))?;
        Ok(list.iter().filter_map(read_item).collect())
    }

    /// `DELETE /vector_store/{id}/items/{item}`.
    pub async fn delete_item(
        &self,
        key: &ApiKey,
        collection: &str,
        item: &str,
    ) -> Result<(), VultrError> {
        let path = collection_path(collection, &format!("/items/{}", path_segment(item)));
        self.delete(key, &path, Patience::Quick).await.map(drop)
    }

    /// `POST /vector_store/{id}/files`, multipart field `file`: the document uploaded.
    pub async fn add_file(
        &self,
        key: &ApiKey,
        collection: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<Upload, VultrError> {
        let form = || {
            let part =
                reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(filename.to_owned());
            reqwest::multipart::Form::new().part("file", part)
        };
        let body = self
            .post_multipart_write(
                key,
                &collection_path(collection, "/files"),
                form,
                Patience::Long,
            )
            .await?;
        Ok(read_upload(body))
    }

    /// `POST /vector_store/{id}/search {input}`: the results in Vultr's order (Vultr is
    /// reported to ignore `top_k`, so the caller cuts the list).
    pub async fn search(
        &self,
        key: &ApiKey,
        collection: &str,
        input: &str,
    ) -> Result<Found, VultrError> {
        let body = self
            .post_json(
                key,
                &collection_path(collection, "/search"),
                &json!({"input": input}),
                Patience::Long,
            )
            .await?;
        read_found(&body).ok_or_else(|| shape(&body, "no list of results"))
    }

    /// `POST /chat/completions/RAG`: the chat request answered over `collection`, never
    /// streamed, read as any chat completion.
    pub async fn rag_chat(
        &self,
        key: &ApiKey,
        request: &ChatRequest,
        collection: &str,
    ) -> Result<ChatReply, VultrError> {
        let body = self
            .post_json(
                key,
                "/chat/completions/RAG",
                &RagRequest {
                    request,
                    collection,
                },
                Patience::Long,
            )
            .await?;
        ChatReply::from_response(&body, &request.model).map_err(|e| shape(&body, e))
    }
}

/// `body[wrapper]` when it is an object, else `body` itself when it is one.
fn unwrapped<'a>(body: &'a Value, wrapper: &str) -> Option<&'a Value> {
    match body.get(wrapper) {
        Some(inner) if inner.is_object() => Some(inner),
        _ => body.is_object().then_some(body),
    }
}

/// The list in `body[wrapper]`, `body.data` or `body` itself.
fn list_of<'a>(body: &'a Value, wrapper: &str) -> Option<&'a Vec<Value>> {
    body.get(wrapper)
        .and_then(Value::as_array)
        .or_else(|| body.get("data").and_then(Value::as_array))
        .or_else(|| body.as_array())
}

/// A field as text: a string as is, a number written out.
fn text(value: &Value, field: &str) -> Option<String> {
    match value.get(field)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A collection, wrapped or bare; `None` without an id.
fn read_collection(body: &Value) -> Option<Collection> {
    let value = unwrapped(body, "collection")?;
    Some(Collection {
        id: text(value, "id").filter(|id| !id.is_empty())?,
        name: text(value, "name"),
        created: text(value, "created").or_else(|| text(value, "created_at")),
    })
}

/// An item, wrapped or bare; `None` without an id.
fn read_item(body: &Value) -> Option<Item> {
    let value = unwrapped(body, "item")?;
    Some(Item {
        id: text(value, "id").filter(|id| !id.is_empty())?,
        content: text(value, "content"),
        description: text(value, "description"),
        created: text(value, "created").or_else(|| text(value, "created_at")),
    })
}

/// An upload's answer, whatever its shape.
fn read_upload(body: Value) -> Upload {
    let inner = unwrapped(&body, "file");
    Upload {
        id: inner.and_then(|v| text(v, "id")),
        status: inner.and_then(|v| text(v, "status")),
        answer: body,
    }
}

/// Search results: a list of objects with `content` (or `text`), or of strings.
fn read_found(body: &Value) -> Option<Found> {
    let list = list_of(body, "results")?;
    let hits = list
        .iter()
        .filter_map(|hit| match hit {
            Value::String(content) => Some(Hit {
                id: None,
                content: content.clone(),
            }),
            _ => Some(Hit {
                id: text(hit, "id"),
                content: text(hit, "content").or_else(|| text(hit, "text"))?,
            }),
        })
        .collect();
    Some(Found {
        hits,
        usage: body.get("usage").filter(|u| u.is_object()).cloned(),
    })
}

/// A success body that is not a shape this file knows.
fn shape(body: &Value, problem: impl std::fmt::Display) -> VultrError {
    VultrError::Decode {
        api: Api::Inference,
        status: 200,
        detail: format!("unexpected vector store answer: {problem}"),
        snippet: snippet(&body.to_string(), 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_reads_wrapped_or_bare_and_needs_an_id() {
        let expected = Collection {
            id: "docs".into(),
            name: Some("Docs".into()),
            created: Some("2026-07-04".into()),
        };
        let bare = json!({"id": "docs", "name": "Docs", "created": "2026-07-04"});
        assert_eq!(read_collection(&bare), Some(expected.clone()));
        assert_eq!(
            read_collection(&json!({"collection": bare})),
            Some(expected)
        );
        assert_eq!(read_collection(&json!({"collection": {"name": "x"}})), None);
        assert_eq!(read_collection(&json!({"id": ""})), None);
        assert_eq!(read_collection(&json!([1])), None);
    }

    #[test]
    fn lists_read_from_their_name_data_or_a_bare_array() {
        let one = json!({"id": "a"});
        for body in [
            json!({"collections": [one]}),
            json!({"data": [one]}),
            json!([one]),
        ] {
            let list = list_of(&body, "collections").unwrap();
            assert_eq!(read_collection(&list[0]).unwrap().id, "a", "{body}");
        }
        assert!(list_of(&json!({"other": 1}), "collections").is_none());
    }

    #[test]
    fn items_read_with_or_without_content_and_numbers_as_text() {
        let item = read_item(&json!({"item": {"id": 7, "created": 1_788_000_000}})).unwrap();
        assert_eq!(item.id, "7");
        assert_eq!(item.content, None);
        assert_eq!(item.created.as_deref(), Some("1788000000"));
    }

    #[test]
    fn search_reads_results_or_data_with_usage_and_skips_hits_without_text() {
        let body = json!({"results": [{"id": "i1", "content": "alpha"}, {"id": "i2"}, "beta"],
            "usage": {"tokens": 3}});
        let found = read_found(&body).unwrap();
        assert_eq!(
            found.hits,
            [
                Hit {
                    id: Some("i1".into()),
                    content: "alpha".into()
                },
                Hit {
                    id: None,
                    content: "beta".into()
                }
            ]
        );
        assert_eq!(found.usage, Some(json!({"tokens": 3})));
        let data = read_found(&json!({"data": [{"text": "t"}]})).unwrap();
        assert_eq!(data.hits[0].content, "t");
        assert_eq!(data.usage, None);
        assert!(read_found(&json!({"answer": "?"})).is_none());
    }

    #[test]
    fn an_upload_keeps_the_answer_whatever_its_shape() {
        let upload = read_upload(json!({"file": {"id": "f1", "status": "enqueued"}}));
        assert_eq!(upload.id.as_deref(), Some("f1"));
        assert_eq!(upload.status.as_deref(), Some("enqueued"));
        let opaque = read_upload(Value::Null);
        assert_eq!((opaque.id, opaque.answer), (None, Value::Null));
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(
            collection_path("a/../b", "/items"),
            "/vector_store/a%2F%2E%2E%2Fb/items"
        );
    }

    #[test]
    fn the_rag_body_is_the_chat_body_with_the_collection() {
        let request = ChatRequest {
            model: "m".into(),
            messages: Vec::new(),
            options: Default::default(),
        };
        let body = serde_json::to_value(RagRequest {
            request: &request,
            collection: "docs",
        })
        .unwrap();
        assert_eq!(body["collection"], "docs");
        assert_eq!(body["model"], "m");
        assert!(body.get("stream").is_none());
    }
}
