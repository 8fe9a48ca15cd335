//! `vultr-inference-mcp doctor` on the real binary against the fake Vultr: every check's
//! failure path with its exit code (1 when a check failed, 0 with warnings only), `--live`
//! making exactly one chat request, `--json` agreeing with the text, and no secret in the
//! output.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::downstream::Downstreams;
use crate::support::fake_vultr::{
    ACCOUNT_KEY, CHAT_PATH, DEFAULT_SUBSCRIPTION_ID, DEFAULT_SUBSCRIPTION_KEY, FakeVultr,
    MODELS_PATH, STAGING_SUBSCRIPTION_ID, STAGING_SUBSCRIPTION_KEY, SUBSCRIPTIONS_PATH,
    Subscription,
};
use crate::support::mcp::{Home, server_command};
use crate::support::postgres::PgServer;

/// The longest one doctor run may take here.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What one run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Each check's status as the text report gives it, by check name.
    fn statuses(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let (marker, rest) = line.split_once("] ")?;
                let status = match marker.trim_start_matches('[').trim() {
                    "ok" => "ok",
                    "warn" => "warn",
                    "FAIL" => "fail",
                    "skip" => "skipped",
                    _ => return None,
                };
                let (name, _) = rest.split_once(": ")?;
                Some((name.to_owned(), status.to_owned()))
            })
            .collect()
    }

    /// The checks' names, in the order printed.
    fn names(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|line| line.split_once("] ")?.1.split_once(": "))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The status of check `name`.
    fn status(&self, name: &str) -> String {
        self.statuses()
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no check `{name}` in:\n{}", self.stdout))
    }

    /// The line of check `name` and its fix, as printed.
    fn line(&self, name: &str) -> String {
        let mut lines = self.stdout.lines();
        let mut out = String::new();
        while let Some(line) = lines.next() {
            if line
                .split_once("] ")
                .is_some_and(|(_, rest)| rest.starts_with(&format!("{name}: ")))
            {
                out.push_str(line);
                if let Some(fix) = lines
                    .clone()
                    .next()
                    .filter(|l| l.starts_with("       fix:"))
                {
                    out.push('\n');
                    out.push_str(fix);
                }
                return out;
            }
        }
        panic!("no check `{name}` in:\n{}", self.stdout)
    }

    /// Asserts the exit code, showing the report when it differs.
    fn exits(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `doctor` with `args` in a private home, with exactly the settings `env` (the
/// store in memory and no retries unless `env` says otherwise).
async fn doctor(env: &[(&str, String)], args: &[&str]) -> Run {
    let home = Home::new();
    let mut command = server_command(&home);
    command
        .env("VULTR_MCP_CONVERSATIONS", "memory")
        .env("VULTR_MCP_MAX_RETRIES", "0")
        .arg("doctor")
        .args(args)
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("doctor finishes in time")
        .expect("the binary runs");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// The settings pointing at `fake` with its account key.
fn fake_env(fake: &FakeVultr) -> Vec<(&'static str, String)> {
    fake.settings()
}

/// `base` with `extra` added.
fn with(
    mut base: Vec<(&'static str, String)>,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    base.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    base
}

/// Doctor against `fake` with the conversation store at `store`, no other setting.
async fn doctor_on_store(fake: &FakeVultr, store: &Path) -> Run {
    let env = with(
        fake_env(fake),
        &[("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap())],
    );
    doctor(&env, &[]).await
}

/// A conversation store file at `path`, made (current schema) as the server makes it, in
/// a folder private to this user (0700) as the server keeps its own.
async fn make_store(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let folder = path.parent().expect("a folder");
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    use vultr_inference_mcp::store::{Retention, StoreLocation, open_stores};
    let stores = open_stores(
        StoreLocation::File(path.to_path_buf()),
        Retention {
            max_conversations: 10,
            max_age: Duration::from_secs(3600),
        },
        1,
    );
    stores.conversations.open().await.expect("the store opens");
}

/// How many conversations the store file at `path` holds.
fn conversations_in(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("the store opens");
    conn.query_row("SELECT count(*) FROM conversations", [], |row| row.get(0))
        .expect("conversations counted")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Every address of this machine on a port nothing listens on, as `VULTR_MCP_HTTP` takes it.
fn any_address() -> String {
    format!("0.0.0.0:{}", closed_port())
}

/// The public URL the tests' servers on every address are reached at.
const PUBLIC_URL: &str = "https://mcp.example.com/mcp";

#[tokio::test]
async fn everything_configured_and_working_is_ok_and_exits_0_after_one_paid_request() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("conversations.sqlite3");
    make_store(&store).await;
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice {}\n", "ab".repeat(32))).expect("tokens file");
    let downstreams = Downstreams::new(&["echo"], json!({}));
    let env = with(
        fake_env(&fake),
        &[
            ("VULTR_MCP_CONVERSATIONS", store.to_str().unwrap()),
            ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
            ("VULTR_MCP_DELEGATE_SERVERS", downstreams.setting().as_str()),
            ("VULTR_MCP_PUBLIC_URL", PUBLIC_URL),
        ],
    );
    let run = doctor(&env, &["--http", &any_address(), "--live"]).await;
    run.exits(0);
    let statuses = run.statuses();
    assert_eq!(
        run.names(),
        [
            "settings",
            "account key",
            "subscription",
            "inference API",
            "live chat",
            "conversation store",
            "HTTP",
            "delegate server echo",
            "toolsets",
            "team controls",
        ],
        "the checks in their order:\n{}",
        run.stdout
    );
    assert!(
        statuses.values().all(|status| status == "ok"),
        "every check ok:\n{}",
        run.stdout
    );
    assert!(
        run.line("subscription").contains("main") && run.line("subscription").contains("…1111")
    );
    assert!(
        run.line("live chat").contains("made one paid request"),
        "{}",
        run.stdout
    );
    assert!(
        run.line("conversation store").contains("schema version"),
        "{}",
        run.stdout
    );
    assert!(run.line("HTTP").contains("1 token(s)"), "{}", run.stdout);
    assert!(
        run.line("HTTP")
            .contains("accepted Host names: localhost, 127.0.0.1, [::1], mcp.example.com"),
        "{}",
        run.stdout
    );
    assert!(run.line("toolsets").contains("7 tool(s)"), "{}", run.stdout);
    assert_eq!(
        fake.count("POST", CHAT_PATH).await,
        1,
        "--live makes exactly one chat request"
    );
    let asked = &fake.chat_requests().await[0];
    assert!(
        asked["max_tokens"].as_u64().is_some_and(|n| n <= 16),
        "{asked}"
    );
    assert_eq!(
        conversations_in(&store),
        0,
        "the probe conversation is deleted again"
    );
    assert!(
        run.stdout.lines().all(|line| line.starts_with('[')
            || line.starts_with("       fix:")
            || line == "vultr-inference-mcp doctor"
            || line.contains("(exit ")),
        "stdout holds only the report:\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn without_live_no_chat_request_is_made_and_the_check_says_how_to_run_it() {
    let fake = FakeVultr::start().await;
    let run = doctor(&fake_env(&fake), &[]).await;
    run.exits(0);
    assert_eq!(run.status("live chat"), "skipped");
    let line = run.line("live chat");
    assert!(
        line.contains("costs money") && line.contains("doctor --live"),
        "{line}"
    );
    assert_eq!(
        fake.count("POST", CHAT_PATH).await,
        0,
        "no paid request without --live"
    );
    assert_eq!(run.status("HTTP"), "skipped");
    assert_eq!(run.status("conversation store"), "ok");
    assert!(run.line("conversation store").contains("nothing kept"));
}

#[tokio::test]
async fn a_refused_account_key_fails_and_the_checks_needing_it_are_skipped() {
    let fake = FakeVultr::start().await;
    let mut env = fake.base_urls();
    env.push(("VULTR_API_KEY", "WRONG-account-key-0000-ZZZZ".to_owned()));
    let run = doctor(&env, &["--live"]).await;
    run.exits(1);
    assert_eq!(run.status("account key"), "fail");
    let line = run.line("account key");
    assert!(
        line.contains("key refused") && line.contains("make a new"),
        "{line}"
    );
    assert_eq!(run.status("subscription"), "skipped");
    assert!(
        run.line("subscription")
            .contains("skipped: needs account key")
    );
    assert!(
        run.line("live chat")
            .contains("skipped: needs subscription")
    );
    assert_eq!(fake.count("POST", CHAT_PATH).await, 0);
}

#[tokio::test]
async fn an_ip_address_not_on_the_access_list_fails_naming_it() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "GET",
        SUBSCRIPTIONS_PATH,
        403,
        r#"{"error":"Unauthorized IP address: 203.0.113.7","status":403}"#,
        5,
    )
    .await;
    let run = doctor(&fake_env(&fake), &[]).await;
    run.exits(1);
    assert_eq!(run.status("account key"), "fail");
    let line = run.line("account key");
    assert!(
        line.contains("IP address")
            && line.contains("203.0.113.7")
            && line.contains("access control"),
        "{line}"
    );
}

#[tokio::test]
async fn no_key_at_all_fails_but_an_inference_key_alone_only_warns() {
    let fake = FakeVultr::builder()
        .extra_inference_key("CONFIGURED-INFERENCE-KEY-9999")
        .start()
        .await;
    let none = doctor(&fake.base_urls(), &[]).await;
    none.exits(1);
    assert_eq!(none.status("account key"), "fail");
    let mut env = fake.base_urls();
    env.push((
        "VULTR_INFERENCE_API_KEY",
        "CONFIGURED-INFERENCE-KEY-9999".to_owned(),
    ));
    let alone = doctor(&env, &[]).await;
    alone.exits(0);
    assert_eq!(alone.status("account key"), "warn");
    // The catalog is public, so nothing free proves the key: unverified, a warning.
    assert_eq!(alone.status("subscription"), "warn");
    let line = alone.line("subscription");
    assert!(
        line.contains("…9999")
            && line.contains("configured, not verified")
            && line.contains("doctor --live")
            && line.contains("paid request"),
        "{line}"
    );
    let verified = doctor(&env, &["--live"]).await;
    verified.exits(0);
    assert_eq!(verified.status("subscription"), "ok", "{}", verified.stdout);
    assert!(
        verified
            .line("subscription")
            .contains("verified by the live chat")
    );
    let mut wrong = fake.base_urls();
    wrong.push((
        "VULTR_INFERENCE_API_KEY",
        "WRONG-INFERENCE-KEY-0000-8888".to_owned(),
    ));
    let refused = doctor(&wrong, &["--live"]).await;
    refused.exits(1);
    assert_eq!(refused.status("subscription"), "warn");
    assert_eq!(refused.status("live chat"), "fail", "{}", refused.stdout);
}

#[tokio::test]
async fn no_subscription_or_an_ambiguous_one_fails() {
    let empty = FakeVultr::builder().subscriptions(vec![]).start().await;
    let run = doctor(&fake_env(&empty), &[]).await;
    run.exits(1);
    assert_eq!(run.status("subscription"), "fail");
    assert!(
        run.line("subscription")
            .contains("no Serverless Inference subscription")
    );

    let two = FakeVultr::builder()
        .subscriptions(vec![
            Subscription::new(DEFAULT_SUBSCRIPTION_ID, "main", DEFAULT_SUBSCRIPTION_KEY),
            Subscription::new(STAGING_SUBSCRIPTION_ID, "staging", STAGING_SUBSCRIPTION_KEY),
        ])
        .start()
        .await;
    let run = doctor(&fake_env(&two), &[]).await;
    run.exits(1);
    let line = run.line("subscription");
    assert!(
        line.contains("main (")
            && line.contains("staging (")
            && line.contains("VULTR_INFERENCE_SUBSCRIPTION"),
        "{line}"
    );
    let chosen = doctor(
        &with(
            fake_env(&two),
            &[("VULTR_INFERENCE_SUBSCRIPTION", "staging")],
        ),
        &[],
    )
    .await;
    chosen.exits(0);
    assert!(chosen.line("subscription").contains("…2222"));
}

#[tokio::test]
async fn a_catalog_answering_5xx_fails() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "GET",
        MODELS_PATH,
        503,
        r#"{"error":{"message":"down"}}"#,
        5,
    )
    .await;
    let run = doctor(&fake_env(&fake), &["--live"]).await;
    run.exits(1);
    assert_eq!(run.status("inference API"), "fail");
    assert!(run.line("inference API").contains("503"), "{}", run.stdout);
    assert!(
        run.line("live chat")
            .contains("skipped: needs inference API")
    );
    assert_eq!(fake.count("POST", CHAT_PATH).await, 0);
}

#[tokio::test]
async fn fallback_models_the_catalog_does_not_list_for_chat_warn_naming_them() {
    let fake = FakeVultr::start().await;
    let run = doctor(
        &with(
            fake_env(&fake),
            &[(
                "VULTR_MCP_FALLBACK_MODELS",
                "kimi-k2-instruct,kimi-k3,qwen3-embedding-4b",
            )],
        ),
        &[],
    )
    .await;
    run.exits(0);
    assert_eq!(run.status("inference API"), "warn", "{}", run.stdout);
    let line = run.line("inference API");
    assert!(
        line.contains("VULTR_MCP_FALLBACK_MODELS names kimi-k3, qwen3-embedding-4b that"),
        "{}",
        run.stdout
    );

    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_FALLBACK_MODELS", "kimi-k2-instruct")],
        ),
        &[],
    )
    .await;
    assert_eq!(run.status("inference API"), "ok", "{}", run.stdout);
}

/// A folder this user cannot create files in: a read-only one, or (as root, who may
/// write anywhere on a normal file system) `/sys`.
fn unwritable_folder(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let folder = dir.join("read-only");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(folder.join("probe"), "").is_ok() {
        return std::path::PathBuf::from("/sys");
    }
    folder
}

#[tokio::test]
async fn a_store_in_a_read_only_folder_fails() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = unwritable_folder(dir.path());
    let store = folder.join("conversations.sqlite3");
    let run = doctor_on_store(&fake, &store).await;
    run.exits(1);
    assert_eq!(run.status("conversation store"), "fail");
    let line = run.line("conversation store");
    assert!(
        line.contains(&folder.display().to_string()) && line.contains("VULTR_MCP_CONVERSATIONS"),
        "{line}"
    );
    assert!(!store.exists());
}

