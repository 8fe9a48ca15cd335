//! Self-test of the in-process harness (`tests/support/in_process.rs`): the developer's
//! own settings never reach an in-process server, and settings given by variable name
//! become the matching flags.
//!
//! Alone in its test binary, because it sets environment variables (only sound while no
//! other thread reads the environment).

mod support;

use std::time::Duration;

use support::in_process::config;

#[test]
fn the_process_environment_never_reaches_an_in_process_server() {
    for (name, value) in [
        ("VULTR_API_KEY", "LEAKED-ACCOUNT-KEY-0000"),
        ("VULTR_INFERENCE_API_KEY", "LEAKED-INFERENCE-KEY-0000"),
        ("VULTR_INFERENCE_SUBSCRIPTION", "leaked"),
        ("VULTR_DEFAULT_MODEL", "leaked-model"),
        ("VULTR_MCP_REVEAL_KEYS", "true"),
        ("VULTR_MCP_CHAT_TIMEOUT", "1s"),
        ("VULTR_MCP_CONVERSATIONS", "/leaked/store.sqlite3"),
    ] {
        // SAFETY: this is the only test of this binary and runs before any other thread
        // of it exists that could read the environment.
        unsafe { std::env::set_var(name, value) };
    }

    let isolated = config(&[]);

    assert!(isolated.api_key().is_none());
    assert!(isolated.inference_api_key().is_none());
    assert_eq!(isolated.inference_subscription, None);
    assert_eq!(isolated.default_model, None);
    assert!(!isolated.reveal_keys);
    assert_eq!(isolated.limits.chat_timeout, Duration::from_secs(300));
    assert_eq!(isolated.conversations.as_deref(), Some("memory"));

    let given = config(&[
        ("VULTR_INFERENCE_API_KEY", "GIVEN-INFERENCE-KEY-0000"),
        ("VULTR_MCP_REVEAL_KEYS", "true"),
        ("VULTR_MCP_CHAT_TIMEOUT", "500ms"),
        ("VULTR_DEFAULT_MODEL", "glm-5.2"),
    ]);
    assert!(given.inference_api_key().is_some());
    assert!(given.reveal_keys);
    assert_eq!(given.limits.chat_timeout, Duration::from_millis(500));
    assert_eq!(given.default_model.as_deref(), Some("glm-5.2"));
    assert!(!config(&[("VULTR_MCP_REVEAL_KEYS", "false")]).reveal_keys);
}
