//! Verification keys, from configuration only: `USERSVC_JWT_SECRET` (HS256, for tokens without
//! `kid`), a JWK Set file (RFC 7517) or an identity provider's JWKS (`jwks`). Each key allows one
//! algorithm, fixed when it is loaded; one whose `alg` does not fit its `kty` or curve is refused.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve, Jwk, JwkSet, KeyAlgorithm as A};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::PublicKeyUse};

use super::JwtSettings;

/// Largest JWK Set read, from a file or a URL.
pub(super) const MAX_SET_BYTES: usize = 1024 * 1024;

/// A key, and the jsonwebtoken validation made for it: its one algorithm; `exp`, `iss` and
/// `aud` required; the configured issuer and audience (`exp` and `nbf` are compared in `jwt`).
pub(super) struct Key {
    pub(super) decoding: DecodingKey,
    pub(super) validation: Validation,
}

/// Keys by `kid`.
pub(super) type KeySet = HashMap<String, Arc<Key>>;

fn key(alg: Algorithm, decoding: DecodingKey, s: &JwtSettings) -> Arc<Key> {
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[&s.issuer]);
    validation.set_audience(&[&s.audience]);
    validation.validate_exp = false;
    Arc::new(Key {
        decoding,
        validation,
    })
}

/// A `kid` is only a lookup key: 1 to 128 characters of `[A-Za-z0-9._:-]`.
pub(super) fn valid_kid(kid: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    (1..=128).contains(&kid.len()) && kid.bytes().all(ok)
}

/// The kid-less HS256 key of `USERSVC_JWT_SECRET`.
pub(super) fn from_secret(secret: &str, s: &JwtSettings) -> Result<Arc<Key>, String> {
    if secret.len() < 32 {
        return Err(format!(
            "USERSVC_JWT_SECRET has {} bytes; HS256 needs 32",
            secret.len()
        ));
    }
    let decoding = DecodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?;
    Ok(key(Algorithm::HS256, decoding, s))
}

/// Reads a JWK Set file; a key it cannot use is an error.
pub(super) fn load_file(path: &Path, s: &JwtSettings) -> Result<KeySet, String> {
    let at = |why: String| format!("JWT keys file {}: {why}", path.display());
    let len = std::fs::metadata(path)
        .map_err(|e| at(e.to_string()))?
        .len();
    if len > MAX_SET_BYTES as u64 {
        return Err(at(format!("larger than {MAX_SET_BYTES} bytes")));
    }
    let text = std::fs::read(path).map_err(|e| at(e.to_string()))?;
    let set: JwkSet =
        serde_json::from_slice(&text).map_err(|e| at(format!("not a JWK Set: {e}")))?;
    let mut keys = KeySet::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let (kid, key) = from_jwk(jwk, false, s).map_err(|e| at(format!("keys[{i}]: {e}")))?;
        if keys.insert(kid.clone(), key).is_some() {
            return Err(at(format!("keys[{i}]: kid {kid:?} is used twice")));
        }
    }
    if keys.is_empty() {
        return Err(at("it lists no keys".into()));
    }
    Ok(keys)
}

/// The key a JWK describes, with its `kid`. From a file `alg` is required. From an identity
/// provider (`remote`), a key without `alg` gets the one algorithm its type allows here (RSA:
/// RS256, EC P-256: ES256, OKP Ed25519: EdDSA), and shared secrets (`oct`) are refused.
pub(super) fn from_jwk(
    jwk: &Jwk,
    remote: bool,
    s: &JwtSettings,
) -> Result<(String, Arc<Key>), String> {
    let kid = jwk.common.key_id.as_deref().filter(|kid| valid_kid(kid));
    let kid = kid.ok_or("kid missing or not 1 to 128 characters of [A-Za-z0-9._:-]")?;
    let fail = |why: &str| format!("kid {kid:?}: {why}");
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err(fail("an encryption key (use: enc)"));
    }
    let alg = match (jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(alg), _) => alg,
        (None, P::RSA(_)) if remote => A::RS256,
        (None, P::EllipticCurve(p)) if remote && p.curve == EllipticCurve::P256 => A::ES256,
        (None, P::OctetKeyPair(p)) if remote && p.curve == EllipticCurve::Ed25519 => A::EdDSA,
        (None, _) => return Err(fail("no alg")),
    };
    let bytes = |b64: &str| URL_SAFE_NO_PAD.decode(b64).unwrap_or_default();
    let fits = match (&jwk.algorithm, alg) {
        (P::OctetKey(k), A::HS256) => !remote && bytes(&k.value).len() >= 32,
        (P::OctetKey(k), A::HS384) => !remote && bytes(&k.value).len() >= 48,
        (P::OctetKey(k), A::HS512) => !remote && bytes(&k.value).len() >= 64,
        (P::RSA(p), A::RS256) => bytes(&p.n).into_iter().skip_while(|&b| b == 0).count() >= 256,
        (P::EllipticCurve(p), A::ES256) => p.curve == EllipticCurve::P256,
        (P::OctetKeyPair(p), A::EdDSA) => {
            p.curve == EllipticCurve::Ed25519 && bytes(&p.x).len() == 32
        }
        _ => false,
    };
    if !fits {
        return Err(fail(&format!(
            "alg {alg} does not fit this key; allowed: oct (in a file, k base64url, at least as \
             long as the hash) with HS256/HS384/HS512, RSA (2048 bits or more) with RS256, \
             EC P-256 with ES256, OKP Ed25519 (32-byte x) with EdDSA"
        )));
    }
    let alg = Algorithm::try_from(alg).map_err(|e| fail(&e.to_string()))?;
    let decoding = DecodingKey::from_jwk(jwk).map_err(|e| fail(&e.to_string()))?;
    // The backend parses the key (modulus, point on the curve, length) before it looks at the
    // signature: a bogus one finds a broken key now rather than at the first request.
    jsonwebtoken::crypto::verify("AAAA", b"key probe", &decoding, alg)
        .map_err(|e| fail(&format!("not a usable {alg:?} key: {e}")))?;
    Ok((kid.to_owned(), key(alg, decoding, s)))
}

