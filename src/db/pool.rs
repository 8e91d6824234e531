//! The connection pool: deadpool over diesel-async, with timeouts at every layer so that a
//! slow or absent database turns into a prompt, typed error instead of a hung request; and
//! [`DbPool`], the handle the service layer works on: the pool, or one connection that is
//! already in a transaction, so one service function serves both.

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

/// A pooled connection.
pub type Conn = Object<AsyncPgConnection>;

/// Why no connection could be had: the pool's wait or the connect timed out, or the database
/// refused.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

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

    /// A connection from the pool, or an error after the acquire timeout.
    pub async fn conn(&self) -> Result<Conn, PoolError> {
        self.pool.get().await
    }

    /// The pool as a [`DbPool`], for a service call that is not part of a larger transaction.
    pub fn pool(&self) -> DbPool<'_> {
        DbPool::Pool(self)
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

/// Where a service's statements go: the pool (each visit checks a connection out and returns
/// it), or a connection the caller holds, typically inside its transaction. A service written
/// against it works alone and as part of another one's transaction.
pub enum DbPool<'a> {
    /// The shared pool.
    Pool(&'a Db),
    /// A connection held by the caller.
    Conn(&'a mut AsyncPgConnection),
}

impl<'a> From<&'a mut AsyncPgConnection> for DbPool<'a> {
    fn from(conn: &'a mut AsyncPgConnection) -> Self {
        DbPool::Conn(conn)
    }
}

/// A connection from a [`DbPool`]: checked out of the pool (returned when dropped), or
/// borrowed from the caller.
#[expect(
    clippy::large_enum_variant,
    reason = "one lives on a service's stack at a time; boxing would add an allocation to every checkout"
)]
pub enum DbConn<'a> {
    /// Checked out of the pool.
    Pooled(Conn),
    /// The caller's.
    Borrowed(&'a mut AsyncPgConnection),
}

impl std::ops::Deref for DbConn<'_> {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        match self {
            DbConn::Pooled(conn) => conn,
            DbConn::Borrowed(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for DbConn<'_> {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        match self {
            DbConn::Pooled(conn) => conn,
            DbConn::Borrowed(conn) => conn,
        }
    }
}

/// A connection to work on: a new one from the pool, or the caller's (reborrowed).
pub async fn get_conn<'a>(pool: &'a mut DbPool<'_>) -> Result<DbConn<'a>, PoolError> {
    Ok(match pool {
        DbPool::Pool(db) => DbConn::Pooled(db.conn().await?),
        DbPool::Conn(conn) => DbConn::Borrowed(conn),
    })
}
