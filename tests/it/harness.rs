//! The test harness: a real PostgreSQL (the embedded cluster, started the way `serve` starts
//! it, or `TEST_DATABASE_URL`), one migrated template database per test process, one database
//! per test cloned from it and dropped afterwards, and the real server on a free port.
//!
//! The process cleans up after itself: when it exits, whether its tests passed or failed, it
//! stops its cluster and removes the folders its tests made in the temporary folder (see
//! [`tear_down_at_exit`]). Folders of runs that were killed are swept by the next run.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use hmac::{Hmac, Mac};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Pid, geteuid};
use serde_json::{Value, json};
use sha2::Sha256;
use usersvc::auth::jwt::Verifier;
use usersvc::auth::{Clock, JwtSettings, system_clock};
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
    /// The server log, when the cluster is ours.
    log: Option<PathBuf>,
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

/// The pid in the name of a folder a test process makes in the temporary folder: its cluster
/// (`usersvc-it-PID`), the keys file of the auth tests (`usersvc-keys-PID`), and each test
/// server's mail folder (`usersvc-mail-it_PID_N`, named after its database).
fn scratch_folder_pid(name: &str) -> Option<i32> {
    let pid = name
        .strip_prefix("usersvc-it-")
        .or_else(|| name.strip_prefix("usersvc-keys-"))
        .or_else(|| {
            let rest = name.strip_prefix("usersvc-mail-it_")?;
            rest.split_once('_').map(|(pid, _)| pid)
        })?;
    pid.parse().ok().filter(|&pid| pid > 0)
}

/// Removes the scratch folders whose pid `doomed` picks, in /tmp (where the cluster goes: its
/// socket path must be short) and in the temporary folder (where the rest goes). Only real
/// folders owned by us: as root, one that another user named like ours is not ours to remove.
fn remove_scratch_folders(doomed: impl Fn(i32) -> bool) {
    let me = geteuid().as_raw();
    let mut parents = vec![PathBuf::from("/tmp"), std::env::temp_dir()];
    parents.dedup();
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(scratch_folder_pid) else {
                continue;
            };
            // DirEntry::metadata does not follow a symlink.
            let ours = entry
                .metadata()
                .is_ok_and(|meta| meta.is_dir() && meta.uid() == me);
            if ours && doomed(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Removes what runs that are gone left behind: those killed before their exit hook ran.
fn sweep_stale_folders() {
    remove_scratch_folders(|pid| {
        // No signal: only asks whether the process exists (EPERM: it does, under another user).
        kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
    });
}

/// What the exit hook must stop and remove.
struct Teardown {
    pg: Option<EmbeddedPostgres>,
    /// The cluster's folder when it is not under its root: as root, a root the postgres OS user
    /// cannot reach puts it under /var/lib/postgresql (see `EmbeddedPostgres::start`).
    elsewhere: Option<PathBuf>,
}

static TEARDOWN: Mutex<Teardown> = Mutex::new(Teardown {
    pg: None,
    elsewhere: None,
});

/// Runs when the test process exits through `exit()`: after the last test, whether all passed
/// or some failed (libtest then calls `process::exit(101)`). It stops the cluster (so that
/// nothing writes to the folders any more) and removes every scratch folder of this process.
/// A process killed by a signal never gets here; the next run's sweep removes its folders, and
/// its postmaster has stopped already through its death signal.
extern "C" fn tear_down_at_exit() {
    let tear_down = || {
        let (pg, elsewhere) = {
            let mut teardown = TEARDOWN.lock().unwrap_or_else(PoisonError::into_inner);
            (teardown.pg.take(), teardown.elsewhere.take())
        };
        if let Some(pg) = pg {
            let stopped = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(pg.stop()).map_err(|e| e.to_string()));
            if let Err(e) = stopped {
                eprintln!("usersvc tests: stopping the test cluster: {e}");
            }
        }
        if let Some(dir) = elsewhere {
            let _ = std::fs::remove_dir_all(dir);
        }
        let me = std::process::id() as i32;
        remove_scratch_folders(|pid| pid == me);
    };
    // A thread of its own: the exiting thread may have destroyed its thread-locals already
    // (glibc runs their destructors before atexit handlers), and tokio needs them. A panic in
    // it ends up in `join`'s result, so none unwinds into the C library.
    if let Ok(thread) = std::thread::Builder::new().spawn(tear_down) {
        let _ = thread.join();
    }
}

fn register_exit_hook() {
    // atexit(3) has no safe wrapper in nix or std.
    // SAFETY: atexit only records the function; `tear_down_at_exit` never unwinds (see there).
    let registered = unsafe { libc::atexit(tear_down_at_exit) } == 0;
    if !registered {
        eprintln!("usersvc tests: no exit hook; the next run will remove this run's folders");
    }
}

async fn start_cluster() -> Cluster {
    let prefix = format!("it_{}", std::process::id());
    sweep_stale_folders();
    // Before anything is made, so that even a failed start is cleaned up.
    register_exit_hook();
    let (base, log) = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url_template(&url), None),
        _ => {
            usersvc::db::ensure_postgres_binaries().expect("PostgreSQL binaries");
            let root = PathBuf::from(format!("/tmp/usersvc-it-{}", std::process::id()));
            let pg = EmbeddedPostgres::start(EmbeddedOptions {
                root,
                ephemeral: true,
            })
            .await
            .expect("start the embedded PostgreSQL for tests");
            let base = pg.url("{}").replace("%7B%7D", "{}");
            let log = pg.log_path().to_path_buf();
            let cluster_dir = pg.data_dir().parent().map(Path::to_path_buf);
            let mut teardown = TEARDOWN.lock().unwrap_or_else(PoisonError::into_inner);
            teardown.elsewhere = cluster_dir.filter(|dir| !dir.starts_with(pg.root()));
            teardown.pg = Some(pg);
            (base, Some(log))
        }
    };
    let template = format!("{prefix}_tpl");
    let cluster = Cluster {
        base,
        template: template.clone(),
        prefix,
        log,
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

/// The server log of the harness's cluster; `None` with `TEST_DATABASE_URL`, whose server and
/// log are not ours.
pub fn cluster_log() -> Option<PathBuf> {
    cluster().log.clone()
}

/// Options for a test server.
pub struct Options {
    pub limits: Limits,
    pub http: HttpSettings,
    /// A JWK Set file (besides the kid-less `SECRET`).
    pub keys_file: Option<PathBuf>,
    /// An identity provider's JWKS URL.
    pub jwks_url: Option<String>,
    /// The verifier's clock.
    pub clock: Clock,
    pub leeway: u64,
    /// USERSVC_JWT_MAX_TTL, in seconds.
    pub max_ttl_secs: u64,
    /// SMTP server URL; `None`: files.
    pub smtp_url: Option<String>,
    /// Whether the server runs its own outbox worker.
    pub mail_worker: bool,
    /// Mail lease (a claimed message comes due again after it).
    pub mail_lease: Duration,
    /// The server's default sender (USERSVC_MAIL_FROM).
    pub mail_from: String,
    /// The SMTP timeout (of one whole send).
    pub smtp_timeout: Duration,
    /// The link key (USERSVC_LINK_KEY).
    pub link_key: Vec<u8>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            http: HttpSettings {
                max_body_bytes: 64 * 1024,
                request_timeout: Duration::from_secs(15),
                validation_shortcut: true,
                graphiql_token: None,
            },
            keys_file: None,
            jwks_url: None,
            clock: system_clock(),
            leeway: 30,
            max_ttl_secs: 24 * 3600,
            smtp_url: None,
            mail_worker: true,
            mail_lease: Duration::from_secs(30),
            mail_from: "Test Service <no-reply@usersvc.test>".into(),
            smtp_timeout: Duration::from_secs(2),
            link_key: LINK_KEY.to_vec(),
        }
    }
}

