//! The GraphQL operations the tests run, typed from the committed `schema.graphql` by
//! graphql_client at build time: a schema change that breaks a client breaks this build.

#![allow(clippy::upper_case_acronyms)]

use graphql_client::GraphQLQuery;

/// `DateTime` as clients see it (RFC 3339).
pub type DateTime = String;
/// `JSON` as clients see it.
pub type JSON = serde_json::Value;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/user_info.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct UserInfo;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/user_by_identity.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct UserByIdentity;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/user_export.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct UserExport;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/users.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct Users;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/create_email.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct CreateEmail;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/create_universal.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct CreateUniversal;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/create_external.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct CreateExternal;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/it/queries/delete_user.graphql",
    response_derives = "Debug, Clone, PartialEq",
    variables_derives = "Debug, Clone, Default"
)]
pub struct DeleteUser;

// graphql_client does not derive Default for enums; inputs that hold them need one.
impl Default for user_by_identity::IdentityType {
    fn default() -> Self {
        Self::EMAIL
    }
}

impl Default for users::IdentityType {
    fn default() -> Self {
        Self::EMAIL
    }
}

impl Default for users::UserOrderField {
    fn default() -> Self {
        Self::CREATED_AT
    }
}

impl Default for users::OrderDirection {
    fn default() -> Self {
        Self::ASC
    }
}
