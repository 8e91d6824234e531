//! Bulk reads and writes for importing and exporting users.
//!
//! Writes take whole batches: each statement binds one array per column and expands it with
//! `unnest`, so a batch of a thousand users costs three statements (profiles, identities,
//! audit events) of a fixed text, whatever the batch's size, instead of a thousand round trips
//! or a statement with tens of thousands of parameters. Reads for the batch's checks (which
//! identities and ids exist, which parents exist and have children) are one statement each
//! for the same reason.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Double, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::fixed::fixed;
use super::models::{DISABLED, Profile};
use super::schema::{identities, profiles};

/// A profile to write, with the fields an import keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedProfile {
    pub profile_id: Uuid,
    pub user_name: Option<String>,
    pub contact_email: Option<String>,
    pub country_code: Option<String>,
    pub language_code: Option<String>,
    pub time_zone_offset: Option<f64>,
    pub picture_url: Option<String>,
    pub is_tester: bool,
    pub summary_friend_data: Option<serde_json::Value>,
    pub parent_profile_id: Option<Uuid>,
    /// `None`: now (on insert), unchanged (on update).
    pub created_at: Option<DateTime<Utc>>,
    /// `None`: never (on insert), unchanged (on update).
    pub last_login_at: Option<DateTime<Utc>>,
    /// `ACTIVE` or `DISABLED`.
    pub status: &'static str,
}

/// An identity to write. `password_hash: None` on an update keeps the stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedIdentity {
    pub profile_id: Uuid,
    pub kind: &'static str,
    pub external_auth_type: String,
    pub external_id: String,
    pub password_hash: Option<String>,
}

/// An identity as stored, with its password hash (for comparing and exporting; never sent to
/// an API caller).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = identities, check_for_backend(diesel::pg::Pg))]
pub struct StoredIdentity {
    pub profile_id: Uuid,
    pub kind: String,
    pub external_auth_type: String,
    pub external_id: String,
    pub password_hash: Option<String>,
}

/// One array parameter of a multi-row statement (`unnest($n::type[])`): a field of every row.
fn column<'a, R, T>(rows: &'a [R], field: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// Inserts profiles; their `parent_app_id` is `parent_app_id` where they name a parent.
pub async fn insert_profiles(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    parent_app_id: Option<&str>,
    rows: &[ImportedProfile],
) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    fixed(
        "INSERT INTO profiles (app_id, profile_id, user_name, contact_email, country_code, \
           language_code, time_zone_offset, picture_url, is_tester, summary_friend_data, \
           parent_app_id, parent_profile_id, created_at, updated_at, last_login_at, status, \
           disabled_at) \
         SELECT $1, id, un, ce, cc, lc, tz, pu, it, fd, CASE WHEN pp IS NOT NULL THEN $2 END, \
           pp, coalesce(ca, now()), now(), ll, st, CASE WHEN st = 'DISABLED' THEN now() END \
         FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::float8[], $9::text[], $10::bool[], $11::jsonb[], $12::uuid[], \
           $13::timestamptz[], $14::timestamptz[], $15::text[]) \
           AS u(id, un, ce, cc, lc, tz, pu, it, fd, pp, ca, ll, st)",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<Nullable<Text>, _>(parent_app_id)
                .bind::<Array<SqlUuid>, _>(column(rows, |r| r.profile_id))
                .bind::<Array<Nullable<Text>>, _>(column(rows, |r| r.user_name.clone()))
                .bind::<Array<Nullable<Text>>, _>(column(rows, |r| r.contact_email.clone()))
                .bind::<Array<Nullable<Text>>, _>(column(rows, |r| r.country_code.clone()))
                .bind::<Array<Nullable<Text>>, _>(column(rows, |r| r.language_code.clone()))
                .bind::<Array<Nullable<Double>>, _>(column(rows, |r| r.time_zone_offset))
                .bind::<Array<Nullable<Text>>, _>(column(rows, |r| r.picture_url.clone()))
                .bind::<Array<Bool>, _>(column(rows, |r| r.is_tester))
                .bind::<Array<Nullable<Jsonb>>, _>(column(rows, |r| r.summary_friend_data.clone()))
                .bind::<Array<Nullable<SqlUuid>>, _>(column(rows, |r| r.parent_profile_id))
                .bind::<Array<Nullable<Timestamptz>>, _>(column(rows, |r| r.created_at))
                .bind::<Array<Nullable<Timestamptz>>, _>(column(rows, |r| r.last_login_at))
                .bind::<Array<Text>, _>(column(rows, |r| r.status))
        },
    )
    .execute(conn)
    .await
}

