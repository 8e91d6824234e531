//! Identities: how profiles log in. Read without their password hashes.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{Identity, NewIdentity};
use super::schema::identities;

/// Inserts an identity. A duplicate `(app, kind, externalAuthType, externalId)` fails on the
/// unique index `identities_external_key`.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewIdentity<'_>) -> QueryResult<Identity> {
    diesel::insert_into(identities::table)
        .values(new)
        .returning(Identity::as_returning())
        .get_result(conn)
        .await
}

/// One profile's identities, in a stable order.
pub async fn for_profile(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Vec<Identity>> {
    identities::table
        .filter(identities::app_id.eq(app_id))
        .filter(identities::profile_id.eq(profile_id))
        .order((identities::kind.asc(), identities::external_auth_type.asc()))
        .select(Identity::as_select())
        .load(conn)
        .await
}

/// The identities of many profiles (possibly of several apps, as children are), in one query.
pub async fn for_profiles(
    conn: &mut AsyncPgConnection,
    keys: &[(String, Uuid)],
) -> QueryResult<Vec<Identity>> {
    let (apps, ids): (Vec<String>, Vec<Uuid>) = keys.iter().cloned().unzip();
    identities::table
        .filter(
            sql::<Bool>("(identities.app_id, identities.profile_id) IN (SELECT * FROM unnest(")
                .bind::<Array<Text>, _>(apps)
                .sql(", ")
                .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
                .sql("))"),
        )
        .order((
            identities::profile_id.asc(),
            identities::kind.asc(),
            identities::external_auth_type.asc(),
        ))
        .select(Identity::as_select())
        .load(conn)
        .await
}

/// The profile that owns an identity, looked up by its normalised key.
pub async fn find_owner(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    kind: &str,
    external_auth_type: &str,
    external_id: &str,
) -> QueryResult<Option<Uuid>> {
    identities::table
        .filter(identities::app_id.eq(app_id))
        .filter(identities::kind.eq(kind))
        .filter(identities::external_auth_type.eq(external_auth_type))
        .filter(identities::external_id.eq(external_id))
        .select(identities::profile_id)
        .first(conn)
        .await
        .optional()
}