#[tokio::test]
async fn a_store_file_others_can_read_warns_with_the_chmod_and_exits_0() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("conversations.sqlite3");
    make_store(&store).await;
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = doctor_on_store(&fake, &store).await;
    run.exits(0);
    assert_eq!(run.status("conversation store"), "warn");
    let line = run.line("conversation store");
    assert!(
        line.contains(&format!("chmod 600 {}", store.display())),
        "{line}"
    );
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o644,
        "doctor reports, it does not change permissions"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_fails_without_showing_its_password() {
    let fake = FakeVultr::start().await;
    let url = format!(
        "postgres://app:pg-doctor-s3cret@127.0.0.1:{}/chats",
        closed_port()
    );
    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_CONVERSATIONS", url.as_str())],
        ),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(run.status("conversation store"), "fail");
    assert!(
        run.line("conversation store").contains("app:***@"),
        "{}",
        run.stdout
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("pg-doctor-s3cret"), "{text}");
    }
}

#[tokio::test]
async fn a_migrated_postgres_is_ok_with_its_version_and_pool() {
    let fake = FakeVultr::start().await;
    let url = PgServer::shared().create_database();
    let fresh = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_CONVERSATIONS", url.as_str())],
        ),
        &[],
    )
    .await;
    fresh.exits(0);
    assert_eq!(
        fresh.status("conversation store"),
        "warn",
        "{}",
        fresh.stdout
    );
    assert!(
        fresh
            .line("conversation store")
            .contains("schema version 0")
    );
    {
        use vultr_inference_mcp::store::{Retention, StoreLocation, open_stores};
        let stores = open_stores(
            StoreLocation::parse(&url),
            Retention {
                max_conversations: 10,
                max_age: Duration::from_secs(3600),
            },
            1,
        );
        stores
            .conversations
            .open()
            .await
            .expect("Postgres migrates");
    }
    let run = doctor(
        &with(
            fake_env(&fake),
            &[
                ("VULTR_MCP_CONVERSATIONS", url.as_str()),
                ("VULTR_MCP_DB_POOL", "3"),
            ],
        ),
        &[],
    )
    .await;
    run.exits(0);
    assert_eq!(run.status("conversation store"), "ok", "{}", run.stdout);
    let line = run.line("conversation store");
    assert!(
        line.contains("pool of 3") && line.contains("writable"),
        "{line}"
    );
}

