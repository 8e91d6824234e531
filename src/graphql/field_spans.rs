//! A span per root field, for exported traces: the field's name and the request id, as a child
//! of the request's span. Added to the schema only when traces are exported
//! ([`crate::telemetry::otlp::exporting`]): any extension sends every field of every response
//! down async-graphql's slower path.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};
use tracing::Instrument;

/// The extension's factory.
pub(super) struct RootFieldSpans;

impl ExtensionFactory for RootFieldSpans {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RootFieldSpans)
    }
}

#[async_trait::async_trait]
impl Extension for RootFieldSpans {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        let span = tracing::info_span!(
            "graphql.field",
            field = info.name,
            parent_type = info.parent_type,
            request_id = %crate::telemetry::current_request_id().unwrap_or_default(),
        );
        next.run(ctx, info).instrument(span).await
    }
}
