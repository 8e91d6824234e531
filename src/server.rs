//! Assembling and running the server: pool, schema, router, listener, graceful shutdown.
//! The CLI's `serve` and the integration tests both start it through [`start`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::jwt::Verifier;
use crate::db::{Db, DbSettings};
use crate::graphql::{self, Limits, Services};
use crate::http::{self, AppState, HttpSettings};
use crate::passwords::Hasher;
use crate::telemetry;

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
}

/// A server accepting connections.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, returns when done.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await??;
        Ok(())
    }
}

/// Builds the state and starts serving. Migrations must already be applied.
pub async fn start(cfg: ServerConfig) -> anyhow::Result<Running> {
    let db = Db::new(&cfg.db)?;
    let services = Services {
        db: db.clone(),
        hasher: Hasher::new(cfg.hash_concurrency),
        limits: cfg.limits.clone(),
    };
    let schema = graphql::build(Some(services), &cfg.limits);
    let sdl: Arc<str> = schema.sdl().into();
    let state = AppState {
        schema,
        db,
        verifier: Arc::new(cfg.verifier),
        metrics: telemetry::metrics_handle(),
        settings: Arc::new(cfg.http),
        sdl,
    };
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let app = http::router(state);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok(Running {
        addr,
        shutdown: tx,
        task,
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
