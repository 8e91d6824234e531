//! Bearer-token (JWT) verification, and HS256 minting for `usersvc token`.
//!
//! jsonwebtoken checks the signature with the key's one algorithm (`none` and algorithm
//! confusion fail there), that `exp`, `iss` and `aud` are present, `iss` and `aud`. What it does
//! not know is checked here: size, `crit`, `typ`, `kid` (a lookup key only; `jku`, `x5u`, `jwk`
//! are never read); `exp`, `nbf`, `iat` and the lifetime against the settings' clock (the crate
//! reads the system clock, which tests cannot move); `app_id`, `scope` and `sub`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, EncodingKey, Header, errors::ErrorKind as K};
use serde::Deserialize;
use serde_json::json;

use super::JwtSettings;
use super::jwks::Jwks;
use super::keys::{self, Key, KeySet};

const NO_KEY: &str =
    "no JWT key: set USERSVC_JWT_SECRET, USERSVC_JWT_KEYS_FILE or USERSVC_JWT_JWKS_URL";

/// Why a token was refused: for the logs only, the client always gets the same 401. The
/// `&'static str` names the rule (or the claim) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Over 8 KiB, not a JWS of base64url JSON, claims of the wrong shape, or a refused header.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// No configured key has the token's `kid` (empty: no kid, and no secret is set).
    #[error("no key for kid {0:?}")]
    UnknownKey(String),
    /// Refused by jsonwebtoken: signature, algorithm, `exp`/`iss`/`aud` missing, issuer, audience.
    #[error("refused by the JWT library: {0}")]
    Rejected(String),
    /// Expired, not yet valid, issued in the future, or living too long.
    #[error("token lifetime: {0}")]
    Lifetime(&'static str),
    /// `app_id`, `scope` or `sub` unusable.
    #[error("invalid claim: {0}")]
    Claim(&'static str),
}

/// A setting, key or token to mint that cannot be used; the message says which and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// What a verified token says about its caller (and what a minted one says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: who calls, for the audit trail.
    pub sub: Option<String>,
    /// `app_id`: the tenant the caller acts on.
    pub app_id: String,
    /// `scope`, split on whitespace.
    pub scopes: Vec<String>,
}

/// The claims as the token has them (times in seconds since the epoch).
#[derive(Deserialize)]
struct Wire {
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    app_id: String,
    scope: String,
    sub: Option<String>,
}

/// Verifies bearer tokens. Cloning is cheap (an `Arc`).
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

struct Inner {
    kidless: Option<Arc<Key>>,
    file: KeySet,
    jwks: Option<Jwks>,
    s: JwtSettings,
    /// Tokens (up to 2 KiB, 256 at most) that passed every check, with their `exp` and the JWKS
    /// generation they were checked under: a caller sends one token with every request, and
    /// checking it again costs more than a small query. A hit re-checks `exp` (`nbf` and `iat`
    /// can only have become true); none counts while the JWKS cache is stale; a full map starts
    /// over.
    remembered: Mutex<HashMap<String, (Claims, f64, u64)>>,
}

