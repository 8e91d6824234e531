//! Query text rendered once per query type.
//!
//! diesel-async renders a query's SQL text on every call, before it looks the prepared
//! statement up, so a cached statement still pays for building its text: for `userInfo` that
//! is 58 quoted identifiers, each escaped into a fresh `String`, close to a tenth of the
//! request's instructions. diesel's statement cache already rests on the rule that a query
//! type with a static query id has one SQL text (it keys prepared statements by that type
//! alone); [`Rendered`] keys the text the same way and renders it once per process.
//!
//! Binds are still collected from the query on every call; only the text is kept. A query
//! whose type has no static id, or which diesel would not cache, is rendered every time as
//! before.
//!
//! It is a shortcut, kept because it pays: without it a `userInfo` costs about a tenth more
//! instructions in usersvc (benches/FINDINGS.md). [`set_enabled`] turns it off for the whole
//! process, so that a test can send the same requests both ways and compare the answers.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, PoisonError, RwLock};

use diesel::QueryResult;
use diesel::pg::{Pg, PgQueryBuilder};
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};

/// Texts by query type.
static TEXTS: LazyLock<RwLock<HashMap<TypeId, String>>> = LazyLock::new(Default::default);

/// Whether kept texts are used (they are unless a test says otherwise).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Uses the kept texts (`true`, as always outside tests) or renders every query afresh.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// A whole query (never a part of one) whose SQL text is rendered once per query type.
#[derive(Debug, Clone, Copy)]
pub struct Rendered<Q>(pub Q);

/// `query.rendered_once()`: wraps a query in [`Rendered`].
pub trait RenderOnce: Sized {
    fn rendered_once(self) -> Rendered<Self> {
        Rendered(self)
    }
}

impl<Q: Query> RenderOnce for Q {}

impl<Q: QueryId> QueryId for Rendered<Q> {
    type QueryId = Q::QueryId;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: Query> Query for Rendered<Q> {
    type SqlType = Q::SqlType;
}

impl<Q: QueryFragment<Pg> + QueryId> QueryFragment<Pg> for Rendered<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn to_sql(&self, out: &mut PgQueryBuilder, backend: &Pg) -> QueryResult<()> {
        let Some(id) = Q::query_id().filter(|_| ENABLED.load(Ordering::Relaxed)) else {
            return self.0.to_sql(out, backend);
        };
        {
            let texts = TEXTS.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(text) = texts.get(&id) {
                debug_assert_eq!(*text, render(&self.0, backend)?, "one text per query type");
                out.push_sql(text);
                return Ok(());
            }
        }
        let text = render(&self.0, backend)?;
        out.push_sql(&text);
        if self.0.is_safe_to_cache_prepared(backend)? {
            TEXTS
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, text);
        }
        Ok(())
    }
}

/// The SQL text of a query, rendered afresh.
fn render<Q: QueryFragment<Pg>>(query: &Q, backend: &Pg) -> QueryResult<String> {
    let mut builder = PgQueryBuilder::default();
    query.to_sql(&mut builder, backend)?;
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::prelude::*;
    use uuid::Uuid;

    use super::RenderOnce;
    use crate::db::models::{Identity, Profile};
    use crate::db::schema::{identities, profiles};

    fn text<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>>(q: &Q) -> String {
        debug_query::<diesel::pg::Pg, _>(q).to_string()
    }

    #[test]
    fn each_query_type_keeps_its_own_text_and_binds() {
        let id = Uuid::now_v7();
        let one = |app: &'static str| {
            profiles::table
                .find((app, id))
                .select(Profile::as_select())
                .limit(1)
        };
        let other = identities::table
            .filter(identities::app_id.eq("b"))
            .select(Identity::as_select());
        let plain = text(&one("a"));
        assert!(plain.contains("FROM \"profiles\""), "{plain}");
        // First call renders and keeps the text; later calls reuse it with their own binds.
        assert_eq!(text(&one("a").rendered_once()), plain);
        assert_eq!(text(&one("a").rendered_once()), plain);
        assert_eq!(
            text(&one("z").rendered_once()),
            text(&one("z")),
            "binds come from the query at hand"
        );
        assert_eq!(text(&other.rendered_once()), text(&other));
        assert_ne!(text(&other.rendered_once()), plain);
    }

    #[test]
    fn queries_without_a_static_id_are_rendered_every_time() {
        let by_name = profiles::table
            .select(profiles::profile_id)
            .filter(profiles::user_name.eq("x"))
            .into_boxed::<diesel::pg::Pg>();
        let by_mail = profiles::table
            .select(profiles::profile_id)
            .filter(profiles::contact_email.eq("x"))
            .into_boxed::<diesel::pg::Pg>();
        let name_text = text(&by_name.rendered_once());
        let mail_text = text(&by_mail.rendered_once());
        assert!(name_text.contains("\"user_name\""), "{name_text}");
        assert!(mail_text.contains("\"contact_email\""), "{mail_text}");
    }
}
