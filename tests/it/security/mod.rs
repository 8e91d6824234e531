//! The security checklist (`docs/security-tests.md`) row by row, where no other file proves a
//! row already: tenant isolation on every operation of the schema ([`tenants`]), the scope of
//! every operation against the contract's own table ([`scopes`]), the GraphQL layer's limits
//! and introspection switch ([`graphql`]), what bounds a stolen token ([`tokens`]), guessing
//! and racing at the hosted pages ([`pages`]), passwords kept exactly and never readable
//! ([`passwords`]), the normaliser's properties ([`normalise`]), all-or-nothing mutations
//! under injected database failures ([`atomic`]), what the server's logs hold ([`logs`]) and a
//! `serve` process killed in the middle of a send ([`crash`]).
//! The helpers they share live here.

mod pages;

use serde_json::Value;

use crate::harness::*;

/// A response without error locations (which differ with the text of the document).
fn without_locations(mut v: Value) -> Value {
    if let Some(errors) = v.get_mut("errors").and_then(|e| e.as_array_mut()) {
        for e in errors {
            if let Some(e) = e.as_object_mut() {
                e.remove("locations");
            }
        }
    }
    v
}
