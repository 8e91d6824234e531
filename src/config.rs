//! Configuration: every setting is an environment variable and a flag of the same meaning
//! (flags win). Defaults suit a laptop: embedded PostgreSQL under `./.data`, listening on
//! localhost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::auth::JwtSettings;
use crate::db::DbSettings;
use crate::graphql::Limits;
use crate::http::HttpSettings;
use crate::mail::MailConfig;

/// Where the data lives.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// PostgreSQL URL. Unset: a private PostgreSQL cluster under $USERSVC_DATA_DIR/postgres.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Folder for the embedded cluster, file mail and the development key.
    #[arg(long, env = "USERSVC_DATA_DIR", default_value = ".data", global = true)]
    pub data_dir: PathBuf,
    /// Whether a private PostgreSQL is started when DATABASE_URL is unset. `false` makes
    /// DATABASE_URL required (containers, system services).
    #[arg(long, env = "USERSVC_EMBEDDED_DB", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub embedded_db: bool,
}

impl DbArgs {
    /// The data folder as an absolute path (the embedded cluster's socket lives under it).
    pub fn data_dir_abs(&self) -> PathBuf {
        std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone())
    }

    /// The development HS256 key file.
    pub fn dev_key_path(&self) -> PathBuf {
        self.data_dir_abs().join("dev-jwt-secret")
    }

    /// The development link key file (the embedded database without `USERSVC_LINK_KEY`).
    pub fn dev_link_key_path(&self) -> PathBuf {
        self.data_dir_abs().join("dev-link-key")
    }
}

/// Token verification settings.
#[derive(Args, Debug, Clone)]
pub struct JwtArgs {
    /// An HS256 secret (at least 32 bytes) for tokens without `kid`.
    #[arg(long, env = "USERSVC_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A JWK Set file (RFC 7517): keys with `kid` and `alg`, for rotation.
    #[arg(long, env = "USERSVC_JWT_KEYS_FILE")]
    pub jwt_keys_file: Option<PathBuf>,
    /// An identity provider's JWKS URL (https), cached per Cache-Control.
    #[arg(long, env = "USERSVC_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// Longest token lifetime accepted: 90s, 15m, 1h, 7d.
    #[arg(long, env = "USERSVC_JWT_MAX_TTL", default_value = "24h", value_parser = parse_duration_secs)]
    pub jwt_max_ttl: i64,
    /// Required `iss`.
    #[arg(long, env = "USERSVC_JWT_ISSUER", default_value = "usersvc")]
    pub jwt_issuer: String,
    /// Required `aud`.
    #[arg(long, env = "USERSVC_JWT_AUDIENCE", default_value = "usersvc")]
    pub jwt_audience: String,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (at most 60).
    #[arg(long, env = "USERSVC_JWT_LEEWAY_SECONDS", default_value_t = 30)]
    pub jwt_leeway_seconds: u64,
}

impl JwtArgs {
    /// Whether any key is configured.
    pub fn has_key(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_keys_file.is_some() || self.jwt_jwks_url.is_some()
    }

    /// The verifier settings, with `secret` standing in for a missing
    /// `USERSVC_JWT_SECRET` (the development key).
    pub fn jwt_config(&self, secret: Option<String>) -> JwtSettings {
        JwtSettings {
            secret: self.jwt_secret.clone().or(secret),
            keys_file: self.jwt_keys_file.clone(),
            jwks_url: self.jwt_jwks_url.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_secs: self.jwt_leeway_seconds,
            max_ttl_secs: self.jwt_max_ttl.unsigned_abs(),
            clock: crate::auth::system_clock(),
        }
    }
}

