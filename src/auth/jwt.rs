//! Bearer-token (JWT) verification for the usersvc admin API, plus minting of
//! HS256 tokens for the `usersvc token` CLI and the dev token printed at start-up.
//!
//! What lives here:
//! - [`JwtConfig`]: the settings read from the environment by the caller.
//! - [`Verifier`]: built once at start-up by [`Verifier::from_config`], which parses
//!   every key (and fails loudly on any doubtful one); [`Verifier::verify`] then turns
//!   a compact JWS string into [`Claims`] or an [`AuthError`].
//! - [`Claims`]: the caller's tenant (`app_id`), scopes and name.
//! - [`mint_hs256`]: signs a token that [`Verifier::verify`] accepts.
//! - [`bearer_token`]: pulls the token out of an `Authorization` header value.
//!
//! # Where keys come from
//! Keys come from configuration only. Header parameters that point at keys
//! (`jku`, `x5u`, `jwk`, `x5c`) are ignored: nothing is ever fetched, and a token
//! validates only against a configured key.
//!
//! - `USERSVC_JWT_SECRET` ([`JwtConfig::secret`]): one HS256 shared secret (UTF-8
//!   bytes, at least 32) that has no `kid`.
//! - `USERSVC_JWT_KEYS_FILE` ([`JwtConfig::keys_file`]): a JSON file of keys, each
//!   with a `kid`, for rotation. For example:
//!
//! ```json
//! {"keys": [
//!   {"kid": "2026-11", "alg": "HS256", "secret": "at-least-32-bytes-of-secret....."},
//!   {"kid": "2026-12", "alg": "HS512", "secret_base64": "<64+ random bytes, base64>"},
//!   {"kid": "edge-1", "alg": "EdDSA",
//!    "public_key_pem": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n"},
//!   {"kid": "rsa-1", "alg": "RS256", "public_key_pem_file": "/etc/usersvc/rsa-1.pem"},
//!   {"kid": "ec-1", "alg": "ES256", "public_key_pem_file": "ec-1.pem"}
//! ]}
//! ```
//!
//! Each entry has exactly one of `secret` (UTF-8 text), `secret_base64` (standard or
//! URL-safe alphabet, padding optional), `public_key_pem` or `public_key_pem_file` (a
//! relative path is resolved against the folder of the keys file). Supported `alg`s:
//! HS256, HS384, HS512 (secret of at least 32, 48 and 64 bytes: RFC 7518 §3.2 asks
//! for one as long as the hash), RS256 (at least 2048 bits), ES256 (P-256) and EdDSA
//! (Ed25519). Public keys must be `-----BEGIN PUBLIC KEY-----` (SPKI) PEM, or
//! `RSA PUBLIC KEY` for RS256; private keys and certificates are refused. A `kid` is
//! 1 to 64 characters of `[A-Za-z0-9._:-]` and must be unique in the file. Unknown
//! fields are errors, and so is an empty `keys` list.
//!
//! Both settings may be given at once.
//!
//! # Key selection rule
//! The key is picked by `kid` alone, never by trying keys in turn:
//! - a token with a `kid` uses the keys-file entry of that `kid` (unknown → reject);
//! - a token without a `kid` uses the `USERSVC_JWT_SECRET` key (none → reject).
//!
//! Every key allows exactly one algorithm, and the header's `alg` must be it. This
//! is what defeats algorithm confusion (e.g. an HS256 token whose HMAC key is an RSA
//! public key's PEM text) and `alg: none`.
//!
//! # What a token must look like
//! At most [`MAX_TOKEN_BYTES`], three base64url parts (no padding), a JSON object in
//! the header and the payload; `typ` absent, `JWT` or `at+jwt` (any case); no `crit`
//! (no extension is understood) and no `enc`. Claims: `exp` (number), `iss` (a string
//! equal to the configured issuer), `aud` (a string, or an array of strings, holding
//! the configured audience), `app_id` (1 to 64 characters, no control characters),
//! `scope` (space-separated, at least one scope starting with `cloudcode:`); `nbf` is
//! honoured when present; `sub` is optional (if present: 1 to 256 characters, no
//! control characters, since it is logged as the actor). `exp` and `nbf` get the configured
//! leeway (default 30 s, at most 60 s).
//!
//! [`AuthError`] says precisely why a token was refused, for the logs; clients must
//! only ever see [`AuthError::CLIENT_MESSAGE`] (HTTP 401).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest accepted token, in bytes. Real tokens are well under 2 KiB; the cap keeps
/// hostile input from costing base64/JSON work.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Leeway applied to `exp` and `nbf` when the configuration has no opinion.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest leeway [`Verifier::from_config`] accepts.
pub const MAX_LEEWAY_SECS: u64 = 60;
/// Shortest accepted HS256 secret, in bytes (HS384 needs 48, HS512 64).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Every token must carry at least one scope with this prefix.
pub const REQUIRED_SCOPE_PREFIX: &str = "cloudcode:";
/// Actor name to use when a token has no `sub`.
pub const DEFAULT_ACTOR: &str = "unknown";

const MAX_KID_LEN: usize = 64;
const MAX_APP_ID_CHARS: usize = 64;
const MAX_SUB_CHARS: usize = 256;
const MIN_RSA_BITS: usize = 2048;
const MAX_KEYS_FILE_BYTES: u64 = 1024 * 1024;
const MAX_PEM_FILE_BYTES: u64 = 64 * 1024;
/// The only wildcard scope: it grants every scope under this prefix.
const USERS_WILDCARD: &str = "cloudcode:users:*";
const USERS_PREFIX: &str = "cloudcode:users:";

/// The algorithms a configured key may use; anything else in a token is refused
/// before any key is looked at.
const SUPPORTED_ALGS: [(&str, Algorithm); 6] = [
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("RS256", Algorithm::RS256),
    ("ES256", Algorithm::ES256),
    ("EdDSA", Algorithm::EdDSA),
];

// ---------------------------------------------------------------------------
// Configuration and errors
// ---------------------------------------------------------------------------

/// JWT settings, filled in by the caller from the environment.
#[derive(Clone)]
pub struct JwtConfig {
    /// `USERSVC_JWT_SECRET`: HS256 secret used for tokens without a `kid`. Its UTF-8
    /// bytes are the key, as given (not trimmed, not base64-decoded).
    pub secret: Option<String>,
    /// `USERSVC_JWT_KEYS_FILE`: JSON keys file (see the module docs) for tokens with a `kid`.
    pub keys_file: Option<PathBuf>,
    /// Required value of the `iss` claim.
    pub issuer: String,
    /// Value that the `aud` claim must be or contain.
    pub audience: String,
    /// Clock-skew allowance for `exp` and `nbf`, in seconds (at most [`MAX_LEEWAY_SECS`]).
    pub leeway_secs: u64,
}

// Hand-written so that the secret never reaches a log through `{:?}`.
impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("keys_file", &self.keys_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// Why the key configuration was refused at start-up. Messages name the setting or
/// keys-file entry at fault and never contain secret material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither `USERSVC_JWT_SECRET` nor `USERSVC_JWT_KEYS_FILE` is set.
    #[error("no JWT key configured: set USERSVC_JWT_SECRET and/or USERSVC_JWT_KEYS_FILE")]
    NoKeyConfigured,
    /// The configured issuer is empty, which would make the `iss` check meaningless.
    #[error("the JWT issuer must not be empty")]
    EmptyIssuer,
    /// The configured audience is empty, which would make the `aud` check meaningless.
    #[error("the JWT audience must not be empty")]
    EmptyAudience,
    /// The leeway is above [`MAX_LEEWAY_SECS`].
    #[error("JWT leeway of {got} s is above the maximum of {max} s")]
    LeewayTooLarge {
        /// Configured leeway.
        got: u64,
        /// Largest allowed leeway.
        max: u64,
    },
    /// `USERSVC_JWT_SECRET` is shorter than [`MIN_HS256_SECRET_BYTES`].
    #[error("USERSVC_JWT_SECRET is {got} bytes long; HS256 needs at least {min}")]
    SecretTooShort {
        /// Length of the configured secret.
        got: usize,
        /// Required minimum.
        min: usize,
    },
    /// The keys file (or a PEM file it names) could not be read.
    #[error("cannot read JWT key file {}: {source}", .path.display())]
    Unreadable {
        /// The file that could not be read.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The keys file as a whole is malformed (not JSON, wrong shape, no keys).
    #[error("JWT keys file {} is invalid: {reason}", .path.display())]
    InvalidKeysFile {
        /// The keys file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// One entry of the keys file is unusable.
    #[error("JWT keys file {}, keys[{index}] (kid {kid}): {reason}", .path.display())]
    InvalidKey {
        /// The keys file.
        path: PathBuf,
        /// Zero-based position of the entry in `keys`.
        index: usize,
        /// The entry's kid, quoted, or `<missing>`.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two entries of the keys file share a `kid`.
    #[error("JWT keys file {}: kid {kid:?} is used by keys[{first}] and keys[{second}]", .path.display())]
    DuplicateKid {
        /// The keys file.
        path: PathBuf,
        /// The repeated kid.
        kid: String,
        /// Position of the first entry.
        first: usize,
        /// Position of the second entry.
        second: usize,
    },
    /// jsonwebtoken has no crypto backend (neither or both of its backend features are on).
    #[error(
        "jsonwebtoken has no crypto provider: enable exactly one of its `rust_crypto` / `aws_lc_rs` features"
    )]
    NoCryptoProvider,
}

/// Why a token was refused. Meant for logs only: whatever the variant, the client
/// gets [`AuthError::CLIENT_MESSAGE`]. Parts copied from the token are shortened
/// and escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or it is empty.
    #[error("no bearer token")]
    MissingToken,
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token is {len} bytes, over the {MAX_TOKEN_BYTES}-byte limit")]
    TooLarge {
        /// Length of the token.
        len: usize,
    },
    /// Not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A JWE (5 parts or an `enc` header): encrypted tokens are not accepted.
    #[error("encrypted tokens (JWE) are not accepted")]
    Encrypted,
    /// `alg: none` (any case) or an empty signature.
    #[error("unsigned token (alg none or empty signature)")]
    Unsigned,
    /// `alg` is not one of the supported algorithms.
    #[error("unsupported alg {0}")]
    UnsupportedAlg(String),
    /// `typ` is neither `JWT` nor `at+jwt`.
    #[error("unsupported typ {0}")]
    BadType(String),
    /// The header has `crit`: no extension is understood, so the token must be refused.
    #[error("token has a crit header")]
    CriticalHeader,
    /// `kid` is not 1..=64 characters of `[A-Za-z0-9._:-]` (or not a string).
    #[error("kid is not a valid key id")]
    BadKid,
    /// No configured key has this `kid`.
    #[error("unknown kid {0:?}")]
    UnknownKid(String),
    /// The token has no `kid` and `USERSVC_JWT_SECRET` is not set.
    #[error("token has no kid and no kid-less key is configured")]
    NoKidlessKey,
    /// The header's `alg` is not the one algorithm the selected key allows.
    #[error("alg {token_alg} does not match the {key_alg} key (kid {kid})")]
    AlgMismatch {
        /// The kid used (or `<none>`).
        kid: String,
        /// Algorithm of the selected key.
        key_alg: &'static str,
        /// Algorithm named by the token.
        token_alg: &'static str,
    },
    /// The signature does not verify with the selected key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    /// A required claim is absent or null. jsonwebtoken also reports `exp`/`iss`/`aud`
    /// of the wrong type (e.g. `exp` as a string) this way.
    #[error("missing or unusable claim {0}")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an unacceptable value.
    #[error("invalid claim {0}")]
    InvalidClaim(&'static str),
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// No scope starts with `cloudcode:`.
    #[error("no cloudcode: scope")]
    NoCloudcodeScope,
    /// Any other refusal by jsonwebtoken.
    #[error("token rejected: {0}")]
    Rejected(String),
}

impl AuthError {
    /// The only text a client may see, whatever the reason.
    pub const CLIENT_MESSAGE: &'static str = "unauthenticated";

    /// Same as [`AuthError::CLIENT_MESSAGE`]; here so call sites read naturally.
    pub fn client_message(&self) -> &'static str {
        Self::CLIENT_MESSAGE
    }
}

