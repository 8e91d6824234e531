//! The connection pool: deadpool over diesel-async, with timeouts at every layer so that a
//! slow or absent database turns into a prompt, typed error instead of a hung request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::ConnectionError;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

use crate::error::{AppError, AppResult};

/// A pooled connection.
pub type Conn = Object<AsyncPgConnection>;

/// How to reach the database and how long to wait for it.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// A PostgreSQL URL (tokio-postgres syntax; `?host=/dir` for a Unix socket).
    pub url: String,
    /// Most connections this process opens.
    pub max_size: usize,
    /// Longest wait for a free connection, and for a new one to be opened.
    pub acquire_timeout: Duration,
    /// `statement_timeout` (and `lock_timeout`) set on every connection.
    pub statement_timeout: Duration,
}

/// The database handle shared by every request: cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    statements: Arc<AtomicU64>,
}

/// Counts the statements a connection runs (each query, BEGIN and COMMIT), once they finish.
struct StatementCounter(Arc<AtomicU64>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Db {
    /// Builds the pool; connections are opened lazily.
    pub fn new(settings: &DbSettings) -> anyhow::Result<Self> {
        let statement_ms = settings.statement_timeout.as_millis();
        let setup = format!(
            "SET statement_timeout = {statement_ms}; SET lock_timeout = {statement_ms}; \
             SET idle_in_transaction_session_timeout = {}; SET application_name = 'usersvc'",
            statement_ms * 2
        );
        let mut config = ManagerConfig::default();
        // Fast recycling: no test query per checkout (a round trip on every request). A
        // connection whose server went away is still dropped at checkout: diesel-async reports
        // it broken once tokio-postgres has seen its socket close, and a broken transaction
        // manager is caught the same way.
        config.recycling_method = RecyclingMethod::Fast;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        config.custom_setup = Box::new(move |url| {
            let setup = setup.clone();
            let url = url.to_owned();
            let counter = counter.clone();
            async move {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                conn.batch_execute(&setup)
                    .await
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                // Counted from here on: the session set-up above is not the application's work.
                conn.set_instrumentation(StatementCounter(counter));
                Ok(conn)
            }
            .boxed()
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            &settings.url,
            config,
        );
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .recycle_timeout(Some(settings.acquire_timeout))
            .build()?;
        Ok(Db { pool, statements })
    }

    /// A connection from the pool, or `Unavailable` after the acquire timeout.
    pub async fn conn(&self) -> AppResult<Conn> {
        self.pool.get().await.map_err(AppError::from)
    }

    /// Statements run so far on this pool's connections (for `/metrics`; a test can watch a
    /// request's cost with it, such as a page's identities coming from one query).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Pool figures for `/metrics`: (open connections, idle connections, waiting tasks).
    pub fn status(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size, s.available, s.waiting)
    }
}
