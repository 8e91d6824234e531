//! Response fields in the order they were asked for. GraphQL orders a result map like its
//! selection set (spec §7.2.2), and people reading responses in GraphiQL or logs expect it;
//! async-graphql resolves sibling fields concurrently and writes them as they finish. This puts
//! each object's keys back in selection order, following fragments.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value};

/// Deepest nesting followed (queries are limited far below this).
const MAX_DEPTH: usize = 64;

/// Reorders `data`, the result of the operation `operation` of `doc`.
pub fn reorder(data: &mut Value, doc: &ExecutableDocument, operation: Option<&str>) {
    let Some(op) = super::documents::selected_operation(doc, operation) else {
        return;
    };
    walk(data, &[&op.node.selection_set.node], doc, 0);
}

fn walk(value: &mut Value, sets: &[&SelectionSet], doc: &ExecutableDocument, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::List(items) => {
            for item in items {
                walk(item, sets, doc, depth + 1);
            }
        }
        Value::Object(map) => {
            let mut order: Vec<(&Name, Vec<&SelectionSet>)> = Vec::new();
            for set in sets {
                collect(set, doc, &mut order, depth);
            }
            // Usually every selected key is there: compare in step, without hashing.
            let in_order = if map.len() == order.len() {
                map.keys().zip(&order).all(|(a, (b, _))| a == *b)
            } else {
                map.keys()
                    .zip(order.iter().filter(|(k, _)| map.contains_key(*k)))
                    .all(|(a, (b, _))| a == *b)
            };
            if !in_order {
                let mut old = std::mem::take(map);
                for (key, _) in &order {
                    if let Some(v) = old.shift_remove(*key) {
                        map.insert((*key).clone(), v);
                    }
                }
                map.extend(old);
            }
            for (key, subsets) in &order {
                // Leaves (no selection below) have nothing to reorder.
                if subsets.iter().any(|s| !s.items.is_empty())
                    && let Some(v) = map.get_mut(*key)
                {
                    walk(v, subsets, doc, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// The response keys of a selection set in order (first occurrence wins), each with the
/// selection sets below it (several when a field is selected more than once).
fn collect<'d>(
    set: &'d SelectionSet,
    doc: &'d ExecutableDocument,
    order: &mut Vec<(&'d Name, Vec<&'d SelectionSet>)>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                let key = &f.node.response_key().node;
                let sub = &f.node.selection_set.node;
                match order.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, subs)) => subs.push(sub),
                    None => order.push((key, vec![sub])),
                }
            }
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node) {
                    collect(&fragment.node.selection_set.node, doc, order, depth + 1);
                }
            }
            Selection::InlineFragment(i) => {
                collect(&i.node.selection_set.node, doc, order, depth + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(query: &str, data: serde_json::Value) -> String {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let mut value = Value::from_json(data).unwrap();
        reorder(&mut value, &doc, None);
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn keys_follow_the_selection_set_through_lists_aliases_and_fragments() {
        let out = run(
            "{ u: users { total page { next } edges { ...E } } } fragment E on Edge { ... on Edge { node { b a } } cursor }",
            serde_json::json!({ "u": { "edges": [ { "cursor": "c", "node": { "a": 1, "b": 2 } } ], "page": { "next": true }, "total": 3 } }),
        );
        assert_eq!(
            out,
            r#"{"u":{"total":3,"page":{"next":true},"edges":[{"node":{"b":2,"a":1},"cursor":"c"}]}}"#
        );
    }

    #[test]
    fn fields_selected_twice_merge_their_orders() {
        let out = run(
            "{ a { x } a { y } }",
            serde_json::json!({ "a": { "y": 1, "x": 2 } }),
        );
        assert_eq!(out, r#"{"a":{"x":2,"y":1}}"#);
    }
}
