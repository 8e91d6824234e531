//! Who is calling: JWT verification ([`jwt`]), the Cloud Code scopes ([`scopes`]) and the
//! [`Caller`] that the service layer receives — the tenant comes from here and nowhere else.

pub mod jwt;
pub mod scopes;

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
