//! `usersvc serve`: open the database, apply migrations, start the server, print where it
//! listens, and stop on SIGINT or SIGTERM.

use crate::auth::jwt::{Claims, Verifier, mint_hs256};
use crate::auth::scopes;
use crate::config::{ServeArgs, load_or_create_dev_key};
use crate::telemetry::LogFormat;

pub(super) async fn serve(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<()> {
    if args.db.database_url.is_some() && !args.jwt.has_key() {
        anyhow::bail!(
            "no JWT key configured: set USERSVC_JWT_SECRET, USERSVC_JWT_KEYS_FILE or USERSVC_JWT_JWKS_URL (a development key is only made for the embedded database)"
        );
    }
    if args.db.database_url.is_some() && args.link_key.is_none() {
        anyhow::bail!(
            "no link key configured: set USERSVC_LINK_KEY to a secret of at least 32 bytes, the same for every instance on this database (reset links are derived from it, and it is never stored in the database); a development key is only made for the embedded database"
        );
    }
    let (url, pg) = super::open_database(&args.db).await?;
    let result = serve_on(&args, &url, log_format).await;
    super::stop(pg).await;
    result
}

async fn serve_on(args: &ServeArgs, url: &str, log_format: LogFormat) -> anyhow::Result<()> {
    let applied = crate::db::run_migrations(url).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = %applied.join(", "), "applied migrations");
    }
    let dev_secret = if args.jwt.has_key() {
        None
    } else {
        Some(load_or_create_dev_key(&args.db.dev_key_path())?)
    };
    let verifier = Verifier::new(args.jwt.jwt_config(dev_secret.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("JWT keys: {e}"))?;
    let dev_token = match &dev_secret {
        Some(secret) => {
            ensure_dev_app(url).await?;
            let ttl = args.jwt.jwt_max_ttl.min(24 * 3600).unsigned_abs();
            let claims = Claims {
                sub: Some("developer".to_owned()),
                app_id: "dev".to_owned(),
                scopes: vec![scopes::ALL.to_owned()],
            };
            let token = mint_hs256(&args.jwt.jwt_config(Some(secret.clone())), &claims, ttl)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Some((token, ttl))
        }
        None => None,
    };
    let link_key = match &args.link_key {
        Some(key) => key.clone(),
        None => load_or_create_dev_key(&args.db.dev_link_key_path())?,
    };
    let mut http = args.http();
    // GraphiQL starts with the development token only when the development key is in force.
    http.graphiql_token = dev_token.as_ref().map(|(token, _)| token.clone());
    let running = crate::server::start(crate::server::ServerConfig {
        db: args.db_settings(url.to_owned()),
        verifier,
        limits: args.limits(),
        http,
        listen: args.listen.clone(),
        hash_concurrency: args.hash_concurrency(),
        mail: args.mail(link_key.into_bytes()),
    })
    .await?;
    banner(&running.addr.to_string(), dev_token.as_ref(), log_format);
    crate::server::shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await
}

/// How a person runs this very binary from where they are: `usersvc` when that is it on
/// `PATH`, else its path (relative to the working folder when it lies below it).
fn this_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "usersvc".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("usersvc")
                .canonicalize()
                .is_ok_and(|found| exe.canonicalize().is_ok_and(|me| me == found))
        })
    });
    if on_path {
        return "usersvc".into();
    }
    match std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(|p| p.to_path_buf()))
    {
        Some(relative) => format!("./{}", relative.display()),
        None => exe.display().to_string(),
    }
}

/// Where the server listens, on stdout for a person (text), or as one JSON log line (json),
/// which leaves the development token out: logs never carry tokens.
fn banner(addr: &str, dev_token: Option<&(String, u64)>, log_format: LogFormat) {
    let base = format!("http://{addr}");
    let more_tokens = format!("{} token --app dev --ttl 1h", this_command());
    if log_format == LogFormat::Json {
        tracing::info!(
            address = %base,
            graphiql = %format!("{base}/graphql"),
            schema = %format!("{base}/schema.graphql"),
            development_app = dev_token.is_some().then_some("dev"),
            more_tokens = dev_token.is_some().then_some(more_tokens.as_str()),
            "usersvc is listening"
        );
        return;
    }
    println!("usersvc is listening on {base}");
    println!("  GraphiQL:   {base}/graphql");
    println!("  Schema:     {base}/schema.graphql");
    if let Some((token, ttl)) = dev_token {
        let hours = ttl / 3600;
        let valid = if hours >= 1 {
            format!("{hours} h")
        } else {
            format!("{} min", ttl / 60)
        };
        println!(
            "  Development token for app \"dev\" (all scopes, valid {valid}; GraphiQL here \
             starts with it):"
        );
        println!("  {{\"Authorization\": \"Bearer {token}\"}}");
        println!("  More tokens: {more_tokens}");
    }
}

async fn ensure_dev_app(url: &str) -> anyhow::Result<()> {
    let mut conn = crate::db::connect(url).await?;
    if crate::db::apps::find(&mut conn, "dev").await?.is_none() {
        crate::db::apps::insert(
            &mut conn,
            &crate::db::models::NewApp {
                app_id: "dev",
                name: "Development",
                parent_app_id: None,
            },
        )
        .await?;
        tracing::info!("created app \"dev\"");
    }
    Ok(())
}
