//! A real OAuth issuer for tests, on 127.0.0.1: it serves its metadata document (at the
//! well-known path chosen at start) and its JWKS, and signs access tokens with keys made at
//! start (RSA 2048 for RS256, EC P-256 for ES256). It also makes the bad tokens the server must
//! refuse, can rotate its RSA key, can be made unavailable, and counts what it was asked for.

use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Which metadata document the issuer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// RFC 8414: `/.well-known/oauth-authorization-server` inserted before the issuer's path.
    OAuthAuthorizationServer,
    /// OpenID Connect: `/.well-known/openid-configuration` appended to the issuer.
    OpenIdConfiguration,
}

/// The issuer's JWKS path.
const JWKS_PATH: &str = "/keys/jwks.json";

/// A running test issuer; stops when dropped.
pub struct OAuthIssuer {
    issuer: String,
    state: Arc<Mutex<IssuerState>>,
    server: tokio::task::JoinHandle<()>,
}

/// A signing key and the JWK that publishes its public half.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    private: EncodingKey,
    jwk: Value,
}

struct IssuerState {
    issuer: String,
    metadata_path: String,
    /// The RSA keys published, the current one last.
    rsa: Vec<SigningKey>,
    ec: SigningKey,
    available: bool,
    metadata_fetches: usize,
    jwks_fetches: usize,
}

impl OAuthIssuer {
    /// An issuer at `http://127.0.0.1:PORT` serving the `discovery` document.
    pub async fn start(discovery: Discovery) -> Self {
        Self::start_at(discovery, "").await
    }

    /// An issuer at `http://127.0.0.1:PORT{path}` (`path` empty or starting with `/`).
    pub async fn start_at(discovery: Discovery, path: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}{path}", listener.local_addr().unwrap());
        let metadata_path = match discovery {
            Discovery::OAuthAuthorizationServer => {
                format!("/.well-known/oauth-authorization-server{path}")
            }
            Discovery::OpenIdConfiguration => format!("{path}/.well-known/openid-configuration"),
        };
        let state = Arc::new(Mutex::new(IssuerState {
            issuer: issuer.clone(),
            metadata_path,
            rsa: vec![rsa_key("rsa-1", 0)],
            ec: ec_key("ec-1"),
            available: true,
            metadata_fetches: 0,
            jwks_fetches: 0,
        }));
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            issuer,
            state,
            server,
        }
    }

    /// The issuer identifier, as tokens' `iss` and the metadata's `issuer` give it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Claims of a valid token for `sub` and `audience`: `iss`, `iat` now, `exp` in 5 minutes.
    pub fn claims(&self, sub: &str, audience: &str) -> Value {
        let now = unix_now();
        json!({"iss": self.issuer, "sub": sub, "aud": audience, "iat": now, "exp": now + 300})
    }

    /// `claims` signed with RS256 by the current RSA key (its `kid` in the header).
    pub fn token(&self, claims: &Value) -> String {
        let state = self.state();
        sign(state.rsa.last().unwrap(), claims)
    }

    /// `claims` signed with ES256 by the EC key.
    pub fn token_es256(&self, claims: &Value) -> String {
        sign(&self.state().ec, claims)
    }

    /// `claims` with `alg: none` and no signature.
    pub fn token_alg_none(&self, claims: &Value) -> String {
        let kid = self.current_kid();
        let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
        format!("{}.{}.", segment(&header), segment(claims))
    }

    /// `claims` signed with HS256, the current RSA key's `kid` in the header (the classic
    /// confusion: an HMAC keyed with something public).
    pub fn token_hs256(&self, claims: &Value, secret: &[u8]) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current_kid());
        let key = EncodingKey::from_secret(secret).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    /// A token for `claims` from the current RSA key with one bit of its signature flipped.
    pub fn token_bad_signature(&self, claims: &Value) -> String {
        let token = self.token(claims);
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[0] ^= 1;
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// `claims` signed by the current RSA key but naming a `kid` the issuer never published.
    pub fn token_unknown_kid(&self, claims: &Value) -> String {
        let state = self.state();
        let current = state.rsa.last().unwrap();
        let mut header = Header::new(current.alg);
        header.kid = Some("never-published".to_owned());
        jsonwebtoken::encode(&header, claims, &current.private).unwrap()
    }

    /// Makes a new RSA key the current one (published from now on beside the old ones) and
    /// returns its `kid`.
    pub fn rotate(&self) -> String {
        let mut state = self.state();
        let index = state.rsa.len();
        let kid = format!("rsa-{}", index + 1);
        state.rsa.push(rsa_key(&kid, index));
        kid
    }

    /// The current RSA key's `kid`.
    pub fn current_kid(&self) -> String {
        self.state().rsa.last().unwrap().kid.clone()
    }

    /// Makes the metadata and JWKS answer 503 (`false`) or be served again (`true`).
    pub fn set_available(&self, available: bool) {
        self.state().available = available;
    }

    /// How many times the metadata document was asked for.
    pub fn metadata_fetches(&self) -> usize {
        self.state().metadata_fetches
    }

    /// How many times the JWKS was asked for.
    pub fn jwks_fetches(&self) -> usize {
        self.state().jwks_fetches
    }

    fn state(&self) -> MutexGuard<'_, IssuerState> {
        self.state.lock().unwrap()
    }
}

