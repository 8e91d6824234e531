//! Identities: how profiles log in. Read without their password hashes.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{Identity, NewIdentity};
use super::rendered::RenderOnce;
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

/// Replaces the password hash of a profile's identity of `kind`; returns how many rows changed
/// (0: the profile has no such identity).
pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    kind: &str,
    hash: &str,
) -> QueryResult<usize> {
    diesel::update(
        identities::table
            .filter(identities::app_id.eq(app_id))
            .filter(identities::profile_id.eq(profile_id))
            .filter(identities::kind.eq(kind)),
    )
    .set((
        identities::password_hash.eq(hash),
        identities::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
}

/// Changes the external id of a profile's identity of `kind` (EMAIL or UNIVERSAL_ID), keeping
/// its password; returns how many rows changed. A taken id fails on `identities_external_key`.
pub async fn change_external_id(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    kind: &str,
    external_id: &str,
) -> QueryResult<usize> {
    diesel::update(
        identities::table
            .filter(identities::app_id.eq(app_id))
            .filter(identities::profile_id.eq(profile_id))
            .filter(identities::kind.eq(kind))
            .filter(identities::external_auth_type.eq("")),
    )
    .set((
        identities::external_id.eq(external_id),
        identities::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
}

/// Removes a profile's identity of `kind` (for EXTERNAL: of `external_auth_type`, else `""`);
/// returns how many rows went.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
    kind: &str,
    external_auth_type: &str,
) -> QueryResult<usize> {
    diesel::delete(identities::table.find((app_id, profile_id, kind, external_auth_type)))
        .execute(conn)
        .await
}

/// Puts one profile's identities in their stable order: by kind, then external auth type, in
/// byte order (the same whatever the database's collation). Profiles have a handful, so this is
/// cheaper here than a sort step in every query plan.
pub fn in_order(ids: &mut [Identity]) {
    ids.sort_unstable_by(|a, b| {
        (a.kind.as_bytes(), a.external_auth_type.as_bytes())
            .cmp(&(b.kind.as_bytes(), b.external_auth_type.as_bytes()))
    });
}

/// One profile's identities, in their stable order ([`in_order`]).
pub async fn for_profile(
    conn: &mut AsyncPgConnection,
    app_id: &str,
    profile_id: Uuid,
) -> QueryResult<Vec<Identity>> {
    let mut ids = identities::table
        .filter(identities::app_id.eq(app_id))
        .filter(identities::profile_id.eq(profile_id))
        .select(Identity::as_select())
        .rendered_once()
        .load(conn)
        .await?;
    in_order(&mut ids);
    Ok(ids)
}

/// The identities of many profiles (possibly of several apps, as children are), in one query,
/// in no particular order.
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
        .limit(1)
        .rendered_once()
        .get_result(conn)
        .await
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_sort_by_kind_then_external_type_in_byte_order() {
        let id = |kind: &str, ext: &str| Identity {
            app_id: "a".into(),
            profile_id: Uuid::nil(),
            kind: kind.into(),
            external_auth_type: ext.into(),
            external_id: "x".into(),
            has_password: false,
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        let mut ids = vec![
            id("UNIVERSAL_ID", ""),
            id("EXTERNAL", "steam"),
            id("EMAIL", ""),
            id("EXTERNAL", "Facebook"),
        ];
        in_order(&mut ids);
        let got: Vec<_> = ids
            .iter()
            .map(|i| format!("{}:{}", i.kind, i.external_auth_type))
            .collect();
        assert_eq!(
            got,
            [
                "EMAIL:",
                "EXTERNAL:Facebook",
                "EXTERNAL:steam",
                "UNIVERSAL_ID:"
            ]
        );
    }
}
