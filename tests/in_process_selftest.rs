//! Self-test of the in-process harness (`tests/support/in_process.rs`): the developer's
//! own settings never reach an in-process server, and settings given by variable name
//! become the matching flags.
//!
//! Alone in its test binary, because it sets environment variables (only sound while no
//! other thread reads the environment).

mod support;

use std::time::Duration;

use support::in_process::settings;
use vultr_inference_mcp::store::StoreLocation;

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

    let isolated = settings(&[]);

    assert!(isolated.vultr.api_key.is_none());
    assert!(isolated.vultr.inference_api_key.is_none());
    assert_eq!(isolated.vultr.inference_subscription, None);
    assert_eq!(isolated.vultr.default_model, None);
    assert!(!isolated.vultr.reveal_keys);
    assert_eq!(isolated.limits.chat_timeout, Duration::from_secs(300));
    assert_eq!(isolated.store.location, Some(StoreLocation::InMemory));

    let given = settings(&[
        ("VULTR_INFERENCE_API_KEY", "GIVEN-INFERENCE-KEY-0000"),
        ("VULTR_MCP_REVEAL_KEYS", "true"),
        ("VULTR_MCP_CHAT_TIMEOUT", "500ms"),
        ("VULTR_DEFAULT_MODEL", "glm-5.2"),
    ]);
    assert!(given.vultr.inference_api_key.is_some());
    assert!(given.vultr.reveal_keys);
    assert_eq!(given.limits.chat_timeout, Duration::from_millis(500));
    assert_eq!(given.vultr.default_model.as_deref(), Some("glm-5.2"));
    assert!(
        !settings(&[("VULTR_MCP_REVEAL_KEYS", "false")])
            .vultr
            .reveal_keys
    );
}
