//! OAuth 2.1 access tokens (JWT): signature by a key from the issuer's JWKS, `exp`/`nbf` with
//! 60 s leeway, `iss`, `aud`, `sub` (the principal) and, when configured, a required scope.

use std::sync::{Arc, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

use super::AuthFailure;
use super::discovery::{DiscoveryError, Issuer, IssuerClient};
use super::jwks::{ACCEPTED_ALGORITHMS, KeySet, Lookup, RefetchGate};
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
        if unknown {
            self.refetch(snapshot.generation).await;
            snapshot = self.snapshot();
        }
        let Some(keys) = snapshot.keys.as_deref() else {
            return Err(unavailable(&snapshot));
        };
        let key = match keys.lookup(kid, header.alg) {
            Lookup::Found(key) => key,
            Lookup::Unknown if snapshot.last_error.is_some() => {
                return Err(unavailable(&snapshot));
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
    /// last refetch was less than a minute ago.
    async fn refetch(&self, seen_generation: u64) {
        let mut state = self.fetching.lock().await;
        if self.snapshot().generation != seen_generation {
            return;
        }
        if !state.gate.try_begin(Instant::now()) {
            return;
        }
        self.fetch_keys(&mut state).await;
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

/// The failure for a request that needs keys the issuer did not give us.
fn unavailable(snapshot: &KeysSnapshot) -> AuthFailure {
    let why = snapshot
        .last_error
        .as_deref()
        .unwrap_or("its keys have not been fetched yet");
    AuthFailure::Unavailable(format!(
        "cannot check the token: the OAuth issuer's keys are unavailable ({why}); retry in a minute"
    ))
}

/// The accepted algorithms, for messages.
fn accepted_names() -> String {
    ACCEPTED_ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
