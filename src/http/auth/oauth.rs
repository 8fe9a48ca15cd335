//! OAuth 2.1 access tokens (JWT): signature by a key from the issuer's JWKS, `exp`/`nbf` with
//! 60 s leeway, `iss`, `aud`, `sub` (the principal) and, when configured, a required scope.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

use super::AuthFailure;
use super::discovery::{DiscoveryError, Issuer, IssuerClient};
use super::jwks::{ACCEPTED_ALGORITHMS, KeySet, Lookup, MIN_REFETCH_INTERVAL, RefetchGate};
use crate::principal::Principal;

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// Which OAuth access tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The issuer's identifier (its URL); tokens' `iss` must equal it.
    pub issuer: String,
    /// The audience tokens must name in `aud` (by default the server's public URL).
    pub audience: String,
    /// Scopes (space-separated) a token must carry, if any.
    pub scope: Option<String>,
}

/// Checks access tokens against the issuer's keys, fetching and caching them.
pub struct OAuthVerifier {
    settings: OAuthSettings,
    issuer: Issuer,
    client: IssuerClient,
    validation: Validation,
    keys: RwLock<KeysSnapshot>,
    fetching: tokio::sync::Mutex<FetchState>,
}

/// The keys as last fetched, shared by concurrent requests.
#[derive(Clone, Default)]
struct KeysSnapshot {
    /// Counts fetch attempts, so a request waiting for a fetch sees that one finished.
    generation: u64,
    keys: Option<Arc<KeySet>>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
}

/// What only the one fetching task touches.
#[derive(Default)]
struct FetchState {
    jwks_uri: Option<Url>,
    gate: RefetchGate,
}

/// What a request that needed the keys fetched again got.
struct Refetch {
    /// Whether the keys were fetched (by this request or another one) since the request read
    /// them; `false` when the cool-down between fetches refused a new one.
    fresh: bool,
    /// How long until the keys may be fetched again.
    next_in: Duration,
}

/// The claims we read beyond those `jsonwebtoken` validates.
#[derive(Deserialize)]
struct Claims {
    /// Required (jsonwebtoken refuses a token without it); optional here so that its
    /// absence is reported as such rather than as malformed claims.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<Scopes>,
    #[serde(default)]
    scp: Option<Scopes>,
}

/// A scope claim: space-separated in a string, or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Spaced(String),
    List(Vec<String>),
}

impl Scopes {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::Spaced(text) => text.split_whitespace().any(|s| s == wanted),
            Self::List(list) => list.iter().any(|s| s == wanted),
        }
    }
}

