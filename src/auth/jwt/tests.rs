//! The claim, header and lifetime rules, on HS256 tokens, with a clock the tests move.

use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use super::*;

pub(in crate::auth) const SECRET: &str = "kid-less-secret-for-the-unit-tests-0123456789";
pub(in crate::auth) const T0: u64 = 1_800_000_000;

/// Settings with the kid-less secret and a clock at `T0` that the test moves.
pub(in crate::auth) fn settings() -> (JwtSettings, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(T0));
    let read = now.clone();
    let s = JwtSettings {
        secret: Some(SECRET.into()),
        keys_file: None,
        jwks_url: None,
        issuer: "https://issuer.test".into(),
        audience: "usersvc".into(),
        leeway_secs: 30,
        max_ttl_secs: 3600,
        clock: Arc::new(move || read.load(Ordering::SeqCst)),
    };
    (s, now)
}

pub(in crate::auth) fn good() -> Value {
    json!({ "iss": "https://issuer.test", "aud": ["other", "usersvc"], "sub": "alice",
        "app_id": "app-1", "scope": "openid cloudcode:users:read", "iat": T0, "exp": T0 + 600 })
}

fn with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut claims = good();
    edit(claims.as_object_mut().unwrap());
    claims
}

pub(in crate::auth) fn sign(header: Value, claims: &Value, key: &EncodingKey) -> String {
    let header: Header = serde_json::from_value(header).unwrap();
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    sign(json!({"alg": "HS256", "typ": "JWT"}), claims, &key)
}

async fn verifier() -> (Verifier, Arc<AtomicU64>) {
    let (s, now) = settings();
    (Verifier::new(s).await.unwrap(), now)
}

#[tokio::test]
async fn a_good_token_gives_its_claims() {
    let (v, _) = verifier().await;
    let claims = v.verify(&hs(&good())).await.unwrap();
    assert_eq!(claims.app_id, "app-1");
    assert_eq!(claims.sub.as_deref(), Some("alice"));
    assert_eq!(claims.scopes, ["openid", "cloudcode:users:read"]);
    let typ = json!({"alg": "HS256", "typ": "AT+JWT"});
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    assert!(v.verify(&sign(typ, &good(), &key)).await.is_ok());
}

