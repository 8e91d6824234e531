//! Statements written as SQL text, for what diesel's DSL cannot say (a CTE, a conditional
//! upsert, a row-value `IN`), prepared once per connection as the DSL's queries are.
//!
//! `diesel::sql_query` never lets its statement be kept, since its text may be built at run
//! time: every call costs a round trip to prepare it, and PostgreSQL parses and plans it again.
//! [`fixed`] takes only a `'static` text, which cannot vary, so the connection keeps the
//! prepared statement by that text, as it keeps the DSL's.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId, SqlQuery};

/// A statement of fixed text with its binds; see [`fixed`].
#[derive(Debug, Clone)]
pub struct Fixed<Q>(Q);

/// The statement `sql` with the binds `binds` adds to it (`|q| q.bind::<Text, _>(app_id)…`),
/// prepared once per connection.
pub fn fixed<Q>(sql: &'static str, binds: impl FnOnce(SqlQuery) -> Q) -> Fixed<Q> {
    Fixed(binds(diesel::sql_query(sql)))
}

impl<Q> QueryId for Fixed<Q> {
    // Kept by its text, as a DSL query without a static id is.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Fixed<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Fixed<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        // The text is a `'static` string: one statement, however often it runs.
        Ok(true)
    }
}