/// Why [`mint_hs256`] refused to sign. It applies the verifier's rules so that it
/// never hands out a token that would be refused.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Secret shorter than [`MIN_HS256_SECRET_BYTES`].
    #[error("HS256 secret is {got} bytes long; at least {min} are needed")]
    SecretTooShort {
        /// Length of the secret.
        got: usize,
        /// Required minimum.
        min: usize,
    },
    /// `ttl_secs` is not positive, or the expiry overflows.
    #[error("ttl must be a positive number of seconds, got {0}")]
    InvalidTtl(i64),
    /// Issuer or audience is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// `app_id` breaks the claim rules.
    #[error("invalid app_id: {0}")]
    InvalidAppId(&'static str),
    /// `sub` breaks the claim rules.
    #[error("invalid sub: {0}")]
    InvalidSub(&'static str),
    /// A scope is empty or contains whitespace or control characters.
    #[error("invalid scope {0}")]
    InvalidScope(String),
    /// No scope starts with `cloudcode:`.
    #[error("at least one scope must start with {REQUIRED_SCOPE_PREFIX}")]
    NoCloudcodeScope,
    /// jsonwebtoken has no crypto backend.
    #[error("jsonwebtoken has no crypto provider")]
    NoCryptoProvider,
    /// jsonwebtoken failed to sign.
    #[error("signing failed: {0}")]
    Encode(String),
}

// ---------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------

/// What a verified token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: the caller's name, if the token has one (see [`Claims::actor`]).
    pub sub: Option<String>,
    /// `app_id`: the tenant the caller acts on.
    pub app_id: String,
    /// `scope`, split on ASCII whitespace.
    pub scopes: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub exp: i64,
    /// `iss` (always the configured issuer).
    pub iss: String,
}

impl Claims {
    /// Whether the token grants `needed`: an exact match, or `cloudcode:users:*`
    /// for any scope under `cloudcode:users:`. No other wildcard exists.
    pub fn has_scope(&self, needed: &str) -> bool {
        if needed.is_empty() || needed.bytes().any(|b| b.is_ascii_whitespace()) {
            return false;
        }
        self.scopes.iter().any(|granted| {
            granted == needed
                || (granted == USERS_WILDCARD
                    && needed.len() > USERS_PREFIX.len()
                    && needed.starts_with(USERS_PREFIX))
        })
    }

    /// Name to record as the actor: `sub`, or [`DEFAULT_ACTOR`] without one.
    pub fn actor(&self) -> &str {
        self.sub.as_deref().unwrap_or(DEFAULT_ACTOR)
    }
}

// ---------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------

/// One configured key: its single algorithm, the parsed key and the matching
/// jsonwebtoken `Validation`, all built once at start-up.
struct VerifyKey {
    alg: Algorithm,
    decoding: DecodingKey,
    validation: Validation,
}

struct Inner {
    kidless: Option<VerifyKey>,
    by_kid: HashMap<String, VerifyKey>,
    issuer: String,
    audience: String,
    leeway_secs: i64,
    /// Tokens that passed every check, by their exact text: a caller sends the same token with
    /// every request, and checking it again (base64, JSON, signature) costs more than the
    /// database work of a small query. A hit re-checks `exp`; `nbf` can only have become true.
    verified: std::sync::Mutex<HashMap<String, Claims>>,
}

/// Most tokens kept verified; a full map starts over.
const VERIFIED_CAPACITY: usize = 256;
/// Longest token kept verified.
const VERIFIED_MAX_BYTES: usize = 2048;

/// Verifies bearer tokens against the configured keys. Cloning is cheap (an `Arc`).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<(&str, &str)> = self
            .inner
            .by_kid
            .iter()
            .map(|(k, v)| (k.as_str(), alg_name(v.alg)))
            .collect();
        kids.sort_unstable();
        f.debug_struct("Verifier")
            .field(
                "kidless",
                &self.inner.kidless.as_ref().map(|k| alg_name(k.alg)),
            )
            .field("kids", &kids)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

impl Verifier {
    /// Parses and checks every configured key. Any doubtful setting is an error
    /// rather than a warning: a half-working key set is worse than a failed start.
    pub fn from_config(cfg: &JwtConfig) -> Result<Self, KeyError> {
        // jsonwebtoken 12 panics on first use without exactly one backend; fail here instead.
        if CryptoProvider::try_get_default().is_none() {
            return Err(KeyError::NoCryptoProvider);
        }
        if cfg.leeway_secs > MAX_LEEWAY_SECS {
            return Err(KeyError::LeewayTooLarge {
                got: cfg.leeway_secs,
                max: MAX_LEEWAY_SECS,
            });
        }
        if cfg.issuer.trim().is_empty() {
            return Err(KeyError::EmptyIssuer);
        }
        if cfg.audience.trim().is_empty() {
            return Err(KeyError::EmptyAudience);
        }

        let kidless = match &cfg.secret {
            None => None,
            Some(secret) => {
                let got = secret.len();
                if got < MIN_HS256_SECRET_BYTES {
                    return Err(KeyError::SecretTooShort {
                        got,
                        min: MIN_HS256_SECRET_BYTES,
                    });
                }
                let decoding = DecodingKey::from_secret(secret.as_bytes()).map_err(|_| {
                    KeyError::SecretTooShort {
                        got,
                        min: MIN_HS256_SECRET_BYTES,
                    }
                })?;
                Some(VerifyKey::new(Algorithm::HS256, decoding, cfg))
            }
        };
        let by_kid = match &cfg.keys_file {
            None => HashMap::new(),
            Some(path) => load_keys_file(path, cfg)?,
        };
        if kidless.is_none() && by_kid.is_empty() {
            return Err(KeyError::NoKeyConfigured);
        }

        let verifier = Verifier {
            inner: Arc::new(Inner {
                kidless,
                by_kid,
                issuer: cfg.issuer.clone(),
                audience: cfg.audience.clone(),
                leeway_secs: i64::try_from(cfg.leeway_secs).unwrap_or(0),
                verified: std::sync::Mutex::new(HashMap::new()),
            }),
        };
        tracing::info!(verifier = ?verifier, leeway_secs = cfg.leeway_secs, "JWT keys loaded");
        Ok(verifier)
    }

    /// Whether a kid-less HS256 key (`USERSVC_JWT_SECRET`) is configured.
    pub fn has_hs_secret(&self) -> bool {
        self.inner.kidless.is_some()
    }

