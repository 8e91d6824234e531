//! The integration tests: one binary, real PostgreSQL, the real router over HTTP.

mod client;
mod harness;
mod signing;

mod auth;
mod browser;
mod children;
mod cli;
mod create;
mod delete;
mod embedded;
mod errors;
mod fuzz;
mod graphql_http;
mod inputs;
mod isolation;
mod jwks;
mod known_requests;
mod layers;
mod lifecycle;
mod limits;
mod mail;
mod ops;
mod paging;
mod read;
mod rendered_sql;
mod schema;
mod serve;
mod smtp_sink;
mod tenancy;
mod traces;
