//! The fake's vector store and RAG chat, as /work/shared/vultr-surfaces.md §1-2 reports
//! them: `/v1/vector_store` (collections whose ids derive from their names: lower-cased,
//! other characters as `-`, cut to 14 characters, so two names sharing those map to one
//! collection), `/items`, `/files` (multipart field `file`; a text file becomes one item
//! per paragraph), `/search {input}` (items containing the query's words first; no score;
//! `top_k` ignored), and `POST /v1/chat/completions/RAG` (an answer quoting the
//! collection's best match, so a test sees retrieval happened). Shapes follow the
//! live-checked reports (`{collection}`, `{collections}`, `{item}`, `{items}` without
//! content, `{results, usage}`, 204 on delete); [`Variant::Lenient`] answers the other
//! shapes a client must accept (201, bare objects, `data` lists).

use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{PRIORITY_NORMAL, Shared, bearer, inference_error, json_response, lock};

/// Path of RAG chat.
pub const RAG_PATH: &str = "/v1/chat/completions/RAG";
/// Path of the collections.
pub const VECTOR_STORE_PATH: &str = "/v1/vector_store";
/// `created` of everything the fake vector store makes.
pub const CREATED: &str = "2026-07-04T10:00:00Z";
/// How many characters of a name the fake keeps in the id, as Vultr is reported to.
pub const ID_CHARS: usize = 14;

/// Which of the shapes reported for the vector store the fake answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// The shapes the live-checked report gives: 200, wrapped objects, named lists.
    #[default]
    Reported,
    /// The other shapes a client must accept: 201 on create and add, bare objects, `data`
    /// lists.
    Lenient,
}

/// One collection of the fake.
#[derive(Debug, Clone)]
pub struct FakeCollection {
    /// The id derived from the name.
    pub id: String,
    /// The name it was first created with.
    pub name: String,
    /// Its items, in the order added.
    pub items: Vec<FakeItem>,
}

/// One item of a fake collection.
#[derive(Debug, Clone)]
pub struct FakeItem {
    /// `item-N`.
    pub id: String,
    /// Its text.
    pub content: String,
    /// Its description.
    pub description: Option<String>,
}

/// The fake vector store's collections.
#[derive(Debug, Default)]
pub struct VectorStore {
    /// The collections, in creation order.
    pub collections: Vec<FakeCollection>,
    /// Items made so far (drives `item-N`).
    made: u64,
}

/// Handle to the vector store.
pub type SharedStore = Arc<Mutex<VectorStore>>;

/// The id Vultr is reported to derive from `name`: lower-cased, other characters than
/// letters and digits as `-`, cut to [`ID_CHARS`].
pub fn derived_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(ID_CHARS)
        .collect()
}

/// Mounts the vector store and RAG chat on `server`, keys and models checked against
/// `state`.
pub(super) async fn mount(server: &MockServer, state: &Shared, variant: Variant) -> SharedStore {
    let store = SharedStore::default();
    Mock::given(path_regex("^/v1/vector_store(/.*)?$"))
        .respond_with(VectorStoreResponder {
            state: Arc::clone(state),
            store: Arc::clone(&store),
            variant,
        })
        .with_priority(PRIORITY_NORMAL)
        .named("inference vector store")
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(RAG_PATH))
        .respond_with(RagResponder {
            state: Arc::clone(state),
            store: Arc::clone(&store),
        })
        .with_priority(PRIORITY_NORMAL)
        .named("inference RAG chat")
        .mount(server)
        .await;
    store
}

/// Whether `request` carries a key the inference API accepts.
fn authorized(state: &Shared, request: &Request) -> bool {
    let state = lock(state);
    bearer(request).is_some_and(|key| {
        state.subscriptions.iter().any(|s| s.api_key == key)
            || state.extra_inference_keys.iter().any(|k| k == key)
    })
}

fn not_found(what: &str) -> ResponseTemplate {
    inference_error(
        404,
        &format!("{what} not found"),
        json!(404),
        "not_found_error",
    )
}

