//! The conversation store's file, seen from outside the process: private to its owner
//! whatever the umask; an open that failed (a lock held too long) is tried again on the
//! next call; deleting works on a full disk; a reply cut short is stored and shown as cut
//! off; and keys typed into a prompt are stored and shown only redacted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rmcp::RoleClient;
use rmcp::model::{CallToolResult, ReadResourceRequestParams};
use rmcp::service::RunningService;
use serde_json::{Value, json};

use crate::support::fake_vultr::faults::{Fault, FaultServer, StreamEnd, content_chunks};
use crate::support::fake_vultr::{ACCOUNT_KEY, FakeVultr};
use crate::support::mcp::{Home, Server, server_command};
use crate::support::session::{err, ok, text};

const LIST_URI: &str = "vultr://conversations";
/// A model the fake's catalog has.
const MODEL: &str = "glm-5.2";

/// What a spawned server runs under, set in the child just before it starts.
#[derive(Clone, Copy)]
struct Limits {
    /// The file-creation mask.
    umask: libc::mode_t,
    /// The largest file the process may write (`RLIMIT_FSIZE`), to make a disk "full".
    max_file_bytes: Option<u64>,
}

impl Limits {
    /// The usual umask, 022: files 0644 and folders 0755 unless the server says otherwise.
    const UMASK_022: Limits = Limits {
        umask: 0o022,
        max_file_bytes: None,
    };

    /// Applies the limits to the current (child) process.
    fn apply(self) -> std::io::Result<()> {
        // SAFETY: umask, setrlimit and signal are async-signal-safe and touch no memory of ours.
        unsafe {
            libc::umask(self.umask);
            if let Some(max) = self.max_file_bytes {
                let limit = libc::rlimit {
                    rlim_cur: max,
                    rlim_max: max,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A write past the limit then fails (EFBIG), as on a full disk, instead of
                // the signal killing the process.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
        }
        Ok(())
    }
}

/// A server on the fake Vultr with its store at `store`, started under [`Limits`].
async fn start_under(fake: &FakeVultr, store: &Path, limits: Limits) -> Server {
    let home = Home::new();
    let mut command = server_command(&home);
    command
        .env("VULTR_API_BASE_URL", fake.account_base_url())
        .env("VULTR_INFERENCE_BASE_URL", fake.inference_base_url())
        .env("VULTR_API_KEY", ACCOUNT_KEY)
        .env("VULTR_MCP_CONVERSATIONS", store);
    // SAFETY: the hook only calls async-signal-safe functions (see `Limits::apply`).
    unsafe {
        command.pre_exec(move || limits.apply());
    }
    Server::spawn(command, home).await
}

/// A chat with the fake's model.
async fn chat(server: &Server, prompt: &str) -> CallToolResult {
    server
        .call("chat_completion", json!({"model": MODEL, "prompt": prompt}))
        .await
}

/// A scratch folder, removed on drop.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vultr-mcp-store-")
        .tempdir()
        .expect("a scratch folder")
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `store` with `suffix` appended, as SQLite names its log files.
fn beside(store: &Path, suffix: &str) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The text of the resource at `uri`.
async fn read_text(client: &RunningService<RoleClient, ()>, uri: &str) -> String {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("resources/read {uri}: {e}"));
    match &result.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("{uri}: expected text, got {other:?}"),
    }
}