#[tokio::test]
async fn lifetime_rules_follow_the_clock() {
    use AuthError::Lifetime;
    let (v, now) = verifier().await;
    let expired = hs(&with(|c| _ = c.insert("exp".into(), json!(T0 - 31))));
    let in_leeway = hs(&with(|c| _ = c.insert("exp".into(), json!(T0 - 30))));
    let nbf = hs(&with(|c| _ = c.insert("nbf".into(), json!(T0 + 31))));
    let iat_soon = hs(&with(|c| _ = c.insert("iat".into(), json!(T0 + 30))));
    let iat_ahead = with(|c| {
        c.insert("iat".into(), json!(T0 + 365 * 86_400));
        c.insert("exp".into(), json!(T0 + 365 * 86_400 + 600));
    });
    let forever = hs(&with(|c| {
        _ = c.insert("exp".into(), json!(T0 + 1000 * 365 * 86_400))
    }));
    let iat_old = hs(&with(|c| _ = c.insert("iat".into(), json!(T0 - 3001))));
    let no_iat_long = with(|c| {
        c.remove("iat");
        c.insert("exp".into(), json!(T0 + 3601));
    });
    let cases = [
        (expired.clone(), Lifetime("expired")),
        (nbf.clone(), Lifetime("nbf in the future")),
        (hs(&iat_ahead), Lifetime("iat in the future")),
        (forever, Lifetime("longer than USERSVC_JWT_MAX_TTL")),
        (iat_old, Lifetime("longer than USERSVC_JWT_MAX_TTL")),
        (
            hs(&no_iat_long),
            Lifetime("longer than USERSVC_JWT_MAX_TTL"),
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(v.verify(&token).await, Err(expected));
    }
    assert!(v.verify(&in_leeway).await.is_ok());
    assert!(v.verify(&iat_soon).await.is_ok());
    // The clock moves: nbf comes, and without iat the lifetime counts from now.
    now.store(T0 + 1, Ordering::SeqCst);
    assert!(v.verify(&nbf).await.is_ok());
    assert!(v.verify(&hs(&no_iat_long)).await.is_ok());
    now.store(T0 - 1000, Ordering::SeqCst);
    let iat_now = hs(&good());
    assert_eq!(v.verify(&iat_now).await, Err(Lifetime("iat in the future")));
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let (v, now) = verifier().await;
    let token = hs(&good());
    assert!(v.verify(&token).await.is_ok());
    now.store(T0 + 630, Ordering::SeqCst);
    assert!(v.verify(&token).await.is_ok(), "within the leeway");
    now.store(T0 + 631, Ordering::SeqCst);
    assert_eq!(v.verify(&token).await, Err(AuthError::Lifetime("expired")));
}

#[tokio::test]
async fn header_and_claim_rules() {
    use AuthError::{Claim, Malformed, UnknownKey};
    let (v, _) = verifier().await;
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let header = |h: Value| sign(h, &good(), &key);
    let claim = |edit: fn(&mut serde_json::Map<String, Value>)| hs(&with(edit));
    let cases = [
        (
            header(json!({"alg": "HS256", "typ": "id+jwt"})),
            Malformed("typ is not JWT or at+jwt"),
        ),
        (
            header(json!({"alg": "HS256", "crit": ["exp"]})),
            Malformed("crit header"),
        ),
        (
            header(json!({"alg": "HS256", "kid": "../../k"})),
            Malformed("kid"),
        ),
        (
            header(json!({"alg": "HS256", "kid": "' OR 1=1--"})),
            Malformed("kid"),
        ),
        (
            header(json!({"alg": "HS256", "kid": "k".repeat(129)})),
            Malformed("kid"),
        ),
        (
            header(json!({"alg": "HS256", "kid": "nope"})),
            UnknownKey("nope".into()),
        ),
        (
            claim(|c| _ = c.insert("app_id".into(), json!(""))),
            Claim("app_id"),
        ),
        (
            claim(|c| _ = c.insert("app_id".into(), json!("a".repeat(65)))),
            Claim("app_id"),
        ),
        (
            claim(|c| _ = c.insert("app_id".into(), json!("a\nb"))),
            Claim("app_id"),
        ),
        (
            claim(|c| _ = c.insert("scope".into(), json!("openid profile"))),
            Claim("no cloudcode: scope"),
        ),
        (
            claim(|c| _ = c.insert("scope".into(), json!(""))),
            Claim("no cloudcode: scope"),
        ),
        (
            claim(|c| _ = c.insert("sub".into(), json!("a\u{7}"))),
            Claim("sub"),
        ),
        ("a".repeat(8 * 1024 + 1), Malformed("longer than 8 KiB")),
    ];
    for (token, expected) in cases {
        assert_eq!(v.verify(&token).await, Err(expected));
    }
    // Shapes jsonwebtoken refuses: missing or mistyped claims, wrong issuer or audience.
    let refused = [
        claim(|c| _ = c.remove("exp")),
        claim(|c| _ = c.remove("iss")),
        claim(|c| _ = c.remove("aud")),
        claim(|c| _ = c.insert("iss".into(), json!("https://evil.test"))),
        claim(|c| _ = c.insert("aud".into(), json!("billing"))),
        claim(|c| _ = c.insert("exp".into(), json!("soon"))),
        claim(|c| _ = c.remove("app_id")),
        claim(|c| _ = c.insert("scope".into(), json!(["cloudcode:users:read"]))),
        header(json!({"alg": "HS384"})),
        "not.a.jwt".into(),
        "a.b.c.d.e".into(),
    ];
    for token in refused {
        let err = v.verify(&token).await.unwrap_err();
        assert!(
            matches!(err, Malformed(_) | AuthError::Rejected(_)),
            "{token}: {err}"
        );
    }
}

#[tokio::test]
async fn unsigned_and_wrongly_signed_tokens_are_refused() {
    let (v, _) = verifier().await;
    let token = hs(&good());
    let (head, rest) = token.split_once('.').unwrap();
    let body = rest.split_once('.').unwrap().0;
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    for alg in ["none", "noNE", "None"] {
        let unsigned = format!("{}.{body}.", b64(json!({"alg": alg})));
        assert!(v.verify(&unsigned).await.is_err(), "{alg}");
    }
    assert!(v.verify(&format!("{head}.{body}.")).await.is_err());
    let other = EncodingKey::from_secret(b"another-secret-of-enough-length-000000").unwrap();
    let forged = sign(json!({"alg": "HS256"}), &good(), &other);
    assert_eq!(
        v.verify(&forged).await,
        Err(AuthError::Rejected("InvalidSignature".into()))
    );
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[tokio::test]
async fn mangled_tokens_are_refused_without_panicking() {
    let (v, _) = verifier().await;
    let good = hs(&good());
    let alphabet = b"ABCxyz019-_.=+/ {}\"\x00\xff";
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |below: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % below as u64) as usize
    };
    for round in 0..3000 {
        let mut bytes = good.clone().into_bytes();
        match round % 3 {
            0 => {
                let at = next(bytes.len());
                let new = alphabet[next(alphabet.len())];
                if bytes[at] == new {
                    continue;
                }
                bytes[at] = new;
            }
            1 => bytes.truncate(next(bytes.len())),
            _ => {
                bytes = (0..next(600))
                    .map(|_| alphabet[next(alphabet.len())])
                    .collect()
            }
        }
        let token = String::from_utf8_lossy(&bytes);
        assert!(v.verify(&token).await.is_err(), "accepted {token:?}");
    }
}

