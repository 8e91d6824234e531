//! Per-root-field figures for `/metrics`: for each root field an executed operation asked for,
//! whether it ended well or with an error, and how long the operation took. Counted after
//! execution from the document and the response, so no schema extension is needed (any
//! extension sends every field of every response down async-graphql's slower path).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{PathSegment, Response, Value};
use metrics::{Counter, Histogram};

use super::documents::{for_each_field, lock};

/// Counts the root fields of `op` (the operation of `doc` that produced `response`, in
/// `elapsed`). A request refused before execution (validation) counts nothing.
pub fn count(
    doc: &ExecutableDocument,
    op: Option<&Positioned<OperationDefinition>>,
    response: &Response,
    elapsed: Duration,
) {
    let Some(op) = op else {
        return;
    };
    if matches!(response.data, Value::Null) && response.errors.iter().all(|e| e.path.is_empty()) {
        return;
    }
    let seconds = elapsed.as_secs_f64();
    // Root fields through fragments (nested at most 8 deep); introspection fields left out.
    let mut fields = Vec::new();
    for_each_field(doc, &op.node.selection_set.node, 8, &mut |f| {
        let name = f.name.node.as_str();
        if !name.starts_with("__") {
            fields.push((name, f.response_key().node.as_str()));
        }
    });
    for (name, key) in fields {
        let failed = response
            .errors
            .iter()
            .any(|e| matches!(e.path.first(), Some(PathSegment::Field(f)) if f == key));
        let series = Series::of(name);
        series.duration.record(seconds);
        if failed { &series.failed } else { &series.ok }.increment(1);
    }
}

/// One root field's series, registered once: a request then records into them without building
/// their keys and labels again.
struct Series {
    duration: Histogram,
    ok: Counter,
    failed: Counter,
}

impl Series {
    /// The series of the root field `name`. Only executed operations are counted, and they
    /// passed validation, so the names are the schema's own: the map stays as small as it is.
    fn of(name: &str) -> Arc<Series> {
        static SERIES: Kept<Arc<Series>> = OnceLock::new();
        kept(&SERIES, name, || {
            let field = name.to_owned();
            Arc::new(Series {
                duration: metrics::histogram!("usersvc_graphql_field_duration_seconds", "field" => field.clone()),
                ok: metrics::counter!("usersvc_graphql_fields_total", "field" => field.clone(), "outcome" => "ok"),
                failed: metrics::counter!("usersvc_graphql_fields_total", "field" => field, "outcome" => "error"),
            })
        })
    }
}

/// Series kept by name for the life of the process.
pub(super) type Kept<T> = OnceLock<Mutex<HashMap<String, T>>>;

/// The series kept under `name`, made by `make` (which registers them) the first time.
pub(super) fn kept<T: Clone>(all: &Kept<T>, name: &str, make: impl FnOnce() -> T) -> T {
    let mut all = lock(all.get_or_init(Mutex::default));
    if let Some(series) = all.get(name) {
        return series.clone();
    }
    let series = make();
    all.insert(name.to_owned(), series.clone());
    series
}
