//! Signing keys of every type the server accepts, their public JWKs, and tokens signed with
//! them (through jsonwebtoken; `harness::sign_hs256` signs HS256 by hand).

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

/// An RSA-2048 private key (PKCS#8), for tests only.
pub const RSA_PEM: &str = include_str!("rsa-test-key.pem");

/// A private key with its kid and its one algorithm.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
}

impl TestKey {
    /// An Ed25519 key from a one-byte seed (EdDSA).
    pub fn ed(kid: &str, seed: u8) -> Self {
        // PKCS#8 of an Ed25519 key: a fixed 16-byte prefix, then the 32-byte seed.
        let prefix = [
            0x30, 0x2e, 2, 1, 0, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70, 4, 0x22, 4, 0x20,
        ];
        let der = [&prefix[..], &[seed; 32]].concat();
        Self::new(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
    }

    /// A P-256 key (ES256).
    pub fn ec(kid: &str, seed: u8) -> Self {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    /// The test RSA key (RS256).
    pub fn rsa(kid: &str) -> Self {
        let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
        Self::new(kid, Algorithm::RS256, key)
    }

    /// A shared secret (HS256).
    pub fn hs(kid: &str, secret: &[u8]) -> Self {
        Self::new(
            kid,
            Algorithm::HS256,
            EncodingKey::from_secret(secret).unwrap(),
        )
    }

    fn new(kid: &str, alg: Algorithm, key: EncodingKey) -> Self {
        TestKey {
            kid: kid.to_owned(),
            alg,
            key,
        }
    }

    /// The key as a JWK with `kid` and `alg`: the public part (for HS, the secret).
    pub fn jwk(&self) -> Value {
        let jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["kid"] = json!(self.kid);
        jwk
    }

    /// A token with this key's `kid` and `alg`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with(json!({}), claims)
    }

    /// A token with this key's `kid` and `alg` and more header parameters.
    pub fn token_with(&self, extra_header: Value, claims: &Value) -> String {
        let mut header = json!({ "alg": self.alg, "kid": self.kid, "typ": "JWT" });
        for (name, value) in extra_header.as_object().unwrap() {
            header[name] = value.clone();
        }
        let header: Header = serde_json::from_value(header).unwrap();
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}