/// The ids in the conversation list resource.
async fn listed_ids(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    let body: Value = serde_json::from_str(&read_text(client, LIST_URI).await).expect("JSON");
    body["conversations"]
        .as_array()
        .expect("a conversations array")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// Private files
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_store_its_log_files_and_the_folders_it_creates_are_private_under_umask_022() {
    let fake = FakeVultr::start().await;
    let dir = scratch();
    let store = dir.path().join("new/folder/conversations.sqlite3");
    let session = start_under(&fake, &store, Limits::UMASK_022).await;

    let saved = ok(&chat(&session, "a private thought").await);
    assert!(saved["conversation_id"].is_string(), "{saved}");

    for folder in [dir.path().join("new"), dir.path().join("new/folder")] {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    // The log files exist while the server has the store open.
    for file in [
        store.clone(),
        beside(&store, "-wal"),
        beside(&store, "-shm"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_store_others_can_read_is_made_private_and_the_log_says_so() {
    let fake = FakeVultr::start().await;
    let dir = scratch();
    let store = dir.path().join("conversations.sqlite3");
    // A store as an older build left it: 0644, with its log files, in use by another process.
    let older = rusqlite::Connection::open(&store).unwrap();
    let journal: String = older
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    older
        .execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    let files = [
        store.clone(),
        beside(&store, "-wal"),
        beside(&store, "-shm"),
    ];
    for file in &files {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let session = start_under(&fake, &store, Limits::UMASK_022).await;
    ok(&chat(&session, "hello").await);

    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let log = session.stderr();
    assert!(
        log.contains("the conversation store could be read by other users; made it private (0600)")
            && log.contains("was=644"),
        "{log}"
    );
    drop(older);
}

// ---------------------------------------------------------------------------
// A failed open is tried again
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_store_locked_at_first_use_is_opened_on_a_later_call_once_the_lock_is_gone() {
    let fake = FakeVultr::start().await;
    let dir = scratch();
    let store = dir.path().join("conversations.sqlite3");
    let holder = rusqlite::Connection::open(&store).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let location = store.to_string_lossy().into_owned();
    let server = Server::with_fake(&fake, &[("VULTR_MCP_CONVERSATIONS", &location)]).await;

    // Locked for longer than the store waits (5 s): the reply comes back, unsaved.
    let first = server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "first"}),
        )
        .await;
    assert_eq!(ok(&first)["conversation_id"], Value::Null);
    let shown = text(&first);
    assert!(
        shown.contains("this turn was not saved") && shown.contains("is locked by another process"),
        "{shown}"
    );

    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    // A failed open is answered from memory for a few seconds, then tried again.
    tokio::time::sleep(vultr_inference_mcp::store::REMEMBER_FAILURE).await;

    let second = ok(&server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "second"}),
        )
        .await);
    let id = second["conversation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("saved once the lock is gone: {second}"))
        .to_owned();
    assert_eq!(listed_ids(&server.client).await, [id.as_str()]);
    let transcript = read_text(&server.client, &format!("{LIST_URI}/{id}")).await;
    assert!(transcript.contains("echo: second"), "{transcript}");
    let continued = ok(&server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "third"}),
        )
        .await);
    assert_eq!(continued["conversation_id"], id.as_str());
    server.stop().await;
}

// ---------------------------------------------------------------------------
// A full disk
// ---------------------------------------------------------------------------

#[tokio::test]
async fn on_a_full_disk_saving_fails_but_deleting_works_and_makes_room() {
    let fake = FakeVultr::start().await;
    let dir = scratch();
    let store = dir.path().join("conversations.sqlite3");
    // No file of the server may grow past 128 KiB: its store's log fills up after a few turns.
    let full_at_128k = Limits {
        umask: 0o022,
        max_file_bytes: Some(128 * 1024),
    };
    let session = start_under(&fake, &store, full_at_128k).await;

    let mut saved = Vec::new();
    let mut unsaved = None;
    for turn in 0..100 {
        let result = chat(&session, &format!("note {turn}")).await;
        let reply = ok(&result);
        assert_eq!(reply["content"], format!("echo: note {turn}"));
        match reply["conversation_id"].as_str() {
            Some(id) => saved.push(id.to_owned()),
            None => {
                unsaved = Some(text(&result));
                break;
            }
        }
    }
    let unsaved = unsaved.expect("the disk fills up within 100 turns");
    assert!(unsaved.contains("this turn was not saved"), "{unsaved}");
    assert!(!saved.is_empty(), "some turns were saved first");

    let deleted = session
        .call("delete_conversation", json!({"conversation_id": saved[0]}))
        .await;
    assert_eq!(ok(&deleted)["deleted"], saved[0].as_str());
    let listed = listed_ids(&session.client).await;
    assert!(!listed.contains(&saved[0]), "{listed:?}");
    assert_eq!(listed.len(), saved.len() - 1);

    // The room the delete made lets the next turn be saved.
    let after = ok(&chat(&session, "after deleting").await);
    assert!(after["conversation_id"].is_string(), "{after}");
}