#[tokio::test]
async fn http_without_authentication_on_every_address_fails_as_the_server_would() {
    let fake = FakeVultr::start().await;
    let run = doctor(&fake_env(&fake), &["--http", &any_address()]).await;
    run.exits(1);
    assert_eq!(run.status("HTTP"), "fail");
    assert!(
        run.line("HTTP").contains("refuses to start"),
        "{}",
        run.stdout
    );
    let before = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_HTTP", &format!("127.0.0.1:{}", closed_port()))],
        ),
        &[],
    )
    .await;
    before.exits(0);
    assert_eq!(before.status("HTTP"), "ok");
}

#[tokio::test]
async fn settings_work_before_and_after_the_command() {
    let fake = FakeVultr::start().await;
    let home = Home::new();
    let mut command = server_command(&home);
    command
        .args(["--http", &any_address(), "doctor", "--json"])
        .env("VULTR_MCP_CONVERSATIONS", "memory");
    for (name, value) in fake_env(&fake) {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let http = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "HTTP")
        .unwrap();
    assert_eq!(http["status"], "fail", "{report}");
}

#[tokio::test]
async fn a_delegate_server_that_does_not_start_fails_naming_it() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("servers.json");
    std::fs::write(
        &file,
        json!({"mcpServers": {"ghost": {"command": "/nonexistent/ghost-mcp-server"}}}).to_string(),
    )
    .unwrap();
    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_DELEGATE_SERVERS", file.to_str().unwrap())],
        ),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(run.status("delegate server ghost"), "fail");
    assert!(
        run.line("delegate server ghost").contains("`ghost`"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn json_is_one_document_with_the_text_reports_statuses() {
    let fake = FakeVultr::builder().subscriptions(vec![]).start().await;
    let env = with(fake_env(&fake), &[("VULTR_MCP_HTTP", &any_address())]);
    let text = doctor(&env, &[]).await;
    let json_run = doctor(&env, &["--json"]).await;
    json_run.exits(1);
    text.exits(1);
    let report: Value =
        serde_json::from_str(&json_run.stdout).expect("stdout is one JSON document");
    assert_eq!(report["ok"], false);
    let from_json: BTreeMap<String, String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| {
            for field in ["found", "fix"] {
                assert!(check[field].is_string(), "{check}");
            }
            (
                check["name"].as_str().unwrap().to_owned(),
                check["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(from_json, text.statuses());
    assert_eq!(from_json["subscription"], "fail");
    assert_eq!(from_json["HTTP"], "fail");
}

#[tokio::test]
async fn no_secret_is_ever_printed_only_the_last_four_characters_of_keys() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_hash = "cd".repeat(32);
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice {token_hash}\n")).unwrap();
    let password = "Pg-Pa55word-Never-Shown";
    let url = format!(
        "postgres://app:{password}@127.0.0.1:{}/chats",
        closed_port()
    );
    let env = with(
        fake_env(&fake),
        &[
            ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
            ("VULTR_MCP_CONVERSATIONS", url.as_str()),
        ],
    );
    let secrets = [ACCOUNT_KEY, DEFAULT_SUBSCRIPTION_KEY, password, &token_hash];
    let check = |run: &Run| {
        for text in [&run.stdout, &run.stderr] {
            for secret in secrets {
                assert!(!text.contains(secret), "`{secret}` printed:\n{text}");
            }
        }
    };
    let address = any_address();
    for args in [
        &["--http", address.as_str(), "--live"][..],
        &["--json", "--live"][..],
    ] {
        let run = doctor(&env, args).await;
        check(&run);
        assert!(
            run.stdout.contains("…ACCT") && run.stdout.contains("…1111"),
            "{}",
            run.stdout
        );
    }
    // Vultr quoting the key back in an error is scrubbed too.
    fake.fail(
        "GET",
        SUBSCRIPTIONS_PATH,
        401,
        &json!({"error": format!("Invalid API token {ACCOUNT_KEY}"), "status": 401}).to_string(),
        5,
    )
    .await;
    let refused = doctor(&env, &[]).await;
    refused.exits(1);
    check(&refused);
    assert!(
        refused.line("account key").contains("…ACCT"),
        "{}",
        refused.stdout
    );
}

#[tokio::test]
async fn an_oauth_issuer_is_ok_when_its_keys_are_reachable_and_fails_when_not() {
    use crate::support::oauth_issuer::{Discovery, OAuthIssuer};
    let fake = FakeVultr::start().await;
    let issuer = OAuthIssuer::start(Discovery::OAuthAuthorizationServer).await;
    let env = with(
        fake_env(&fake),
        &[
            ("VULTR_MCP_HTTP", &any_address()),
            ("VULTR_MCP_PUBLIC_URL", PUBLIC_URL),
            ("VULTR_MCP_OAUTH_ISSUER", issuer.issuer()),
        ],
    );
    let reachable = doctor(&env, &[]).await;
    reachable.exits(0);
    assert_eq!(reachable.status("HTTP"), "ok");
    assert!(
        reachable.line("HTTP").contains("key(s)") && reachable.line("HTTP").contains("reachable"),
        "{}",
        reachable.stdout
    );
    issuer.set_available(false);
    let down = doctor(&env, &[]).await;
    down.exits(1);
    assert_eq!(down.status("HTTP"), "fail");
    assert!(
        down.line("HTTP").contains("OAuth issuer"),
        "{}",
        down.stdout
    );
}

#[tokio::test]
async fn http_on_every_address_without_a_public_url_warns_naming_the_only_hosts_accepted() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice {}\n", "ab".repeat(32))).unwrap();
    let address = any_address();
    let env = with(
        fake_env(&fake),
        &[
            ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
            ("VULTR_MCP_HTTP", address.as_str()),
        ],
    );
    let run = doctor(&env, &[]).await;
    run.exits(0);
    assert_eq!(run.status("HTTP"), "warn", "{}", run.stdout);
    let line = run.line("HTTP");
    assert!(
        line.contains("only these Host names are accepted: localhost, 127.0.0.1, [::1], 0.0.0.0")
            && line.contains("403")
            && line.contains(
                "set VULTR_MCP_PUBLIC_URL to the URL clients use, or VULTR_MCP_ALLOWED_HOSTS"
            ),
        "{line}"
    );
    let public = doctor(
        &with(env.clone(), &[("VULTR_MCP_PUBLIC_URL", PUBLIC_URL)]),
        &[],
    )
    .await;
    public.exits(0);
    assert_eq!(public.status("HTTP"), "ok", "{}", public.stdout);
    assert!(
        public
            .line("HTTP")
            .contains("accepted Host names: localhost, 127.0.0.1, [::1], mcp.example.com;"),
        "{}",
        public.stdout
    );
    let listed = doctor(
        &with(env, &[("VULTR_MCP_ALLOWED_HOSTS", "api.example.com:443")]),
        &[],
    )
    .await;
    listed.exits(0);
    assert_eq!(listed.status("HTTP"), "ok", "{}", listed.stdout);
    assert!(
        listed
            .line("HTTP")
            .contains("accepted Host names: api.example.com:443;"),
        "{}",
        listed.stdout
    );
}

#[tokio::test]
async fn a_tokens_file_with_no_tokens_warns_and_an_unreadable_or_malformed_one_fails() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", closed_port());
    let run_with = |tokens: &Path| {
        with(
            fake_env(&fake),
            &[
                ("VULTR_MCP_HTTP", http.as_str()),
                ("VULTR_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
            ],
        )
    };
    let empty = dir.path().join("empty-tokens");
    std::fs::write(&empty, "# no one yet\n").unwrap();
    let run = doctor(&run_with(&empty), &[]).await;
    run.exits(0);
    assert_eq!(run.status("HTTP"), "warn", "{}", run.stdout);
    let line = run.line("HTTP");
    assert!(
        line.contains(&format!("no tokens in {}", empty.display()))
            && line.contains("every request will be refused")
            && line.contains("vultr-inference-mcp hash-token NAME"),
        "{line}"
    );

    let malformed = dir.path().join("malformed-tokens");
    std::fs::write(&malformed, "alice not-a-digest\n").unwrap();
    let run = doctor(&run_with(&malformed), &[]).await;
    run.exits(1);
    assert_eq!(run.status("HTTP"), "fail", "{}", run.stdout);
    assert!(run.line("HTTP").contains("line 1"), "{}", run.stdout);

    let missing = dir.path().join("no-such-tokens");
    let run = doctor(&run_with(&missing), &[]).await;
    run.exits(1);
    assert_eq!(run.status("HTTP"), "fail", "{}", run.stdout);
    assert!(
        run.line("HTTP").contains(&missing.display().to_string()),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn an_address_in_use_fails_with_the_systems_error() {
    let fake = FakeVultr::start().await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let run = doctor(&fake_env(&fake), &["--http", &address]).await;
    run.exits(1);
    assert_eq!(run.status("HTTP"), "fail", "{}", run.stdout);
    let line = run.line("HTTP");
    assert!(
        line.contains(&format!("cannot listen on {address}"))
            && line.to_lowercase().contains("address already in use")
            && line.contains("another process uses port")
            && line.contains("VULTR_MCP_HTTP"),
        "{line}"
    );
    drop(held);
    // Port 0 is the system's to choose: nothing to try.
    let any = doctor(&fake_env(&fake), &["--http", "127.0.0.1:0"]).await;
    any.exits(0);
    assert_eq!(any.status("HTTP"), "ok", "{}", any.stdout);
}

#[tokio::test]
async fn a_store_path_that_is_a_directory_fails_naming_it() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("store-folder");
    std::fs::create_dir(&folder).unwrap();
    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_CONVERSATIONS", folder.to_str().unwrap())],
        ),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(run.status("conversation store"), "fail", "{}", run.stdout);
    let line = run.line("conversation store");
    assert!(
        line.contains(&format!(
            "{}` is a directory, not a database file",
            folder.display()
        )) && line.contains("set VULTR_MCP_CONVERSATIONS to a file path"),
        "{line}"
    );
}

#[tokio::test]
async fn a_store_companion_file_others_can_read_warns_and_is_left_as_it_is() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("conversations.sqlite3");
    make_store(&store).await;
    // An empty journal is no hot journal: SQLite ignores it, as the server would.
    let journal = dir.path().join("conversations.sqlite3-journal");
    std::fs::write(&journal, "").unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = doctor_on_store(&fake, &store).await;
    run.exits(0);
    assert_eq!(run.status("conversation store"), "warn", "{}", run.stdout);
    let line = run.line("conversation store");
    assert!(
        line.contains(&format!("chmod 600 {}", journal.display()))
            && line.contains("not opened for writing"),
        "{line}"
    );
    let mode = std::fs::metadata(&journal).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o644,
        "doctor reports, it does not change permissions"
    );
}

#[tokio::test]
async fn a_store_written_by_a_newer_build_fails_naming_both_versions() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("conversations.sqlite3");
    make_store(&store).await;
    let conn = rusqlite::Connection::open(&store).unwrap();
    let ours: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let run = doctor_on_store(&fake, &store).await;
    run.exits(1);
    assert_eq!(run.status("conversation store"), "fail", "{}", run.stdout);
    let line = run.line("conversation store");
    assert!(
        line.contains("schema version 99")
            && line.contains(&format!("understands ({ours})"))
            && line.contains("upgrade vultr-inference-mcp"),
        "{line}"
    );
}