/// Inserts identities, dated `created_at` of their profile (now where that is `None`). With
/// `replace`, a profile's identity of the same kind (and externalAuthType) is replaced: its
/// external id, and its password hash where a new one is given.
pub async fn write_identities(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    rows: &[(ImportedIdentity, Option<DateTime<Utc>>)],
    replace: bool,
) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let on_conflict = if replace {
        " ON CONFLICT (app_id, profile_id, kind, external_auth_type) DO UPDATE SET \
           external_id = EXCLUDED.external_id, \
           password_hash = coalesce(EXCLUDED.password_hash, identities.password_hash), \
           updated_at = now()"
    } else {
        ""
    };
    diesel::sql_query(format!(
        "INSERT INTO identities (app_id, profile_id, kind, external_auth_type, external_id, \
           password_hash, created_at, updated_at) \
         SELECT $1, p, k, e, x, h, coalesce(ca, now()), now() \
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::timestamptz[]) AS u(p, k, e, x, h, ca){on_conflict}"
    ))
    .bind::<Text, _>(app_id)
    .bind::<Array<SqlUuid>, _>(column(rows, |(i, _)| i.profile_id))
    .bind::<Array<Text>, _>(column(rows, |(i, _)| i.kind))
    .bind::<Array<Text>, _>(column(rows, |(i, _)| i.external_auth_type.as_str()))
    .bind::<Array<Text>, _>(column(rows, |(i, _)| i.external_id.as_str()))
    .bind::<Array<Nullable<Text>>, _>(column(rows, |(i, _)| i.password_hash.as_deref()))
    .bind::<Array<Nullable<Timestamptz>>, _>(column(rows, |(_, at)| *at))
    .execute(conn)
    .await
}

/// Appends one `import` audit event per profile.
pub async fn audit_imports(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    actor: &str,
    request_id: Option<&str>,
    events: &[(Uuid, serde_json::Value)],
) -> QueryResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    fixed(
        "INSERT INTO audit_events (app_id, profile_id, actor, operation, details, request_id) \
         SELECT $1, p, $2, 'import', d, $3 FROM unnest($4::uuid[], $5::jsonb[]) AS u(p, d)",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<Text, _>(actor)
                .bind::<Nullable<Text>, _>(request_id)
                .bind::<Array<SqlUuid>, _>(column(events, |(p, _)| *p))
                .bind::<Array<Jsonb>, _>(column(events, |(_, d)| d.clone()))
        },
    )
    .execute(conn)
    .await
}

