//! Host and Origin checks: a browser page on another site, or a DNS name rebound to this
//! machine, must not reach the endpoint (403).

use std::net::SocketAddr;

use http::HeaderMap;
use reqwest::Url;

use crate::setting;

/// The `Host` values and browser `Origin`s the server accepts.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Vec<AllowedHost>,
    origins: Vec<String>,
}

/// One accepted `Host`: a name with any port, or a name with one port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    name: String,
    port: Option<u16>,
}

/// Why a request was refused by the guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The `Host` header is missing or not on the list.
    #[error(
        "Host header not allowed: this server answers only to its configured names ({})",
        setting::ALLOWED_HOSTS
    )]
    Host,
    /// The `Origin` header is present and not on the list.
    #[error(
        "Origin not allowed: browser pages from this origin may not call this server ({})",
        setting::ALLOWED_ORIGINS
    )]
    Origin,
}

impl Guard {
    /// The guard for a server bound to `bound` whose endpoint clients reach at `public_url`;
    /// `hosts` and `origins` replace the defaults when given.
    pub fn new(
        bound: SocketAddr,
        public_url: &Url,
        hosts: Option<&[String]>,
        origins: Option<&[String]>,
    ) -> Self {
        let hosts = match hosts {
            Some(hosts) => hosts.iter().filter_map(|host| parse_host(host)).collect(),
            None => {
                let mut hosts: Vec<AllowedHost> = ["localhost", "127.0.0.1", "[::1]"]
                    .into_iter()
                    .filter_map(parse_host)
                    .collect();
                if let Some(host) = public_url.host_str() {
                    hosts.extend(parse_host(host));
                }
                hosts
            }
        };
        let origins = match origins {
            Some(origins) => origins.iter().filter_map(|o| normalize_origin(o)).collect(),
            None => {
                let mut origins: Vec<String> =
                    normalize_origin(public_url.as_str()).into_iter().collect();
                if bound.ip().is_loopback() {
                    let port = bound.port();
                    for host in ["127.0.0.1", "localhost", "[::1]"] {
                        origins.extend(normalize_origin(&format!("http://{host}:{port}")));
                    }
                }
                origins
            }
        };
        Self { hosts, origins }
    }

    /// The accepted `Host` values, each `name` (any port) or `name:port`.
    pub(crate) fn host_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|host| match host.port {
                Some(port) => format!("{}:{port}", host.name),
                None => host.name.clone(),
            })
            .collect()
    }

    /// Checks a request's `Host` and `Origin` headers.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_host)
            .ok_or(Refusal::Host)?;
        let host_ok = self.hosts.iter().any(|allowed| {
            allowed.name == host.name && allowed.port.is_none_or(|port| Some(port) == host.port)
        });
        if !host_ok {
            return Err(Refusal::Host);
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let origin = origin.to_str().ok().and_then(normalize_origin);
            if !origin.is_some_and(|origin| self.origins.contains(&origin)) {
                return Err(Refusal::Origin);
            }
        }
        Ok(())
    }
}

/// `name` or `name:port` (IPv6 in brackets, or bare without a port), lower-cased.
fn parse_host(text: &str) -> Option<AllowedHost> {
    let text = text.trim().to_ascii_lowercase();
    let (name, port) = if let Some(rest) = text.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        (format!("[{address}]"), after.strip_prefix(':'))
    } else if text.matches(':').count() > 1 {
        (format!("[{text}]"), None)
    } else {
        match text.split_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (text.clone(), None),
        }
    };
    if name.is_empty() || name == "[]" {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some(AllowedHost { name, port })
}

/// `scheme://host[:port]` as browsers send it (no default port, lower case), or `null`.
fn normalize_origin(text: &str) -> Option<String> {
    let text = text.trim();
    if text == "null" {
        return Some("null".to_owned());
    }
    let url = Url::parse(text).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{}:{}", url.scheme(), host, port),
        None => format!("{}://{}", url.scheme(), host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(http::header::HOST, host.parse().unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(http::header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    fn local_guard() -> Guard {
        let bound: SocketAddr = "127.0.0.1:8787".parse().unwrap();
        Guard::new(
            bound,
            &Url::parse("http://127.0.0.1:8787/mcp").unwrap(),
            None,
            None,
        )
    }

    #[test]
    fn by_default_loopback_names_on_any_port_are_accepted_and_others_refused() {
        let guard = local_guard();
        for host in [
            "127.0.0.1:8787",
            "localhost:8787",
            "LOCALHOST",
            "[::1]:8787",
        ] {
            assert_eq!(guard.check(&headers(Some(host), None)), Ok(()), "{host}");
        }
        for host in [
            "evil.example:8787",
            "127.0.0.2:8787",
            "localhost.evil.example",
        ] {
            assert_eq!(
                guard.check(&headers(Some(host), None)),
                Err(Refusal::Host),
                "{host}"
            );
        }
        assert_eq!(guard.check(&headers(None, None)), Err(Refusal::Host));
    }

    #[test]
    fn by_default_only_the_servers_own_origins_are_accepted_and_no_origin_is_fine() {
        let guard = local_guard();
        let host = Some("127.0.0.1:8787");
        for origin in ["http://127.0.0.1:8787", "http://localhost:8787"] {
            assert_eq!(
                guard.check(&headers(host, Some(origin))),
                Ok(()),
                "{origin}"
            );
        }
        for origin in [
            "http://localhost:3000",
            "https://evil.example",
            "null",
            "garbage",
        ] {
            assert_eq!(
                guard.check(&headers(host, Some(origin))),
                Err(Refusal::Origin),
                "{origin}"
            );
        }
    }

    #[test]
    fn a_public_url_adds_its_host_and_origin_and_lists_replace_the_defaults() {
        let bound: SocketAddr = "0.0.0.0:8787".parse().unwrap();
        let public = Url::parse("https://mcp.example.com/mcp").unwrap();
        let guard = Guard::new(bound, &public, None, None);
        let ok = headers(Some("mcp.example.com"), Some("https://mcp.example.com:443"));
        assert_eq!(guard.check(&ok), Ok(()));
        assert_eq!(
            guard.check(&headers(
                Some("mcp.example.com"),
                Some("http://127.0.0.1:8787")
            )),
            Err(Refusal::Origin),
            "loopback origins are only the default on loopback"
        );

        let hosts = vec!["api.example.com:443".to_owned()];
        let origins = vec!["https://app.example.com".to_owned()];
        let guard = Guard::new(bound, &public, Some(&hosts), Some(&origins));
        assert_eq!(
            guard.check(&headers(
                Some("api.example.com:443"),
                Some("https://app.example.com")
            )),
            Ok(())
        );
        assert_eq!(
            guard.check(&headers(Some("api.example.com:8443"), None)),
            Err(Refusal::Host),
            "a listed port is the only port"
        );
        assert_eq!(
            guard.check(&headers(Some("mcp.example.com"), None)),
            Err(Refusal::Host),
            "a list replaces the defaults"
        );
    }
}
