//! Storage: the generated diesel schema, row types, the queries (one module per table, each
//! function taking a connection so it works inside a transaction), the connection pool,
//! migrations and the private PostgreSQL cluster used when no `DATABASE_URL` is given.
//!
//! Every query here takes the tenant (`app_id`) and filters by it.

pub mod apps;
pub mod audit;
pub mod embedded;
mod fixed;
pub mod identities;
pub mod imports;
pub mod logins;
pub mod models;
pub mod outbox;
pub mod pool;
pub mod profile_updates;
pub mod profiles;
pub mod rendered;
pub mod schema;
pub mod secrets;
pub mod templates;
pub mod tokens;

pub use pool::{Conn, Db, DbConn, DbPool, DbSettings, PoolError, get_conn};

use diesel::dsl::AsExprOf;
use diesel::expression::{SqlLiteral, TypedExpressionType, UncheckedBind};
use diesel::sql_types::Integer;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// `now() + make_interval(mins => minutes)` as an expression of SQL type `ST` (a timestamp,
/// nullable or not): link expiries are fixed by the database clock, which also checks them.
pub fn minutes_from_now<ST: TypedExpressionType>(minutes: i32) -> MinutesFromNow<ST> {
    diesel::dsl::sql::<ST>("now() + make_interval(mins => ")
        .bind::<Integer, _>(minutes)
        .sql(")")
}

/// The type of [`minutes_from_now`].
pub type MinutesFromNow<ST> = SqlLiteral<ST, UncheckedBind<SqlLiteral<ST>, AsExprOf<i32, Integer>>>;

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Applies pending migrations. Diesel's migration runner is synchronous, so it runs on the
/// blocking pool through [`AsyncConnectionWrapper`](diesel_async::async_connection_wrapper::AsyncConnectionWrapper).
pub async fn run_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    use diesel::Connection;
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await?
}

diesel::table! {
    /// diesel's record of applied migrations.
    __diesel_schema_migrations (version) {
        version -> VarChar,
    }
}

/// Whether every embedded migration has been applied to the database.
pub async fn migrations_applied(
    conn: &mut diesel_async::AsyncPgConnection,
) -> diesel::QueryResult<bool> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;

    let applied: Vec<String> = __diesel_schema_migrations::table
        .select(__diesel_schema_migrations::version)
        .load(conn)
        .await?;
    Ok(migration_versions().iter().all(|v| applied.contains(v)))
}

/// Versions of the embedded migrations, oldest first.
pub fn migration_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    let mut versions: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
}

/// One connection outside the pool (CLI work, start-up).
pub async fn connect(url: &str) -> anyhow::Result<diesel_async::AsyncPgConnection> {
    use diesel_async::AsyncConnection;
    Ok(diesel_async::AsyncPgConnection::establish(url).await?)
}

/// Creates a database if it does not exist (several processes may race: the loser's
/// "already exists" is fine).
pub async fn ensure_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use diesel::sql_types::Text;
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        one: i32,
    }
    let mut conn = connect(admin_url).await?;
    let found: Vec<Found> =
        diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(&mut conn)
            .await?;
    if found.is_empty() {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            anyhow::bail!("database name {name:?} must be letters, digits and '_'");
        }
        if let Err(e) = conn
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            && !e.to_string().contains("already exists")
        {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Makes sure PostgreSQL's server binaries are on this machine. When they are missing and we
/// run as root on a Debian-like system, installs them with apt-get (unless `USERSVC_NO_INSTALL`
/// is set), saying so; otherwise the error says which command installs them.
pub fn ensure_postgres_binaries() -> anyhow::Result<()> {
    if embedded::find_bin_dir().is_ok() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    let may_install = root
        && std::env::var_os("USERSVC_NO_INSTALL").is_none_or(|v| v.is_empty() || v == "0")
        && std::path::Path::new("/usr/bin/apt-get").exists();
    if !may_install {
        embedded::find_bin_dir()?;
        return Ok(());
    }
    tracing::warn!("PostgreSQL binaries not found; installing them: apt-get install -y postgresql");
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let status = std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "apt-get {} failed ({status})",
            args.join(" ")
        );
        Ok(())
    };
    run(&["update", "-qq"])?;
    run(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "postgresql",
    ])?;
    embedded::find_bin_dir()?;
    Ok(())
}

/// The database to use: `database_url`, or else the embedded cluster under
/// `data_dir/postgres` (started or reused) with its `usersvc` database. The cluster handle,
/// when there is one, must be stopped on exit.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, Option<embedded::EmbeddedPostgres>)> {
    if let Some(url) = database_url {
        return Ok((url.to_owned(), None));
    }
    let install = tokio::task::spawn_blocking(ensure_postgres_binaries);
    install.await??;
    let pg = embedded::EmbeddedPostgres::start(embedded::EmbeddedOptions {
        root: std::path::absolute(data_dir)?.join("postgres"),
        ephemeral: false,
    })
    .await?;
    if let Err(e) = ensure_database(&pg.url("postgres"), "usersvc").await {
        let _ = pg.stop().await;
        return Err(e);
    }
    Ok((pg.url("usersvc"), Some(pg)))
}
