//! The test harness: a real PostgreSQL (the embedded cluster, started the way `serve` starts
//! it, or `TEST_DATABASE_URL`), one migrated template database per test process, one database
//! per test cloned from it and dropped afterwards, and the real server on a free port.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use usersvc::auth::jwt::{JwtConfig, Verifier};
use usersvc::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use usersvc::db::{Db, DbSettings};
use usersvc::graphql::Limits;
use usersvc::http::HttpSettings;
use usersvc::mail::MailConfig;
use usersvc::server::{self, Running, ServerConfig};

/// The HS256 secret every test server accepts (kid-less).
pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";
pub const ISSUER: &str = "usersvc";
pub const AUDIENCE: &str = "usersvc";
/// Every scope.
pub const ALL: &str = "cloudcode:users:*";

struct Cluster {
    /// URL of a database named `{}` on the cluster.
    base: String,
    template: String,
    prefix: String,
    _pg: Option<EmbeddedPostgres>,
}

impl Cluster {
    fn url(&self, db: &str) -> String {
        self.base.replace("{}", db)
    }
}

/// Replaces the database name in a PostgreSQL URL with a `{}` placeholder.
fn url_template(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &head[..i],
        None => head,
    };
    format!("{host}/{{}}{query}")
}

fn sweep_stale_clusters() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("usersvc-it-")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

async fn start_cluster() -> Cluster {
    let prefix = format!("it_{}", std::process::id());
    let (base, pg) = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url_template(&url), None),
        _ => {
            sweep_stale_clusters();
            usersvc::db::ensure_postgres_binaries().expect("PostgreSQL binaries");
            let root = PathBuf::from(format!("/tmp/usersvc-it-{}", std::process::id()));
            let pg = EmbeddedPostgres::start(EmbeddedOptions {
                root,
                ephemeral: true,
            })
            .await
            .expect("start the embedded PostgreSQL for tests");
            (pg.url("{}").replace("%7B%7D", "{}"), Some(pg))
        }
    };
    let template = format!("{prefix}_tpl");
    let cluster = Cluster {
        base,
        template: template.clone(),
        prefix,
        _pg: pg,
    };
    let mut admin = AsyncPgConnection::establish(&cluster.url("postgres"))
        .await
        .expect("connect to the test cluster");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {template}"))
        .await
        .expect("drop an old template database");
    admin
        .batch_execute(&format!("CREATE DATABASE {template}"))
        .await
        .expect("create the template database");
    usersvc::db::run_migrations(&cluster.url(&template))
        .await
        .expect("migrate the template");
    cluster
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        // Its own thread and runtime: the first test's runtime ends with that test.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(start_cluster())
        })
        .join()
        .expect("cluster start-up")
    })
}

/// Options for a test server.
pub struct Options {
    pub limits: Limits,
    pub http: HttpSettings,
    pub keys_file: Option<PathBuf>,
    pub leeway: u64,
    /// SMTP server URL; `None`: files.
    pub smtp_url: Option<String>,
    /// Whether the server runs its own outbox worker.
    pub mail_worker: bool,
    /// Mail lease (a claimed message comes due again after it).
    pub mail_lease: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            http: HttpSettings {
                max_body_bytes: 64 * 1024,
                request_timeout: Duration::from_secs(15),
                validation_shortcut: true,
            },
            keys_file: None,
            leeway: 30,
            smtp_url: None,
            mail_worker: true,
            mail_lease: Duration::from_secs(30),
        }
    }
}

fn db_settings(db_url: &str) -> DbSettings {
    DbSettings {
        url: db_url.to_owned(),
        max_size: 8,
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    }
}

/// The configuration of a test server on the database at `db_url`.
fn server_config(db_url: &str, opts: Options, mail_dir: &std::path::Path) -> ServerConfig {
    let verifier = Verifier::from_config(&JwtConfig {
        secret: Some(SECRET.to_owned()),
        keys_file: opts.keys_file.clone(),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway_secs: opts.leeway,
    })
    .expect("verifier");
    ServerConfig {
        db: db_settings(db_url),
        verifier,
        limits: opts.limits,
        http: opts.http,
        listen: "127.0.0.1:0".into(),
        hash_concurrency: 2,
        mail: MailConfig {
            public_url: None,
            from: "Test Service <no-reply@usersvc.test>".into(),
            smtp_url: opts.smtp_url,
            mail_dir: mail_dir.to_owned(),
            smtp_timeout: Duration::from_secs(2),
            max_attempts: 50,
            retry_base: Duration::from_millis(100),
            lease: opts.mail_lease,
            worker: opts.mail_worker,
        },
    }
}

