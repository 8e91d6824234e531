//! The GraphQL layer: the schema (query and mutation roots), the types it exposes, the scope
//! check every root field passes through, and the limits on what one request may ask for.
//! Resolvers are thin: they parse arguments, call the service layer (`crate::users`) and map
//! the result; no rule lives here.

pub mod connection;
pub mod datetime;
pub mod error;
mod field_spans;
pub mod guard;
pub mod lifecycle;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod recovery;
pub mod types;

use std::time::Duration;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, EmptySubscription, Request, Schema, ValidationMode};

use crate::auth::Caller;
use crate::db::Db;
use crate::passwords::Hasher;
use crate::telemetry::REQUEST_ID;

/// Ceiling of any one field's computed cost. async-graphql adds field costs with plain
/// arithmetic, so a cost near `usize::MAX` (deeply nested lists multiply) could overflow and
/// wrap to a small number; capping each field far below that keeps the sum honest.
pub const MAX_FIELD_COST: usize = 1 << 40;

/// The schema type.
pub type AppSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// What one request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest `first`/`last`.
    pub max_page_size: i32,
    /// Page size when neither is given.
    pub default_page_size: i32,
    /// Deepest selection.
    pub max_depth: usize,
    /// Highest complexity (every field counts, aliases included; lists weigh by their size).
    pub max_complexity: usize,
    /// Most directives on one field.
    pub max_directives: usize,
    /// Whether `__schema`/`__type` answer (to callers with a valid token).
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_page_size: 500,
            default_page_size: 50,
            max_depth: 15,
            max_complexity: 50_000,
            max_directives: 8,
            introspection: true,
        }
    }
}

/// What resolvers reach through the schema: the service layer's dependencies.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub hasher: Hasher,
    pub limits: Limits,
    pub mail: std::sync::Arc<crate::mail::MailSettings>,
    /// The key the users connection signs its cursors with.
    pub cursor_key: crate::users::page::CursorKey,
}

/// Builds the schema with its limits; it validates every request in full.
pub fn build(services: Option<Services>, limits: &Limits) -> AppSchema {
    build_validating(services, limits, ValidationMode::Strict)
}

/// The same schema in async-graphql's fast validation mode, which checks only complexity, depth
/// and fragment cycles: only for requests whose full validation cannot differ from one that
/// already passed (the HTTP layer's validation shortcut decides which).
pub fn build_fast(services: Option<Services>, limits: &Limits) -> AppSchema {
    build_validating(services, limits, ValidationMode::Fast)
}

fn build_validating(
    services: Option<Services>,
    limits: &Limits,
    validation: ValidationMode,
) -> AppSchema {
    let mut builder = Schema::build(
        query::Query,
        mutation::Mutation::default(),
        EmptySubscription,
    )
    .validation_mode(validation)
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .limit_directives(limits.max_directives)
    .limit_recursive_depth(32);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(services) = services {
        builder = builder.data(services);
    }
    if crate::telemetry::otlp::exporting() {
        builder = builder.extension(field_spans::RootFieldSpans);
    }
    builder.finish()
}

/// The SDL the code defines: what `usersvc schema` prints, `/schema.graphql` serves and the
/// committed `schema.graphql` holds.
pub fn sdl() -> String {
    build(None, &Limits::default()).sdl()
}

/// The authenticated caller of the current request. The HTTP layer attaches it to every
/// request before execution.
pub(crate) fn caller<'a>(ctx: &Context<'a>) -> &'a Caller {
    ctx.data_unchecked::<Caller>()
}

/// The service dependencies.
pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

/// Attaches the caller and one set of batch loaders to a request.
pub fn prepare(request: Request, caller: Caller, db: &Db) -> Request {
    let request_id = crate::telemetry::current_request_id().unwrap_or_default();
    let spawner = move |fut| tokio::spawn(REQUEST_ID.scope(request_id.clone(), fut));
    request
        .data(caller)
        .data(
            DataLoader::new(loaders::IdentityLoader(db.clone()), spawner.clone())
                .delay(Duration::from_micros(200)),
        )
        .data(
            DataLoader::new(loaders::ChildrenLoader(db.clone()), spawner)
                .delay(Duration::from_micros(200)),
        )
}
