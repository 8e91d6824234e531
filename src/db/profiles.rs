//! Profiles: lookups, inserts, the keyset-paged listing and recursive deletion.
//!
//! Listing is keyset pagination on `(order key, profile_id)`: each page is one index range
//! scan starting at the cursor's position, so page 10,000 costs what page 1 costs. The order
//! keys are stored, non-null columns (`created_at`, `user_name_key`, `last_login_key`), each
//! with an index `(app_id, key, profile_id)`, which makes `(key, id) > ($k, $id)` a plain row
//! comparison the index serves.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::fixed::fixed;
use super::models::{Identity, NewProfile, Profile};
use super::rendered::RenderOnce;
use super::schema::{identities, profiles};

/// One profile of an app.
pub async fn find(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Option<Profile>> {
    profiles::table
        .find((app_id, profile_id))
        .select(Profile::as_select())
        .limit(1)
        .rendered_once()
        .get_result(conn)
        .await
        .optional()
}

/// One profile of an app with its identities (in their stable order), in one query: a left
/// join, so a profile without identities still comes back.
pub async fn find_with_identities(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Option<(Profile, Vec<Identity>)>> {
    let rows: Vec<(Profile, Option<Identity>)> = profiles::table
        .left_join(
            identities::table.on(identities::app_id
                .eq(profiles::app_id)
                .and(identities::profile_id.eq(profiles::profile_id))),
        )
        .filter(profiles::app_id.eq(app_id))
        .filter(profiles::profile_id.eq(profile_id))
        .select((Profile::as_select(), Option::<Identity>::as_select()))
        .rendered_once()
        .load(conn)
        .await?;
    let mut rows = rows.into_iter();
    let Some((profile, first)) = rows.next() else {
        return Ok(None);
    };
    let mut ids: Vec<Identity> = first
        .into_iter()
        .chain(rows.filter_map(|(_, i)| i))
        .collect();
    super::identities::in_order(&mut ids);
    Ok(Some((profile, ids)))
}

/// One profile of an app, locked until the end of the transaction (`FOR UPDATE`): changes to
/// one profile that must see each other's effects (rate limits, link replacement) queue here.
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Option<Profile>> {
    profiles::table
        .find((app_id, profile_id))
        .select(Profile::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Whether a profile exists in an app.
pub async fn exists(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        profiles::table.find((app_id, profile_id)),
    ))
    .get_result(conn)
    .await
}

/// Whether a profile exists and is disabled.
pub async fn is_disabled(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        profiles::table
            .find((app_id, profile_id))
            .filter(profiles::status.eq(super::models::DISABLED)),
    ))
    .get_result(conn)
    .await
}

/// Whether a profile (of `parent_app_id`) already has a child in `app_id`.
pub async fn has_child_in(
    conn: &mut AsyncPgConnection,
    parent_app_id: &str,
    parent_profile_id: Uuid,
    app_id: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        profiles::table
            .filter(profiles::parent_app_id.eq(parent_app_id))
            .filter(profiles::parent_profile_id.eq(parent_profile_id))
            .filter(profiles::app_id.eq(app_id)),
    ))
    .get_result(conn)
    .await
}

/// Inserts a profile.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewProfile<'_>) -> QueryResult<Profile> {
    diesel::insert_into(profiles::table)
        .values(new)
        .returning(Profile::as_returning())
        .get_result(conn)
        .await
}

/// The children of many parents (keys are `(app_id, profile_id)` of the parents), in one query.
pub async fn children_of(
    conn: &mut AsyncPgConnection,
    parents: &[(String, Uuid)],
) -> QueryResult<Vec<Profile>> {
    let (apps, ids): (Vec<String>, Vec<Uuid>) = parents.iter().cloned().unzip();
    profiles::table
        .filter(
            sql::<Bool>(
                "(profiles.parent_app_id, profiles.parent_profile_id) IN (SELECT * FROM unnest(",
            )
            .bind::<Array<Text>, _>(apps)
            .sql(", ")
            .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
            .sql("))"),
        )
        .order((profiles::created_at.asc(), profiles::profile_id.asc()))
        .select(Profile::as_select())
        .load(conn)
        .await
}

/// A profile removed by [`delete_tree`], with how far below the requested profile it was.
#[derive(Debug, Clone, QueryableByName)]
pub struct Deleted {
    #[diesel(sql_type = Text)]
    pub app_id: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub profile_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub parent_profile_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub depth: i32,
}

