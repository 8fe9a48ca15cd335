//! Checks 7 to 9, what the server offers: HTTP (authentication, allowed hosts and
//! origins, public URL), each delegate server (starts and lists its tools within its
//! timeout), and the toolsets with the number of tools a client will see.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Instant;

use reqwest::Url;

use super::Check;
use crate::delegate::{self, Downstream, Transport};
use crate::http::auth::{StaticTokens, check_issuer};
use crate::http::guard::Guard;
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
    let mut warnings: Vec<(String, String)> = Vec::new();
    if let Some(problem) = bind_problem(http.addr) {
        problems.push(problem);
    }
    if let Some(path) = &http.auth_tokens {
        match StaticTokens::load(path) {
            Ok(tokens) if tokens.is_empty() => warnings.push((
                format!(
                    "no tokens in {}: every request will be refused",
                    path.display()
                ),
                "add lines with `vultr-inference-mcp hash-token NAME`".to_owned(),
            )),
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
    let public_url = http.public_url.as_ref().map_or_else(
        || format!("http://{}/mcp", http.addr),
        |url| url.as_str().to_owned(),
    );
    match Url::parse(&public_url) {
        Ok(url) => {
            // The server's own guard, so the names shown are the names it accepts.
            let guard = Guard::new(
                http.addr,
                &url,
                http.allowed_hosts.as_deref(),
                http.allowed_origins.as_deref(),
            );
            let hosts = guard.host_names();
            let shown = hosts.join(", ");
            if hosts.is_empty() {
                problems.push((
                    format!(
                        "{} names no valid Host: every request would be refused (403)",
                        setting::ALLOWED_HOSTS
                    ),
                    format!(
                        "set {} to the names clients use, e.g. mcp.example.com or mcp.example.com:443",
                        setting::ALLOWED_HOSTS
                    ),
                ));
            } else if !http.addr.ip().is_loopback()
                && http.public_url.is_none()
                && http.allowed_hosts.is_none()
            {
                warnings.push((
                    format!(
                        "only these Host names are accepted: {shown}; a client reaching this server by any other name gets 403 \"Host header not allowed\""
                    ),
                    format!(
                        "set {} to the URL clients use, or {}",
                        setting::PUBLIC_URL,
                        setting::ALLOWED_HOSTS
                    ),
                ));
            } else {
                found.push(format!("accepted Host names: {shown}"));
            }
        }
        Err(error) => problems.push((
            format!("the public URL {public_url} does not parse: {error}"),
            format!("set {} to a full URL", setting::PUBLIC_URL),
        )),
    }
    found.push(format!(
        "allowed origins: {}",
        list_or(http.allowed_origins.as_deref(), "none (browsers refused)")
    ));
    found.push(format!("public URL: {public_url}"));
    if !problems.is_empty() {
        problems.extend(warnings);
        let (mut what, fixes): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
        what.extend(found);
        return Check::fail(HTTP, what.join("; "), fixes.join("; "));
    }
    if warnings.is_empty() {
        return Check::ok(HTTP, found.join("; "));
    }
    let (mut what, fixes): (Vec<String>, Vec<String>) = warnings.into_iter().unzip();
    what.extend(found);
    Check::warn(HTTP, what.join("; "), fixes.join("; "))
}

/// Why the server could not listen on `addr`, found by binding it and letting go at once;
/// `None` when it can, or when the port is 0 (the system picks a free one).
fn bind_problem(addr: SocketAddr) -> Option<(String, String)> {
    if addr.port() == 0 {
        return None;
    }
    let error = std::net::TcpListener::bind(addr).err()?;
    let fix = match error.kind() {
        ErrorKind::AddrInUse => format!(
            "another process uses port {} (see `ss -ltnp`): stop it, or choose another port in {}",
            addr.port(),
            setting::HTTP
        ),
        ErrorKind::PermissionDenied => format!(
            "ports below 1024 need privileges: choose a port above 1023 in {}",
            setting::HTTP
        ),
        _ => format!(
            "choose an address of this machine (or 0.0.0.0) and a free port in {}",
            setting::HTTP
        ),
    };
    Some((
        format!("cannot listen on {addr}: {error}; the server would fail to start"),
        fix,
    ))
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
    // An HTTP server's URL may carry a credential (user:password@, ?token=): only its
    // scheme, host and port are ever shown.
    let urls: BTreeMap<String, String> = specs
        .iter()
        .filter_map(|spec| match &spec.transport {
            Transport::Http { url, .. } => Some((spec.name.clone(), url.clone())),
            Transport::Stdio { .. } => None,
        })
        .collect();
    let downstream = Downstream::new(specs, settings.tool_timeout);
    let names: Vec<String> = downstream.names().map(str::to_owned).collect();
    let mut checks = Vec::new();
    for name in names {
        let check_name = format!("delegate server {name}");
        let url = urls.get(&name);
        let at = url.map_or_else(String::new, |url| format!(" at {}", url_shown(url)));
        let started = Instant::now();
        let check = match downstream.tools(&name).await {
            Ok(tools) => Check::ok(
                &check_name,
                format!(
                    "started{at} and listed {} tool(s) in {} ms",
                    tools.len(),
                    started.elapsed().as_millis()
                ),
            ),
            Err(error) => Check::fail(
                &check_name,
                format!(
                    "`{name}`{at} did not start: {}",
                    url.map_or_else(|| error.clone(), |url| scrub_url(&error, url))
                ),
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

/// `scheme://host:port` of `url`, or a placeholder when it does not parse: never its
/// user, password, path or query.
fn url_shown(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}", parsed.scheme()),
            _ => format!("{}://(no host)", parsed.scheme()),
        },
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

/// `text` with `url` (as written and as normalized) replaced by its shown form, and
/// every part of it that may be a credential (user, password, query, its values,
/// fragment) replaced by `***`.
fn scrub_url(text: &str, url: &str) -> String {
    let shown = url_shown(url);
    let mut text = text.replace(url, &shown);
    let Ok(parsed) = Url::parse(url) else {
        return text;
    };
    text = text.replace(parsed.as_str(), &shown);
    let mut secrets: Vec<String> = vec![parsed.username().to_owned()];
    secrets.extend(parsed.password().map(str::to_owned));
    secrets.extend(parsed.query().map(str::to_owned));
    secrets.extend(parsed.fragment().map(str::to_owned));
    for (_, value) in parsed.query_pairs() {
        secrets.push(value.into_owned());
    }
    secrets.retain(|secret| secret.len() >= 3);
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    for secret in secrets {
        text = text.replace(&secret, "***");
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_as_scheme_host_and_port_only() {
        assert_eq!(
            url_shown("https://u:p@mcp.example.com/mcp?token=abc"),
            "https://mcp.example.com:443"
        );
        assert_eq!(url_shown("http://127.0.0.1:9/x"), "http://127.0.0.1:9");
        assert_eq!(url_shown("not a url"), "(a URL that does not parse)");
    }

    #[test]
    fn credentials_in_a_url_are_scrubbed_from_an_error() {
        let url = "http://someone:PASSWORD@127.0.0.1:9/mcp?token=SECRETVALUE#FRAGMENT";
        let error = format!(
            "server \"x\" at {url} could not be reached: error sending request for url (http://someone:PASSWORD@127.0.0.1:9/mcp?token=SECRETVALUE#FRAGMENT) token SECRETVALUE"
        );
        let shown = scrub_url(&error, url);
        for secret in ["PASSWORD", "SECRETVALUE", "FRAGMENT", "someone"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("at http://127.0.0.1:9 could not"), "{shown}");
    }

    #[test]
    fn binding_an_address_in_use_is_a_problem_and_port_0_is_not_tried() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let (what, fix) = bind_problem(addr).expect("the port is in use");
        assert!(what.contains(&addr.to_string()), "{what}");
        assert!(fix.contains("another process"), "{fix}");
        assert!(bind_problem("127.0.0.1:0".parse().unwrap()).is_none());
    }
}