/// `usersvc serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// HTTP listen address.
    #[arg(long, env = "USERSVC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Base of links in mail (never taken from the Host header). Default: http://{listen}.
    #[arg(long, env = "USERSVC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Most database connections. One app may hold all but a quarter of them, so the default
    /// lets a lone app keep 21 connections busy: with fewer, its requests wait for a connection
    /// while the database has cores to spare (benches/FINDINGS.md, section 26).
    #[arg(long, env = "USERSVC_DB_POOL_SIZE", default_value_t = 28)]
    pub db_pool_size: usize,
    /// Longest wait for a database connection, in milliseconds.
    #[arg(long, env = "USERSVC_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3000)]
    pub db_acquire_timeout_ms: u64,
    /// statement_timeout of every connection, in milliseconds (lock_timeout is half of it,
    /// idle_in_transaction_session_timeout twice).
    #[arg(long, env = "USERSVC_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub db_statement_timeout_ms: u64,
    /// Deadline of one GraphQL request, in milliseconds.
    #[arg(long, env = "USERSVC_REQUEST_TIMEOUT_MS", default_value_t = 15000)]
    pub request_timeout_ms: u64,
    /// Most HTTP connections open at once; past it new ones wait to be accepted.
    #[arg(long, env = "USERSVC_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Largest request body, in bytes.
    #[arg(long, env = "USERSVC_MAX_BODY_BYTES", default_value_t = 65536)]
    pub max_body_bytes: usize,
    /// Largest request body, in bytes, for a token with the import scope (importUsers
    /// batches).
    #[arg(long, env = "USERSVC_MAX_IMPORT_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_import_body_bytes: usize,
    /// Largest `first`/`last` of the users connection.
    #[arg(long, env = "USERSVC_MAX_PAGE_SIZE", default_value_t = 500, value_parser = clap::value_parser!(i32).range(1..=10000))]
    pub max_page_size: i32,
    /// Deepest query.
    #[arg(long, env = "USERSVC_MAX_QUERY_DEPTH", default_value_t = 15)]
    pub max_query_depth: usize,
    /// Highest query complexity.
    #[arg(long, env = "USERSVC_MAX_QUERY_COMPLEXITY", default_value_t = 50_000)]
    pub max_query_complexity: usize,
    /// Most root fields one operation may select (aliases included, fragments expanded).
    #[arg(long, env = "USERSVC_MAX_ROOT_FIELDS", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_root_fields: u16,
    /// Largest response, in bytes (RESPONSE_TOO_LARGE beyond).
    #[arg(long, env = "USERSVC_MAX_RESPONSE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_response_bytes: usize,
    /// Whether introspection answers (to callers with a valid token).
    #[arg(long, env = "USERSVC_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Most password hashes at once (default: the number of cores).
    #[arg(long, env = "USERSVC_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
    /// SMTP server: smtp://host:port, smtp://user:pass@host:587?tls=required, smtps://…
    /// Unset: mail is written as .eml files under $USERSVC_DATA_DIR/mail.
    #[arg(long, env = "USERSVC_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Default sender.
    #[arg(
        long,
        env = "USERSVC_MAIL_FROM",
        default_value = "usersvc <no-reply@localhost>"
    )]
    pub mail_from: String,
    /// SMTP timeout, in milliseconds.
    #[arg(long, env = "USERSVC_SMTP_TIMEOUT_MS", default_value_t = 10_000)]
    pub smtp_timeout_ms: u64,
    /// Attempts before a mail is given up.
    #[arg(long, env = "USERSVC_MAIL_MAX_ATTEMPTS", default_value_t = 8)]
    pub mail_max_attempts: i32,
    /// First retry delay of a failed mail, in milliseconds (doubles per attempt, up to 10 min).
    #[arg(long, env = "USERSVC_MAIL_RETRY_BASE_MS", default_value_t = 5000)]
    pub mail_retry_base_ms: u64,
    /// The secret reset links in mail are derived from (at least 32 bytes), the same for every
    /// instance on one database and never stored in it. Unset with the embedded database: a
    /// development key under $USERSVC_DATA_DIR.
    #[arg(long, env = "USERSVC_LINK_KEY", hide_env_values = true)]
    pub link_key: Option<String>,
    /// OpenTelemetry: the OTLP/HTTP endpoint traces are sent to (protobuf; `/v1/traces` is
    /// added), e.g. http://localhost:4318. Unset: no traces are exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// Database settings for a URL.
    pub fn db_settings(&self, url: String) -> DbSettings {
        DbSettings {
            url,
            max_size: self.db_pool_size.max(1),
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
        }
    }

    /// Query limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_page_size: self.max_page_size,
            default_page_size: 50.min(self.max_page_size),
            max_depth: self.max_query_depth,
            max_complexity: self.max_query_complexity,
            introspection: self.introspection,
            max_root_fields: usize::from(self.max_root_fields),
            max_response_bytes: self.max_response_bytes,
            ..Limits::default()
        }
    }

    /// HTTP limits.
    pub fn http(&self) -> HttpSettings {
        HttpSettings {
            max_body_bytes: self.max_body_bytes,
            max_import_body_bytes: self.max_import_body_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            validation_shortcut: true,
            max_connections: self.max_connections as usize,
            ..HttpSettings::default()
        }
    }

    /// Mail settings, with the link key in force (configured, or the development key).
    pub fn mail(&self, link_key: Vec<u8>) -> MailConfig {
        MailConfig {
            public_url: self.public_url.clone(),
            from: self.mail_from.clone(),
            smtp_url: self.smtp_url.clone().filter(|u| !u.is_empty()),
            mail_dir: self.db.data_dir_abs().join("mail"),
            smtp_timeout: Duration::from_millis(self.smtp_timeout_ms),
            max_attempts: self.mail_max_attempts,
            retry_base: Duration::from_millis(self.mail_retry_base_ms),
            lease: Duration::from_secs(60),
            worker: true,
            link_key,
        }
    }

    /// Hash concurrency: configured, else one more than the cores available (one app may use
    /// all but one hashing thread, so alone it still keeps every core busy).
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()) + 1)
    }
}

/// Parses `90s`, `15m`, `1h`, `7d` (or plain seconds) into seconds.
pub fn parse_duration_secs(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 90s, 15m, 1h, 7d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in {s:?}: use s, m, h or d")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("duration out of range: {s:?}"))
}

/// Reads the development key, creating it (mode 0600) on first use.
pub fn load_or_create_dev_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let key = existing.trim().to_owned();
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = crate::passwords::random_secret(32).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path)?, key.as_bytes())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90"), Ok(90));
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert_eq!(parse_duration_secs("1h"), Ok(3600));
        assert_eq!(parse_duration_secs("7d"), Ok(604_800));
        assert!(parse_duration_secs("1y").is_err());
        assert!(parse_duration_secs("0s").is_err());
        assert!(parse_duration_secs("h").is_err());
    }
}
