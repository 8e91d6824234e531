//! The command line: `serve` (the default), `migrate`, `schema`, `app`, `token`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::apps;
use crate::auth::jwt::{Claims, Verifier, mint_hs256};
use crate::auth::scopes;
use crate::config::{DbArgs, JwtArgs, ServeArgs, load_or_create_dev_key, parse_duration_secs};
use crate::db::embedded::EmbeddedPostgres;
use crate::error::AppError;
use crate::telemetry::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "usersvc",
    version,
    about = "Admin GraphQL API for the users of applications"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log format.
    #[arg(long, env = "USERSVC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

/// Plain `usersvc`: `serve` with its settings from the environment.
#[derive(Parser, Debug)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (what plain `usersvc` does).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Print the GraphQL SDL.
    Schema,
    /// Manage apps (tenants) and their settings.
    App {
        #[command(subcommand)]
        command: AppCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage an app's email templates.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Mint a token with the configured HS256 key (or the development key).
    Token(TokenArgs),
}

#[derive(Subcommand, Debug)]
enum TemplateCommand {
    /// Create or update a template (minijinja syntax: {{ webUrl }}, {{ appName }}, …).
    /// Parts not given keep their stored value.
    Put {
        /// The app.
        #[arg(long)]
        app: String,
        /// The template id (1 to 128 letters, digits, '.', '_' or '-').
        #[arg(long)]
        id: String,
        /// The subject line.
        #[arg(long)]
        subject: Option<String>,
        /// A file with the plain-text body.
        #[arg(long)]
        text: Option<std::path::PathBuf>,
        /// A file with the HTML body.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Create an app.
    Create {
        /// The app id (brainCloud appId): 1 to 64 letters, digits, '.', '_' or '-'.
        #[arg(long)]
        id: String,
        /// A display name.
        #[arg(long)]
        name: String,
        /// The parent app (shared accounts), at most five levels deep.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List apps.
    List,
    /// Show an app's settings.
    Show {
        /// The app id.
        id: String,
    },
    /// Change a setting (run `usersvc app set --help` for the keys).
    #[command(after_help = settings_help())]
    Set {
        /// The app id.
        id: String,
        /// The setting.
        key: String,
        /// The new value.
        value: String,
    },
}

fn settings_help() -> String {
    let mut s = String::from("Settings:\n");
    for (k, what) in apps::SETTINGS {
        s.push_str(&format!("  {k:<26} {what}\n"));
    }
    s
}

#[derive(clap::Args, Debug)]
struct TokenArgs {
    /// The app (tenant) the token acts for.
    #[arg(long)]
    app: String,
    /// A scope; repeat for several (default: cloudcode:users:*).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Lifetime: 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The caller's name, written to the audit log.
    #[arg(long, default_value = "cli")]
    sub: String,
    #[command(flatten)]
    jwt: JwtArgs,
    #[command(flatten)]
    db: DbArgs,
}

/// Runs the command line; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("usersvc: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(Box::new(ServeOnly::parse_from(["usersvc"]).args)));
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usersvc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(db) => {
            let (url, pg) = crate::db::open(db.database_url.as_deref(), &db.data_dir).await?;
            let result = crate::db::run_migrations(&url).await;
            stop(pg).await;
            let applied = result?;
            if applied.is_empty() {
                println!("migrations: up to date");
            } else {
                println!("migrations: applied {}", applied.join(", "));
            }
            Ok(())
        }
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::App { command, db } => {
            let (url, pg) = crate::db::open(db.database_url.as_deref(), &db.data_dir).await?;
            let result = async {
                crate::db::run_migrations(&url).await?;
                app_command(command, &url).await
            }
            .await;
            stop(pg).await;
            result
        }
        Command::Template { command, db } => {
            let (url, pg) = crate::db::open(db.database_url.as_deref(), &db.data_dir).await?;
            let result = async {
                crate::db::run_migrations(&url).await?;
                template_command(command, &url).await
            }
            .await;
            stop(pg).await;
            result
        }
        Command::Token(args) => token(args),
    }
}

async fn stop(pg: Option<EmbeddedPostgres>) {
    if let Some(pg) = pg
        && let Err(e) = pg.stop().await
    {
        eprintln!("usersvc: stopping the embedded PostgreSQL: {e}");
    }
}

/// A service's refusal as the CLI reports it: the message, or for an unexpected failure its
/// cause (the operator running the CLI is the one who needs it).
fn failure(e: AppError) -> anyhow::Error {
    match e {
        AppError::Internal(cause) | AppError::Unavailable(cause) => anyhow::anyhow!(cause),
        e => anyhow::anyhow!(e.message()),
    }
}

