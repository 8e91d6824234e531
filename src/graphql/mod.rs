//! The GraphQL layer: the schema (query and mutation roots), the types it exposes, the scope
//! check every root field passes through, and the limits on what one request may ask for.
//! Resolvers are thin: they parse arguments, call the service layer (`crate::users`) and map
//! the result; no rule lives here.

pub mod connection;
pub mod datetime;
pub mod error;
mod field_spans;
pub mod guard;
pub mod import;
pub mod lifecycle;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod recovery;
pub mod types;

use std::sync::Arc;
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

/// What `totalCount` costs in complexity: a count visits every user that matches, so it is
/// priced as the scan it is, as ten full pages (of 500) are; five of them fill half of the
/// default complexity limit.
pub const TOTAL_COUNT_COST: usize = 5_000;

/// The complexity `totalCount` reports to its `users` field: a mark that [`users_complexity`]
/// takes out of its child complexity before weighing the rest by the page size, since the count
/// is made once per page, not once per user. async-graphql hands a field only the sum of its
/// children's complexity (fragments included), so the count travels in the high bits.
pub const TOTAL_COUNT_MARK: usize = 1 << 20;

/// Complexity of one `users` page of `page` users (50 when not given): the selection per user
/// times the page size, plus [`TOTAL_COUNT_COST`] for each `totalCount`, plus 50 for the page.
pub fn users_complexity(page: Option<i32>, child_complexity: usize) -> usize {
    let counts = child_complexity / TOTAL_COUNT_MARK;
    let per_user = child_complexity % TOTAL_COUNT_MARK;
    let page = usize::try_from(page.unwrap_or(50).clamp(0, 500)).unwrap_or(0);
    page.saturating_mul(per_user)
        .saturating_add(counts.saturating_mul(TOTAL_COUNT_COST))
        .saturating_add(50)
        .min(MAX_FIELD_COST)
}

/// How many children a `children` list is priced at: a parent has at most one child per child
/// app (`DUPLICATE_CHILD`), and apps have few child apps; a family with more still cannot get
/// past the response budget.
pub const CHILDREN_PRICED: usize = 20;

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
    /// Most root fields one operation may select (aliases included, fragments expanded).
    pub max_root_fields: usize,
    /// Largest response, in bytes ([`limits::Budget`]).
    pub max_response_bytes: usize,
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
            max_root_fields: 20,
            max_response_bytes: 8 * 1024 * 1024,
        }
    }
}

/// What resolvers reach through the schema: the service layer's dependencies. The database
/// is not among them: each request gets a handle scoped to its caller's app ([`prepare`]).
#[derive(Clone)]
pub struct Services {
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

/// The database handle of the current request: scoped to the caller's app, so its connections
/// see only that app's family and it holds at most the app's share of the pool; and one
/// connection at a time, whatever number of fields run at once ([`Db::for_request`]).
pub(crate) fn db<'a>(ctx: &Context<'a>) -> &'a Db {
    &ctx.data_unchecked::<RequestDb>().0
}

/// The request's own database handle (see [`db`]).
struct RequestDb(Db);

/// A request ready to run, with what the HTTP layer needs around it.
pub struct Prepared {
    /// The request, with the caller, its database handle, its loaders and its budget.
    pub request: Request,
    /// The response budget its resolvers charge.
    pub budget: Arc<limits::Budget>,
    /// Its once-per-request error log; run the request inside [`error::LogOnce::scope`].
    pub log: error::LogOnce,
}

/// Attaches the caller, a database handle for the request (see [`db`]), one set of batch loaders
/// (on that handle) and a response budget of `max_response_bytes` to a request.
pub fn prepare(request: Request, caller: Caller, db: &Db, max_response_bytes: usize) -> Prepared {
    let request_id = crate::telemetry::current_request_id().unwrap_or_default();
    let log = error::LogOnce::default();
    let loader_log = log.clone();
    let spawner = move |fut| {
        tokio::spawn(REQUEST_ID.scope(request_id.clone(), loader_log.clone().scope(fut)))
    };
    let budget = Arc::new(limits::Budget::new(max_response_bytes));
    let db = db.for_request(&caller.app_id, budget.exceeded_flag());
    let request = request
        .data(caller)
        .data(budget.clone())
        .data(
            DataLoader::new(loaders::IdentityLoader(db.clone()), spawner.clone())
                .delay(Duration::from_micros(200)),
        )
        .data(
            DataLoader::new(loaders::ChildrenLoader(db.clone()), spawner)
                .delay(Duration::from_micros(200)),
        )
        .data(RequestDb(db));
    Prepared {
        request,
        budget,
        log,
    }
}
