//! Checks 7 to 9, what the server offers: HTTP (authentication, allowed hosts and
//! origins, public URL), each delegate server (starts and lists its tools within its
//! timeout), and the toolsets with the number of tools a client will see.

use std::time::Instant;

use super::Check;
use crate::delegate::{self, Downstream};
use crate::http::auth::{StaticTokens, check_issuer};
use crate::setting;
use crate::settings::{DelegateSettings, HttpSettings, Settings};

const HTTP: &str = "HTTP";
const DELEGATES: &str = "delegate servers";
const TOOLSETS: &str = "toolsets";

/// Check 7: the HTTP settings, when the server would serve HTTP.
pub(super) async fn http(settings: Option<&HttpSettings>) -> Check {
    let Some(http) = settings else {
        return Check::skipped(
            HTTP,
            format!(
                "skipped: {} is not set, so the server speaks MCP over stdio",
                setting::HTTP
            ),
            "",
        );
    };
    let mut found = vec![format!("listens on {}", http.addr)];
    let mut problems: Vec<(String, String)> = Vec::new();
    if let Some(path) = &http.auth_tokens {
        match StaticTokens::load(path) {
            Ok(tokens) => found.push(format!(
                "tokens file {} readable, {} token(s)",
                path.display(),
                tokens.len()
            )),
            Err(error) => problems.push((
                error.to_string(),
                format!(
                    "fix the tokens file ({}); make lines with `vultr-inference-mcp hash-token NAME`",
                    setting::AUTH_TOKENS
                ),
            )),
        }
    }
    if let Some(issuer) = &http.oauth_issuer {
        match check_issuer(issuer).await {
            Ok((jwks_uri, keys)) => found.push(format!(
                "OAuth issuer {issuer} reachable, key set {jwks_uri} with {keys} key(s)"
            )),
            Err(error) => problems.push((
                format!("OAuth issuer: {error}"),
                format!(
                    "check {} and that this machine reaches the issuer",
                    setting::OAUTH_ISSUER
                ),
            )),
        }
    }
    let protected = http.auth_tokens.is_some() || http.oauth_issuer.is_some();
    if !protected {
        if !http.addr.ip().is_loopback() && !http.allow_unauthenticated {
            problems.push((
                format!(
                    "no authentication on the non-loopback address {}: the server refuses to start",
                    http.addr
                ),
                format!(
                    "set {} (a tokens file) or {} (an OAuth issuer), bind 127.0.0.1, or set {} if a proxy in front authenticates every request",
                    setting::AUTH_TOKENS,
                    setting::OAUTH_ISSUER,
                    setting::ALLOW_UNAUTHENTICATED
                ),
            ));
        } else if http.allow_unauthenticated && !http.addr.ip().is_loopback() {
            found.push(format!(
                "no authentication ({} is on: something in front must authenticate)",
                setting::ALLOW_UNAUTHENTICATED
            ));
        } else {
            found.push("no authentication (loopback only)".to_owned());
        }
    }
    found.push(format!(
        "allowed hosts: {}",
        list_or(
            http.allowed_hosts.as_deref(),
            "the bound address and the public URL's"
        )
    ));
    found.push(format!(
        "allowed origins: {}",
        list_or(http.allowed_origins.as_deref(), "none (browsers refused)")
    ));
    found.push(format!(
        "public URL: {}",
        http.public_url.as_ref().map_or_else(
            || format!("http://{}/mcp", http.addr),
            |url| url.to_string()
        )
    ));
    if problems.is_empty() {
        return Check::ok(HTTP, found.join("; "));
    }
    let (mut what, fixes): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
    what.extend(found);
    Check::fail(HTTP, what.join("; "), fixes.join("; "))
}

/// `items` as a comma list, or `default` when not given.
fn list_or(items: Option<&[String]>, default: &str) -> String {
    match items {
        Some(items) if !items.is_empty() => items.join(", "),
        _ => default.to_owned(),
    }
}

/// Check 8: each delegate server starts and lists its tools within its timeout.
pub(super) async fn delegates(settings: &DelegateSettings) -> Vec<Check> {
    let Some(file) = &settings.servers_file else {
        return vec![Check::skipped(
            DELEGATES,
            format!("skipped: {} is not set", setting::DELEGATE_SERVERS),
            "",
        )];
    };
    let specs = match delegate::load(file) {
        Ok(specs) => specs,
        Err(error) => {
            return vec![Check::fail(
                DELEGATES,
                error.to_string(),
                format!("fix the file named by {}", setting::DELEGATE_SERVERS),
            )];
        }
    };
    if specs.is_empty() {
        return vec![Check::warn(
            DELEGATES,
            format!("{} names no enabled server", file.display()),
            "add a server to the file, or unset the setting",
        )];
    }
    let downstream = Downstream::new(specs, settings.tool_timeout);
    let names: Vec<String> = downstream.names().map(str::to_owned).collect();
    let mut checks = Vec::new();
    for name in names {
        let check_name = format!("delegate server {name}");
        let started = Instant::now();
        let check = match downstream.tools(&name).await {
            Ok(tools) => Check::ok(
                &check_name,
                format!(
                    "started and listed {} tool(s) in {} ms",
                    tools.len(),
                    started.elapsed().as_millis()
                ),
            ),
            Err(error) => Check::fail(
                &check_name,
                format!("`{name}` did not start: {error}"),
                format!(
                    "fix the entry `{name}` in {} (command, args, url), or mark it \"disabled\": true",
                    file.display()
                ),
            ),
        };
        checks.push(check);
    }
    downstream.close().await;
    checks
}

/// Check 9: the toolsets listed and how many tools a client sees.
pub(super) fn toolsets(settings: &Settings) -> Check {
    let delegating = settings.delegate.servers_file.is_some();
    match settings.tools.select(delegating) {
        Ok(selection) => {
            let names = crate::mcp::listed_tool_names(&selection);
            let toolsets: Vec<&str> = selection.toolsets.iter().map(|t| t.name()).collect();
            Check::ok(
                TOOLSETS,
                format!(
                    "{}{}: a client sees {} tool(s): {}",
                    toolsets.join(", "),
                    if selection.read_only {
                        " (read-only)"
                    } else {
                        ""
                    },
                    names.len(),
                    names.join(", ")
                ),
            )
        }
        Err(error) => Check::fail(
            TOOLSETS,
            error.to_string(),
            format!("change {}", setting::TOOLSETS),
        ),
    }
}
