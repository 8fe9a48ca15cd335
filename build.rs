//! Records the git commit the binary is built from, for `--version`: the `VULTR_MCP_COMMIT`
//! environment variable when set (a build from a source archive), else `git rev-parse`, else
//! "unknown commit".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VULTR_MCP_COMMIT");
    let commit = std::env::var("VULTR_MCP_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=VULTR_MCP_COMMIT={}", commit.trim());
}

/// The short id of HEAD, asking cargo to run this again when HEAD or its branch moves.
fn git_commit() -> Option<String> {
    for path in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", path]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}

/// Reruns the build script when `path` changes (only paths that exist: a missing one would
/// rerun it on every build).
fn watch(path: Option<String>) {
    if let Some(path) = path.filter(|path| Path::new(path).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// What `git ARGS` prints, trimmed, when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
