//! Names the fields an input object has that its type does not. async-graphql checks an input
//! object's declared fields first and stops at the first problem, so `{emial: "…"}` where
//! `email` is required is reported only as `email` missing; a misspelling then looks like an
//! omission. To such an error this adds the object's unknown fields, found with the input types
//! of the schema's SDL.

use std::collections::{BTreeSet, HashMap};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationDefinition, Selection, SelectionSet, TypeKind,
};
use async_graphql::{Pos, ServerError, Value, Variables};

/// Every input object type's fields, with their types as the SDL writes them.
#[derive(Debug, Default)]
pub struct InputTypes {
    types: HashMap<String, HashMap<String, String>>,
}

impl InputTypes {
    /// Whether a variable of `op` has an input object type (list or not): only their values can
    /// hold fields to name.
    pub fn any_input_variable(&self, op: &OperationDefinition) -> bool {
        op.variable_definitions.iter().any(|v| {
            let mut ty = &v.node.var_type.node.base;
            while let BaseType::List(inner) = ty {
                ty = &inner.base;
            }
            matches!(ty, BaseType::Named(name) if self.types.contains_key(name.as_str()))
        })
    }

    /// The input types an SDL defines (the schema's own, so it parses).
    pub fn from_sdl(sdl: &str) -> Self {
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return Self::default();
        };
        let mut types = HashMap::new();
        for def in doc.definitions {
            let async_graphql::parser::types::TypeSystemDefinition::Type(ty) = def else {
                continue;
            };
            let TypeKind::InputObject(input) = ty.node.kind else {
                continue;
            };
            let fields = input
                .fields
                .into_iter()
                .map(|f| (f.node.name.node.to_string(), f.node.ty.node.to_string()))
                .collect();
            types.insert(ty.node.name.node.to_string(), fields);
        }
        InputTypes { types }
    }

    /// The input type an object with `keys` most likely is, of those with `field: ty`.
    fn likely_type(
        &self,
        field: &str,
        ty: &str,
        keys: &[&str],
    ) -> Option<(&str, &HashMap<String, String>)> {
        self.types
            .iter()
            .filter(|(_, fields)| fields.get(field).is_some_and(|t| t == ty))
            .max_by_key(|(name, fields)| {
                let known = keys.iter().filter(|k| fields.contains_key(**k)).count();
                // Ties go to the first name, so the answer does not depend on hashing.
                (known, std::cmp::Reverse(name.as_str()))
            })
            .map(|(name, fields)| (name.as_str(), fields))
    }
}

/// To each "required but not provided" error, adds the unknown fields of the object it is
/// about: `…; unknown field "emial" of type "CreateUserEmailPasswordInput"`.
pub fn name_unknown_fields(
    errors: &mut [ServerError],
    doc: &ExecutableDocument,
    variables: Option<&Variables>,
    types: &InputTypes,
) {
    for error in errors {
        let Some((path, field, ty)) = missing_field(&error.message) else {
            continue;
        };
        let Some(pos) = error.locations.first() else {
            continue;
        };
        let Some(value) = argument_at(doc, *pos, variables) else {
            continue;
        };
        let Some(Value::Object(object)) =
            path.split('.')
                .skip(1)
                .try_fold(&value, |v, seg| match (v, seg.parse::<usize>()) {
                    (Value::List(items), Ok(i)) => items.get(i),
                    (Value::Object(map), _) => map.get(seg),
                    _ => None,
                })
        else {
            continue;
        };
        let keys: Vec<&str> = object.keys().map(|k| k.as_str()).collect();
        let Some((type_name, fields)) = types.likely_type(field, ty, &keys) else {
            continue;
        };
        let unknown: BTreeSet<&str> = keys
            .into_iter()
            .filter(|k| !fields.contains_key(*k))
            .collect();
        for name in unknown {
            error.message.push_str(&format!(
                "; unknown field \"{name}\" of type \"{type_name}\""
            ));
        }
    }
}

/// The argument path, field and type of async-graphql's message for a required input field
/// that is missing: `Invalid value for argument "input", field "email" of type "String!" is
/// required but not provided`.
fn missing_field(message: &str) -> Option<(&str, &str, &str)> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    let (path, rest) = rest.split_once("\", field \"")?;
    let (field, rest) = rest.split_once("\" of type \"")?;
    let ty = rest.strip_suffix("\" is required but not provided")?;
    Some((path, field, ty))
}

/// The value of the argument whose name is at `pos`, with the request's variables in it.
fn argument_at(doc: &ExecutableDocument, pos: Pos, variables: Option<&Variables>) -> Option<Value> {
    let sets = doc
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set)
        .chain(doc.fragments.values().map(|f| &f.node.selection_set));
    sets.into_iter()
        .find_map(|set| argument_in(set, pos, variables, 0))
}

fn argument_in(
    set: &Positioned<SelectionSet>,
    pos: Pos,
    variables: Option<&Variables>,
    depth: usize,
) -> Option<Value> {
    if depth > 64 {
        return None;
    }
    set.node.items.iter().find_map(|item| match &item.node {
        Selection::Field(f) => match f.node.arguments.iter().find(|(name, _)| name.pos == pos) {
            Some((_, value)) => value
                .node
                .clone()
                .into_const_with(|name| variables.and_then(|v| v.get(&name)).cloned().ok_or(()))
                .ok(),
            None => argument_in(&f.node.selection_set, pos, variables, depth + 1),
        },
        Selection::InlineFragment(f) => {
            argument_in(&f.node.selection_set, pos, variables, depth + 1)
        }
        Selection::FragmentSpread(_) => None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_of_a_missing_field_is_read() {
        let m = r#"Invalid value for argument "input.sub", field "email" of type "String!" is required but not provided"#;
        assert_eq!(
            super::missing_field(m),
            Some(("input.sub", "email", "String!"))
        );
        assert_eq!(super::missing_field("Unknown field"), None);
    }
}