impl Drop for OAuthIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Seconds since the Unix epoch, as JWT times are written.
pub fn unix_now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Answers the metadata path and the JWKS path; anything else is 404.
async fn serve(State(state): State<Arc<Mutex<IssuerState>>>, uri: Uri) -> Response {
    let mut state = state.lock().unwrap();
    let path = uri.path();
    if path == state.metadata_path {
        state.metadata_fetches += 1;
        if !state.available {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let issuer = state.issuer.clone();
        let origin = issuer_origin(&issuer);
        return Json(json!({
            "issuer": issuer,
            "jwks_uri": format!("{origin}{JWKS_PATH}"),
            "authorization_endpoint": format!("{origin}/authorize"),
            "token_endpoint": format!("{origin}/token"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }))
        .into_response();
    }
    if path == JWKS_PATH {
        state.jwks_fetches += 1;
        if !state.available {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let keys: Vec<&Value> = state
            .rsa
            .iter()
            .chain([&state.ec])
            .map(|k| &k.jwk)
            .collect();
        return Json(json!({ "keys": keys })).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// `http://host:port` of an issuer URL.
fn issuer_origin(issuer: &str) -> String {
    let after_scheme = issuer.len() - issuer.trim_start_matches("http://").len();
    match issuer[after_scheme..].find('/') {
        Some(slash) => issuer[..after_scheme + slash].to_owned(),
        None => issuer.to_owned(),
    }
}

/// The `index`-th RSA 2048 key of this test process, for RS256. Generating one takes a
/// noticeable part of a second, so issuers share them: each issuer's first key is key 0, its
/// first rotation key 1, and so on.
fn rsa_key(kid: &str, index: usize) -> SigningKey {
    static KEYS: Mutex<Vec<(EncodingKey, String, String)>> = Mutex::new(Vec::new());
    let mut keys = KEYS.lock().unwrap();
    while keys.len() <= index {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pem = pem("PRIVATE KEY", pair.as_der().unwrap().as_ref());
        let public = pair.public_key();
        keys.push((
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        ));
    }
    let (private, n, e) = keys[index].clone();
    SigningKey {
        kid: kid.to_owned(),
        alg: Algorithm::RS256,
        private,
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
    }
}

/// A new EC P-256 key for ES256.
fn ec_key(kid: &str) -> SigningKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    // The public key is the uncompressed point: 0x04, then x and y, 32 bytes each.
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    SigningKey {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        private: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk,
    }
}

/// `claims` signed by `key`, its `kid` in the header.
fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.private).unwrap()
}

/// One base64url segment of a JWT.
fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// DER in PEM armour (what `jsonwebtoken` reads RSA private keys from).
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
