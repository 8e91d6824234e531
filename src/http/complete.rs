//! A response shaped as the GraphQL spec says, from what async-graphql 7 returns:
//!
//! - **Request errors carry a code.** A document that does not parse gets
//!   `GRAPHQL_PARSE_FAILED`; one that fails validation, or the limits checked with it (depth,
//!   complexity, directives, recursion), or names no runnable operation, gets
//!   `GRAPHQL_VALIDATION_FAILED` (the names Apollo's servers use). Errors raised while executing
//!   carry their own codes (`graphql::error`), except those async-graphql raises itself when it
//!   coerces an argument: a variable missing, or of the wrong kind for an input object, which
//!   its validation does not check. Those are the caller's input: `BAD_USER_INPUT`.
//! - **Field errors null the nearest nullable position** (spec §6.4.4, "Handling Field
//!   Errors"). async-graphql leaves a failed field's key out of its object, whatever its type,
//!   so a typed client finds `undefined` where the schema promised a value. Here the failed
//!   field becomes `null` when its type allows, else its parent, and so on up; a non-null root
//!   field that fails makes `data` itself `null`. The nullability comes from the schema's SDL.
//! - **Root fields come in the order they were asked for** (spec §7.2.2). async-graphql
//!   resolves a query's root fields concurrently and writes each as it finishes; below the root
//!   every object type resolves its fields one after the other (`#[Object(serial)]`), and lists
//!   keep their order, so only the root map needs putting in order.

use std::collections::HashMap;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationDefinition, OperationType, SelectionSet, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{ErrorExtensionValues, Name, PathSegment, Response, ServerError, Value};

use super::documents::for_each_field;
use crate::error::AppError;

/// Deepest fragment nesting followed (queries are limited far below this).
const MAX_NESTING: usize = 64;

/// The code of a document that does not parse.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The code of a request refused before execution.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// The type of every field of every output type, from the schema's SDL.
#[derive(Debug)]
pub struct OutputTypes {
    fields: HashMap<String, HashMap<String, async_graphql::parser::types::Type>>,
}

impl OutputTypes {
    /// The types an SDL defines (the schema's own, so it parses).
    pub fn from_sdl(sdl: &str) -> Self {
        let mut fields = HashMap::new();
        let doc = async_graphql::parser::parse_schema(sdl).unwrap_or_else(|e| {
            tracing::error!("the schema's SDL does not parse: {e}");
            async_graphql::parser::types::ServiceDocument {
                definitions: Vec::new(),
            }
        });
        for def in doc.definitions {
            let TypeSystemDefinition::Type(ty) = def else {
                continue;
            };
            let ty = ty.node;
            let defs = match ty.kind {
                TypeKind::Object(o) => o.fields,
                TypeKind::Interface(i) => i.fields,
                _ => continue,
            };
            let by_name = defs
                .into_iter()
                .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                .collect();
            fields.insert(ty.name.node.to_string(), by_name);
        }
        OutputTypes { fields }
    }

    fn field(&self, ty: &str, field: &str) -> Option<&async_graphql::parser::types::Type> {
        self.fields.get(ty)?.get(field)
    }
}

/// The response to a request refused before execution, for the reason `message`.
pub fn refused(message: &str) -> Response {
    let mut error = ServerError::new(message, None);
    set_code(&mut error, VALIDATION_FAILED);
    Response::from_errors(vec![error])
}

/// The response in place of one that would exceed `limit` bytes.
pub fn too_large(limit: usize) -> Response {
    let mut error = ServerError::new(crate::graphql::limits::too_large_message(limit), None);
    set_code(&mut error, crate::graphql::limits::RESPONSE_TOO_LARGE);
    Response::from_errors(vec![error])
}

/// `response` as JSON, or `None` when it would take more than `max_bytes`: the writer counts
/// the bytes as they are produced and stops at the limit, so no larger body is ever built.
pub fn serialise(response: &Response, max_bytes: usize) -> Option<Vec<u8>> {
    let mut out = Capped {
        bytes: Vec::with_capacity(max_bytes.min(INITIAL_BYTES)),
        room: max_bytes,
    };
    serde_json::to_writer(&mut out, response).ok()?;
    Some(out.bytes)
}

/// What a response's buffer starts with: a userInfo's body fits.
const INITIAL_BYTES: usize = 1024;

/// A buffer that refuses to grow past its room.
struct Capped {
    bytes: Vec<u8>,
    room: usize,
}

impl std::io::Write for Capped {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    // serde_json writes every token with `write_all`, whose default loops over `write`: all or
    // nothing here, in one step, inlined into the serialiser as `Vec`'s own writes are.
    #[inline(always)]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if buf.len() > self.room {
            return Err(over_budget());
        }
        self.room -= buf.len();
        self.bytes.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cold]
fn over_budget() -> std::io::Error {
    std::io::Error::other("over the response budget")
}

/// The response to a document that does not parse.
pub fn parse_failed(error: async_graphql::parser::Error) -> Response {
    let mut error = ServerError::from(error);
    set_code(&mut error, PARSE_FAILED);
    Response::from_errors(vec![error])
}

