//! Who is calling: JWT verification ([`jwt`]), its keys (`keys`: the secret and the JWK Set
//! file; `jwks`: an identity provider's published keys), the Cloud Code scopes ([`scopes`]) and
//! the [`Caller`] that the service layer receives — the tenant comes from here and nowhere else.
//! This module uses no other module of the crate.

mod jwks;
pub mod jwt;
mod keys;
pub mod scopes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from, in seconds since the Unix epoch: [`system_clock`], or a test's own.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Token verification settings, filled in from the configuration by the caller.
#[derive(Clone)]
pub struct JwtSettings {
    /// An HS256 secret (at least 32 bytes) for tokens without `kid`; also what mints tokens.
    pub secret: Option<String>,
    /// A JWK Set file: keys with `kid` and `alg`.
    pub keys_file: Option<PathBuf>,
    /// An identity provider's JWKS URL (https, or http to a loopback address).
    pub jwks_url: Option<String>,
    /// Required `iss`.
    pub issuer: String,
    /// A value `aud` must hold.
    pub audience: String,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (at most 60).
    pub leeway_secs: u64,
    /// Longest token lifetime accepted, in seconds.
    pub max_ttl_secs: u64,
    /// Where "now" comes from.
    pub clock: Clock,
}

/// An authenticated caller: the tenant it acts for, a name for the audit trail, its scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The app (tenant) taken from the token's `app_id` claim.
    pub app_id: String,
    /// Who acts, for the audit trail: the token's `sub`, or what the CLI says.
    pub actor: String,
    scopes: Vec<String>,
}

impl Caller {
    /// The caller a verified token describes.
    pub fn from_claims(claims: jwt::Claims) -> Self {
        Caller {
            app_id: claims.app_id,
            actor: claims.sub.unwrap_or_else(|| "unknown".to_owned()),
            scopes: claims.scopes,
        }
    }

    /// A caller inside usersvc itself (the CLI, the hosted pages), with every scope.
    pub fn system(app_id: impl Into<String>, actor: impl Into<String>) -> Self {
        Caller {
            app_id: app_id.into(),
            actor: actor.into(),
            scopes: vec![scopes::ALL.to_owned()],
        }
    }

    /// Whether one of the caller's scopes grants `needed`.
    pub fn has_scope(&self, needed: &str) -> bool {
        self.scopes.iter().any(|held| scopes::grants(held, needed))
    }
}