/// Deletes a profile and, with `recursive`, its children, their children and so on (across
/// the child apps). Identities go with them (`ON DELETE CASCADE`). Returns what was deleted,
/// the requested profile first.
pub async fn delete_tree(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    recursive: bool,
) -> QueryResult<Vec<Deleted>> {
    let mut deleted: Vec<Deleted> = fixed(
        "WITH RECURSIVE tree (app_id, profile_id, parent_profile_id, depth) AS ( \
             SELECT app_id, profile_id, NULL::uuid, 0 FROM profiles \
              WHERE app_id = $1 AND profile_id = $2 \
           UNION ALL \
             SELECT p.app_id, p.profile_id, p.parent_profile_id, t.depth + 1 \
               FROM profiles p JOIN tree t \
                 ON p.parent_app_id = t.app_id AND p.parent_profile_id = t.profile_id \
              WHERE $3 AND t.depth < 16 \
         ) \
         DELETE FROM profiles p USING tree t \
          WHERE p.app_id = t.app_id AND p.profile_id = t.profile_id \
         RETURNING t.app_id, t.profile_id, t.parent_profile_id, t.depth",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<diesel::sql_types::Uuid, _>(profile_id)
                .bind::<Bool, _>(recursive)
        },
    )
    .load(conn)
    .await?;
    deleted.sort_by_key(|d| d.depth);
    Ok(deleted)
}

/// Detaches a profile's children from it; returns their `(app_id, profile_id)`.
pub async fn orphan_children(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Vec<(String, Uuid)>> {
    diesel::update(
        profiles::table
            .filter(profiles::parent_app_id.eq(app_id))
            .filter(profiles::parent_profile_id.eq(profile_id)),
    )
    .set((
        profiles::parent_app_id.eq(None::<String>),
        profiles::parent_profile_id.eq(None::<Uuid>),
        profiles::version.eq(profiles::version + 1),
        profiles::updated_at.eq(diesel::dsl::now),
    ))
    .returning((profiles::app_id, profiles::profile_id))
    .get_results(conn)
    .await
}

/// Which column orders a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    CreatedAt,
    UserName,
    LastLoginAt,
}

/// A value of an order key, as stored in the sort column.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Time(DateTime<Utc>),
    Text(String),
}

/// `(column, profiles.profile_id) op ($key, $id)`: the keyset comparison, with the column and
/// operator from closed sets. Written as its own expression (not an SQL literal) so that diesel
/// caches the prepared statement: every page after a cursor is then planned once per connection.
#[derive(Debug, Clone)]
struct Keyset {
    column: &'static str,
    op: &'static str,
    key: SortKey,
    profile_id: Uuid,
}

impl diesel::expression::Expression for Keyset {
    type SqlType = Bool;
}

impl diesel::expression::ValidGrouping<()> for Keyset {
    type IsAggregate = diesel::expression::is_aggregate::No;
}

impl diesel::expression::AppearsOnTable<profiles::table> for Keyset {}
impl diesel::expression::SelectableExpression<profiles::table> for Keyset {}

impl diesel::query_builder::QueryId for Keyset {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::QueryFragment<Pg> for Keyset {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()> {
        out.push_sql("(");
        out.push_sql(self.column);
        out.push_sql(", profiles.profile_id) ");
        out.push_sql(self.op);
        out.push_sql(" (");
        match &self.key {
            SortKey::Time(t) => out.push_bind_param::<Timestamptz, _>(t)?,
            SortKey::Text(k) => out.push_bind_param::<Text, _>(k)?,
        }
        out.push_sql(", ");
        out.push_bind_param::<diesel::sql_types::Uuid, _>(&self.profile_id)?;
        out.push_sql(")");
        Ok(())
    }
}

/// A place in an ordered listing: just past or at the row `(key, profile_id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub key: SortKey,
    pub profile_id: Uuid,
}

/// The listing filters (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct ProfileFilter {
    pub user_name_prefix: Option<String>,
    pub contact_email: Option<String>,
    pub country_code: Option<String>,
    pub language_code: Option<String>,
    pub is_tester: Option<bool>,
    pub identity_kind: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub parent_profile_id: Option<Uuid>,
    /// `ACTIVE` or `DISABLED`.
    pub status: Option<&'static str>,
}

/// How a row relates to a [`Position`] in the listing's own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Strictly after.
    After,
    /// Strictly before.
    Before,
    /// At or after.
    AtOrAfter,
    /// At or before.
    AtOrBefore,
}

/// An ordered, filtered view of one app's profiles.
#[derive(Debug, Clone)]
pub struct Listing<'a> {
    pub app_id: &'a str,
    pub filter: &'a ProfileFilter,
    pub field: OrderField,
    pub descending: bool,
}

type BoxedProfiles<'a> = profiles::BoxedQuery<'a, Pg>;
type BoxedCondition = Box<dyn BoxableExpression<profiles::table, Pg, SqlType = Bool>>;

