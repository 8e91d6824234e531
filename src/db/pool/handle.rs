//! [`DbPool`], the handle the service layer works on: the pool, or one connection that is
//! already in a transaction, so one service function serves both.

use diesel_async::AsyncPgConnection;

use super::{Conn, Db, PoolError};

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