    /// Checks a token (without the `Bearer ` prefix) and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = unix_now();
        if let Some(claims) = self.verified().get(token)
            && claims.exp >= now - self.inner.leeway_secs
        {
            return Ok(claims.clone());
        }
        let result = self.verify_inner(token);
        match &result {
            Err(err) => {
                self.verified().remove(token);
                tracing::debug!(error = %err, "bearer token refused");
            }
            Ok(claims) if token.len() <= VERIFIED_MAX_BYTES => {
                let mut verified = self.verified();
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
                verified.insert(token.to_owned(), claims.clone());
            }
            Ok(_) => {}
        }
        result
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claims>> {
        self.inner
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn verify_inner(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge { len: token.len() });
        }
        // Only the base64url alphabet and dots: no padding, whitespace or non-ASCII,
        // so every later step sees exactly what was signed.
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(AuthError::Malformed("characters outside base64url"));
        }
        match token.bytes().filter(|&b| b == b'.').count() {
            2 => {}
            4 => return Err(AuthError::Encrypted),
            _ => return Err(AuthError::Malformed("not three dot-separated parts")),
        }
        let (header_b64, rest) = token
            .split_once('.')
            .ok_or(AuthError::Malformed("not three dot-separated parts"))?;
        let (payload_b64, signature_b64) = rest
            .split_once('.')
            .ok_or(AuthError::Malformed("not three dot-separated parts"))?;
        if header_b64.is_empty() || payload_b64.is_empty() {
            return Err(AuthError::Malformed("empty header or payload"));
        }

        // Our own reading of the header decides the key; jsonwebtoken re-reads it and
        // must agree on `alg`, because each key's Validation allows only its own alg.
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| AuthError::Malformed("header is not base64url"))?;
        let header = serde_json::from_slice::<JsonObject>(&header_json)
            .map_err(|_| AuthError::Malformed("header is not a JSON object with unique names"))?
            .0;

        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err(AuthError::Malformed("header has no string alg")),
        };
        if alg.eq_ignore_ascii_case("none") || signature_b64.is_empty() {
            return Err(AuthError::Unsigned);
        }
        let token_alg = parse_alg(alg).ok_or_else(|| AuthError::UnsupportedAlg(snippet(alg)))?;
        if header.contains_key("enc") {
            return Err(AuthError::Encrypted);
        }
        if header.contains_key("crit") {
            return Err(AuthError::CriticalHeader);
        }
        match header.get("typ") {
            None => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("at+jwt") => {}
            Some(Value::String(t)) => return Err(AuthError::BadType(snippet(t))),
            Some(_) => return Err(AuthError::BadType("<not a string>".into())),
        }

        let (kid_label, key) = match header.get("kid") {
            None => (
                None,
                self.inner.kidless.as_ref().ok_or(AuthError::NoKidlessKey)?,
            ),
            Some(Value::String(kid)) if is_valid_kid(kid) => (
                Some(kid.as_str()),
                self.inner
                    .by_kid
                    .get(kid)
                    .ok_or_else(|| AuthError::UnknownKid(kid.clone()))?,
            ),
            Some(_) => return Err(AuthError::BadKid),
        };
        if key.alg != token_alg {
            return Err(AuthError::AlgMismatch {
                kid: kid_label.unwrap_or("<none>").to_owned(),
                key_alg: alg_name(key.alg),
                token_alg: alg_name(token_alg),
            });
        }

        // Signature first, then exp/nbf/iss/aud (jsonwebtoken checks in that order).
        let data = jsonwebtoken::decode::<JsonObject>(token, &key.decoding, &key.validation)
            .map_err(map_jwt_error)?;
        self.claims_from(data.claims.0)
    }

    /// Applies the claim rules that jsonwebtoken does not know about (and repeats
    /// the iss/aud checks, which are cheap, so they don't hinge on its defaults).
    fn claims_from(&self, claims: Map<String, Value>) -> Result<Claims, AuthError> {
        let get = |name: &'static str| match claims.get(name) {
            None | Some(Value::Null) => Err(AuthError::MissingClaim(name)),
            Some(v) => Ok(v),
        };

        let exp = numeric_date(get("exp")?).ok_or(AuthError::InvalidClaim("exp"))?;

        let iss = match get("iss")? {
            Value::String(iss) if *iss == self.inner.issuer => iss.clone(),
            Value::String(_) => return Err(AuthError::WrongIssuer),
            _ => return Err(AuthError::InvalidClaim("iss")),
        };

        let audience = self.inner.audience.as_str();
        let aud_ok = match get("aud")? {
            Value::String(aud) => aud == audience,
            Value::Array(items) => {
                let mut found = false;
                for item in items {
                    match item {
                        Value::String(aud) => found |= aud == audience,
                        _ => return Err(AuthError::InvalidClaim("aud")),
                    }
                }
                found
            }
            _ => return Err(AuthError::InvalidClaim("aud")),
        };
        if !aud_ok {
            return Err(AuthError::WrongAudience);
        }

        let app_id = match get("app_id")? {
            Value::String(app_id) => {
                check_app_id(app_id).map_err(|_| AuthError::InvalidClaim("app_id"))?;
                app_id.clone()
            }
            _ => return Err(AuthError::InvalidClaim("app_id")),
        };

        let scopes: Vec<String> = match get("scope")? {
            Value::String(scope) => scope.split_ascii_whitespace().map(str::to_owned).collect(),
            _ => return Err(AuthError::InvalidClaim("scope")),
        };
        if !scopes.iter().any(|s| s.starts_with(REQUIRED_SCOPE_PREFIX)) {
            return Err(AuthError::NoCloudcodeScope);
        }

        let sub = match claims.get("sub") {
            None | Some(Value::Null) => None,
            Some(Value::String(sub)) => {
                check_sub(sub).map_err(|_| AuthError::InvalidClaim("sub"))?;
                Some(sub.clone())
            }
            Some(_) => return Err(AuthError::InvalidClaim("sub")),
        };

        Ok(Claims {
            sub,
            app_id,
            scopes,
            exp,
            iss,
        })
    }
}

impl VerifyKey {
    fn new(alg: Algorithm, decoding: DecodingKey, cfg: &JwtConfig) -> Self {
        // jsonwebtoken's defaults are lax: iss/aud are checked only when present and
        // nbf not at all, with 60 s of leeway. Tighten every one of them.
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = cfg.leeway_secs;
        validation.reject_tokens_expiring_in_less_than = 0;
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_audience(&[cfg.audience.as_str()]);
        VerifyKey {
            alg,
            decoding,
            validation,
        }
    }
}

/// Extracts the token from an `Authorization` header value (`Bearer <token>`, the
/// scheme in any case).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(if value.eq_ignore_ascii_case("Bearer") {
            AuthError::MissingToken
        } else {
            AuthError::Malformed("authorization is not `Bearer <token>`")
        });
    };
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(AuthError::Malformed("authorization scheme is not Bearer"));
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

// ---------------------------------------------------------------------------
// Minting
// ---------------------------------------------------------------------------

/// What [`mint_hs256`] should put in the token.
#[derive(Debug, Clone, Copy)]
pub struct MintRequest<'a> {
    /// Tenant (`app_id` claim).
    pub app_id: &'a str,
    /// Scopes, joined with spaces into the `scope` claim.
    pub scopes: &'a [String],
    /// Lifetime in seconds (`exp` = now + ttl).
    pub ttl_secs: i64,
    /// Caller name (`sub` claim); left out when empty.
    pub sub: &'a str,
    /// `iss` claim.
    pub issuer: &'a str,
    /// `aud` claim.
    pub audience: &'a str,
}

#[derive(Serialize)]
struct MintClaims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    aud: &'a str,
    app_id: &'a str,
    scope: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// Signs an HS256 token (header `typ: JWT`, no `kid`) with `iat` = `nbf` = now and
/// `exp` = now + ttl, for a verifier using the same secret as `USERSVC_JWT_SECRET`.
pub fn mint_hs256(secret: &[u8], req: &MintRequest<'_>) -> Result<String, MintError> {
    if CryptoProvider::try_get_default().is_none() {
        return Err(MintError::NoCryptoProvider);
    }
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(MintError::SecretTooShort {
            got: secret.len(),
            min: MIN_HS256_SECRET_BYTES,
        });
    }
    if req.ttl_secs <= 0 {
        return Err(MintError::InvalidTtl(req.ttl_secs));
    }
    if req.issuer.trim().is_empty() {
        return Err(MintError::Empty("issuer"));
    }
    if req.audience.trim().is_empty() {
        return Err(MintError::Empty("audience"));
    }
    check_app_id(req.app_id).map_err(MintError::InvalidAppId)?;
    if !req.sub.is_empty() {
        check_sub(req.sub).map_err(MintError::InvalidSub)?;
    }
    for scope in req.scopes {
        if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(MintError::InvalidScope(snippet(scope)));
        }
    }
    if !req
        .scopes
        .iter()
        .any(|s| s.starts_with(REQUIRED_SCOPE_PREFIX))
    {
        return Err(MintError::NoCloudcodeScope);
    }

    let now = unix_now();
    let exp = now
        .checked_add(req.ttl_secs)
        .ok_or(MintError::InvalidTtl(req.ttl_secs))?;
    let claims = MintClaims {
        iss: req.issuer,
        sub: (!req.sub.is_empty()).then_some(req.sub),
        aud: req.audience,
        app_id: req.app_id,
        scope: req.scopes.join(" "),
        iat: now,
        nbf: now,
        exp,
    };
    let key = EncodingKey::from_secret(secret).map_err(|e| MintError::Encode(e.to_string()))?;
    // Header::new sets typ "JWT" and no kid: the verifier's kid-less key.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| MintError::Encode(e.to_string()))
}

// ---------------------------------------------------------------------------
// Keys file
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    kid: String,
    alg: String,
    secret: Option<String>,
    secret_base64: Option<String>,
    public_key_pem: Option<String>,
    public_key_pem_file: Option<PathBuf>,
}

fn load_keys_file(path: &Path, cfg: &JwtConfig) -> Result<HashMap<String, VerifyKey>, KeyError> {
    let text = read_capped(path, MAX_KEYS_FILE_BYTES).map_err(|source| KeyError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| KeyError::InvalidKeysFile {
        path: path.to_owned(),
        reason,
    };
    let file: KeysFile = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("expected {{\"keys\": [...]}}: {e}")))?;
    if file.keys.is_empty() {
        return Err(invalid("it lists no keys".into()));
    }
    let base_dir = path.parent().unwrap_or_else(|| Path::new(""));

    let mut keys = HashMap::with_capacity(file.keys.len());
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (index, raw) in file.keys.into_iter().enumerate() {
        let kid_label = match raw.get("kid") {
            Some(Value::String(kid)) => format!("{:?}", snippet(kid)),
            _ => "<missing>".to_owned(),
        };
        let entry_error = |reason: String| KeyError::InvalidKey {
            path: path.to_owned(),
            index,
            kid: kid_label.clone(),
            reason,
        };
        let entry: KeyEntry =
            serde_json::from_value(raw).map_err(|e| entry_error(e.to_string()))?;
        let (kid, key) = parse_entry(entry, base_dir, cfg).map_err(entry_error)?;
        if let Some(&first) = positions.get(&kid) {
            return Err(KeyError::DuplicateKid {
                path: path.to_owned(),
                kid,
                first,
                second: index,
            });
        }
        positions.insert(kid.clone(), index);
        keys.insert(kid, key);
    }
    Ok(keys)
}