#[tokio::test]
async fn minted_tokens_verify_and_minting_refuses_what_would_be_refused() {
    let (s, now) = settings();
    let v = Verifier::new(s.clone()).await.unwrap();
    let claims = Claims {
        sub: Some("cli".into()),
        app_id: "app-9".into(),
        scopes: vec!["cloudcode:users:*".into(), "openid".into()],
    };
    now.store(T0 + 5, Ordering::SeqCst);
    let token = mint_hs256(&s, &claims, 3600).unwrap();
    assert_eq!(v.verify(&token).await.unwrap(), claims);
    let payload = token.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(payload["iat"], json!(T0 + 5));
    assert_eq!(payload["exp"], json!(T0 + 5 + 3600));

    assert!(
        mint_hs256(&s, &claims, 3601).is_err(),
        "over the maximum lifetime"
    );
    assert!(mint_hs256(&s, &claims, 0).is_err());
    let short = JwtSettings {
        secret: Some("short".into()),
        ..s.clone()
    };
    assert!(mint_hs256(&short, &claims, 60).is_err());
    for scopes in [
        vec!["openid"],
        vec!["cloudcode:a cloudcode:b"],
        vec!["cloudcode:a", ""],
    ] {
        let bad = Claims {
            scopes: scopes.into_iter().map(String::from).collect(),
            ..claims.clone()
        };
        assert!(mint_hs256(&s, &bad, 60).is_err(), "{:?}", bad.scopes);
    }
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused_at_start() {
    let (s, _) = settings();
    let cases = [
        JwtSettings {
            leeway_secs: 61,
            ..s.clone()
        },
        JwtSettings {
            issuer: " ".into(),
            ..s.clone()
        },
        JwtSettings {
            audience: String::new(),
            ..s.clone()
        },
        JwtSettings {
            secret: None,
            ..s.clone()
        },
        JwtSettings {
            secret: Some("31-bytes-long-secret-0123456789".into()),
            ..s.clone()
        },
        JwtSettings {
            jwks_url: Some("http://idp.example/jwks".into()),
            ..s.clone()
        },
        JwtSettings {
            jwks_url: Some("ftp://127.0.0.1/jwks".into()),
            ..s.clone()
        },
    ];
    for settings in cases {
        assert!(Verifier::new(settings).await.is_err());
    }
}
