//! `usersvc token`: mint an HS256 token for an app, with `USERSVC_JWT_SECRET` or the
//! development key.

use crate::auth::jwt::{Claims, mint_hs256};
use crate::auth::scopes;
use crate::config::{DbArgs, JwtArgs, parse_duration_secs};
use crate::error::AppError;

#[derive(clap::Args, Debug)]
pub(super) struct TokenArgs {
    /// The app (tenant) the token acts for; it must exist (see --allow-missing-app).
    #[arg(long)]
    app: String,
    /// A scope; repeat for several (default: cloudcode:users:*).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Lifetime: 90s, 15m, 1h, 7d (at most USERSVC_JWT_MAX_TTL).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The caller's name, written to the audit log.
    #[arg(long, default_value = "cli")]
    sub: String,
    /// Mint the token even if the app does not exist yet (for scripts that create it later);
    /// without it, a missing app is refused, since its token could read nothing and write
    /// nothing.
    #[arg(long)]
    allow_missing_app: bool,
    #[command(flatten)]
    jwt: JwtArgs,
    #[command(flatten)]
    db: DbArgs,
}

pub(super) async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let secret = match &args.jwt.jwt_secret {
        Some(s) => s.clone(),
        None => std::fs::read_to_string(args.db.dev_key_path())
            .map(|s| s.trim().to_owned())
            .map_err(|_| {
                anyhow::anyhow!(
                    "no HS256 key: set USERSVC_JWT_SECRET, or run `usersvc serve` once with the embedded database to make a development key"
                )
            })?,
    };
    let ttl = parse_duration_secs(&args.ttl).map_err(|e| anyhow::anyhow!(e))?;
    if !args.allow_missing_app {
        let app = args.app.clone();
        super::with_database(&args.db, |db| async move {
            match crate::apps::find(&mut db.pool(), &app).await {
                Ok(_) => Ok(()),
                Err(AppError::BadUserInput(_)) => Err(anyhow::anyhow!(
                    "no app {app}: create it with `usersvc app create --id {app} --name …`, or pass --allow-missing-app"
                )),
                Err(e) => Err(super::failure(e)),
            }
        })
        .await?;
    }
    let scopes = if args.scopes.is_empty() {
        vec![scopes::ALL.to_owned()]
    } else {
        args.scopes
    };
    let claims = Claims {
        sub: Some(args.sub).filter(|s| !s.is_empty()),
        app_id: args.app,
        scopes,
    };
    let token = mint_hs256(
        &args.jwt.jwt_config(Some(secret)),
        &claims,
        ttl.unsigned_abs(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{token}");
    Ok(())
}
