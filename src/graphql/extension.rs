//! One extension sits in front of every root field: it enforces the scope table of
//! [`crate::auth::scopes`] (a field missing from the table is refused to everyone) and
//! records per-field counts and latencies for `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{PathSegment, ServerError, ServerResult, Value};

use crate::auth::{Caller, scopes};
use crate::error::AppError;

/// The extension's factory; add it to the schema once.
pub struct ScopesAndMetrics;

impl ExtensionFactory for ScopesAndMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ScopesAndMetricsExtension)
    }
}

struct ScopesAndMetricsExtension;

fn forbidden(info: &ResolveInfo<'_>, why: String) -> ServerError {
    let e: async_graphql::Error = AppError::Forbidden(why).into();
    let mut err = ServerError::new(e.message, None);
    err.extensions = e.extensions;
    err.path = vec![PathSegment::Field(
        info.alias.unwrap_or(info.name).to_owned(),
    )];
    err
}

#[async_graphql::async_trait::async_trait]
impl Extension for ScopesAndMetricsExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some()
            || info.is_for_introspection
            || info.name.starts_with("__")
        {
            return next.run(ctx, info).await;
        }
        let Some(needed) = scopes::required(info.parent_type, info.name) else {
            return Err(forbidden(
                &info,
                format!("{} is not available to any scope", info.name),
            ));
        };
        let allowed = ctx
            .data_opt::<Caller>()
            .is_some_and(|c| c.has_scope(needed));
        if !allowed {
            tracing::info!(field = info.name, scope = needed, "scope denied");
            return Err(forbidden(
                &info,
                format!("{} needs the scope {needed}", info.name),
            ));
        }
        let field = info.name.to_owned();
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!("usersvc_graphql_field_duration_seconds", "field" => field.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("usersvc_graphql_fields_total", "field" => field, "outcome" => outcome)
            .increment(1);
        result
    }
}
