//! Batch loaders for `User.identities` and `User.children`: every user of a response asks, one
//! query answers them all (no N+1). One set of loaders is made per request.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use crate::db::Db;
use crate::db::models::{Identity, Profile};
use crate::users::read::{self, ProfileKey};

/// Loads identities by profile.
pub struct IdentityLoader(pub Db);

impl Loader<ProfileKey> for IdentityLoader {
    type Value = Vec<Identity>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ProfileKey],
    ) -> Result<HashMap<ProfileKey, Vec<Identity>>, Self::Error> {
        Ok(read::identities_of(&mut self.0.pool(), keys).await?)
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
        Ok(read::children_of(&mut self.0.pool(), keys).await?)
    }
}
