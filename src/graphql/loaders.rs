//! Batch loaders for `User.identities` and `User.children`: every user of a response asks, one
//! query answers them all (no N+1). One set of loaders is made per request.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::models::{Identity, Profile};
use crate::db::{self, Db};
use crate::error::AppError;

/// A profile's key: `(app_id, profile_id)`.
pub type ProfileKey = (String, Uuid);

/// Loads identities by profile.
pub struct IdentityLoader(pub Db);

impl Loader<ProfileKey> for IdentityLoader {
    type Value = Vec<Identity>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ProfileKey],
    ) -> Result<HashMap<ProfileKey, Vec<Identity>>, Self::Error> {
        let mut conn = self.0.conn().await?;
        let rows = db::identities::for_profiles(&mut conn, keys)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ProfileKey, Vec<Identity>> = HashMap::new();
        for row in rows {
            out.entry((row.app_id.clone(), row.profile_id))
                .or_default()
                .push(row);
        }
        for ids in out.values_mut() {
            db::identities::in_order(ids);
        }
        Ok(out)
    }
}

/// Loads children by parent profile.
pub struct ChildrenLoader(pub Db);

impl Loader<ProfileKey> for ChildrenLoader {
    type Value = Vec<Profile>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ProfileKey],
    ) -> Result<HashMap<ProfileKey, Vec<Profile>>, Self::Error> {
        let mut conn = self.0.conn().await?;
        let rows = db::profiles::children_of(&mut conn, keys)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<ProfileKey, Vec<Profile>> = HashMap::new();
        for row in rows {
            if let (Some(app), Some(parent)) = (row.parent_app_id.clone(), row.parent_profile_id) {
                out.entry((app, parent)).or_default().push(row);
            }
        }
        Ok(out)
    }
}