/// A second server on a test's database (see [`TestApp::sibling`]).
pub struct Sibling {
    /// `http://host:port`.
    pub base: String,
    _running: Running,
}

/// A running server on its own fresh database.
pub struct TestApp {
    pub base: String,
    pub db_url: String,
    pub db_name: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub mail_dir: PathBuf,
    running: Option<Running>,
}

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

impl TestApp {
    /// A server with default options and apps `a`, `b`, `parent` and `child` (child of parent).
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    /// A server with the given options.
    pub async fn with(opts: Options) -> Self {
        // The server's logs, shown for failing tests; RUST_LOG picks the level (default: warn).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let c = cluster();
        let db_name = format!("{}_{}", c.prefix, NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let mut admin = AsyncPgConnection::establish(&c.url("postgres"))
            .await
            .expect("admin connection");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {db_name} TEMPLATE {}",
                c.template
            ))
            .await
            .expect("clone the template");
        let db_url = c.url(&db_name);
        let mail_dir = std::env::temp_dir().join(format!("usersvc-mail-{db_name}"));
        let db = Db::new(&db_settings(&db_url)).expect("pool");
        let running = server::start(server_config(&db_url, opts, &mail_dir))
            .await
            .expect("start the server");
        let app = TestApp {
            base: format!("http://{}", running.addr),
            db_url,
            db_name,
            client: reqwest::Client::new(),
            db,
            mail_dir,
            running: Some(running),
        };
        for (id, parent) in [
            ("a", None),
            ("b", None),
            ("parent", None),
            ("child", Some("parent")),
        ] {
            usersvc::apps::create(&mut app.db.pool(), id, id, parent)
                .await
                .expect("create app");
        }
        app
    }

    /// A token for app `app` with space-separated `scope`, valid for an hour.
    pub fn token(&self, app: &str, scope: &str) -> String {
        token_for(app, scope)
    }

    /// POSTs a GraphQL request with a bearer token; returns status and JSON body.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Runs a typed (graphql_client) operation with a token and returns its data, panicking
    /// on any error.
    pub async fn run<Q: graphql_client::GraphQLQuery>(
        &self,
        token: &str,
        vars: Q::Variables,
    ) -> Q::ResponseData {
        let body = Q::build_query(vars);
        let resp = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let r: graphql_client::Response<Q::ResponseData> =
            resp.json().await.expect("GraphQL response");
        if let Some(errors) = r.errors
            && !errors.is_empty()
        {
            panic!("GraphQL errors: {errors:?}");
        }
        r.data.expect("data")
    }

    /// Runs a typed operation and returns its first error's code.
    pub async fn run_err<Q: graphql_client::GraphQLQuery>(
        &self,
        token: &str,
        vars: Q::Variables,
    ) -> String {
        let body = Q::build_query(vars);
        let (_, v) = self
            .gql(
                token,
                body.query,
                serde_json::to_value(&body.variables).unwrap(),
            )
            .await;
        code(&v)
    }

    /// The running server (its mail settings and transport).
    pub fn server(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// Another server on this test's database, with the given options (its mail worker off).
    pub async fn sibling(&self, opts: Options) -> Sibling {
        let opts = Options {
            mail_worker: false,
            ..opts
        };
        let running = server::start(server_config(&self.db_url, opts, &self.mail_dir))
            .await
            .expect("start the second server");
        Sibling {
            base: format!("http://{}", running.addr),
            _running: running,
        }
    }

    /// A fresh connection to this test's database, for assertions on stored rows.
    pub async fn sql(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db_url)
            .await
            .expect("connect")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let running = self.running.take();
        let admin = cluster().url("postgres");
        let name = self.db_name.clone();
        let _ = std::fs::remove_dir_all(&self.mail_dir);
        drop(running); // the server task ends with the test's runtime
        // A thread of its own: Drop cannot await, and the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin).await.ok()?;
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// The first error's `extensions.code` of a GraphQL response ("" when none).
pub fn code(v: &Value) -> String {
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Signs claims as an HS256 JWT by hand (independently of the server's JWT library).
pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{h}.{c}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{c}.{sig}")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard claims for app `app` with `scope`.
pub fn claims(app: &str, scope: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "tester", "app_id": app, "scope": scope,
        "iat": now(), "exp": now() + 3600,
    })
}

/// A valid HS256 token.
pub fn token_for(app: &str, scope: &str) -> String {
    sign_hs256(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &claims(app, scope),
        SECRET.as_bytes(),
    )
}
