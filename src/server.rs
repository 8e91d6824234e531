//! Assembling and running the server: pool, schema, router, listener, graceful shutdown.
//! The CLI's `serve` and the integration tests both start it through [`start`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::auth::jwt::Verifier;
use crate::db::{Db, DbSettings};
use crate::graphql::{Limits, Services};
use crate::http::{self, AppState, HttpSettings};
use crate::mail::outbox::Worker;
use crate::mail::transport::Transport;
use crate::mail::{MailConfig, MailSettings};
use crate::passwords::Hasher;
use crate::telemetry;
use crate::users::page::CursorKey;

/// Everything a server needs.
pub struct ServerConfig {
    pub db: DbSettings,
    pub verifier: Verifier,
    pub limits: Limits,
    pub http: HttpSettings,
    /// `host:port`; port 0 picks a free one.
    pub listen: String,
    /// Most password hashes computed at once.
    pub hash_concurrency: usize,
    /// Mail.
    pub mail: MailConfig,
}

/// A server accepting connections.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The mail settings in force (tests run their own workers with them).
    pub mail: Arc<MailSettings>,
    /// The transport mail goes out through.
    pub transport: Arc<Transport>,
    /// The database pool requests use.
    pub db: Db,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    worker_stop: watch::Sender<bool>,
    worker: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, returns when done.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        let _ = self.worker_stop.send(true);
        self.task.await??;
        if let Some(worker) = self.worker {
            let _ = worker.await;
        }
        Ok(())
    }
}

/// Longest wait for the first database connection at start (or the acquire timeout, if
/// longer): the database may be slow to open a connection to a database it has not served yet.
const STARTUP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Builds the state and starts serving. Migrations must already be applied.
pub async fn start(cfg: ServerConfig) -> anyhow::Result<Running> {
    let db = Db::new(&cfg.db)?;
    let worker_db = db.clone();
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let from = crate::mail::address::parse_from_setting(&cfg.mail.from)
        .map_err(|e| anyhow::anyhow!("USERSVC_MAIL_FROM: {e}"))?;
    let public_url = cfg
        .mail
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        anyhow::bail!("USERSVC_PUBLIC_URL must start with http:// or https://");
    }
    let link_key = crate::mail::LinkKey::new(&cfg.mail.link_key)
        .map_err(|e| anyhow::anyhow!("USERSVC_LINK_KEY: {e}"))?;
    let mut settings = MailSettings::new(public_url, from, link_key);
    settings.max_attempts = cfg.mail.max_attempts.max(1);
    settings.retry_base = cfg.mail.retry_base;
    settings.lease = cfg.mail.lease;
    if cfg.mail.retry_base < std::time::Duration::from_secs(1) {
        settings.poll_interval = cfg
            .mail
            .retry_base
            .max(std::time::Duration::from_millis(50));
    }
    let mail = Arc::new(settings);
    let transport = Arc::new(
        Transport::from_url(
            cfg.mail.smtp_url.as_deref(),
            &cfg.mail.mail_dir,
            cfg.mail.smtp_timeout,
        )
        .map_err(|e| anyhow::anyhow!("USERSVC_SMTP_URL: {e}"))?,
    );
    let hasher = Hasher::new(cfg.hash_concurrency);
    let cursor_key = {
        let fresh = crate::passwords::random_bytes(32).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let patience = cfg.db.acquire_timeout.max(STARTUP_PATIENCE);
        let mut conn = db.first_conn(patience).await?;
        let stored = crate::db::secrets::get_or_create(&mut conn, "cursor", &fresh).await?;
        let bytes: [u8; 32] = stored
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("the stored cursor key is too short"))?;
        CursorKey::new(bytes)
    };
    let services = Services {
        hasher: hasher.clone(),
        limits: cfg.limits.clone(),
        mail: mail.clone(),
        cursor_key,
    };
    let graphql = http::endpoint(services, &cfg.limits, &cfg.http);
    let sdl: Arc<str> = graphql.schema().sdl().into();
    let state = AppState {
        graphql: Arc::new(graphql),
        db: db.clone(),
        verifier: Arc::new(cfg.verifier),
        metrics: telemetry::metrics_handle(),
        settings: Arc::new(cfg.http.clone()),
        sdl,
        hasher,
        mail: mail.clone(),
    };
    let app = http::router(state);
    let conns = cfg.http;
    let (worker_stop, worker_rx) = watch::channel(false);
    let worker = cfg
        .mail
        .worker
        .then(|| Worker::new(worker_db, transport.clone(), mail.clone()).spawn(worker_rx));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        http::serve::serve(listener, app, &conns, async {
            let _ = rx.await;
        })
        .await
    });
    Ok(Running {
        addr,
        mail,
        transport,
        db,
        shutdown: tx,
        task,
        worker_stop,
        worker,
    })
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