/// Replaces an existing profile's fields with an import's: every profile field, the status
/// (`disabledAt` set when it becomes disabled), and `createdAt`/`lastLoginAt` where given;
/// `version` moves on. Returns whether the profile was there.
pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    parent_app_id: Option<&str>,
    row: &ImportedProfile,
) -> QueryResult<bool> {
    let disabled = row.status == DISABLED;
    let n = fixed(
        "UPDATE profiles SET user_name = $3, contact_email = $4, country_code = $5, \
           language_code = $6, time_zone_offset = $7, picture_url = $8, is_tester = $9, \
           summary_friend_data = $10, parent_app_id = CASE WHEN $11::uuid IS NOT NULL THEN $12 END, \
           parent_profile_id = $11, created_at = coalesce($13, created_at), \
           last_login_at = coalesce($14, last_login_at), status = $15, \
           disabled_at = CASE WHEN $16 THEN coalesce(disabled_at, now()) END, \
           disabled_reason = CASE WHEN $16 THEN disabled_reason END, \
           version = version + 1, updated_at = now() \
         WHERE app_id = $1 AND profile_id = $2",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<SqlUuid, _>(row.profile_id)
                .bind::<Nullable<Text>, _>(row.user_name.as_deref())
                .bind::<Nullable<Text>, _>(row.contact_email.as_deref())
                .bind::<Nullable<Text>, _>(row.country_code.as_deref())
                .bind::<Nullable<Text>, _>(row.language_code.as_deref())
                .bind::<Nullable<Double>, _>(row.time_zone_offset)
                .bind::<Nullable<Text>, _>(row.picture_url.as_deref())
                .bind::<Bool, _>(row.is_tester)
                .bind::<Nullable<Jsonb>, _>(row.summary_friend_data.as_ref())
                .bind::<Nullable<SqlUuid>, _>(row.parent_profile_id)
                .bind::<Nullable<Text>, _>(parent_app_id)
                .bind::<Nullable<Timestamptz>, _>(row.created_at)
                .bind::<Nullable<Timestamptz>, _>(row.last_login_at)
                .bind::<Text, _>(row.status)
                .bind::<Bool, _>(disabled)
        },
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    external_auth_type: String,
    #[diesel(sql_type = Text)]
    external_id: String,
    #[diesel(sql_type = SqlUuid)]
    profile_id: Uuid,
}

/// Which of these identities (`(kind, externalAuthType, externalId)`) exist in the app, and
/// whose they are.
pub async fn identity_owners(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    keys: &[(&str, &str, &str)],
) -> QueryResult<Vec<((String, String, String), Uuid)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let owners: Vec<Owner> = fixed(
        "SELECT i.kind, i.external_auth_type, i.external_id, i.profile_id FROM identities i \
         JOIN unnest($2::text[], $3::text[], $4::text[]) AS u(k, e, x) \
           ON i.kind = u.k AND i.external_auth_type = u.e AND i.external_id = u.x \
         WHERE i.app_id = $1",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<Array<Text>, _>(column(keys, |k| k.0))
                .bind::<Array<Text>, _>(column(keys, |k| k.1))
                .bind::<Array<Text>, _>(column(keys, |k| k.2))
        },
    )
    .load(conn)
    .await?;
    Ok(owners
        .into_iter()
        .map(|o| ((o.kind, o.external_auth_type, o.external_id), o.profile_id))
        .collect())
}

/// These profiles of the app, each with its identities (password hashes included).
pub async fn profiles_with_identities(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    ids: &[Uuid],
) -> QueryResult<Vec<(Profile, Vec<StoredIdentity>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Profile> = profiles::table
        .filter(profiles::app_id.eq(app_id))
        .filter(profiles::profile_id.eq_any(ids))
        .order(profiles::profile_id.asc())
        .select(Profile::as_select())
        .load(conn)
        .await?;
    attach_identities(conn, app_id, found).await
}

