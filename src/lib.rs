//! usersvc: an admin GraphQL API for the users of applications — brainCloud's server-side
//! User service (`Sys*` calls) on PostgreSQL, guarded by JWTs that carry Cloud Code scopes.
//!
//! Layers, top to bottom; a module uses only modules below it (`tests/it/layers.rs` holds the
//! exact allow-list and fails on an import against it):
//! - `cli`, `config`: the command line, and the settings it builds for each module below;
//! - `server`: wiring (pool, hashing threads, schema, router, mail worker);
//! - `http`: the router, `/graphql`, the hosted pages, operational routes;
//! - `graphql`: the schema, thin resolvers, scope guards, query limits;
//! - `recovery`, `users`, `apps`: the service layer, where every rule lives;
//! - `mail`: the outbox and its workers, templates, transport (queued into by services, never
//!   calling them back);
//! - `links`, `passwords`, `normalise`, `auth`: one-time links, password policy and hashing,
//!   identifier rules, token verification;
//! - `db`, `quota`, `telemetry`, `error`: storage, per-app shares of the pool and the hashing
//!   threads, logs and metrics, the one error type.

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
pub mod quota;
pub mod recovery;
pub mod server;
pub mod telemetry;
pub mod users;
