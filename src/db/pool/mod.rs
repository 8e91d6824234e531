//! The connection pool: deadpool over diesel-async, with timeouts at every layer so that a
//! slow or absent database turns into a prompt, typed error instead of a hung request.
//!
//! Every connection works as the role `usersvc_server` (not a superuser, owning nothing), under
//! the row-level security of the migration `row_level_security`: a [`Db`] handle has a
//! [`Scope`], which a connection enters at checkout when it is not already in it, and sees
//! only the rows that scope allows. A handle scoped to an app also holds at most its share of
//! the pool ([`crate::quota::PerApp`]), so one app cannot take every connection. A handle made
//! for one request ([`Db::for_request`]) holds one connection at a time, so a request whose
//! fields run at once (a query's root fields do) still takes its turns on a single connection.

mod handle;
mod scope;

pub use handle::{DbConn, DbPool, get_conn};
pub use scope::Scope;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{Object, Pool, TimeoutType, Timeouts};
use diesel::ConnectionError;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::quota::{PerApp, Unit};
use scope::{Manager, ScopedConn};

/// Why no connection could be had: the pool's wait or the connect timed out (or the caller's
/// app already holds its share), or the database refused.
pub type PoolError = deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>;

/// A connection checked out of the pool, in its handle's scope; it goes back when dropped.
pub struct Conn {
    object: Object<Manager>,
    _share: Option<Unit>,
    _turn: Option<OwnedSemaphorePermit>,
}

impl std::ops::Deref for Conn {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.object.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.object.conn
    }
}

/// How to reach the database and how long to wait for it.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// A PostgreSQL URL (tokio-postgres syntax; `?host=/dir` for a Unix socket).
    pub url: String,
    /// Most connections this process opens.
    pub max_size: usize,
    /// Longest wait for a free connection, and for a new one to be opened (but for the
    /// server's first, [`Db::first_conn`]).
    pub acquire_timeout: Duration,
    /// `statement_timeout` set on every connection (`lock_timeout` is half of it,
    /// `idle_in_transaction_session_timeout` twice).
    pub statement_timeout: Duration,
}

/// The database handle: cheap to clone. [`Db::new`] gives one in the server's own scope (every
/// app); [`Db::scoped`] one for the work of one app, [`Db::for_request`] one for a request.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    statements: Arc<AtomicU64>,
    shares: Arc<PerApp>,
    scope: Scope,
    acquire_timeout: Duration,
    /// For a request's handle (and its clones): the one connection it may hold at a time.
    turn: Option<Arc<Semaphore>>,
    /// For a request's handle: set once the request no longer wants its work done.
    abandoned: Option<Arc<AtomicBool>>,
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
        // A lock wait gives up at half the statement's budget: at the full budget the
        // statement timeout, which started earlier, would always fire first and the lock
        // timeout never (PostgreSQL's documentation says as much). A transaction left idle (a
        // task cancelled half way) is ended after twice the budget.
        let statement_ms = settings.statement_timeout.as_millis();
        let setup = format!(
            "SET statement_timeout = {statement_ms}; SET lock_timeout = {}; \
             SET idle_in_transaction_session_timeout = {}; SET application_name = 'usersvc'; \
             SET ROLE usersvc_server",
            (statement_ms / 2).max(1),
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
        let pool = Pool::builder(Manager::new(manager))
            .max_size(settings.max_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .recycle_timeout(Some(settings.acquire_timeout))
            .build()?;
        Ok(Db {
            pool,
            statements,
            shares: Arc::new(PerApp::of_total(settings.max_size)),
            scope: Scope::Server,
            acquire_timeout: settings.acquire_timeout,
            turn: None,
            abandoned: None,
        })
    }

    /// The same pool, for the work of one app: its connections see that app's family only,
    /// and it holds at most the app's share of them at once.
    pub fn scoped(&self, app_id: &str) -> Db {
        Db {
            scope: Scope::App(Arc::from(app_id)),
            ..self.clone()
        }
    }

    /// The handle of one request of `app_id`: scoped to the app, and holding one connection
    /// at a time (its clones share that one turn). Nothing on it may hold a connection while
    /// it waits for another; a service that needs two statements together takes one
    /// connection and passes it on ([`DbPool::Conn`]). Once `abandoned` is set (the request's
    /// answer is decided, say it is refused as too large), checkouts that were waiting for
    /// their turn fail instead of running their statements.
    pub fn for_request(&self, app_id: &str, abandoned: Arc<AtomicBool>) -> Db {
        Db {
            turn: Some(Arc::new(Semaphore::new(1))),
            abandoned: Some(abandoned),
            ..self.scoped(app_id)
        }
    }

    /// How many connections one app may hold at once.
    pub fn app_share(&self) -> usize {
        self.shares.share()
    }

    /// A connection from the pool in this handle's scope, or an error after the acquire
    /// timeout.
    pub async fn conn(&self) -> Result<Conn, PoolError> {
        let turn = match &self.turn {
            // Waiting for its own request's turn is not waiting for the pool: no acquire
            // timeout here (the request's deadline still bounds it).
            Some(turn) => Some(
                turn.clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| PoolError::Closed)?,
            ),
            None => None,
        };
        if self
            .abandoned
            .as_ref()
            .is_some_and(|a| a.load(Ordering::Relaxed))
        {
            return Err(PoolError::Closed);
        }
        let share = match &self.scope {
            Scope::App(app) => Some(
                self.shares
                    .acquire(app, self.acquire_timeout)
                    .await
                    .ok_or(PoolError::Timeout(TimeoutType::Wait))?,
            ),
            Scope::Server => None,
        };
        let mut object = self.pool.get().await?;
        ScopedConn::enter(&mut object, &self.scope).await?;
        Ok(Conn {
            object,
            _share: share,
            _turn: turn,
        })
    }

    /// A connection in the server's own scope for its start-up, waiting up to `patience` for
    /// the database to open one. The acquire timeout is for requests, which should fail fast;
    /// a database slow to open its first connection (a cold catalogue cache, a loaded machine)
    /// should not stop the server from starting.
    pub async fn first_conn(&self, patience: Duration) -> Result<Conn, PoolError> {
        debug_assert!(
            matches!(self.scope, Scope::Server),
            "for the server's own work"
        );
        let timeouts = Timeouts {
            wait: Some(patience),
            create: Some(patience),
            recycle: Some(patience),
        };
        let mut object = self.pool.timeout_get(&timeouts).await?;
        ScopedConn::enter(&mut object, &self.scope).await?;
        Ok(Conn {
            object,
            _share: None,
            _turn: None,
        })
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