/// The longest item content the fake takes (Vultr's limit is not documented; a test needs
/// one item of a call to be refused after others were added).
pub const MAX_ITEM_CHARS: usize = 8_000;

/// A 400 with the inference API's error envelope.
fn bad_request(message: &str) -> ResponseTemplate {
    inference_error(400, message, json!(400), "invalid_request_error")
}

/// The answer to every vector-store route.
struct VectorStoreResponder {
    state: Shared,
    store: SharedStore,
    variant: Variant,
}

impl VectorStoreResponder {
    /// A created thing: 200 and wrapped, or 201 and bare.
    fn made(&self, wrapper: &str, value: Value) -> ResponseTemplate {
        match self.variant {
            Variant::Reported => json_response(200, json!({ wrapper: value })),
            Variant::Lenient => json_response(201, value),
        }
    }

    /// A list: named, or as `data`.
    fn list(&self, name: &str, values: Vec<Value>) -> ResponseTemplate {
        match self.variant {
            Variant::Reported => json_response(200, json!({ name: values })),
            Variant::Lenient => json_response(200, json!({ "data": values })),
        }
    }
}

fn collection_json(collection: &FakeCollection) -> Value {
    json!({"id": collection.id, "name": collection.name, "created": CREATED})
}

impl Respond for VectorStoreResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(&self.state, request) {
            return inference_error(401, "Invalid API key", json!(401), "authentication_error");
        }
        // Ids arrive percent-encoded, as any HTTP server reads them.
        let decoded: Vec<String> = request
            .url
            .path()
            .split('/')
            .skip(3)
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let verb = request.method.as_str();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        match (verb, segments.as_slice()) {
            ("POST", []) => {
                let Some(name) = body.get("name").and_then(Value::as_str) else {
                    return bad_request("`name` is required");
                };
                let id = derived_id(name);
                // Two names sharing their first characters map to one collection.
                if !store.collections.iter().any(|c| c.id == id) {
                    store.collections.push(FakeCollection {
                        id: id.clone(),
                        name: name.to_owned(),
                        items: Vec::new(),
                    });
                }
                let collection = store.collections.iter().find(|c| c.id == id).unwrap();
                self.made("collection", collection_json(collection))
            }
            ("GET", []) => {
                let all = store.collections.iter().map(collection_json).collect();
                self.list("collections", all)
            }
            (_, [id, rest @ ..]) => {
                let Some(at) = store.collections.iter().position(|c| c.id == *id) else {
                    return not_found("Collection");
                };
                match (verb, rest) {
                    ("GET", []) => json_response(
                        200,
                        json!({"collection": collection_json(&store.collections[at])}),
                    ),
                    ("DELETE", []) => {
                        store.collections.remove(at);
                        ResponseTemplate::new(204)
                    }
                    ("POST", ["items"]) => {
                        let Some(content) = body.get("content").and_then(Value::as_str) else {
                            return bad_request("`content` is required");
                        };
                        if content.chars().count() > MAX_ITEM_CHARS {
                            return bad_request("`content` is too long");
                        }
                        let description = body
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        let item = store.add(at, content.to_owned(), description);
                        self.made(
                            "item",
                            json!({"id": item.id, "content": item.content,
                                "description": item.description, "created": CREATED}),
                        )
                    }
                    ("GET", ["items"]) => {
                        // Listed without their content, as reported.
                        let items = store.collections[at]
                            .items
                            .iter()
                            .map(|i| json!({"id": i.id, "description": i.description, "created": CREATED}))
                            .collect();
                        self.list("items", items)
                    }
                    ("DELETE", ["items", item]) => {
                        let items = &mut store.collections[at].items;
                        match items.iter().position(|i| i.id == *item) {
                            Some(i) => {
                                items.remove(i);
                                ResponseTemplate::new(204)
                            }
                            None => not_found("Item"),
                        }
                    }
                    ("POST", ["files"]) => match uploaded_file(request) {
                        Ok((filename, text)) => {
                            let paragraphs: Vec<String> = text
                                .split("\n\n")
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                                .map(str::to_owned)
                                .collect();
                            let count = paragraphs.len();
                            for paragraph in paragraphs {
                                store.add(at, paragraph, Some(filename.clone()));
                            }
                            self.made(
                                "file",
                                json!({"id": format!("file-{}", store.made), "filename": filename,
                                    "status": "completed", "items": count}),
                            )
                        }
                        Err(problem) => bad_request(&problem),
                    },
                    ("POST", ["search"]) => {
                        let Some(input) = body.get("input").and_then(Value::as_str) else {
                            return bad_request("`input` is required");
                        };
                        let results: Vec<Value> = ranked(&store.collections[at], input)
                            .into_iter()
                            .map(|i| json!({"id": i.id, "created": CREATED, "content": i.content}))
                            .collect();
                        let tokens = input.split_whitespace().count();
                        match self.variant {
                            Variant::Reported => json_response(
                                200,
                                json!({"results": results, "usage": {"tokens": tokens}}),
                            ),
                            Variant::Lenient => json_response(200, json!({"data": results})),
                        }
                    }
                    _ => not_found("Route"),
                }
            }
            _ => not_found("Route"),
        }
    }
}