async fn attach_identities(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    found: Vec<Profile>,
) -> QueryResult<Vec<(Profile, Vec<StoredIdentity>)>> {
    let ids: Vec<Uuid> = found.iter().map(|p| p.profile_id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stored = identities_of(app_id)
        .filter(identities::profile_id.eq_any(ids))
        .load(conn)
        .await?;
    Ok(with_identities(found, stored))
}

/// The app's identities in profile order, for the caller to narrow to the profiles it holds.
fn identities_of(
    app_id: &str,
) -> identities::BoxedQuery<
    '_,
    diesel::pg::Pg,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<StoredIdentity, diesel::pg::Pg>>,
> {
    identities::table
        .filter(identities::app_id.eq(app_id))
        .order((
            identities::profile_id,
            identities::kind,
            identities::external_auth_type,
        ))
        .select(StoredIdentity::as_select())
        .into_boxed()
}

/// Up to `limit` profiles of the app after `after` in profile id order, with their identities:
/// one page of an export, an index range scan wherever it starts.
pub async fn export_page(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<(Profile, Vec<StoredIdentity>)>> {
    let mut query = profiles::table
        .filter(profiles::app_id.eq(app_id))
        .order(profiles::profile_id.asc())
        .select(Profile::as_select())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(profiles::profile_id.gt(after));
    }
    let found: Vec<Profile> = query.load(conn).await?;
    let (Some(first), Some(last)) = (found.as_slice().first(), found.as_slice().last()) else {
        return Ok(Vec::new());
    };
    // The page's identities are those of its id range: one index range, however many.
    let stored = identities_of(app_id)
        .filter(identities::profile_id.ge(first.profile_id))
        .filter(identities::profile_id.le(last.profile_id))
        .load(conn)
        .await?;
    Ok(with_identities(found, stored))
}

/// Profiles with their identities (`stored`, of these profiles or some of them).
fn with_identities(
    found: Vec<Profile>,
    stored: Vec<StoredIdentity>,
) -> Vec<(Profile, Vec<StoredIdentity>)> {
    let mut ids_of: std::collections::HashMap<Uuid, Vec<StoredIdentity>> = Default::default();
    for i in stored {
        ids_of.entry(i.profile_id).or_default().push(i);
    }
    found
        .into_iter()
        .map(|p| {
            let ids = ids_of.remove(&p.profile_id).unwrap_or_default();
            (p, ids)
        })
        .collect()
}

#[derive(QueryableByName)]
struct Parent {
    #[diesel(sql_type = SqlUuid)]
    profile_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    child: Option<Uuid>,
}

/// Which of these profiles exist in `parent_app_id`, each with its child in `app_id` if it has
/// one.
pub async fn parents(
    conn: &mut AsyncPgConnection,
    parent_app_id: &str,
    ids: &[Uuid],
    app_id: &str,
) -> QueryResult<Vec<(Uuid, Option<Uuid>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Parent> = fixed(
        "SELECT p.profile_id, c.profile_id AS child FROM profiles p \
         LEFT JOIN profiles c ON c.parent_app_id = p.app_id \
           AND c.parent_profile_id = p.profile_id AND c.app_id = $3 \
         WHERE p.app_id = $1 AND p.profile_id = ANY($2)",
        |q| {
            q.bind::<Text, _>(parent_app_id)
                .bind::<Array<SqlUuid>, _>(ids)
                .bind::<Text, _>(app_id)
        },
    )
    .load(conn)
    .await?;
    Ok(found.into_iter().map(|p| (p.profile_id, p.child)).collect())
}

/// How many profiles an app has.
pub async fn count_profiles(conn: &mut AsyncPgConnection, app_id: &str) -> QueryResult<i64> {
    profiles::table
        .filter(profiles::app_id.eq(app_id))
        .count()
        .get_result(conn)
        .await
}

/// Refreshes the planner's statistics of the identities (migration `import_statistics`).
pub async fn refresh_statistics(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    fixed("SELECT usersvc_refresh_import_statistics()", |q| q)
        .execute(conn)
        .await
        .map(|_| ())
}

/// How many identities the app has, counting no further than `up_to`.
pub async fn count_identities(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    up_to: i64,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let found: Count = fixed(
        "SELECT count(*) AS n FROM (SELECT 1 FROM identities WHERE app_id = $1 LIMIT $2) AS i",
        |q| {
            q.bind::<Text, _>(app_id)
                .bind::<diesel::sql_types::BigInt, _>(up_to)
        },
    )
    .get_result(conn)
    .await?;
    Ok(found.n)
}
