//! usersvc: an admin GraphQL API for the users of applications — brainCloud's server-side
//! User service (`Sys*` calls) on PostgreSQL, guarded by JWTs that carry Cloud Code scopes.
//!
//! Floors, top to bottom (a module only uses the floors below it):
//! - `cli`, `http`: the ways in (command line, HTTP: GraphQL, GraphiQL, ops routes);
//! - `graphql`: thin resolvers, scopes, limits;
//! - `users`, `apps`: the service layer, where every rule lives;
//! - `db`, `passwords`, `auth`: storage, hashing, token verification;
//! - `error`, `config`, `telemetry`, `sync`: shared plumbing.

pub mod apps;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod graphql;
pub mod http;
pub mod links;
pub mod mail;
pub mod normalise;
pub mod passwords;
pub mod recovery;
pub mod server;
pub mod sync;
pub mod telemetry;
pub mod users;
