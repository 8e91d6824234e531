//! The `users` connection types (Relay): `UserConnection`, `UserEdge`, `PageInfo`, and the
//! filter and order inputs.

use std::sync::Arc;

use super::datetime::DateTime;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};

use super::limits::{charge_list, user_bytes};
use super::types::{IdentityType, User, UserStatus};
use crate::db::profiles::OrderField;
use crate::users::page::{FilterInput, Page};

/// Which profiles to list; all given conditions must hold.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// userName starts with this, ignoring case.
    pub user_name_prefix: Option<String>,
    /// contactEmail equals this, ignoring case.
    pub contact_email: Option<String>,
    /// countryCode equals this.
    pub country_code: Option<String>,
    /// languageCode equals this.
    pub language_code: Option<String>,
    /// isTester equals this.
    pub is_tester: Option<bool>,
    /// The profile has an identity of this kind.
    pub identity_type: Option<IdentityType>,
    /// Created at or after this time (inclusive).
    pub created_after: Option<DateTime>,
    /// Created before this time (exclusive).
    pub created_before: Option<DateTime>,
    /// The profile's parentProfileId equals this.
    pub parent_profile_id: Option<ID>,
    /// The profile's status equals this.
    pub status: Option<UserStatus>,
}

impl From<UserFilter> for FilterInput {
    fn from(f: UserFilter) -> Self {
        FilterInput {
            user_name_prefix: f.user_name_prefix,
            contact_email: f.contact_email,
            country_code: f.country_code,
            language_code: f.language_code,
            is_tester: f.is_tester,
            identity_type: f.identity_type.map(Into::into),
            created_after: f.created_after.map(|d| d.0),
            created_before: f.created_before.map(|d| d.0),
            parent_profile_id: f.parent_profile_id.map(|id| id.0),
            status: f.status.map(Into::into),
        }
    }
}

/// What a listing is ordered by. Ties are broken by profileId, in the same direction.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum UserOrderField {
    /// Creation time.
    #[default]
    CreatedAt,
    /// userName, ignoring case; profiles without a name come first in ascending order.
    UserName,
    /// Last login time; profiles that never logged in come first in ascending order.
    LastLoginAt,
}

impl From<UserOrderField> for OrderField {
    fn from(f: UserOrderField) -> Self {
        match f {
            UserOrderField::CreatedAt => OrderField::CreatedAt,
            UserOrderField::UserName => OrderField::UserName,
            UserOrderField::LastLoginAt => OrderField::LastLoginAt,
        }
    }
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum OrderDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// The order of a listing.
#[derive(InputObject)]
pub struct UserOrder {
    /// The sort key.
    #[graphql(default_with = "UserOrderField::CreatedAt")]
    pub field: UserOrderField,
    /// The direction.
    #[graphql(default_with = "OrderDirection::Asc")]
    pub direction: OrderDirection,
}

/// A page of users (Relay cursor connection).
pub struct UserConnection(pub Arc<Page>);

#[Object(serial)]
impl UserConnection {
    /// The users of this page with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<UserEdge>> {
        charge_list(ctx, &self.0.rows, &["node"], |(p, c), sel| {
            user_bytes(p, sel) + c.len()
        })?;
        Ok(self
            .0
            .rows
            .iter()
            .map(|(p, c)| UserEdge {
                cursor: c.clone(),
                node: User::new(p.clone()),
            })
            .collect())
    }

    /// The users of this page.
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        charge_list(ctx, &self.0.rows, &[], |(p, _), sel| user_bytes(p, sel))?;
        Ok(self
            .0
            .rows
            .iter()
            .map(|(p, _)| User::new(p.clone()))
            .collect())
    }

    /// Where this page sits.
    async fn page_info(&self) -> PageInfo {
        PageInfo(self.0.clone())
    }

    /// How many users match the filter on all pages together (computed only when selected).
    /// Counting visits every matching user, so it is priced as a scan: as much as ten pages of
    /// 500 users.
    #[graphql(complexity = "super::TOTAL_COUNT_MARK")]
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.0.total_count(&mut super::db(ctx).pool()).await?)
    }
}

/// A user and its cursor.
pub struct UserEdge {
    cursor: String,
    node: User,
}

#[Object(serial)]
impl UserEdge {
    /// Opaque; pass it as `after` or `before` with the same filter and order.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The user.
    async fn node(&self) -> &User {
        &self.node
    }
}

/// Relay page info; both flags are exact in both directions.
pub struct PageInfo(Arc<Page>);

#[Object(serial)]
impl PageInfo {
    /// Whether users follow this page.
    async fn has_next_page(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.0.has_next_page(&mut super::db(ctx).pool()).await?)
    }

    /// Whether users precede this page.
    async fn has_previous_page(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.0.has_previous_page(&mut super::db(ctx).pool()).await?)
    }

    /// The cursor of the first edge.
    async fn start_cursor(&self) -> Option<&str> {
        self.0.rows.first().map(|(_, c)| c.as_str())
    }

    /// The cursor of the last edge.
    async fn end_cursor(&self) -> Option<&str> {
        self.0.rows.last().map(|(_, c)| c.as_str())
    }
}