/// The link key every test server shares unless a test says otherwise.
pub const LINK_KEY: &[u8] = b"test-link-key-that-is-long-enough-0123456789";

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
        let db_settings = db_settings(&db_url);
        let db = Db::new(&db_settings).expect("pool");
        let running = start_server(&db_url, mail_dir.clone(), opts)
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

    /// A fresh connection to this test's database, for assertions on stored rows.
    pub async fn sql(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db_url)
            .await
            .expect("connect")
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

/// Starts a server on an existing test database.
async fn start_server(db_url: &str, mail_dir: PathBuf, opts: Options) -> anyhow::Result<Running> {
    let verifier = Verifier::new(JwtSettings {
        secret: Some(SECRET.to_owned()),
        keys_file: opts.keys_file.clone(),
        jwks_url: opts.jwks_url.clone(),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        leeway_secs: opts.leeway,
        max_ttl_secs: opts.max_ttl_secs,
        clock: opts.clock.clone(),
    })
    .await
    .expect("verifier");
    server::start(ServerConfig {
        db: db_settings(db_url),
        verifier,
        limits: opts.limits,
        http: opts.http,
        listen: "127.0.0.1:0".into(),
        hash_concurrency: 2,
        mail: MailConfig {
            public_url: None,
            from: opts.mail_from,
            smtp_url: opts.smtp_url,
            mail_dir,
            smtp_timeout: opts.smtp_timeout,
            max_attempts: 50,
            retry_base: Duration::from_millis(100),
            lease: opts.mail_lease,
            worker: opts.mail_worker,
            link_key: opts.link_key,
        },
    })
    .await
}

impl TestApp {
    /// Another server on this test's database, as a second `serve` instance would be: its own
    /// pool, router and outbox worker, the same data. It stops when the test's runtime ends.
    pub async fn another_instance(&self, opts: Options) -> Running {
        self.another_instance_result(opts)
            .await
            .expect("start another instance")
    }

    /// Another server on this test's database, or why it would not start.
    pub async fn another_instance_result(&self, opts: Options) -> anyhow::Result<Running> {
        start_server(&self.db_url, self.mail_dir.join("another"), opts).await
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

/// How long a test waits for an event (a mail to arrive, a row to reach a state) before it
/// fails. Generous on purpose: it bounds only a failing test, since a passing one goes on as
/// soon as the event happens, and the machine may be busy with other builds.
pub const WAIT: Duration = Duration::from_secs(20);

/// Waits for an event rather than for a time: runs `check` until it returns `Ok`, pausing
/// briefly between tries, and returns that value. After `deadline` it panics with the last
/// `Err`, which should say what was seen instead.
pub async fn eventually<T, E, F, Fut>(deadline: Duration, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= until => {
                panic!("no event within {deadline:?}; last seen: {seen:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}