#[tokio::test]
async fn a_delegate_servers_url_is_shown_without_its_credentials() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("servers.json");
    let port = closed_port();
    let url = format!("http://someone:PASSWORDVALUE@127.0.0.1:{port}/mcp?token=SECRETVALUE");
    std::fs::write(
        &file,
        json!({"mcpServers": {"remote": {"url": url}}}).to_string(),
    )
    .unwrap();
    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_DELEGATE_SERVERS", file.to_str().unwrap())],
        ),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(
        run.status("delegate server remote"),
        "fail",
        "{}",
        run.stdout
    );
    assert!(
        run.line("delegate server remote").contains(&format!(
            "`remote` at http://127.0.0.1:{port} did not start"
        )),
        "{}",
        run.stdout
    );
    for text in [&run.stdout, &run.stderr] {
        for secret in ["SECRETVALUE", "PASSWORDVALUE", "someone:"] {
            assert!(!text.contains(secret), "`{secret}` printed:\n{text}");
        }
    }
}

#[tokio::test]
async fn a_delegate_servers_file_that_does_not_parse_fails_and_one_naming_no_server_warns() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"mcpServers\": {").unwrap();
    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_DELEGATE_SERVERS", broken.to_str().unwrap())],
        ),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(run.status("delegate servers"), "fail", "{}", run.stdout);
    let line = run.line("delegate servers");
    assert!(
        line.contains(&broken.display().to_string())
            && line.contains("not a JSON object")
            && line.contains("VULTR_MCP_DELEGATE_SERVERS"),
        "{line}"
    );

    // The server starts with such a file (its delegate tool has no server to use).
    let empty = dir.path().join("empty.json");
    std::fs::write(
        &empty,
        json!({"mcpServers": {"off": {"command": "true", "disabled": true}}}).to_string(),
    )
    .unwrap();
    let run = doctor(
        &with(
            fake_env(&fake),
            &[("VULTR_MCP_DELEGATE_SERVERS", empty.to_str().unwrap())],
        ),
        &[],
    )
    .await;
    run.exits(0);
    assert_eq!(run.status("delegate servers"), "warn", "{}", run.stdout);
    assert!(
        run.line("delegate servers")
            .contains("names no enabled server"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn toolsets_that_cannot_be_served_fail_and_an_unknown_one_is_refused_at_parse() {
    let fake = FakeVultr::start().await;
    let run = doctor(
        &with(fake_env(&fake), &[("VULTR_MCP_TOOLSETS", "core,delegate")]),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(run.status("toolsets"), "fail", "{}", run.stdout);
    assert!(
        run.line("toolsets").contains("VULTR_MCP_TOOLSETS"),
        "{}",
        run.stdout
    );
    let unknown = doctor(
        &with(fake_env(&fake), &[("VULTR_MCP_TOOLSETS", "core,nope")]),
        &[],
    )
    .await;
    unknown.exits(2);
    assert!(
        unknown.stderr.contains("nope") && unknown.stderr.contains("toolsets"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn live_fails_when_the_chat_answers_5xx() {
    let fake = FakeVultr::start().await;
    fake.fail(
        "POST",
        CHAT_PATH,
        503,
        r#"{"error":{"message":"overloaded"}}"#,
        5,
    )
    .await;
    let run = doctor(&fake_env(&fake), &["--live"]).await;
    run.exits(1);
    assert_eq!(run.status("live chat"), "fail", "{}", run.stdout);
    let line = run.line("live chat");
    assert!(
        line.contains("made one paid request") && line.contains("503"),
        "{line}"
    );
    assert_eq!(
        fake.count("POST", CHAT_PATH).await,
        1,
        "no retry: one request"
    );
}

#[tokio::test]
async fn without_ca_certificates_the_inference_check_fails_naming_ssl_cert_file() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("empty-bundle.pem");
    std::fs::write(&bundle, "").unwrap();
    let certs = dir.path().join("no-certs");
    std::fs::create_dir(&certs).unwrap();
    let run = doctor(
        &with(
            fake_env(&fake),
            &[
                ("SSL_CERT_FILE", bundle.to_str().unwrap()),
                ("SSL_CERT_DIR", certs.to_str().unwrap()),
            ],
        ),
        &[],
    )
    .await;
    run.exits(1);
    assert_eq!(run.status("inference API"), "fail", "{}", run.stdout);
    assert!(
        run.line("inference API").contains("SSL_CERT_FILE"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn team_controls_fail_as_start_up_would_naming_the_budgets_entry_and_the_audit_file() {
    let fake = FakeVultr::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let budgets = dir.path().join("budgets.json");
    std::fs::write(
        &budgets,
        r#"{"*": {"daily_usd": 5}, "alice": {"daily": 20}}"#,
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&audit, "").unwrap();
    std::fs::set_permissions(&audit, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let env = with(
        fake_env(&fake),
        &[
            ("VULTR_MCP_BUDGETS", budgets.to_str().unwrap()),
            ("VULTR_MCP_AUDIT_LOG", audit.to_str().unwrap()),
        ],
    );
    let run = doctor(&env, &[]).await;
    run.exits(1);
    assert_eq!(run.status("team controls"), "fail");
    let line = run.line("team controls");
    assert!(
        line.contains("entry \"alice\": unknown field `daily`") && line.contains("budgets.json"),
        "{line}"
    );
    assert!(
        line.contains("mode 0644") && line.contains("chmod 600"),
        "{line}"
    );

    std::fs::write(
        &budgets,
        r#"{"*": {"daily_usd": 5}, "alice": {"daily_usd": 20}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&audit, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let env = with(
        fake_env(&fake),
        &[
            ("VULTR_MCP_BUDGETS", budgets.to_str().unwrap()),
            ("VULTR_MCP_AUDIT_LOG", audit.to_str().unwrap()),
            ("VULTR_MCP_CONFIRM_ABOVE_USD", "0.05"),
        ],
    );
    let run = doctor(&env, &[]).await;
    assert_eq!(run.status("team controls"), "ok", "{}", run.stdout);
    let line = run.line("team controls");
    assert!(
        line.contains("2 entries")
            && line.contains("asked above $0.05")
            && line.contains("audit.jsonl"),
        "{line}"
    );
}