fn parse_entry(
    entry: KeyEntry,
    base_dir: &Path,
    cfg: &JwtConfig,
) -> Result<(String, VerifyKey), String> {
    if !is_valid_kid(&entry.kid) {
        return Err(format!(
            "kid must be 1 to {MAX_KID_LEN} characters of [A-Za-z0-9._:-]"
        ));
    }
    let alg = parse_alg(&entry.alg).ok_or_else(|| {
        let names: Vec<&str> = SUPPORTED_ALGS.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown alg {:?} (supported: {})",
            snippet(&entry.alg),
            names.join(", ")
        )
    })?;
    let given = [
        entry.secret.is_some(),
        entry.secret_base64.is_some(),
        entry.public_key_pem.is_some(),
        entry.public_key_pem_file.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(
            "give exactly one of secret, secret_base64, public_key_pem, public_key_pem_file".into(),
        );
    }

    let decoding = if let Some(min) = hmac_min_len(alg) {
        let secret = match (entry.secret, entry.secret_base64) {
            (Some(text), _) => text.into_bytes(),
            (None, Some(b64)) => {
                decode_lenient_base64(&b64).ok_or("secret_base64 is not valid base64")?
            }
            _ => {
                return Err(format!(
                    "{} needs secret or secret_base64, not a PEM key",
                    entry.alg
                ));
            }
        };
        if secret.len() < min {
            return Err(format!(
                "{} secret is {} bytes long; at least {min} are needed",
                entry.alg,
                secret.len()
            ));
        }
        DecodingKey::from_secret(&secret).map_err(|e| format!("unusable secret: {e}"))?
    } else {
        let pem = match (entry.public_key_pem, entry.public_key_pem_file) {
            (Some(pem), _) => pem,
            (None, Some(file)) => {
                let full = if file.is_absolute() {
                    file
                } else {
                    base_dir.join(file)
                };
                read_capped(&full, MAX_PEM_FILE_BYTES)
                    .map_err(|e| format!("cannot read {}: {e}", full.display()))?
            }
            _ => {
                return Err(format!(
                    "{} needs public_key_pem or public_key_pem_file, not a shared secret",
                    entry.alg
                ));
            }
        };
        public_key_from_pem(alg, &pem)?
    };
    Ok((entry.kid, VerifyKey::new(alg, decoding, cfg)))
}

/// Builds a public key and proves, once, that the crypto backend accepts it for
/// `alg`, so a wrong key type or curve fails at start-up, not on the first request.
fn public_key_from_pem(alg: Algorithm, pem: &str) -> Result<DecodingKey, String> {
    let name = alg_name(alg);
    if pem.matches("-----BEGIN ").count() != 1 {
        return Err("expected exactly one PEM block".into());
    }
    let label = pem
        .split_once("-----BEGIN ")
        .and_then(|(_, rest)| rest.split_once("-----"))
        .map(|(label, _)| label)
        .ok_or("not a PEM block")?;
    if label.contains("PRIVATE") {
        return Err("this is a private key: configure the public key only".into());
    }
    let label_ok = label == "PUBLIC KEY" || (alg == Algorithm::RS256 && label == "RSA PUBLIC KEY");
    if !label_ok {
        return Err(format!(
            "expected a \"PUBLIC KEY\" PEM block, found {:?} (for a certificate, extract the key \
             with `openssl x509 -pubkey -noout`)",
            snippet(label)
        ));
    }
    let key = match alg {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
        _ => return Err(format!("{name} does not use a public key")),
    }
    .map_err(|e| format!("not a valid {name} public key: {e}"))?;

    if alg == Algorithm::RS256 {
        let provider = CryptoProvider::try_get_default().ok_or("no crypto provider")?;
        let der = key
            .try_get_as_bytes()
            .map_err(|e| format!("not a valid RSA public key: {e}"))?;
        let (modulus, _) = (provider.key_utils.rsa_pub_components_from_public_key)(der)
            .map_err(|e| format!("not a valid RSA public key: {e}"))?;
        let bits = bit_length(&modulus);
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "RSA key is {bits} bits; at least {MIN_RSA_BITS} are needed"
            ));
        }
    }
    // A bogus signature only tells the key apart: the backend parses the key (point
    // on the right curve, valid encoding) before it looks at the signature.
    jsonwebtoken::crypto::verify("AAAA", b"usersvc key probe", &key, alg)
        .map_err(|e| format!("the {name} backend rejects this key: {e}"))?;
    Ok(key)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A JSON object whose member names are unique. Duplicate names are refused because
/// two parsers may pick different ones; arrays are refused because serde would
/// otherwise map them onto struct fields by position.
struct JsonObject(Map<String, Value>);

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with unique member names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(A::Error::custom("duplicate member name"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(JsonObject(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        JwtErrorKind::InvalidSignature => AuthError::BadSignature,
        JwtErrorKind::ExpiredSignature => AuthError::Expired,
        JwtErrorKind::ImmatureSignature => AuthError::NotYetValid,
        JwtErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        JwtErrorKind::InvalidAudience => AuthError::WrongAudience,
        JwtErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(claim_name(c)),
        JwtErrorKind::InvalidClaimFormat(c) => AuthError::InvalidClaim(claim_name(c)),
        JwtErrorKind::Base64(_) => AuthError::Malformed("invalid base64url"),
        // The serde message may quote token content; leave it out of the logs.
        JwtErrorKind::Json(_) | JwtErrorKind::Utf8(_) => {
            AuthError::Malformed("part is not a JSON object with unique names")
        }
        JwtErrorKind::InvalidToken => AuthError::Malformed("rejected by jsonwebtoken"),
        other => AuthError::Rejected(format!("{other:?}")),
    }
}

fn claim_name(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "other",
    }
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    SUPPORTED_ALGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, alg)| *alg)
}

fn alg_name(alg: Algorithm) -> &'static str {
    SUPPORTED_ALGS
        .iter()
        .find(|(_, a)| *a == alg)
        .map_or("unsupported", |(n, _)| n)
}

fn hmac_min_len(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::HS256 => Some(32),
        Algorithm::HS384 => Some(48),
        Algorithm::HS512 => Some(64),
        _ => None,
    }
}

fn is_valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn check_app_id(app_id: &str) -> Result<(), &'static str> {
    if app_id.is_empty() {
        return Err("empty");
    }
    if app_id.chars().count() > MAX_APP_ID_CHARS {
        return Err("longer than 64 characters");
    }
    if app_id.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// `sub` ends up in logs and audit records as the actor, so it gets the same
/// hygiene as `app_id`, with more room.
fn check_sub(sub: &str) -> Result<(), &'static str> {
    if sub.is_empty() {
        return Err("empty");
    }
    if sub.chars().count() > MAX_SUB_CHARS {
        return Err("longer than 256 characters");
    }
    if sub.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// RFC 7519 NumericDate: integer or not, in seconds. Fractions are dropped.
fn numeric_date(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = n.as_f64()?;
    // `as` saturates at the i64 bounds, which is what we want for absurd dates.
    f.is_finite().then(|| f.floor() as i64)
}

fn decode_lenient_base64(text: &str) -> Option<Vec<u8>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let text = text.trim();
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(text))
        .ok()
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (big_endian.len() - i - 1) * 8 + (8 - big_endian[i].leading_zeros() as usize),
    }
}

fn read_capped(path: &Path, max: u64) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "file is larger than {max} bytes"
        )));
    }
    Ok(text)
}

