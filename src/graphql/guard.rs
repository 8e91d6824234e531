//! The guard of every root field: it enforces the scope table of [`crate::auth::scopes`] (a
//! field missing from the table is refused to everyone), and refuses to start a field once the
//! request's response has gone past its budget ([`super::limits::Budget`]).
//!
//! It is set on the root objects themselves (`#[Object(guard = …)]`), so every field they have
//! or will have passes through it. A schema extension could do the same, but any extension
//! sends every field of every response (not only root fields) through async-graphql's slower
//! resolution path.

use std::sync::Arc;

use async_graphql::{Context, Guard, Result};

use super::limits::Budget;

use crate::auth::{Caller, scopes};
use crate::error::AppError;

/// The guard of one root type's fields.
pub struct RootScope {
    root: &'static str,
}

impl RootScope {
    /// For the fields of `Query`.
    pub const QUERY: RootScope = RootScope { root: "Query" };
    /// For the fields of `Mutation`.
    pub const MUTATION: RootScope = RootScope { root: "Mutation" };
}

impl Guard for RootScope {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        if let Some(budget) = ctx.data_opt::<Arc<Budget>>()
            && budget.exceeded()
        {
            // The response is refused already: spare the work (and the memory).
            return Err(super::limits::too_large(budget.limit()));
        }
        let field = ctx.item.node.name.node.as_str();
        let Some(needed) = scopes::required(self.root, field) else {
            return Err(
                AppError::Forbidden(format!("{field} is not available to any scope")).into(),
            );
        };
        let caller = ctx.data_opt::<Caller>();
        if caller.is_some_and(|c| c.has_scope(needed)) {
            return Ok(());
        }
        tracing::info!(
            request_id = %crate::telemetry::current_request_id().unwrap_or_default(),
            app_id = %caller.map_or("-", |c| c.app_id.as_str()),
            actor = %caller.map_or("-", |c| c.actor.as_str()),
            field,
            scope = needed,
            "scope denied"
        );
        Err(AppError::Forbidden(format!("{field} needs the scope {needed}")).into())
    }
}
