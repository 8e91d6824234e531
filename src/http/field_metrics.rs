//! Per-root-field figures for `/metrics`: for each root field an executed operation asked for,
//! whether it ended well or with an error, and how long the operation took. Counted after
//! execution from the document and the response, so no schema extension is needed (any
//! extension sends every field of every response down async-graphql's slower path).

use std::time::Duration;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{PathSegment, Response, Value};

use super::documents::for_each_field;

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
        let outcome = if failed { "error" } else { "ok" };
        metrics::histogram!("usersvc_graphql_field_duration_seconds", "field" => name.to_owned())
            .record(seconds);
        metrics::counter!("usersvc_graphql_fields_total", "field" => name.to_owned(), "outcome" => outcome)
            .increment(1);
    }
}