async fn app_command(command: AppCommand, url: &str) -> anyhow::Result<()> {
    let db = crate::db::Db::new(&crate::db::DbSettings {
        url: url.to_owned(),
        max_size: 1,
        acquire_timeout: std::time::Duration::from_secs(10),
        statement_timeout: std::time::Duration::from_secs(30),
    })?;
    let pool = &mut db.pool();
    match command {
        AppCommand::Create { id, name, parent } => {
            let app = apps::create(pool, &id, &name, parent.as_deref())
                .await
                .map_err(failure)?;
            println!("created app {}", app.app_id);
        }
        AppCommand::List => {
            for app in apps::list(pool).await.map_err(failure)? {
                let parent = app
                    .parent_app_id
                    .map(|p| format!(" (child of {p})"))
                    .unwrap_or_default();
                println!("{}\t{}{}", app.app_id, app.name, parent);
            }
        }
        AppCommand::Show { id } => {
            let app = apps::find(pool, &id).await.map_err(failure)?;
            for (k, v) in apps::describe(&app) {
                println!("{k} = {v}");
            }
        }
        AppCommand::Set { id, key, value } => {
            // The sender the worker would compose from it must be one it can send with.
            if key == "mail.from"
                && !value.trim().is_empty()
                && let Err(e) = crate::mail::address::parse_from_setting(&value)
            {
                anyhow::bail!("mail.from: {e} (expected 'Name <address>' or an address)");
            }
            let app = apps::set(pool, &id, &key, &value).await.map_err(failure)?;
            let shown = apps::describe(&app).into_iter().find(|(k, _)| *k == key);
            if let Some((k, v)) = shown {
                println!("{} {k} = {v}", app.app_id);
            }
        }
    }
    Ok(())
}

async fn template_command(command: TemplateCommand, url: &str) -> anyhow::Result<()> {
    let TemplateCommand::Put {
        app,
        id,
        subject,
        text,
        html,
    } = command;
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        anyhow::bail!("a template id is 1 to 128 letters, digits, '.', '_' or '-'");
    }
    let mut conn = crate::db::connect(url).await?;
    crate::db::apps::find(&mut conn, &app)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no app {app}"))?;
    let existing = crate::db::templates::find(&mut conn, &app, &id).await?;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))
    };
    let subject = match (subject, &existing) {
        (Some(s), _) => s,
        (None, Some(t)) => t.subject.clone(),
        (None, None) => anyhow::bail!("a new template needs --subject"),
    };
    let text = match (text, &existing) {
        (Some(p), _) => read(&p)?,
        (None, Some(t)) => t.body_text.clone(),
        (None, None) => anyhow::bail!("a new template needs --text FILE"),
    };
    let html = match (html, &existing) {
        (Some(p), _) => Some(read(&p)?),
        (None, Some(t)) => t.body_html.clone(),
        (None, None) => None,
    };
    let source = crate::mail::templates::TemplateSource {
        subject,
        text,
        html,
    };
    crate::mail::templates::check(&source).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::db::templates::upsert(
        &mut conn,
        &app,
        &id,
        &source.subject,
        &source.text,
        source.html.as_deref(),
    )
    .await?;
    println!("template {id} of app {app} saved");
    Ok(())
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
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
    let scopes = if args.scopes.is_empty() {
        vec![scopes::ALL.to_owned()]
    } else {
        args.scopes
    };
    let ttl = parse_duration_secs(&args.ttl).map_err(|e| anyhow::anyhow!(e))?;
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
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
    let (url, pg) = crate::db::open(args.db.database_url.as_deref(), &args.db.data_dir).await?;
    let result = serve_on(&args, &url).await;
    stop(pg).await;
    result
}

async fn serve_on(args: &ServeArgs, url: &str) -> anyhow::Result<()> {
    let applied = crate::db::run_migrations(url).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    let dev_secret = if args.jwt.has_key() {
        None
    } else {
        Some(load_or_create_dev_key(&args.db.dev_key_path())?)
    };
    let verifier = Verifier::new(args.jwt.jwt_config(dev_secret.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("JWT keys: {e}"))?;
    if dev_secret.is_some() {
        ensure_dev_app(url).await?;
    }
    let link_key = match &args.link_key {
        Some(key) => key.clone(),
        None => load_or_create_dev_key(&args.db.dev_link_key_path())?,
    };
    let running = crate::server::start(crate::server::ServerConfig {
        db: args.db_settings(url.to_owned()),
        verifier,
        limits: args.limits(),
        http: args.http(),
        listen: args.listen.clone(),
        hash_concurrency: args.hash_concurrency(),
        mail: args.mail(link_key.into_bytes()),
    })
    .await?;
    let base = format!("http://{}", running.addr);
    println!("usersvc is listening on {base}");
    println!("  GraphiQL:   {base}/graphql");
    println!("  Schema:     {base}/schema.graphql");
    if let Some(secret) = dev_secret {
        let ttl = args.jwt.jwt_max_ttl.min(24 * 3600).unsigned_abs();
        let claims = Claims {
            sub: Some("developer".to_owned()),
            app_id: "dev".to_owned(),
            scopes: vec![scopes::ALL.to_owned()],
        };
        let token = mint_hs256(&args.jwt.jwt_config(Some(secret)), &claims, ttl)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "  Development token for app \"dev\" (all scopes, valid {ttl} s); paste into GraphiQL's Headers tab:"
        );
        println!("  {{\"Authorization\": \"Bearer {token}\"}}");
        println!("  More tokens: usersvc token --app dev --ttl 1h");
    }
    crate::server::shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await
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
        println!("created app \"dev\"");
    }
    Ok(())
}
