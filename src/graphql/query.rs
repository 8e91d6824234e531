//! Query root: reading users. Each field needs `cloudcode:users:read`, except `userExport`
//! (`cloudcode:users:export`); see [`crate::auth::scopes`].

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};

use super::connection::{OrderDirection, UserConnection, UserFilter, UserOrder, UserOrderField};
use super::types::{IdentityType, User, UserExport};
use super::{caller, services};
use crate::users::{self, page::PageRequest};

/// Reading users of the caller's app.
///
/// Root fields resolve at once, and take turns on the request's one database connection
/// ([`crate::db::Db::for_request`]); once the response has gone past its budget, root fields
/// not yet started are refused ([`super::guard`]).
#[derive(Default)]
pub struct Query;

#[Object(guard = "super::guard::RootScope::QUERY")]
impl Query {
    /// A user of the caller's app, or null (brainCloud SysGetUserInfo). A profile of another
    /// app is null too. Scope: `cloudcode:users:read`.
    #[graphql(complexity = "20 + child_complexity")]
    async fn user_info(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The profile id (a UUID).")] profile_id: ID,
    ) -> Result<Option<User>> {
        let with_identities = ctx.look_ahead().field("identities").exists();
        let found = users::read::user_info(
            &mut super::db(ctx).pool(),
            caller(ctx),
            &profile_id,
            with_identities,
        )
        .await?;
        Ok(found.map(|f| match f.identities {
            Some(ids) => User::with_identities(f.profile, ids),
            None => User::new(f.profile),
        }))
    }

    /// The user of the caller's app that owns an identity, or null. Email addresses and
    /// universal ids are matched after normalisation (case, width, surrounding space).
    /// Scope: `cloudcode:users:read`.
    #[graphql(complexity = "20 + child_complexity")]
    async fn user_by_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity's kind.")] r#type: IdentityType,
        #[graphql(desc = "The email address, universal id or external id.")] external_id: String,
        #[graphql(desc = "The external system; required for EXTERNAL, refused otherwise.")]
        external_auth_type: Option<String>,
    ) -> Result<Option<User>> {
        let found = users::read::user_by_identity(
            &mut super::db(ctx).pool(),
            caller(ctx),
            r#type.into(),
            &external_id,
            external_auth_type.as_deref(),
        )
        .await?;
        Ok(found.map(User::new))
    }

    /// Everything usersvc holds about a user, without secrets (brainCloud SysGetUserExport).
    /// `PROFILE_NOT_FOUND` when the profile is not in the caller's app.
    /// Scope: `cloudcode:users:export`.
    #[graphql(complexity = "200 + child_complexity")]
    async fn user_export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The profile id (a UUID).")] profile_id: ID,
    ) -> Result<UserExport> {
        Ok(UserExport(
            users::read::export(&mut super::db(ctx).pool(), caller(ctx), &profile_id).await?,
        ))
    }

    /// Pages through the users of the caller's app (brainCloud SysGetPage /
    /// SysGetPageOffset) with keyset cursors: a deep page costs what the first costs, and
    /// paging while users come and go never repeats or skips one that existed throughout.
    /// `first`/`last` default to 50 and may not exceed the server's maximum (500 unless
    /// configured); give one of them, not both. Scope: `cloudcode:users:read`.
    #[graphql(complexity = "super::users_complexity(first.or(last), child_complexity)")]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Relay arguments of the contract"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, counting forward from `after` (or the start).")] first: Option<
            i32,
        >,
        #[graphql(desc = "A cursor from this listing: start after it.")] after: Option<String>,
        #[graphql(desc = "Page size, counting backward from `before` (or the end).")] last: Option<
            i32,
        >,
        #[graphql(desc = "A cursor from this listing: end before it.")] before: Option<String>,
        #[graphql(desc = "Which users to list.")] filter: Option<UserFilter>,
        #[graphql(desc = "The order; default: createdAt ascending.")] order_by: Option<UserOrder>,
    ) -> Result<UserConnection> {
        let svc = services(ctx);
        let order = order_by.unwrap_or(UserOrder {
            field: UserOrderField::CreatedAt,
            direction: OrderDirection::Asc,
        });
        let page = users::page::page(
            &mut super::db(ctx).pool(),
            caller(ctx),
            PageRequest {
                first,
                after,
                last,
                before,
                filter: filter.unwrap_or_default().into(),
                field: order.field.into(),
                descending: order.direction == OrderDirection::Desc,
                max_page: svc.limits.max_page_size,
                default_page: svc.limits.default_page_size,
                key: svc.cursor_key.clone(),
            },
        )
        .await?;
        Ok(UserConnection(Arc::new(page)))
    }
}