/// The reason of the first broken rule.
fn first(rules: &[(bool, &'static str)]) -> Option<&'static str> {
    rules.iter().find(|rule| rule.0).map(|rule| rule.1)
}

impl Verifier {
    /// Loads and checks every configured key. With a JWKS URL, fetches it once; if that fails,
    /// the start fails only when the URL is the only source of keys.
    pub async fn new(s: JwtSettings) -> Result<Self, ConfigError> {
        let keyless = s.secret.is_none() && s.keys_file.is_none() && s.jwks_url.is_none();
        let no_crypto = CryptoProvider::try_get_default().is_none();
        let unnamed = s.issuer.trim().is_empty() || s.audience.trim().is_empty();
        if let Some(why) = first(&[
            (keyless, NO_KEY),
            (no_crypto, "jsonwebtoken has no crypto provider"),
            (s.leeway_secs > 60, "the JWT leeway is at most 60 s"),
            (unnamed, "the JWT issuer and audience must not be empty"),
        ]) {
            return Err(ConfigError(why.into()));
        }
        let kidless = s.secret.as_deref().map(|k| keys::from_secret(k, &s));
        let file = s.keys_file.as_deref().map(|path| keys::load_file(path, &s));
        let jwks = s.jwks_url.as_deref().map(|url| Jwks::new(url, &s));
        let kidless = kidless.transpose().map_err(ConfigError)?;
        let file = file.transpose().map_err(ConfigError)?.unwrap_or_default();
        let jwks = jwks.transpose().map_err(ConfigError)?;
        if let Some(jwks) = &jwks
            && let Err(e) = jwks.fetch_now().await
            && kidless.is_none()
            && file.is_empty()
        {
            return Err(ConfigError(format!(
                "the JWKS URL, the only key source: {e}"
            )));
        }
        let (secret, file_keys, jwks_url) = (kidless.is_some(), file.len(), &s.jwks_url);
        tracing::info!(
            secret,
            file_keys,
            jwks_url = jwks_url.as_deref(),
            "JWT keys loaded"
        );
        let remembered = Mutex::default();
        let inner = Inner {
            kidless,
            file,
            jwks,
            s,
            remembered,
        };
        Ok(Verifier(Arc::new(inner)))
    }

    /// Checks a token (without `Bearer `) and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = (self.0.s.clock)();
        let (now_f, leeway) = (now as f64, self.0.s.leeway_secs as f64);
        let generation = self.0.jwks.as_ref().map_or(Some(0), |j| j.generation(now));
        let map = &self.0.remembered;
        let remembered = || map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(generation) = generation
            && let Some((claims, exp, seen)) = remembered().get(token)
            && now_f <= exp + leeway
            && *seen == generation
        {
            return Ok(claims.clone());
        }
        let (claims, exp) = self.check(token, now_f, leeway).await?;
        if let Some(generation) = generation
            && token.len() <= 2048
        {
            let mut map = remembered();
            if map.len() >= 256 {
                map.clear();
            }
            map.insert(token.to_owned(), (claims.clone(), exp, generation));
        }
        Ok(claims)
    }

    async fn check(&self, token: &str, now: f64, leeway: f64) -> Result<(Claims, f64), AuthError> {
        if token.len() > 8 * 1024 {
            return Err(AuthError::Malformed("longer than 8 KiB"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
        let typ_ok = matches!(typ.as_deref(), None | Some("jwt" | "at+jwt"));
        let kid = header.kid.as_deref();
        if let Some(why) = first(&[
            (header.crit.is_some(), "crit header"),
            (!typ_ok, "typ is not JWT or at+jwt"),
            (!kid.is_none_or(keys::valid_kid), "kid"),
        ]) {
            return Err(AuthError::Malformed(why));
        }
        let key = match (kid, kid.and_then(|kid| self.0.file.get(kid)), &self.0.jwks) {
            (None, _, _) => self.0.kidless.clone(),
            (Some(_), Some(key), _) => Some(key.clone()),
            (Some(kid), None, Some(jwks)) => jwks.key(kid).await,
            (Some(_), None, None) => None,
        };
        let key = key.ok_or_else(|| AuthError::UnknownKey(kid.unwrap_or_default().into()))?;
        let data = jsonwebtoken::decode::<Wire>(token, &key.decoding, &key.validation);
        let wire = data.map_err(refused)?.claims;

        let future = |t: Option<f64>| t.is_some_and(|t| t > now + leeway);
        let too_long = wire.exp - wire.iat.unwrap_or(now) > self.0.s.max_ttl_secs as f64;
        if let Some(why) = first(&[
            (wire.exp < now - leeway, "expired"),
            (future(wire.nbf), "nbf in the future"),
            (future(wire.iat), "iat in the future"),
            (too_long, "longer than USERSVC_JWT_MAX_TTL"),
        ]) {
            return Err(AuthError::Lifetime(why));
        }
        let scopes: Vec<String> = wire.scope.split_whitespace().map(str::to_owned).collect();
        let no_cloudcode = !scopes.iter().any(|s| s.starts_with("cloudcode:"));
        let bad_sub = wire.sub.as_deref().is_some_and(|sub| !clean(sub, 256));
        if let Some(why) = first(&[
            (!clean(&wire.app_id, 64), "app_id"),
            (no_cloudcode, "no cloudcode: scope"),
            (bad_sub, "sub"),
        ]) {
            return Err(AuthError::Claim(why));
        }
        let exp = wire.exp;
        let claims = Claims {
            sub: wire.sub,
            app_id: wire.app_id,
            scopes,
        };
        Ok((claims, exp))
    }
}

/// Whether a claim that ends up in logs is 1 to `max` characters without control characters.
fn clean(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

/// jsonwebtoken's refusal, without serde's message (it may quote the token's content).
fn refused(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        K::Json(_) | K::Utf8(_) | K::Base64(_) | K::InvalidToken => {
            AuthError::Malformed("not a JWS of base64url JSON with the expected claims")
        }
        kind => AuthError::Rejected(format!("{kind:?}")),
    }
}

/// Signs an HS256 token without `kid` with the settings' secret, issuer and audience:
/// `iat` = `nbf` = now (the settings' clock), `exp` = now + `ttl_secs`.
pub fn mint_hs256(s: &JwtSettings, claims: &Claims, ttl_secs: u64) -> Result<String, ConfigError> {
    let secret = s.secret.as_deref().unwrap_or_default().as_bytes();
    let scope = claims.scopes.join(" ");
    let spaced = |s: &String| s.is_empty() || s.contains(char::is_whitespace);
    let cloudcode = claims.scopes.iter().any(|s| s.starts_with("cloudcode:"));
    let bad_scopes = !cloudcode || claims.scopes.iter().any(spaced);
    let bad_ttl = ttl_secs == 0 || ttl_secs > s.max_ttl_secs;
    if let Some(why) = first(&[
        (secret.len() < 32, "minting needs a secret of 32+ bytes"),
        (bad_ttl, "the ttl is 0 or over the maximum TTL"),
        (bad_scopes, "scopes: a cloudcode: one, no spaces"),
    ]) {
        return Err(ConfigError(why.into()));
    }
    let now = (s.clock)();
    let mut token = json!({ "iss": s.issuer, "aud": s.audience, "app_id": claims.app_id,
        "scope": scope, "iat": now, "nbf": now, "exp": now.saturating_add(ttl_secs) });
    if let Some(sub) = &claims.sub {
        token["sub"] = json!(sub);
    }
    let key = EncodingKey::from_secret(secret).map_err(|e| ConfigError(e.to_string()))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &token, &key)
        .map_err(|e| ConfigError(e.to_string()))
}

#[cfg(test)]
pub(super) mod tests;
