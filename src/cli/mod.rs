//! The command line: `serve` (the default), `migrate`, `schema`, and the operator's verbs
//! (`app`, `template`, `token`, `mail`, `import`, `export`). Each verb parses its arguments and calls the service
//! layer; no rule lives here.
//!
//! Verbs other than `serve` log warnings and errors only (`RUST_LOG` still overrides), so their
//! output is theirs alone.

mod admin;
mod serve;
mod token;
mod transfer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{DbArgs, ServeArgs};
use crate::db::embedded::EmbeddedPostgres;
use crate::db::{Db, DbSettings};
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
        command: admin::AppCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage an app's email templates.
    Template {
        #[command(subcommand)]
        command: admin::TemplateCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Look at the outbox: messages per state, the oldest waiting, the latest failures.
    Mail {
        #[command(subcommand)]
        command: admin::MailCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Mint a token with the configured HS256 key (or the development key).
    Token(token::TokenArgs),
    /// Import users from NDJSON (one ImportUserInput as JSON per line), in batches of 1,000;
    /// rejected lines go to FILE.rejects.ndjson; exit status 0 only when none failed.
    Import {
        /// The app to import into.
        #[arg(long)]
        app: String,
        /// The NDJSON file; `-` reads standard input (rejects then go to stdin.rejects.ndjson).
        file: std::path::PathBuf,
        /// create-only: existing users fail; upsert: existing users are updated, unchanged
        /// ones skipped (resumes an interrupted import).
        #[arg(long, value_enum, default_value_t = transfer::Mode::CreateOnly)]
        mode: transfer::Mode,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export every user of an app as NDJSON in the import format, in profile id order.
    Export {
        /// The app to export.
        #[arg(long)]
        app: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Include password hashes (needed for the passwords to work after an import
        /// elsewhere; treat the file as a secret).
        #[arg(long)]
        include_password_hashes: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Runs the command line; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(Box::new(ServeOnly::parse_from(["usersvc"]).args)));
    let quiet = !matches!(command, Command::Serve(_));
    let otlp_endpoint = match &command {
        Command::Serve(args) => args.otlp_endpoint.clone().filter(|e| !e.is_empty()),
        _ => None,
    };
    let level = if quiet { "warn" } else { "info" };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            telemetry::init_logging(cli.log_format, level, None);
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        // Trace export runs its HTTP requests on this runtime.
        let _entered = runtime.enter();
        telemetry::init_logging(cli.log_format, level, otlp_endpoint.as_deref());
    }
    let result = runtime.block_on(run(command, cli.log_format));
    telemetry::otlp::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            fail(cli.log_format, &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Reports why the command failed: one line on stderr, `usersvc: …` as text or a JSON log
/// line.
fn fail(log_format: LogFormat, message: &str) {
    match log_format {
        LogFormat::Text => eprintln!("usersvc: {message}"),
        LogFormat::Json => tracing::error!("{message}"),
    }
}

async fn run(command: Command, log_format: LogFormat) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::serve(*args, log_format).await,
        Command::Migrate(db) => {
            let applied = with_database(&db, |_| async { Ok(()) }).await?;
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
            with_database(&db, |db| admin::app(command, db)).await?;
            Ok(())
        }
        Command::Template { command, db } => {
            with_database(&db, |db| admin::template(command, db)).await?;
            Ok(())
        }
        Command::Mail { command, db } => {
            with_database(&db, |db| admin::mail(command, db)).await?;
            Ok(())
        }
        Command::Token(args) => token::token(args).await,
        Command::Import {
            app,
            file,
            mode,
            db,
        } => {
            with_database(&db, |db| transfer::import(app, file, mode, db)).await?;
            Ok(())
        }
        Command::Export {
            app,
            out,
            include_password_hashes,
            db,
        } => {
            with_database(&db, |db| {
                transfer::export(app, out, include_password_hashes, db)
            })
            .await?;
            Ok(())
        }
    }
}

/// Opens the database (the embedded cluster is started or reused, and stopped again when this
/// process started it), applies pending migrations, runs `work` on a pool of two connections
/// (an import writes two batches at once).
/// Returns the migrations applied.
async fn with_database<F, Fut>(args: &DbArgs, work: F) -> anyhow::Result<Vec<String>>
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (url, pg) = open_database(args).await?;
    let result = async {
        let applied = crate::db::run_migrations(&url).await?;
        let db = Db::new(&DbSettings {
            url: url.clone(),
            max_size: 2,
            acquire_timeout: std::time::Duration::from_secs(10),
            statement_timeout: std::time::Duration::from_secs(30),
        })?;
        work(db).await?;
        Ok(applied)
    }
    .await;
    stop(pg).await;
    result
}

/// The database URL: `DATABASE_URL`, or the embedded cluster (started or reused) unless that
/// is switched off.
async fn open_database(args: &DbArgs) -> anyhow::Result<(String, Option<EmbeddedPostgres>)> {
    if args.database_url.is_none() && !args.embedded_db {
        anyhow::bail!(
            "DATABASE_URL is required: the embedded database is switched off (USERSVC_EMBEDDED_DB=false)"
        );
    }
    crate::db::open(args.database_url.as_deref(), &args.data_dir).await
}

async fn stop(pg: Option<EmbeddedPostgres>) {
    if let Some(pg) = pg
        && let Err(e) = pg.stop().await
    {
        tracing::error!("stopping the embedded PostgreSQL: {e}");
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
