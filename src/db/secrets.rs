//! Secrets the server keeps in its database (`server_secrets`): made once, shared by every
//! instance.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::server_secrets;

/// The secret named `name`, storing `fresh` as it when there is none yet. Concurrent first
/// starts agree: the first insert wins and everyone reads it back.
pub async fn get_or_create(
    conn: &mut AsyncPgConnection,
    name: &str,
    fresh: &[u8],
) -> QueryResult<Vec<u8>> {
    diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::secret.eq(fresh),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    server_secrets::table
        .find(name)
        .select(server_secrets::secret)
        .first(conn)
        .await
}