#[cfg(test)]
mod tests {
    //! JWK Set files with every key type, and the keys that must be refused at start.

    use jsonwebtoken::EncodingKey;
    use p256::pkcs8::EncodePrivateKey as _;
    use serde_json::{Value, json};

    use super::*;
    use crate::auth::jwt::tests::{good, settings, sign};
    use crate::auth::jwt::{AuthError, Verifier};

    const RSA_PEM: &str = include_str!("../../tests/it/rsa-test-key.pem");
    const HS_K: [u8; 64] = [0x42; 64];

    /// PKCS#8 of an Ed25519 seed: the fixed 16-byte prefix, then the seed.
    fn ed25519_der(seed: [u8; 32]) -> Vec<u8> {
        let prefix = [
            0x30, 0x2e, 2, 1, 0, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70, 4, 0x22, 4, 0x20,
        ];
        [&prefix[..], &seed].concat()
    }

    /// One signing key of each type: (kid, alg, private key).
    fn signers() -> [(&'static str, Algorithm, EncodingKey); 4] {
        let ec = p256::SecretKey::from_slice(&[0x11; 32]).unwrap();
        [
            (
                "hs-1",
                Algorithm::HS512,
                EncodingKey::from_secret(&HS_K).unwrap(),
            ),
            (
                "rsa-1",
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
            ),
            (
                "ec-1",
                Algorithm::ES256,
                EncodingKey::from_ec_der(ec.to_pkcs8_der().unwrap().as_bytes()),
            ),
            (
                "ed-1",
                Algorithm::EdDSA,
                EncodingKey::from_ed_der(&ed25519_der([7; 32])),
            ),
        ]
    }

    /// The public JWK of a signing key (the secret itself for HS), with its kid.
    fn jwk(kid: &str, alg: Algorithm, key: &EncodingKey) -> Value {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk
    }

    fn write(set: &Value) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), set.to_string()).unwrap();
        file
    }

    async fn verifier(set: &Value) -> Result<Verifier, String> {
        let file = write(set);
        let (s, _) = settings();
        let s = JwtSettings {
            keys_file: Some(file.path().into()),
            ..s
        };
        Verifier::new(s).await.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn every_key_type_verifies_its_own_tokens_only() {
        let signers = signers();
        let keys: Vec<Value> = signers
            .iter()
            .map(|(kid, alg, key)| jwk(kid, *alg, key))
            .collect();
        let v = verifier(&json!({ "keys": keys })).await.unwrap();
        for (kid, alg, key) in &signers {
            let token = sign(json!({"alg": alg, "kid": kid, "typ": "JWT"}), &good(), key);
            assert!(v.verify(&token).await.is_ok(), "{kid}");
            // The same token under another key's kid: that key's one algorithm differs.
            for (other, _, _) in signers.iter().filter(|(other, _, _)| other != kid) {
                let moved = sign(json!({"alg": alg, "kid": other}), &good(), key);
                let err = v.verify(&moved).await.err().unwrap();
                assert_eq!(
                    err,
                    AuthError::Rejected("InvalidAlgorithm".into()),
                    "{kid} as {other}"
                );
            }
        }
        // Algorithm confusion: HMAC keyed with the RSA key's public parts, under the RSA kid.
        for public in [
            keys[1]["n"].as_str().unwrap().to_owned(),
            RSA_PEM.to_owned(),
        ] {
            let hmac = EncodingKey::from_secret(public.as_bytes()).unwrap();
            let confused = sign(json!({"alg": "HS256", "kid": "rsa-1"}), &good(), &hmac);
            assert!(v.verify(&confused).await.is_err());
        }
        // A kid-less token only meets the kid-less secret.
        let hs = sign(json!({"alg": "HS512"}), &good(), &signers[0].2);
        assert!(v.verify(&hs).await.is_err());
    }

    #[tokio::test]
    async fn keys_that_cannot_be_used_are_refused_with_a_clear_message() {
        let [hs, rsa, ec, ed] = signers().map(|(kid, alg, key)| jwk(kid, alg, &key));
        let edit = |mut jwk: Value, change: Value| {
            for (name, value) in change.as_object().unwrap() {
                match value {
                    Value::Null => _ = jwk.as_object_mut().unwrap().remove(name),
                    value => jwk[name] = value.clone(),
                }
            }
            jwk
        };
        let b64 = |n: usize| URL_SAFE_NO_PAD.encode(vec![0xA5u8; n]);
        let cases = [
            (edit(hs.clone(), json!({"alg": "RS256"})), "does not fit"),
            (
                edit(hs.clone(), json!({"alg": "HS256", "k": b64(31)})),
                "does not fit",
            ),
            (
                edit(hs.clone(), json!({"alg": "HS512", "k": b64(63)})),
                "does not fit",
            ),
            (edit(hs.clone(), json!({"alg": "none"})), "does not fit"),
            (edit(hs.clone(), json!({"alg": null})), "no alg"),
            (edit(hs.clone(), json!({"kid": null})), "kid missing"),
            (edit(hs.clone(), json!({"kid": "../k"})), "kid missing"),
            (edit(rsa.clone(), json!({"alg": "PS256"})), "does not fit"),
            (edit(rsa.clone(), json!({"n": b64(128)})), "does not fit"),
            (edit(rsa.clone(), json!({"use": "enc"})), "encryption key"),
            (edit(ec.clone(), json!({"alg": "EdDSA"})), "does not fit"),
            (edit(ec.clone(), json!({"crv": "P-384"})), "does not fit"),
            (
                edit(ec.clone(), json!({"x": b64(32), "y": b64(32)})),
                "not a usable ES256 key",
            ),
            (edit(ed.clone(), json!({"alg": "ES256"})), "does not fit"),
            (edit(ed.clone(), json!({"x": b64(31)})), "does not fit"),
            (edit(ed.clone(), json!({"x": b64(33)})), "does not fit"),
            (edit(ed.clone(), json!({"kid": "hs-1"})), "used twice"),
        ];
        for (key, needle) in cases {
            let message = verifier(&json!({"keys": [hs, key]})).await.err().unwrap();
            assert!(message.contains(needle), "{key}: {message}");
            assert!(message.contains("keys[1]"), "{message}");
            assert!(
                !message.contains(hs["k"].as_str().unwrap()),
                "the secret leaked: {message}"
            );
        }
        let empty = verifier(&json!({"keys": []})).await.err().unwrap();
        assert!(empty.contains("lists no keys"), "{empty}");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "{not json").unwrap();
        let (s, _) = settings();
        let s = JwtSettings {
            keys_file: Some(file.path().into()),
            ..s
        };
        let message = Verifier::new(s).await.err().unwrap().to_string();
        assert!(message.contains("not a JWK Set"), "{message}");
    }

    #[test]
    fn keys_from_an_identity_provider_may_omit_alg_but_never_share_a_secret() {
        let (s, _) = settings();
        let [hs, rsa, ec, ed] = signers().map(|(kid, alg, key)| jwk(kid, alg, &key));
        let no_alg = |mut jwk: Value| {
            jwk.as_object_mut().unwrap().remove("alg");
            serde_json::from_value::<Jwk>(jwk).unwrap()
        };
        for (jwk, alg) in [
            (rsa, Algorithm::RS256),
            (ec, Algorithm::ES256),
            (ed, Algorithm::EdDSA),
        ] {
            let (_, key) = from_jwk(&no_alg(jwk.clone()), true, &s).unwrap();
            assert_eq!(key.validation.algorithms, [alg]);
            assert!(
                from_jwk(&no_alg(jwk), false, &s).is_err(),
                "a file must name alg"
            );
        }
        let oct: Jwk = serde_json::from_value(hs).unwrap();
        assert!(from_jwk(&oct, false, &s).is_ok());
        assert!(from_jwk(&oct, true, &s).is_err());
    }
}