// ---------------------------------------------------------------------------
// Cut-off replies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_reply_cut_off_by_a_stall_is_stored_and_shown_as_cut_off_and_continued_as_such() {
    const NOTE: &str = "[cut off: stalled; this answer is incomplete]";
    let faults = FaultServer::start(vec![Fault::Stream {
        chunks: content_chunks(MODEL, &["The answer ", "is forty"], false),
        interval: Duration::from_millis(50),
        then: StreamEnd::Stall,
    }])
    .await;
    let base_url = faults.base_url();
    let server = Server::start(&[
        ("VULTR_INFERENCE_BASE_URL", base_url.as_str()),
        ("VULTR_INFERENCE_API_KEY", "STORE-TEST-INFERENCE-KEY-0001"),
        ("VULTR_MCP_STALL_TIMEOUT", "300ms"),
    ])
    .await;
    let reply = ok(&server
        .call(
            "chat_completion",
            json!({"model": MODEL, "prompt": "What is the answer?"}),
        )
        .await);
    assert_eq!(reply["finish_reason"], "cut_off_stalled");
    let id = reply["conversation_id"].as_str().expect("saved").to_owned();

    let transcript = read_text(&server.client, &format!("{LIST_URI}/{id}")).await;
    assert!(
        transcript.contains(&format!(
            "## assistant ({MODEL})\n\nThe answer is forty\n\n{NOTE}\n"
        )),
        "{transcript}"
    );

    faults.push(Fault::Stream {
        chunks: content_chunks(MODEL, &["two."], true),
        interval: Duration::ZERO,
        then: StreamEnd::Done,
    });
    ok(&server
        .call(
            "chat_completion",
            json!({"conversation_id": id, "prompt": "Go on"}),
        )
        .await);
    assert_eq!(
        faults.chat_bodies()[1]["messages"],
        json!([
            {"role": "user", "content": "What is the answer?"},
            {"role": "assistant", "content": format!("The answer is forty\n\n{NOTE}")},
            {"role": "user", "content": "Go on"}
        ]),
        "the model is told its earlier answer was cut off"
    );
    let transcript = read_text(&server.client, &format!("{LIST_URI}/{id}")).await;
    assert_eq!(transcript.matches(NOTE).count(), 1, "{transcript}");
    assert!(
        transcript.ends_with(&format!("## assistant ({MODEL})\n\ntwo.\n")),
        "{transcript}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Keys typed into a prompt
// ---------------------------------------------------------------------------

/// Fails the test if `haystack` holds the account key or any 8-character part of it.
fn assert_no_key_in(what: &str, haystack: &str) {
    for start in 0..=ACCOUNT_KEY.len() - 8 {
        let fragment = &ACCOUNT_KEY[start..start + 8];
        assert!(
            !haystack.contains(fragment),
            "{what} shows part of the key (`{fragment}`):\n{haystack}"
        );
    }
}

#[tokio::test]
async fn a_key_typed_into_a_prompt_is_redacted_in_everything_stored_or_shown() {
    let fake = FakeVultr::start().await;
    let dir = scratch();
    let store = dir.path().join("conversations.sqlite3");
    let location = store.to_string_lossy().into_owned();
    let server = Server::with_fake(&fake, &[("VULTR_MCP_CONVERSATIONS", &location)]).await;

    // The fake echoes the prompt, so the reply quotes the key too.
    let prompt = format!("Remember {ACCOUNT_KEY} for later");
    let result = server
        .call("chat_completion", json!({"model": MODEL, "prompt": prompt}))
        .await;
    let id = ok(&result)["conversation_id"]
        .as_str()
        .expect("saved")
        .to_owned();
    assert_no_key_in("the result", &serde_json::to_string(&result).unwrap());

    let resources = server.client.list_resources(None).await.unwrap();
    let resources = serde_json::to_string(&resources).unwrap();
    assert_no_key_in("resources/list", &resources);
    assert!(
        resources.contains("Remember [redacted key …ACCT] for later"),
        "{resources}"
    );
    let list = read_text(&server.client, LIST_URI).await;
    assert_no_key_in("the conversation list", &list);
    assert!(
        list.contains("Remember [redacted key …ACCT] for later"),
        "{list}"
    );
    let transcript = read_text(&server.client, &format!("{LIST_URI}/{id}")).await;
    assert_no_key_in("the transcript", &transcript);
    assert!(
        transcript.contains("echo: Remember [redacted key …ACCT] for later"),
        "{transcript}"
    );

    // What is on disk: the database and its log, as written so far.
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        on_disk.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let on_disk = String::from_utf8_lossy(&on_disk);
    assert!(
        on_disk.contains("[redacted key …ACCT]"),
        "the turn is stored"
    );
    assert_no_key_in("the store's files", &on_disk);
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_file_at_the_store_path_is_refused_in_one_line_and_left_unchanged() {
    let fake = FakeVultr::start().await;
    let dir = scratch();
    let store = dir.path().join("shop.db");
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE orders (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
    }
    let before = std::fs::read(&store).unwrap();
    let location = store.to_string_lossy().into_owned();
    let server = Server::with_fake(&fake, &[("VULTR_MCP_CONVERSATIONS", &location)]).await;

    let result = server
        .call("chat_completion", json!({"model": MODEL, "prompt": "hi"}))
        .await;
    let shown = text(&result);
    assert!(
        shown.contains(&format!(
            "this turn was not saved: conversations are unavailable: `{location}` is not a conversation store but an SQLite database this server did not create (tables: orders, users); it was left unchanged. Set VULTR_MCP_CONVERSATIONS to another file path, or to `memory`"
        )),
        "{shown}"
    );
    let deleted = err(&server
        .call("delete_conversation", json!({"conversation_id": "conv_x"}))
        .await);
    assert_eq!(deleted.lines().count(), 1, "{deleted}");
    assert_eq!(std::fs::read(&store).unwrap(), before);
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(beside.len(), 1, "no log files were made");
    server.stop().await;
}