impl VectorStore {
    /// Adds an item to the collection at `at`.
    fn add(&mut self, at: usize, content: String, description: Option<String>) -> FakeItem {
        self.made += 1;
        let item = FakeItem {
            id: format!("item-{}", self.made),
            content,
            description,
        };
        self.collections[at].items.push(item.clone());
        item
    }
}

/// The items of `collection`, those sharing more words with `query` first (ties in the
/// order added).
pub fn ranked<'a>(collection: &'a FakeCollection, query: &str) -> Vec<&'a FakeItem> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect();
    let score = |item: &FakeItem| {
        let content = item.content.to_lowercase();
        words
            .iter()
            .filter(|w| content.contains(w.as_str()))
            .count()
    };
    let mut items: Vec<&FakeItem> = collection.items.iter().collect();
    items.sort_by_key(|item| std::cmp::Reverse(score(item)));
    items
}

/// The `file` part of a multipart upload: its file name and text.
fn uploaded_file(request: &Request) -> Result<(String, String), String> {
    let content_type = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let body = request.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let read = async {
        while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
            if field.name() == Some("file") {
                let filename = field
                    .file_name()
                    .ok_or("the `file` part has no file name")?
                    .to_owned();
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                return Ok((filename, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        Err("the multipart body has no `file` field".to_owned())
    };
    read.now_or_never()
        .unwrap_or_else(|| Err("the multipart body did not parse at once".to_owned()))
}

/// `POST /v1/chat/completions/RAG`: an answer quoting the collection's best match.
struct RagResponder {
    state: Shared,
    store: SharedStore,
}

impl Respond for RagResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if !authorized(&self.state, request) {
            return inference_error(401, "Invalid API key", json!(401), "authentication_error");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return bad_request("Request body is not valid JSON");
        };
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !lock(&self.state).model_ids.iter().any(|id| id == model) {
            return inference_error(
                404,
                &format!("The model `{model}` does not exist"),
                json!("model_not_found"),
                "invalid_request_error",
            );
        }
        let Some(collection) = body.get("collection").and_then(Value::as_str) else {
            return bad_request("`collection` is required");
        };
        let question = body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| m.last())
            .map(|m| super::content_text(m.get("content")))
            .unwrap_or_default();
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let Some(found) = store.collections.iter().find(|c| c.id == collection) else {
            return not_found("Collection");
        };
        let answer = match ranked(found, &question).first() {
            Some(best) => format!("According to {collection}: {}", best.content),
            None => format!("The collection {collection} is empty."),
        };
        let prompt_tokens = (question.len() / 4).max(1) + 50;
        let completion_tokens = (answer.len() / 4).max(1);
        json_response(
            200,
            json!({
                "id": "chatcmpl-rag-1",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens},
            }),
        )
    }
}