/// A short, escaped copy of untrusted text, safe to put in a log line.
fn snippet(text: &str) -> String {
    let mut out: String = text.chars().take(32).flat_map(char::escape_debug).collect();
    if text.chars().nth(32).is_some() {
        out.push('…');
    }
    out
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    //! Tokens are built by hand (base64url JSON + signatures from the hmac,
    //! ed25519-dalek, p256 and rsa crates) so the verifier is not only checked
    //! against jsonwebtoken's own encoder.

    use super::*;
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ISS: &str = "https://auth.test";
    const AUD: &str = "usersvc";
    const KIDLESS_SECRET: &str = "kidless-secret-for-tests-0123456789abcdef";
    const KID_HS256: &str = "2026-11";
    const KID_HS256_SECRET: &str = "kid-2026-11-secret-at-least-32-bytes!!";
    const KID_HS512: &str = "hs512-b64";
    const KID_ED: &str = "edge-1";
    const KID_ES: &str = "p256-1";
    const KID_RSA: &str = "rsa-1";

    /// PKCS#8 RSA-2048 private key, for tests only.
    const RSA_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDNgDFvkNF2dmlC
BQfLrTb4R30ahfDamRqyULFUlYgnWAqcf/rD1Zz0aZVz62NVIy/H6ItxAwg/DlC/
H+r0pQnqD87eSEOchb+x/Bm9V5EUjFi/zTntrKomXFI2TbyG4U7xcojyC9NT2s7b
yQwi6xCV/T9x0he4Wewvq2byjVRuxfMfs2FQnTKfq/Jl+32kGZDu7HDpy0JpV+4b
70OOmay1BWwYmnMQTYrcCmCn/gn1AVmGFcHRuyjEdj2W1fCShmfi8cwy3ap5G9B7
C8a5cWypd6Kx/XOedK2n9gkeV4xxCtVGilJrxYpjDgyfVvvDa86IXYSfncKmxHVl
+OlMBxDzAgMBAAECggEABhgYnzXcuFYfnfkXN5eN60P3dktljp3+uC4DbD44+O23
9tcmwRr7GhZte7AN1I8EEjoXtITCAFi01U4lghbI2fuZB2d+NcyTmDwhKUfJAiJ9
WUbFQoKd0yBmwbyBbECPPkLGw+LM5A43lzX5mal95uzJLl9sG6fzBKDhHy1IxTYk
9AqwXHPet92zP+va6+WzMTuXPpDahoY8UblF+9a02WZosSz+NuFV78mkn4IooUq7
NeLgCrfzwDT2Lf9+aI6zT/wc2NIQSdO6bxVt7oZbRyxGU9GXAbVoidtNvYG81UV+
CdMrdnyYTVxsXX2DzKxkl9evH3EGL/4XStyRux78BQKBgQDzygkrTwiIRj/JscJf
QqE394X+AJLCKSSZcl6NAHKwdILRPwXbB+kWFCNXyxouoJOHj6A/AscSRn9wKczN
VRPVNhvfjC1VfLN9rXPBX7AzKuEPS8duranOg79d8cd5Fkjks8XV4HYyqwHZttXz
A6I9VwrHvmMMvm2WJDNL/ecRVQKBgQDXyzUOzO19I0u9iGl7JSA23AfgSOc3jopJ
iYt7mGbHjK1FOFRUFNVdhA47wMvdgnvZIETqVDCvARCAxQCnalmhAiKK22OXDvpe
J+ga9XofA8BU0cWvJpya4AC3UUACn+8lJ3QIaVF6Xg1roCObEQixPFnr0mQvjMGp
D1dJLRm5JwKBgB86cyA8GIC0Vvl0LszbESHFMEHQOvxqHskVMG1pcEeQNS2uoAZl
pgLxA3H8j1cHtL45tLI9ndiGdU6d3CE1U7wNGVbycuAvgCKKNHjB1CVJydiWwW45
CrZsg/f5v66QHzhEmwQBo8Jry2njFNbzUTYAT1400iVQw2LnMjb6yD2dAoGBALZj
qpS34ILEMmAfzAepeXDkyENpWwQ6FefRuXLdfQFshYbb9WqbsTs5Qk5+xdCTWNpL
y/PC9OL1o10zJTpbSSYtB8UVaTdkEXlDgYpHsNBF+2m1Y8CGghbk/bXzloahZx+g
GRKC8brbg7xTvcRywUYMHHSVftgxv/2EWeIfnH5BAoGAMmRZJVKy9JD6PdeenD/3
Csl3T4XoJjgxxab91al+X6FWnETvFkOl1bgBlw6efI/MN+gjYuroK10Jy0CIqo8O
G4LuBTijYRZ4LzzX74xENtOxWVNbYB6ILcrPVwYmcknZnKWGO7QJmvgs7yn1Ao+j
VtX/9+CcVJSRu+KqS+6tBR0=
-----END PRIVATE KEY-----
";
    const RSA_1024_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC9X8N1pITt9DJh4oMRYv7SfYoH
DHCfd7jjjn1esjvwsqB43o0KjnxnZiB562JZEM9GrNEpH2nTCoDgWykPTdY8aSMx
f8Q21B5gdsxrsRm4YB+BjK34hWhoysYLjnJhRrgbyfvaTnXq1Uuu+SZSwNZcBAjU
jgO5wzPtEotcUs4BkQIDAQAB
-----END PUBLIC KEY-----
";
    const P384_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE1s3LplRm/8sjfE6jamZJesg91t3tSLO0
M84cS6Jwfy9T6on6qjAw/AhR9Q8OU4ft6SFVOIZ/IW2VT4cJhcPD5vR63itlCifo
nf30yqxt0SZrHTCo4o7/sylXYvoMuGyA
-----END PUBLIC KEY-----
";

    // ---- fixtures -------------------------------------------------------

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("usersvc-jwt-test-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Fx {
        verifier: Verifier,
        ed: ed25519_dalek::SigningKey,
        ed_pub_pem: String,
        es: p256::ecdsa::SigningKey,
        rsa: rsa::PrivateKey,
        rsa_pub_pem: String,
    }

    fn config(secret: Option<&str>, keys_file: Option<PathBuf>) -> JwtConfig {
        JwtConfig {
            secret: secret.map(str::to_owned),
            keys_file,
            issuer: ISS.into(),
            audience: AUD.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    fn fx() -> &'static Fx {
        static FX: OnceLock<Fx> = OnceLock::new();
        FX.get_or_init(|| {
            // Each crate brings its own pkcs8 version, hence the separate imports.
            let ed = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
            let ed_pub_pem = {
                use ed25519_dalek::pkcs8::{EncodePublicKey as _, spki::der::pem::LineEnding};
                ed.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()
            };
            let es = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
            let es_pub_pem = {
                use p256::pkcs8::{EncodePublicKey as _, LineEnding};
                es.verifying_key().to_public_key_pem(LineEnding::LF).unwrap()
            };
            let (rsa, rsa_pub_pem) = {
                use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
                let key = rsa::PrivateKey::from_pkcs8_pem(RSA_PRIVATE_PEM).unwrap();
                let public = rsa::PublicKey::from(&key).to_public_key_pem(LineEnding::LF);
                (key, public.unwrap())
            };

            let dir = TempDir::new();
            dir.write("rsa-1.pem", &rsa_pub_pem);
            let keys = json!({"keys": [
                {"kid": KID_HS256, "alg": "HS256", "secret": KID_HS256_SECRET},
                {"kid": KID_HS512, "alg": "HS512", "secret_base64": STANDARD_B64.encode([0x42u8; 64])},
                {"kid": KID_ED, "alg": "EdDSA", "public_key_pem": ed_pub_pem},
                {"kid": KID_ES, "alg": "ES256", "public_key_pem": es_pub_pem},
                {"kid": KID_RSA, "alg": "RS256", "public_key_pem_file": "rsa-1.pem"},
            ]});
            let keys_file = dir.write("keys.json", &keys.to_string());
            // Keys are read once: the files can go right away.
            let verifier =
                Verifier::from_config(&config(Some(KIDLESS_SECRET), Some(keys_file))).unwrap();
            Fx { verifier, ed, ed_pub_pem, es, rsa, rsa_pub_pem }
        })
    }

    use base64::engine::general_purpose::STANDARD as STANDARD_B64;

    // ---- hand-made tokens ------------------------------------------------

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn now() -> i64 {
        unix_now()
    }

    fn good_claims() -> Value {
        json!({
            "iss": ISS, "aud": AUD, "sub": "alice", "app_id": "app-1",
            "scope": "openid cloudcode:users:read", "iat": now(), "exp": now() + 300,
        })
    }

    fn claims_with(edit: impl FnOnce(&mut Value)) -> Value {
        let mut claims = good_claims();
        edit(&mut claims);
        claims
    }

    fn without(name: &str) -> Value {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    fn hdr(alg: &str, kid: Option<&str>) -> Value {
        let mut h = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            h["kid"] = json!(kid);
        }
        h
    }

    fn signing_input(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    }

    fn hmac_sig(alg: &str, secret: &[u8], input: &[u8]) -> Vec<u8> {
        macro_rules! mac {
            ($h:ty) => {{
                let mut m = Hmac::<$h>::new_from_slice(secret).unwrap();
                m.update(input);
                m.finalize().into_bytes().to_vec()
            }};
        }
        match alg {
            "HS256" => mac!(sha2::Sha256),
            "HS384" => mac!(sha2::Sha384),
            "HS512" => mac!(sha2::Sha512),
            other => panic!("not an HMAC alg: {other}"),
        }
    }

    /// HMAC-signs arbitrary header/payload bytes (for malformed-JSON cases).
    fn hs_raw(alg: &str, secret: &[u8], header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = hmac_sig(alg, secret, input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    fn hs(alg: &str, secret: &[u8], header: Value, claims: Value) -> String {
        hs_raw(
            alg,
            secret,
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
        )
    }

    /// A valid kid-less HS256 token with these claims.
    fn kidless(claims: Value) -> String {
        hs(
            "HS256",
            KIDLESS_SECRET.as_bytes(),
            hdr("HS256", None),
            claims,
        )
    }

    fn ed_token(key: &ed25519_dalek::SigningKey, header: Value, claims: Value) -> String {
        use ed25519_dalek::Signer as _;
        let input = signing_input(&header, &claims);
        let sig = key.sign(input.as_bytes()).to_bytes();
        format!("{input}.{}", b64(&sig))
    }

    fn es_token(header: Value, claims: Value) -> String {
        use p256::ecdsa::signature::Signer as _;
        let input = signing_input(&header, &claims);
        let sig: p256::ecdsa::Signature = fx().es.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    fn rs_token(header: Value, claims: Value) -> String {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        let input = signing_input(&header, &claims);
        let key = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(fx().rsa.clone());
        let sig = key.sign(input.as_bytes()).to_vec();
        format!("{input}.{}", b64(&sig))
    }

    /// "Ok", or the start of the error's Debug text, e.g. `MissingClaim("exp")`.
    fn outcome(result: &Result<Claims, AuthError>) -> String {
        match result {
            Ok(_) => "Ok".into(),
            Err(e) => format!("{e:?}"),
        }
    }

    // ---- the table ----------------------------------------------------------

    #[test]
    fn token_table() {
        let f = fx();
        let kid_hs = |claims: Value| {
            hs(
                "HS256",
                KID_HS256_SECRET.as_bytes(),
                hdr("HS256", Some(KID_HS256)),
                claims,
            )
        };
        let attacker = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let none_claims = b64(good_claims().to_string().as_bytes());
        let big_pad = "x".repeat(MAX_TOKEN_BYTES);
        let ok_pad = "x".repeat(4000);
        let valid = kidless(good_claims());
        let (valid_body, valid_sig) = valid.rsplit_once('.').unwrap();
        let other_claims = b64(claims_with(|c| c["app_id"] = json!("app-2"))
            .to_string()
            .as_bytes());
        let (valid_head, _) = valid_body.split_once('.').unwrap();

        let cases: Vec<(&str, String, &str)> = vec![
            // ---- accepted ----
            ("valid HS256 kid-less", valid.clone(), "Ok"),
            ("valid HS256 with kid from keys file", kid_hs(good_claims()), "Ok"),
            ("valid HS512 with base64 secret", hs("HS512", &[0x42; 64], hdr("HS512", Some(KID_HS512)), good_claims()), "Ok"),
            ("valid EdDSA", ed_token(&f.ed, hdr("EdDSA", Some(KID_ED)), good_claims()), "Ok"),
            ("valid ES256", es_token(hdr("ES256", Some(KID_ES)), good_claims()), "Ok"),
            ("valid RS256 (PEM file, relative path)", rs_token(hdr("RS256", Some(KID_RSA)), good_claims()), "Ok"),
            ("typ absent", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256"}), good_claims()), "Ok"),
            ("typ at+jwt", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "typ": "at+JWT"}), good_claims()), "Ok"),
            ("typ lowercase jwt", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "typ": "jwt"}), good_claims()), "Ok"),
            ("expired within leeway", kidless(claims_with(|c| c["exp"] = json!(now() - 10))), "Ok"),
            ("nbf within leeway", kidless(claims_with(|c| c["nbf"] = json!(now() + 10))), "Ok"),
            ("nbf in the past", kidless(claims_with(|c| c["nbf"] = json!(now() - 100))), "Ok"),
            ("aud array containing ours", kidless(claims_with(|c| c["aud"] = json!(["other", AUD]))), "Ok"),
            ("fractional exp", kidless(claims_with(|c| c["exp"] = json!(now() as f64 + 100.5))), "Ok"),
            ("no sub", kidless(without("sub")), "Ok"),
            ("jku/x5u ignored, never fetched", hs("HS256", KIDLESS_SECRET.as_bytes(),
                json!({"alg": "HS256", "jku": "https://evil.example/jwks", "x5u": "https://evil.example/x"}), good_claims()), "Ok"),
            ("just under the size limit", kidless(claims_with(|c| c["pad"] = json!(ok_pad))), "Ok"),
            // ---- time ----
            ("expired beyond leeway", kidless(claims_with(|c| c["exp"] = json!(now() - 120))), "Expired"),
            ("nbf in the future beyond leeway", kidless(claims_with(|c| c["nbf"] = json!(now() + 120))), "NotYetValid"),
            // jsonwebtoken reports a required claim of the wrong type as missing.
            ("exp as string", kidless(claims_with(|c| c["exp"] = json!("9999999999"))), "MissingClaim(\"exp\")"),
            ("exp negative", kidless(claims_with(|c| c["exp"] = json!(-5))), "MissingClaim(\"exp\")"),
            ("nbf as string", kidless(claims_with(|c| c["nbf"] = json!("0"))), "InvalidClaim(\"nbf\")"),
            // ---- required claims ----
            ("missing exp", kidless(without("exp")), "MissingClaim(\"exp\")"),
            ("missing iss", kidless(without("iss")), "MissingClaim(\"iss\")"),
            ("missing aud", kidless(without("aud")), "MissingClaim(\"aud\")"),
            ("missing app_id", kidless(without("app_id")), "MissingClaim(\"app_id\")"),
            ("null app_id", kidless(claims_with(|c| c["app_id"] = Value::Null)), "MissingClaim(\"app_id\")"),
            ("missing scope", kidless(without("scope")), "MissingClaim(\"scope\")"),
            ("wrong iss", kidless(claims_with(|c| c["iss"] = json!("https://evil.test"))), "WrongIssuer"),
            ("iss array containing ours", kidless(claims_with(|c| c["iss"] = json!([ISS]))), "InvalidClaim(\"iss\")"),
            ("wrong aud", kidless(claims_with(|c| c["aud"] = json!("billing"))), "WrongAudience"),
            ("aud array without ours", kidless(claims_with(|c| c["aud"] = json!(["a", "b"]))), "WrongAudience"),
            ("aud empty array", kidless(claims_with(|c| c["aud"] = json!([]))), "WrongAudience"),
            ("aud as number", kidless(claims_with(|c| c["aud"] = json!(5))), "MissingClaim(\"aud\")"),
            ("scope without cloudcode:", kidless(claims_with(|c| c["scope"] = json!("openid profile"))), "NoCloudcodeScope"),
            ("scope empty", kidless(claims_with(|c| c["scope"] = json!("   "))), "NoCloudcodeScope"),
            ("scope prefix inside a word", kidless(claims_with(|c| c["scope"] = json!("x-cloudcode:users:read"))), "NoCloudcodeScope"),
            ("scope as array", kidless(claims_with(|c| c["scope"] = json!(["cloudcode:users:read"]))), "InvalidClaim(\"scope\")"),
            ("app_id empty", kidless(claims_with(|c| c["app_id"] = json!(""))), "InvalidClaim(\"app_id\")"),
            ("app_id 65 chars", kidless(claims_with(|c| c["app_id"] = json!("a".repeat(65)))), "InvalidClaim(\"app_id\")"),
            ("app_id with newline", kidless(claims_with(|c| c["app_id"] = json!("app\n1"))), "InvalidClaim(\"app_id\")"),
            ("app_id number", kidless(claims_with(|c| c["app_id"] = json!(1))), "InvalidClaim(\"app_id\")"),
            ("sub with control char", kidless(claims_with(|c| c["sub"] = json!("eve\u{1b}[2J"))), "InvalidClaim(\"sub\")"),
            ("sub number", kidless(claims_with(|c| c["sub"] = json!(7))), "InvalidClaim(\"sub\")"),
            // ---- alg none / unsigned ----
            ("alg none", format!("{}.{none_claims}.", b64(br#"{"alg":"none","typ":"JWT"}"#)), "Unsigned"),
            ("alg noNE with a signature", format!("{}.{none_claims}.{valid_sig}", b64(br#"{"alg":"noNE"}"#)), "Unsigned"),
            ("HS256 with empty signature", format!("{valid_body}."), "Unsigned"),
            ("alg missing", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"{"typ":"JWT"}"#, good_claims().to_string().as_bytes()), "Malformed"),
            ("alg lowercase hs256", hs("HS256", KIDLESS_SECRET.as_bytes(), hdr("hs256", None), good_claims()), "UnsupportedAlg"),
            ("alg PS256 on the RSA kid", rs_token(hdr("PS256", Some(KID_RSA)), good_claims()), "UnsupportedAlg"),
            // ---- algorithm confusion ----
            ("HS256 keyed with the EdDSA PEM, Ed kid", hs("HS256", f.ed_pub_pem.as_bytes(), hdr("HS256", Some(KID_ED)), good_claims()), "AlgMismatch"),
            ("HS256 keyed with the RSA PEM, RSA kid", hs("HS256", f.rsa_pub_pem.as_bytes(), hdr("HS256", Some(KID_RSA)), good_claims()), "AlgMismatch"),
            ("HS256 keyed with the RSA PEM, no kid", hs("HS256", f.rsa_pub_pem.as_bytes(), hdr("HS256", None), good_claims()), "BadSignature"),
            ("HS512 on the HS256 kid", hs("HS512", KID_HS256_SECRET.as_bytes(), hdr("HS512", Some(KID_HS256)), good_claims()), "AlgMismatch"),
            ("EdDSA without kid", ed_token(&f.ed, hdr("EdDSA", None), good_claims()), "AlgMismatch"),
            ("ES256 signature on the Ed kid", es_token(hdr("ES256", Some(KID_ED)), good_claims()), "AlgMismatch"),
            // ---- kid ----
            ("unknown kid", hs("HS256", KID_HS256_SECRET.as_bytes(), hdr("HS256", Some("2099-01")), good_claims()), "UnknownKid"),
            ("kid SQL injection", kid_hs_with("' OR 1=1--"), "BadKid"),
            ("kid path traversal", kid_hs_with("../../k"), "BadKid"),
            ("kid empty", kid_hs_with(""), "BadKid"),
            ("kid 65 chars", kid_hs_with(&"k".repeat(65)), "BadKid"),
            ("kid not a string", hs("HS256", KID_HS256_SECRET.as_bytes(), json!({"alg": "HS256", "kid": 1}), good_claims()), "BadKid"),
            // ---- keys carried by the token ----
            ("embedded jwk with attacker key", ed_token(&attacker,
                json!({"alg": "EdDSA", "kid": KID_ED, "jwk": {"kty": "OKP", "crv": "Ed25519",
                    "x": b64(attacker.verifying_key().as_bytes())}}), good_claims()), "BadSignature"),
            ("attacker key, jku, no kid", ed_token(&attacker,
                json!({"alg": "EdDSA", "jku": "https://evil.example/jwks"}), good_claims()), "AlgMismatch"),
            // ---- header parameters ----
            ("typ id+jwt", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "typ": "id+jwt"}), good_claims()), "BadType"),
            ("typ JOSE+JSON", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "typ": "JOSE+JSON"}), good_claims()), "BadType"),
            ("crit header", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "crit": ["exp"], "exp": 1}), good_claims()), "CriticalHeader"),
            ("crit b64", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "crit": ["b64"], "b64": true}), good_claims()), "CriticalHeader"),
            ("enc header", hs("HS256", KIDLESS_SECRET.as_bytes(), json!({"alg": "HS256", "enc": "A256GCM"}), good_claims()), "Encrypted"),
            ("duplicate alg in header", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"{"alg":"HS256","alg":"none"}"#, good_claims().to_string().as_bytes()), "Malformed"),
            // ---- shape ----
            ("5-part JWE", format!("{}.{}.{}.{}.{}", b64(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#), "AAAA", "BBBB", "CCCC", "DDDD"), "Encrypted"),
            ("4 parts", format!("{valid}.AAAA"), "Malformed"),
            ("2 parts", valid_body.to_owned(), "Malformed"),
            ("oversized", kidless(claims_with(|c| c["pad"] = json!(big_pad))), "TooLarge"),
            ("padding", format!("{valid}="), "Malformed"),
            ("whitespace", format!(" {valid}"), "Malformed"),
            ("header not JSON", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), b"hello", good_claims().to_string().as_bytes()), "Malformed"),
            ("header not UTF-8", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), b"{\"alg\":\"HS256\xff\"}", good_claims().to_string().as_bytes()), "Malformed"),
            ("header JSON array", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"["HS256"]"#, good_claims().to_string().as_bytes()), "Malformed"),
            ("payload not JSON (signed)", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"{"alg":"HS256"}"#, b"not json"), "Malformed"),
            ("payload not UTF-8 (signed)", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"{"alg":"HS256"}"#, b"{\"iss\":\"\xc3\x28\"}"), "Malformed"),
            ("payload JSON array (signed)", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"{"alg":"HS256"}"#,
                json!([now() + 300, 0, "alice", ISS, AUD]).to_string().as_bytes()), "Malformed"),
            ("duplicate app_id in payload (signed)", hs_raw("HS256", KIDLESS_SECRET.as_bytes(), br#"{"alg":"HS256"}"#,
                format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"app_id":"a","app_id":"b","scope":"cloudcode:x"}}"#, now() + 300).as_bytes()), "Malformed"),
            // ---- signatures ----
            ("payload swapped", format!("{valid_head}.{other_claims}.{valid_sig}"), "BadSignature"),
            ("wrong secret", hs("HS256", b"some-other-secret-that-is-long-enough!!", hdr("HS256", None), good_claims()), "BadSignature"),
            ("signature not base64url (length 1 mod 4)", format!("{valid_body}.{valid_sig}AA"), "Malformed"),
            ("signature one byte short", format!("{valid_body}.{}", &valid_sig[..valid_sig.len() - 3]), "BadSignature"),
            ("EdDSA signature by another key", ed_token(&attacker, hdr("EdDSA", Some(KID_ED)), good_claims()), "BadSignature"),
            ("empty", String::new(), "MissingToken"),
        ];

        let mut failures = Vec::new();
        for (name, token, expected) in &cases {
            let got = outcome(&f.verifier.verify(token));
            if !got.starts_with(expected) {
                failures.push(format!("{name}: expected {expected}, got {got}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} case(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn kid_hs_with(kid: &str) -> String {
        hs(
            "HS256",
            KID_HS256_SECRET.as_bytes(),
            hdr("HS256", Some(kid)),
            good_claims(),
        )
    }

    #[test]
    fn valid_token_yields_its_claims() {
        let claims = fx().verifier.verify(&kidless(good_claims())).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("alice"));
        assert_eq!(claims.actor(), "alice");
        assert_eq!(claims.app_id, "app-1");
        assert_eq!(claims.scopes, ["openid", "cloudcode:users:read"]);
        assert_eq!(claims.iss, ISS);
        assert!((claims.exp - now() - 300).abs() <= 2);

        let anonymous = fx().verifier.verify(&kidless(without("sub")));
        assert_eq!(anonymous.unwrap().actor(), DEFAULT_ACTOR);
    }

    #[test]
    fn token_without_kid_needs_the_kidless_key() {
        let dir = TempDir::new();
        let keys =
            json!({"keys": [{"kid": KID_HS256, "alg": "HS256", "secret": KID_HS256_SECRET}]});
        let path = dir.write("keys.json", &keys.to_string());
        let verifier = Verifier::from_config(&config(None, Some(path))).unwrap();
        assert!(!verifier.has_hs_secret());
        assert!(fx().verifier.has_hs_secret());
        assert_eq!(
            verifier.verify(&kidless(good_claims())),
            Err(AuthError::NoKidlessKey)
        );
        let with_kid = hs(
            "HS256",
            KID_HS256_SECRET.as_bytes(),
            hdr("HS256", Some(KID_HS256)),
            good_claims(),
        );
        assert!(verifier.verify(&with_kid).is_ok());
    }

    #[test]
    fn leeway_is_configurable() {
        let mut cfg = config(Some(KIDLESS_SECRET), None);
        cfg.leeway_secs = 0;
        let strict = Verifier::from_config(&cfg).unwrap();
        let token = kidless(claims_with(|c| c["exp"] = json!(now() - 10)));
        assert_eq!(strict.verify(&token), Err(AuthError::Expired));
        cfg.leeway_secs = MAX_LEEWAY_SECS;
        let lax = Verifier::from_config(&cfg).unwrap();
        assert!(lax.verify(&token).is_ok());
    }

    #[test]
    fn a_remembered_token_is_still_refused_once_it_expires() {
        let mut cfg = config(Some(KIDLESS_SECRET), None);
        cfg.leeway_secs = 0;
        let verifier = Verifier::from_config(&cfg).unwrap();
        let token = kidless(claims_with(|c| c["exp"] = json!(now() + 1)));
        assert!(verifier.verify(&token).is_ok());
        assert!(
            verifier.verify(&token).is_ok(),
            "the second check is answered from memory"
        );
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(verifier.verify(&token), Err(AuthError::Expired));
        // A token that never verified is not remembered, however often it comes.
        let last = if token.ends_with('A') { "B" } else { "A" };
        let forged = format!("{}{last}", &token[..token.len() - 1]);
        for _ in 0..2 {
            assert!(verifier.verify(&forged).is_err());
        }
    }

    // ---- garbage never panics ---------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let len = self.below(max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
        fn pick(&mut self, alphabet: &[u8], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())] as char)
                .collect()
        }
    }

    #[test]
    fn random_input_is_refused_without_panicking() {
        const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const MIXED: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \t\"{}";
        const JSONISH: &[u8] = b"{}[]\":,. alg HS256 EdDSA none kid typ crit exp 0123456789-e";
        let f = fx();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let valid = [
            kidless(good_claims()),
            ed_token(&f.ed, hdr("EdDSA", Some(KID_ED)), good_claims()),
            es_token(hdr("ES256", Some(KID_ES)), good_claims()),
        ];
        for round in 0..4000 {
            let input = match round % 6 {
                0 => String::from_utf8_lossy(&rng.bytes(400)).into_owned(),
                1 => rng.pick(MIXED, 400),
                2 => format!(
                    "{}.{}.{}",
                    b64(&rng.bytes(60)),
                    b64(&rng.bytes(200)),
                    b64(&rng.bytes(80))
                ),
                3 => format!(
                    "{}.{}.{}",
                    b64(rng.pick(JSONISH, 80).as_bytes()),
                    b64(rng.pick(JSONISH, 200).as_bytes()),
                    rng.pick(B64URL, 90)
                ),
                4 => {
                    // One character of a valid token replaced by a different one.
                    let mut bytes = valid[rng.below(valid.len())].clone().into_bytes();
                    let at = rng.below(bytes.len());
                    let old = bytes[at];
                    let mut new = old;
                    while new == old {
                        new = MIXED[rng.below(MIXED.len())];
                    }
                    bytes[at] = new;
                    String::from_utf8(bytes).unwrap()
                }
                _ => {
                    // A valid token cut short.
                    let token = &valid[rng.below(valid.len())];
                    token[..rng.below(token.len())].to_owned()
                }
            };
            let result = f.verifier.verify(&input);
            assert!(result.is_err(), "accepted garbage {input:?}");
        }
        let huge = "A.".repeat(100_000);
        assert!(matches!(
            f.verifier.verify(&huge),
            Err(AuthError::TooLarge { .. })
        ));
    }

    // ---- scopes ----------------------------------------------------------------

    fn with_scopes(scopes: &[&str]) -> Claims {
        Claims {
            sub: None,
            app_id: "a".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            exp: 0,
            iss: ISS.into(),
        }
    }

    #[test]
    fn has_scope_wildcard_and_exact() {
        let wild = with_scopes(&["cloudcode:users:*"]);
        assert!(wild.has_scope("cloudcode:users:read"));
        assert!(wild.has_scope("cloudcode:users:write"));
        assert!(wild.has_scope("cloudcode:users:sessions:revoke"));
        assert!(wild.has_scope("cloudcode:users:*"));
        assert!(!wild.has_scope("cloudcode:users:"));
        assert!(!wild.has_scope("cloudcode:users"));
        assert!(!wild.has_scope("cloudcode:apps:read"));
        assert!(!wild.has_scope("cloudcode:usersX:read"));
        assert!(!wild.has_scope(""));
        assert!(!wild.has_scope("cloudcode:users:read extra"));

        let exact = with_scopes(&["cloudcode:users:read", "cloudcode:*"]);
        assert!(exact.has_scope("cloudcode:users:read"));
        assert!(
            !exact.has_scope("cloudcode:users:write"),
            "only cloudcode:users:* is a wildcard"
        );
        assert!(!exact.has_scope("cloudcode:users:read:all"));
        assert!(!exact.has_scope("CLOUDCODE:USERS:READ"));
        assert!(!with_scopes(&[]).has_scope("cloudcode:users:read"));
    }

    // ---- minting -----------------------------------------------------------------

    fn mint_request<'a>(scopes: &'a [String]) -> MintRequest<'a> {
        MintRequest {
            app_id: "app-9",
            scopes,
            ttl_secs: 600,
            sub: "cli",
            issuer: ISS,
            audience: AUD,
        }
    }

    #[test]
    fn mint_then_verify_roundtrip() {
        let scopes = vec!["cloudcode:users:*".to_owned(), "openid".to_owned()];
        let token = mint_hs256(KIDLESS_SECRET.as_bytes(), &mint_request(&scopes)).unwrap();

        let claims = fx().verifier.verify(&token).unwrap();
        assert_eq!(claims.app_id, "app-9");
        assert_eq!(claims.sub.as_deref(), Some("cli"));
        assert_eq!(claims.scopes, scopes);
        assert!(claims.has_scope("cloudcode:users:delete"));

        // Check the encoding by hand, not through jsonwebtoken.
        let (input, sig) = token.rsplit_once('.').unwrap();
        assert_eq!(
            b64(&hmac_sig(
                "HS256",
                KIDLESS_SECRET.as_bytes(),
                input.as_bytes()
            )),
            sig,
            "signature is HMAC-SHA256 over header.payload"
        );
        let (head, body) = input.split_once('.').unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
        let body: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        let iat = body["iat"].as_i64().unwrap();
        assert!((iat - now()).abs() <= 2);
        assert_eq!(body["nbf"].as_i64(), Some(iat));
        assert_eq!(body["exp"].as_i64(), Some(iat + 600));
        assert_eq!(body["scope"], json!("cloudcode:users:* openid"));
        assert_eq!(body["aud"], json!(AUD));

        // Same secret, other audience: refused.
        let mut other = mint_request(&scopes);
        other.audience = "billing";
        let token = mint_hs256(KIDLESS_SECRET.as_bytes(), &other).unwrap();
        assert_eq!(fx().verifier.verify(&token), Err(AuthError::WrongAudience));

        // Empty sub is left out.
        let mut anon = mint_request(&scopes);
        anon.sub = "";
        let token = mint_hs256(KIDLESS_SECRET.as_bytes(), &anon).unwrap();
        assert_eq!(fx().verifier.verify(&token).unwrap().actor(), DEFAULT_ACTOR);
    }

    #[test]
    fn mint_refuses_what_verify_would_refuse() {
        let good = vec!["cloudcode:users:read".to_owned()];
        let secret = KIDLESS_SECRET.as_bytes();
        assert!(matches!(
            mint_hs256(b"short", &mint_request(&good)),
            Err(MintError::SecretTooShort { got: 5, min: 32 })
        ));
        let mut req = mint_request(&good);
        req.ttl_secs = 0;
        assert!(matches!(
            mint_hs256(secret, &req),
            Err(MintError::InvalidTtl(0))
        ));
        req.ttl_secs = i64::MAX;
        assert!(matches!(
            mint_hs256(secret, &req),
            Err(MintError::InvalidTtl(_))
        ));
        let no_cc = vec!["openid".to_owned()];
        assert!(matches!(
            mint_hs256(secret, &mint_request(&no_cc)),
            Err(MintError::NoCloudcodeScope)
        ));
        let spaced = vec!["cloudcode:a cloudcode:b".to_owned()];
        assert!(matches!(
            mint_hs256(secret, &mint_request(&spaced)),
            Err(MintError::InvalidScope(_))
        ));
        let mut req = mint_request(&good);
        req.app_id = "";
        assert!(matches!(
            mint_hs256(secret, &req),
            Err(MintError::InvalidAppId(_))
        ));
        let mut req = mint_request(&good);
        req.issuer = "";
        assert!(matches!(
            mint_hs256(secret, &req),
            Err(MintError::Empty("issuer"))
        ));
    }

    // ---- configuration errors ------------------------------------------------------

    fn load(keys: Value) -> Result<Verifier, KeyError> {
        let dir = TempDir::new();
        let path = dir.write("keys.json", &keys.to_string());
        Verifier::from_config(&config(None, Some(path)))
    }

    fn entry_error(keys: Value) -> String {
        match load(keys) {
            Err(e @ KeyError::InvalidKey { .. }) => e.to_string(),
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    #[test]
    fn config_errors() {
        assert!(matches!(
            Verifier::from_config(&config(None, None)),
            Err(KeyError::NoKeyConfigured)
        ));
        assert!(matches!(
            Verifier::from_config(&config(Some("too-short"), None)),
            Err(KeyError::SecretTooShort { got: 9, min: 32 })
        ));
        assert!(matches!(
            Verifier::from_config(&config(Some(""), None)),
            Err(KeyError::SecretTooShort { .. })
        ));
        let mut cfg = config(Some(KIDLESS_SECRET), None);
        cfg.leeway_secs = 61;
        assert!(matches!(
            Verifier::from_config(&cfg),
            Err(KeyError::LeewayTooLarge { got: 61, max: 60 })
        ));
        let mut cfg = config(Some(KIDLESS_SECRET), None);
        cfg.issuer = " ".into();
        assert!(matches!(
            Verifier::from_config(&cfg),
            Err(KeyError::EmptyIssuer)
        ));
        let mut cfg = config(Some(KIDLESS_SECRET), None);
        cfg.audience = String::new();
        assert!(matches!(
            Verifier::from_config(&cfg),
            Err(KeyError::EmptyAudience)
        ));

        let missing = std::env::temp_dir().join("usersvc-jwt-test-does-not-exist/keys.json");
        let err = Verifier::from_config(&config(Some(KIDLESS_SECRET), Some(missing))).unwrap_err();
        assert!(matches!(err, KeyError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("does-not-exist"), "{err}");

        let dir = TempDir::new();
        let path = dir.write("keys.json", "{not json");
        assert!(matches!(
            Verifier::from_config(&config(None, Some(path))),
            Err(KeyError::InvalidKeysFile { .. })
        ));
        assert!(matches!(
            load(json!({"keys": []})),
            Err(KeyError::InvalidKeysFile { .. })
        ));
        assert!(matches!(
            load(json!({"keyz": []})),
            Err(KeyError::InvalidKeysFile { .. })
        ));

        let hs = |kid: &str| json!({"kid": kid, "alg": "HS256", "secret": KID_HS256_SECRET});
        match load(json!({"keys": [hs("a"), hs("b"), hs("a")]})) {
            Err(KeyError::DuplicateKid {
                kid,
                first: 0,
                second: 2,
                ..
            }) => assert_eq!(kid, "a"),
            other => panic!("expected DuplicateKid, got {other:?}"),
        }
    }

    #[test]
    fn keys_file_entry_errors_name_the_entry_and_the_reason() {
        let f = fx();
        let ok = json!({"kid": "ok", "alg": "HS256", "secret": KID_HS256_SECRET});
        let cases = [
            (
                json!({"kid": "k", "alg": "HS256", "secret": "short"}),
                "at least 32",
            ),
            (
                json!({"kid": "k", "alg": "HS512", "secret": KID_HS256_SECRET}),
                "at least 64",
            ),
            (
                json!({"kid": "k", "alg": "HS256", "secret_base64": "@@not base64@@"}),
                "base64",
            ),
            (
                json!({"kid": "k", "alg": "HS256", "secret": KID_HS256_SECRET, "secret_base64": "AAAA"}),
                "exactly one",
            ),
            (json!({"kid": "k", "alg": "HS256"}), "exactly one"),
            (
                json!({"kid": "k", "alg": "HS256", "public_key_pem": f.ed_pub_pem}),
                "needs secret",
            ),
            (
                json!({"kid": "k", "alg": "RS256", "secret": KID_HS256_SECRET}),
                "needs public_key_pem",
            ),
            (
                json!({"kid": "k", "alg": "none", "secret": KID_HS256_SECRET}),
                "unknown alg",
            ),
            (
                json!({"kid": "k", "alg": "PS256", "public_key_pem": f.rsa_pub_pem}),
                "unknown alg",
            ),
            (
                json!({"kid": "../k", "alg": "HS256", "secret": KID_HS256_SECRET}),
                "kid must be",
            ),
            (
                json!({"alg": "HS256", "secret": KID_HS256_SECRET}),
                "missing field `kid`",
            ),
            (
                json!({"kid": "k", "alg": "HS256", "secrte": KID_HS256_SECRET}),
                "unknown field",
            ),
            (
                json!({"kid": "k", "alg": "EdDSA", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}),
                "not a valid EdDSA",
            ),
            (
                json!({"kid": "k", "alg": "EdDSA", "public_key_pem": "hello"}),
                "exactly one PEM block",
            ),
            (
                json!({"kid": "k", "alg": "RS256", "public_key_pem": RSA_PRIVATE_PEM}),
                "private key",
            ),
            (
                json!({"kid": "k", "alg": "RS256", "public_key_pem": RSA_1024_PUBLIC_PEM}),
                "1024 bits",
            ),
            (
                json!({"kid": "k", "alg": "EdDSA", "public_key_pem": f.rsa_pub_pem}),
                "not a valid EdDSA",
            ),
            (
                json!({"kid": "k", "alg": "RS256", "public_key_pem": f.ed_pub_pem}),
                "not a valid RS256",
            ),
            (
                json!({"kid": "k", "alg": "ES256", "public_key_pem": P384_PUBLIC_PEM}),
                "rejects this key",
            ),
            (
                json!({"kid": "k", "alg": "ES256", "public_key_pem_file": "nope.pem"}),
                "cannot read",
            ),
        ];
        for (entry, needle) in cases {
            let message = entry_error(json!({"keys": [ok.clone(), entry.clone()]}));
            assert!(message.contains("keys[1]"), "{entry}: {message}");
            assert!(
                message.contains(needle),
                "{entry}: expected {needle:?} in {message}"
            );
            assert!(
                !message.contains(KID_HS256_SECRET),
                "secret leaked: {message}"
            );
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::MissingToken));
        assert!(matches!(
            bearer_token(Some("Basic dXNlcjpw")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            bearer_token(Some("Bearerabc")),
            Err(AuthError::Malformed(_))
        ));
        assert_eq!(AuthError::BadSignature.client_message(), "unauthenticated");

        let debug = format!(
            "{:?} {:?}",
            config(Some(KIDLESS_SECRET), None),
            fx().verifier
        );
        assert!(!debug.contains(KIDLESS_SECRET), "{debug}");
        assert!(debug.contains(KID_ED), "{debug}");

        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Verifier>();
    }
}