impl<'a> Listing<'a> {
    fn base(&self) -> BoxedProfiles<'a> {
        let f = self.filter;
        let mut q = profiles::table
            .filter(profiles::app_id.eq(self.app_id))
            .into_boxed();
        if let Some(prefix) = &f.user_name_prefix {
            q = q.filter(
                sql::<Bool>("profiles.user_name_key >= lower(")
                    .bind::<Text, _>(prefix.clone())
                    .sql(") AND profiles.user_name_key < lower(")
                    .bind::<Text, _>(prefix.clone())
                    .sql(") || chr(1114111)"),
            );
        }
        if let Some(email) = &f.contact_email {
            q = q.filter(
                sql::<Bool>("lower(profiles.contact_email) = lower(")
                    .bind::<Text, _>(email.clone())
                    .sql(")"),
            );
        }
        if let Some(c) = &f.country_code {
            q = q.filter(profiles::country_code.eq(c.clone()));
        }
        if let Some(l) = &f.language_code {
            q = q.filter(profiles::language_code.eq(l.clone()));
        }
        if let Some(t) = f.is_tester {
            q = q.filter(profiles::is_tester.eq(t));
        }
        if let Some(kind) = f.identity_kind {
            q = q.filter(diesel::dsl::exists(
                identities::table
                    .filter(identities::app_id.eq(profiles::app_id))
                    .filter(identities::profile_id.eq(profiles::profile_id))
                    .filter(identities::kind.eq(kind)),
            ));
        }
        if let Some(t) = f.created_after {
            q = q.filter(profiles::created_at.ge(t));
        }
        if let Some(t) = f.created_before {
            q = q.filter(profiles::created_at.lt(t));
        }
        if let Some(parent) = f.parent_profile_id {
            q = q.filter(profiles::parent_profile_id.eq(parent));
        }
        if let Some(status) = f.status {
            q = q.filter(profiles::status.eq(status));
        }
        q
    }

    /// `(key, profile_id) <op> (pos)` for a side of a position in this listing's order.
    fn condition(&self, side: Side, pos: &Position) -> BoxedCondition {
        let ascending_op = match side {
            Side::After => ">",
            Side::Before => "<",
            Side::AtOrAfter => ">=",
            Side::AtOrBefore => "<=",
        };
        let op = if self.descending {
            match ascending_op {
                ">" => "<",
                "<" => ">",
                ">=" => "<=",
                _ => ">=",
            }
        } else {
            ascending_op
        };
        let column = match self.field {
            OrderField::CreatedAt => "profiles.created_at",
            OrderField::UserName => "profiles.user_name_key",
            OrderField::LastLoginAt => "profiles.last_login_key",
        };
        Box::new(Keyset {
            column,
            op,
            key: pos.key.clone(),
            profile_id: pos.profile_id,
        })
    }

    fn ordered(&self, q: BoxedProfiles<'a>, reverse: bool) -> BoxedProfiles<'a> {
        let descending = self.descending != reverse;
        match (self.field, descending) {
            (OrderField::CreatedAt, false) => {
                q.order_by((profiles::created_at.asc(), profiles::profile_id.asc()))
            }
            (OrderField::CreatedAt, true) => {
                q.order_by((profiles::created_at.desc(), profiles::profile_id.desc()))
            }
            (OrderField::UserName, false) => {
                q.order_by((profiles::user_name_key.asc(), profiles::profile_id.asc()))
            }
            (OrderField::UserName, true) => {
                q.order_by((profiles::user_name_key.desc(), profiles::profile_id.desc()))
            }
            (OrderField::LastLoginAt, false) => {
                q.order_by((profiles::last_login_key.asc(), profiles::profile_id.asc()))
            }
            (OrderField::LastLoginAt, true) => {
                q.order_by((profiles::last_login_key.desc(), profiles::profile_id.desc()))
            }
        }
    }

    /// Up to `limit` rows strictly between `after` and `before`, taken from the start of that
    /// range (or from its end when `from_end`), always returned in the listing's order, each
    /// with its sort key as stored.
    pub async fn range(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<&Position>,
        before: Option<&Position>,
        limit: i64,
        from_end: bool,
    ) -> QueryResult<Vec<(Profile, SortKey)>> {
        let mut q = self.base();
        if let Some(p) = after {
            q = q.filter(self.condition(Side::After, p));
        }
        if let Some(p) = before {
            q = q.filter(self.condition(Side::Before, p));
        }
        let q = self.ordered(q, from_end).limit(limit);
        let mut rows: Vec<(Profile, SortKey)> = match self.field {
            OrderField::CreatedAt => q
                .select(Profile::as_select())
                .load::<Profile>(conn)
                .await?
                .into_iter()
                .map(|p| {
                    let k = SortKey::Time(p.created_at);
                    (p, k)
                })
                .collect(),
            OrderField::UserName => q
                .select((Profile::as_select(), profiles::user_name_key))
                .load::<(Profile, String)>(conn)
                .await?
                .into_iter()
                .map(|(p, k)| (p, SortKey::Text(k)))
                .collect(),
            OrderField::LastLoginAt => q
                .select((Profile::as_select(), profiles::last_login_key))
                .load::<(Profile, DateTime<Utc>)>(conn)
                .await?
                .into_iter()
                .map(|(p, k)| (p, SortKey::Time(k)))
                .collect(),
        };
        if from_end {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Whether any row lies on `side` of `pos`.
    pub async fn any_on(
        &self,
        conn: &mut AsyncPgConnection,
        side: Side,
        pos: &Position,
    ) -> QueryResult<bool> {
        let q = self
            .base()
            .filter(self.condition(side, pos))
            .select(profiles::profile_id);
        diesel::select(diesel::dsl::exists(q))
            .get_result(conn)
            .await
    }

    /// How many rows the listing has.
    pub async fn count(&self, conn: &mut AsyncPgConnection) -> QueryResult<i64> {
        self.base().count().get_result(conn).await
    }
}