/// Shapes `response`, the result of running the operation `op` of `doc` (`None`: the request
/// named no operation of the document, which async-graphql refused).
pub fn complete(
    response: &mut Response,
    doc: &ExecutableDocument,
    op: Option<&Positioned<OperationDefinition>>,
    types: &OutputTypes,
) {
    // Nothing executed: validation (or a limit, or choosing the operation) refused it.
    let refused = matches!(response.data, Value::Null)
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let Some(op) = op.filter(|_| !refused) else {
        for error in &mut response.errors {
            if !has_code(error) {
                set_code(error, VALIDATION_FAILED);
            }
        }
        return;
    };
    for error in &mut response.errors {
        if !has_code(error) {
            let bad_input = AppError::BadUserInput(String::new());
            set_code(error, bad_input.code());
            if let Some(reason) = bad_input.reason_code() {
                error
                    .extensions
                    .get_or_insert_with(ErrorExtensionValues::default)
                    .set("reasonCode", reason);
            }
        }
    }
    let root_sets = [&op.node.selection_set.node];
    let root_type = match op.node.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
    };
    let mut data = match std::mem::take(&mut response.data) {
        Value::Object(map) => map,
        // Every root field failed (or was skipped): start from an empty object.
        _ => Default::default(),
    };
    for error in &response.errors {
        if !error.path.is_empty()
            && !null_out(&mut data, &error.path, doc, &root_sets, root_type, types)
        {
            response.data = Value::Null;
            return;
        }
    }
    put_in_order(&mut data, &selection_keys(doc, &root_sets));
    response.data = Value::Object(data);
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

fn set_code(error: &mut ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default)
        .set("code", code);
}

/// Nulls the nearest nullable position at or above the failed field at `path`. `false` when
/// there is none: the whole `data` must be null.
fn null_out(
    data: &mut async_graphql::indexmap::IndexMap<Name, Value>,
    path: &[PathSegment],
    doc: &ExecutableDocument,
    root_sets: &[&SelectionSet],
    root_type: &str,
    types: &OutputTypes,
) -> bool {
    // Each position on the path: whether it may be null, and for a field, the selection sets
    // of the object that holds it.
    let mut positions: Vec<(bool, Vec<&SelectionSet>)> = Vec::with_capacity(path.len());
    let mut sets: Vec<&SelectionSet> = root_sets.to_vec();
    let mut parent = root_type.to_owned();
    let mut ty: Option<&async_graphql::parser::types::Type> = None;
    for segment in path {
        match segment {
            PathSegment::Field(key) => {
                let mut name = None;
                let mut below = Vec::new();
                for set in &sets {
                    for_each_field(doc, set, MAX_NESTING, &mut |f| {
                        if f.response_key().node.as_str() == key {
                            name.get_or_insert(&f.name.node);
                            if !f.selection_set.node.items.is_empty() {
                                below.push(&f.selection_set.node);
                            }
                        }
                    });
                }
                // A field the document does not select, or one the SDL does not list
                // (introspection): taken as nullable, and the walk ends there.
                let field_ty = name.and_then(|n| types.field(&parent, n.as_str()));
                let Some(field_ty) = field_ty else {
                    positions.push((true, std::mem::take(&mut sets)));
                    break;
                };
                positions.push((field_ty.nullable, std::mem::replace(&mut sets, below)));
                parent = named(field_ty).to_owned();
                ty = Some(field_ty);
            }
            PathSegment::Index(_) => match ty.map(|t| &t.base) {
                Some(BaseType::List(item)) => {
                    positions.push((item.nullable, Vec::new()));
                    ty = Some(item);
                }
                _ => {
                    positions.push((true, Vec::new()));
                    break;
                }
            },
        }
    }
    let Some(at) = positions.iter().rposition(|(nullable, _)| *nullable) else {
        return false;
    };
    // Down to the object or list that holds the position; a missing or null one on the way
    // means another error has nulled this part already.
    let (first, rest) = (&path[0], &path[1..at.max(1)]);
    let PathSegment::Field(first) = first else {
        return true;
    };
    if at == 0 {
        data.insert(Name::new(first), Value::Null);
        return true;
    }
    let Some(mut value) = data.get_mut(first.as_str()) else {
        return true;
    };
    for segment in rest {
        let next = match (segment, value) {
            (PathSegment::Field(key), Value::Object(map)) => map.get_mut(key.as_str()),
            (PathSegment::Index(i), Value::List(items)) => items.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return true;
        };
        value = next;
    }
    match (&path[at], value) {
        (PathSegment::Field(key), Value::Object(map)) => {
            map.insert(Name::new(key), Value::Null);
            put_in_order(map, &selection_keys(doc, &positions[at].1));
        }
        (PathSegment::Index(i), Value::List(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
    true
}

/// The innermost named type of a type (`[User!]!` → `User`).
fn named(ty: &async_graphql::parser::types::Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(item) => named(item),
    }
}

/// The response keys the selection sets select, in order (first occurrence wins).
fn selection_keys<'d>(doc: &'d ExecutableDocument, sets: &[&'d SelectionSet]) -> Vec<&'d Name> {
    let mut keys: Vec<&Name> = Vec::new();
    for set in sets {
        for_each_field(doc, set, MAX_NESTING, &mut |f| {
            let key = &f.response_key().node;
            if !keys.contains(&key) {
                keys.push(key);
            }
        });
    }
    keys
}

/// Puts a map's keys in the order of `keys` (keys it does not list go last, as they were).
fn put_in_order(map: &mut async_graphql::indexmap::IndexMap<Name, Value>, keys: &[&Name]) {
    // Usually the keys are all there and already in order.
    if map.len() == keys.len() && map.keys().zip(keys).all(|(a, b)| a == *b) {
        return;
    }
    let mut old = std::mem::take(map);
    for key in keys {
        if let Some(v) = old.shift_remove(*key) {
            map.insert((*key).clone(), v);
        }
    }
    map.extend(old);
}
