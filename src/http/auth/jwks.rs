//! An issuer's signing keys (its JWKS) and the rule for refetching them: at most once a
//! minute, so tokens naming unknown keys cannot make us hammer the issuer.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::time::Instant;

/// The algorithms a token may be signed with: RSA and ECDSA only (never `none`, never HMAC).
pub const ACCEPTED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The shortest time between two fetches of the key set made because of a token.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// One usable verification key.
struct SigningKey {
    kid: Option<String>,
    /// The algorithm the key is published for, when the JWKS says.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The verification keys an issuer publishes (encryption and HMAC keys left out).
pub struct KeySet {
    keys: Vec<SigningKey>,
}

/// What a token's header finds in a [`KeySet`].
pub enum Lookup<'a> {
    /// The key to verify the token with.
    Found(&'a DecodingKey),
    /// No key has the token's `kid` (or there is no key at all): a refetch may find it.
    Unknown,
    /// The token names no `kid` and there are several keys to choose from.
    Ambiguous,
    /// The key named cannot verify the token's algorithm.
    WrongAlgorithm,
}

impl KeySet {
    /// The usable keys of a JWKS document; keys that cannot verify an accepted algorithm are skipped.
    pub fn from_json(document: &serde_json::Value) -> Result<Self, String> {
        let entries = document
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or("the issuer's key set has no `keys` list")?;
        let keys = entries
            .iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
            .filter_map(|jwk| signing_key(&jwk))
            .collect();
        Ok(Self { keys })
    }

    /// How many usable keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token with this `kid` and algorithm.
    pub fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let key = match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() > 1 => return Lookup::Ambiguous,
            None => self.keys.first(),
        };
        let Some(key) = key else {
            return Lookup::Unknown;
        };
        let fits = key.key.family() == alg.family() && key.alg.is_none_or(|a| a == alg);
        if fits {
            Lookup::Found(&key.key)
        } else {
            Lookup::WrongAlgorithm
        }
    }
}

/// The verification key a JWK describes, if it is an RSA or EC signing key.
fn signing_key(jwk: &Jwk) -> Option<SigningKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match &jwk.common.key_algorithm {
        None => None,
        Some(published) => {
            let alg = published.to_string().parse::<Algorithm>().ok();
            Some(alg.filter(|a| ACCEPTED_ALGORITHMS.contains(a))?)
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let family = key.family();
    if !ACCEPTED_ALGORITHMS.iter().any(|a| a.family() == family) {
        return None;
    }
    Some(SigningKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// Allows one fetch per [`MIN_REFETCH_INTERVAL`].
#[derive(Debug, Default)]
pub struct RefetchGate {
    last: Option<Instant>,
}

impl RefetchGate {
    /// Whether a fetch may start at `now`; if so, it counts from `now`. If not, how long
    /// until the next one may.
    pub fn try_begin(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(wait) = self.wait(now) {
            return Err(wait);
        }
        self.last = Some(now);
        Ok(())
    }

    /// How long from `now` until a fetch may start; `None` when one may start now.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        let next = self.last? + MIN_REFETCH_INTERVAL;
        (now < next).then(|| next - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An RSA public key (the modulus of RFC 7517's example key).
    fn rsa_jwk(kid: &str) -> serde_json::Value {
        json!({
            "kty": "RSA", "kid": kid, "use": "sig",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB"
        })
    }

    #[test]
    fn a_key_is_found_by_kid_and_a_lone_key_serves_a_token_without_kid() {
        let one = KeySet::from_json(&json!({"keys": [rsa_jwk("a")]})).unwrap();
        assert!(matches!(
            one.lookup(Some("a"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            one.lookup(None, Algorithm::PS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            one.lookup(Some("b"), Algorithm::RS256),
            Lookup::Unknown
        ));
        assert!(matches!(
            one.lookup(Some("a"), Algorithm::ES256),
            Lookup::WrongAlgorithm
        ));

        let two = KeySet::from_json(&json!({"keys": [rsa_jwk("a"), rsa_jwk("b")]})).unwrap();
        assert!(matches!(
            two.lookup(None, Algorithm::RS256),
            Lookup::Ambiguous
        ));
        assert!(matches!(
            two.lookup(Some("b"), Algorithm::RS256),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn a_key_published_for_one_algorithm_serves_only_that_one() {
        let mut jwk = rsa_jwk("a");
        jwk["alg"] = json!("RS384");
        let set = KeySet::from_json(&json!({"keys": [jwk]})).unwrap();
        assert!(matches!(
            set.lookup(Some("a"), Algorithm::RS384),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.lookup(Some("a"), Algorithm::RS256),
            Lookup::WrongAlgorithm
        ));
    }

    #[test]
    fn hmac_encryption_and_unreadable_keys_are_left_out() {
        let mut encryption = rsa_jwk("enc");
        encryption["use"] = json!("enc");
        let mut hmac_alg = rsa_jwk("hs");
        hmac_alg["alg"] = json!("HS256");
        let set = KeySet::from_json(&json!({"keys": [
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            encryption,
            hmac_alg,
            {"kty": "RSA", "kid": "broken"},
            {"kty": "weird", "kid": "x"},
        ]}))
        .unwrap();
        for kid in ["secret", "enc", "hs", "broken", "x"] {
            assert!(
                matches!(set.lookup(Some(kid), Algorithm::RS256), Lookup::Unknown),
                "{kid}"
            );
        }
        assert!(KeySet::from_json(&json!({"nokeys": []})).is_err());
    }

    #[test]
    fn refetches_happen_at_most_once_a_minute() {
        let start = Instant::now();
        let mut gate = RefetchGate::default();
        assert_eq!(gate.wait(start), None);
        assert_eq!(gate.try_begin(start), Ok(()));
        assert_eq!(gate.try_begin(start), Err(Duration::from_secs(60)));
        assert_eq!(
            gate.try_begin(start + Duration::from_secs(59)),
            Err(Duration::from_secs(1))
        );
        assert_eq!(gate.try_begin(start + Duration::from_secs(60)), Ok(()));
        assert_eq!(
            gate.wait(start + Duration::from_secs(100)),
            Some(Duration::from_secs(20))
        );
        assert!(gate.try_begin(start + Duration::from_secs(100)).is_err());
        assert_eq!(gate.try_begin(start + Duration::from_secs(121)), Ok(()));
    }
}
