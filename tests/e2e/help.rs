//! `--help` and `-h` on the real binary: every setting is listed by `--help`, `-h` keeps
//! to the common ones, and an unset variable is shown without a dangling `=`.

use crate::support::mcp::{Home, server_command};

async fn help(flag: &str) -> String {
    let home = Home::new();
    let output = server_command(&home)
        .arg(flag)
        .env("VULTR_MCP_MAX_SESSIONS", "7")
        .output()
        .await
        .expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

/// Every `VULTR_*` name of `src/config.rs`'s `setting` module.
fn settings() -> Vec<String> {
    let source = include_str!("../../src/setting.rs");
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split('"').nth(1))
        .filter(|name| name.starts_with("VULTR_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn long_help_lists_every_setting_and_short_help_only_the_common_ones() {
    let long = help("--help").await;
    let short = help("-h").await;
    let names = settings();
    assert!(names.len() > 40, "found {} settings", names.len());
    for name in &names {
        assert!(
            long.contains(&format!("[env: {name}]")),
            "--help lacks {name}"
        );
    }
    assert!(short.contains("[env: VULTR_API_KEY]"));
    assert!(short.contains("[env: VULTR_MCP_HTTP]"));
    assert!(
        !short.contains("VULTR_MCP_MAX_BODY_MEMORY"),
        "-h is the short list"
    );
    assert!(short.lines().count() * 2 < long.lines().count() + 20);
    for text in [&long, &short] {
        assert!(
            !text.contains("=]"),
            "an unset variable shows a dangling `=`"
        );
        assert!(
            !text.contains("=7"),
            "values from the environment are not shown"
        );
    }
}
