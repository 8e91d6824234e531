//! Which rows a connection sees. The pool keeps, with each connection, the scope it last
//! entered, so a connection used by the same app again (the common case) enters nothing, and
//! one handed from one app to another (or to the server's own work) switches first, on that
//! checkout only: an app's scope is the role `usersvc_server` with the app's family set (one
//! statement, two coming from the server's scope), the server's own work the role
//! `usersvc_everyone`, which every tenant policy lets see every app (migration `scope_roles`).

use std::sync::Arc;

use deadpool::managed::{Metrics, RecycleResult};
use diesel::sql_types::Text;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError as ConnError};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::PoolError;
use crate::db::fixed::fixed;

/// What a connection may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every app: the server's own work (the mail worker, the hosted pages, the CLI), which
    /// finds its app from what it reads.
    Server,
    /// One app's family (the app, its ancestors and its descendants): a request of that app.
    App(Arc<str>),
}

/// A pooled connection and the scope it is in (`None`: none yet, it sees nothing).
pub struct ScopedConn {
    pub conn: AsyncPgConnection,
    scope: Option<Scope>,
}

impl ScopedConn {
    /// Puts the connection in `scope` unless it is there already.
    pub async fn enter(
        object: &mut deadpool::managed::Object<Manager>,
        scope: &Scope,
    ) -> Result<(), PoolError> {
        if object.scope.as_ref() == Some(scope) {
            return Ok(());
        }
        // Until the switch is done the connection counts as in no scope: if it fails half way,
        // the next checkout tries again.
        let previous = object.scope.take();
        let failed = |e| PoolError::Backend(ConnError::QueryError(e));
        match scope {
            Scope::Server => {
                object
                    .conn
                    .batch_execute("SET ROLE usersvc_everyone")
                    .await
                    .map_err(failed)?;
            }
            Scope::App(app) => {
                // Coming from the server's scope, or from none (a switch that failed half way
                // may have left either role), the role comes first, then the app's family.
                if !matches!(previous, Some(Scope::App(_))) {
                    object
                        .conn
                        .batch_execute("SET ROLE usersvc_server")
                        .await
                        .map_err(failed)?;
                }
                fixed("SELECT usersvc_enter($1)", |q| {
                    q.bind::<Text, _>(app.as_ref())
                })
                .execute(&mut object.conn)
                .await
                .map_err(failed)?;
            }
        }
        object.scope = Some(scope.clone());
        Ok(())
    }
}

/// diesel-async's connection manager, keeping each connection's scope beside it.
pub struct Manager {
    inner: AsyncDieselConnectionManager<AsyncPgConnection>,
}

impl Manager {
    pub fn new(inner: AsyncDieselConnectionManager<AsyncPgConnection>) -> Self {
        Manager { inner }
    }
}

impl deadpool::managed::Manager for Manager {
    type Type = ScopedConn;
    type Error = ConnError;

    async fn create(&self) -> Result<ScopedConn, ConnError> {
        Ok(ScopedConn {
            conn: self.inner.create().await?,
            scope: None,
        })
    }

    async fn recycle(&self, obj: &mut ScopedConn, metrics: &Metrics) -> RecycleResult<ConnError> {
        self.inner.recycle(&mut obj.conn, metrics).await
    }
}