impl OAuthVerifier {
    /// Checks the settings and tries once to fetch the issuer's keys; a failed fetch is logged
    /// and tried again when a token needs the keys.
    pub async fn new(settings: OAuthSettings) -> Result<Self, DiscoveryError> {
        let issuer = Issuer::parse(&settings.issuer)?;
        if settings.audience.trim().is_empty() {
            return Err(DiscoveryError::BadIssuer {
                issuer: settings.issuer.clone(),
                problem: "needs an audience: set the OAuth audience (by default the public URL)"
                    .to_owned(),
            });
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let verifier = Self {
            client: IssuerClient::new()?,
            settings,
            issuer,
            validation,
            keys: RwLock::default(),
            fetching: tokio::sync::Mutex::default(),
        };
        let mut state = verifier.fetching.lock().await;
        verifier.fetch_keys(&mut state).await;
        drop(state);
        Ok(verifier)
    }

    /// The settings this verifier was built from.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// The principal (`sub`) of a valid access token.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            AuthFailure::Invalid(format!(
                "the token is not a static token and not a JWT signed with an accepted algorithm ({})",
                accepted_names()
            ))
        })?;
        if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
            return Err(AuthFailure::Invalid(format!(
                "tokens signed with {:?} are not accepted; the issuer must sign with one of {}",
                header.alg,
                accepted_names()
            )));
        }
        let kid = header.kid.as_deref();
        let mut snapshot = self.snapshot();
        let unknown = match snapshot.keys.as_deref().map(|k| k.lookup(kid, header.alg)) {
            None | Some(Lookup::Unknown) => true,
            Some(_) => false,
        };
        let mut refetch = Refetch {
            fresh: false,
            next_in: MIN_REFETCH_INTERVAL,
        };
        if unknown {
            refetch = self.refetch(snapshot.generation).await;
            snapshot = self.snapshot();
        }
        let Some(keys) = snapshot.keys.as_deref() else {
            return Err(unavailable(&snapshot, refetch.next_in));
        };
        let key = match keys.lookup(kid, header.alg) {
            Lookup::Found(key) => key,
            Lookup::Unknown if snapshot.last_error.is_some() => {
                return Err(unavailable(&snapshot, refetch.next_in));
            }
            // The key may have been rotated in since the last fetch: only a fetch can tell, so
            // the client is told when one is allowed rather than that its token is bad.
            Lookup::Unknown if !refetch.fresh => {
                return Err(not_fetched_yet(refetch.next_in));
            }
            Lookup::Unknown => {
                return Err(AuthFailure::Invalid(
                    "the token is signed with a key (kid) the issuer does not publish".to_owned(),
                ));
            }
            Lookup::Ambiguous => {
                return Err(AuthFailure::Invalid(
                    "the token names no key (kid) and the issuer publishes several".to_owned(),
                ));
            }
            Lookup::WrongAlgorithm => {
                return Err(AuthFailure::Invalid(
                    "the token's algorithm does not match the key it names".to_owned(),
                ));
            }
        };
        // jsonwebtoken wants every allowed algorithm in the key's family: allow just this one.
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| AuthFailure::Invalid(self.reason(e.kind())))?
            .claims;
        let sub = claims.sub.as_deref().unwrap_or_default();
        let principal = Principal::authenticated(sub)
            .map_err(|e| AuthFailure::Invalid(format!("the token's `sub` is not usable: {e}")))?;
        self.check_scope(&claims)?;
        Ok(principal)
    }

    /// Refuses a token without every configured scope.
    fn check_scope(&self, claims: &Claims) -> Result<(), AuthFailure> {
        let Some(required) = &self.settings.scope else {
            return Ok(());
        };
        let carried = |wanted: &str| {
            [&claims.scope, &claims.scp]
                .into_iter()
                .flatten()
                .any(|s| s.contains(wanted))
        };
        if required.split_whitespace().all(carried) {
            Ok(())
        } else {
            Err(AuthFailure::InsufficientScope {
                scope: required.clone(),
            })
        }
    }

    /// Why `jsonwebtoken` refused a token, in words that tell the client what to fix.
    fn reason(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "the token has expired; get a new one".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
            ErrorKind::InvalidIssuer => {
                format!("the token was not issued by `{}`", self.settings.issuer)
            }
            ErrorKind::InvalidAudience => format!(
                "the token is not for this server: its `aud` does not include `{}`",
                self.settings.audience
            ),
            ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the token has no `{claim}` claim")
            }
            ErrorKind::InvalidClaimFormat(claim) => {
                format!("the token's `{claim}` claim is malformed")
            }
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_) => {
                "the token's algorithm does not match the key it names".to_owned()
            }
            ErrorKind::Json(_) => {
                "the token's claims do not have the expected types (`sub` a string; `scope` and `scp` strings or lists)".to_owned()
            }
            _ => "the token is not a well-formed JWT".to_owned(),
        }
    }

    /// The keys as last fetched.
    fn snapshot(&self) -> KeysSnapshot {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Fetches the keys again, unless another request did since `seen_generation` or the
    /// last refetch was less than [`MIN_REFETCH_INTERVAL`] ago.
    async fn refetch(&self, seen_generation: u64) -> Refetch {
        let mut state = self.fetching.lock().await;
        let fetched_meanwhile = self.snapshot().generation != seen_generation;
        if !fetched_meanwhile {
            if let Err(next_in) = state.gate.try_begin(Instant::now()) {
                return Refetch {
                    fresh: false,
                    next_in,
                };
            }
            self.fetch_keys(&mut state).await;
        }
        Refetch {
            fresh: true,
            next_in: state.gate.wait(Instant::now()).unwrap_or(Duration::ZERO),
        }
    }

    /// Discovers the `jwks_uri` when not known yet, fetches the keys and publishes the result.
    async fn fetch_keys(&self, state: &mut FetchState) {
        let fetched = self.fetch_key_set(state).await;
        let mut snapshot = self.keys.write().unwrap_or_else(|p| p.into_inner());
        snapshot.generation += 1;
        match fetched {
            Ok(keys) => {
                tracing::debug!(issuer = %self.settings.issuer, keys = keys.len(), "fetched the OAuth issuer's keys");
                snapshot.keys = Some(Arc::new(keys));
                snapshot.last_error = None;
            }
            Err(problem) => {
                tracing::warn!(issuer = %self.settings.issuer, "OAuth keys unavailable: {problem}");
                // Discover again next time, in case the issuer moved its keys.
                state.jwks_uri = None;
                snapshot.last_error = Some(problem);
            }
        }
    }

    /// The issuer's current keys.
    async fn fetch_key_set(&self, state: &mut FetchState) -> Result<KeySet, String> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self
                    .client
                    .discover_jwks_uri(&self.issuer)
                    .await
                    .map_err(|e| e.to_string())?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = self
            .client
            .fetch_jwks(&jwks_uri)
            .await
            .map_err(|e| e.to_string())?;
        KeySet::from_json(&document)
    }
}

impl std::fmt::Debug for OAuthVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthVerifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The failure for a request that needs keys the issuer did not give us; they may be fetched
/// again in `next_in`.
fn unavailable(snapshot: &KeysSnapshot, next_in: Duration) -> AuthFailure {
    let why = snapshot
        .last_error
        .as_deref()
        .unwrap_or("its keys have not been fetched yet");
    let retry_after_secs = whole_secs(next_in);
    AuthFailure::Unavailable {
        reason: format!(
            "cannot check the token: the OAuth issuer's keys are unavailable ({why}); retry in {retry_after_secs} s"
        ),
        retry_after_secs,
    }
}

/// The failure for a token naming a key the last fetch did not find, while the keys may not be
/// fetched again for `next_in`.
fn not_fetched_yet(next_in: Duration) -> AuthFailure {
    let retry_after_secs = whole_secs(next_in);
    AuthFailure::Unavailable {
        reason: format!(
            "cannot check the token yet: it names a signing key (kid) the OAuth issuer did not \
             publish when its keys were last fetched, and they are fetched again at most every \
             {} s; retry in {retry_after_secs} s (a newly rotated key is picked up then)",
            MIN_REFETCH_INTERVAL.as_secs()
        ),
        retry_after_secs,
    }
}

/// `duration` in whole seconds, rounded up, at least 1 (a `Retry-After` value).
fn whole_secs(duration: Duration) -> u64 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    secs.max(1)
}

/// The accepted algorithms, for messages.
fn accepted_names() -> String {
    ACCEPTED_ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
