//! The integration tests: one binary, real PostgreSQL, the real router over HTTP.

mod client;
mod harness;

mod auth;
mod browser;
mod create;
mod delete;
mod embedded;
mod graphql_http;
mod known_requests;
mod layers;
mod limits;
mod mail;
mod ops;
mod paging;
mod read;
mod rendered_sql;
mod schema;
mod smtp_sink;
mod tenancy;
