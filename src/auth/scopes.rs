//! The Cloud Code scopes and which root field needs which.
//!
//! [`required`] is the single table of field → scope. The GraphQL layer consults it for every
//! root field it resolves and refuses a field that is not in it, so a new field is denied until
//! somebody decides its scope (deny by default); a test checks that every root field of the
//! schema is in the table.

/// `userInfo`, `userByIdentity`, `users`.
pub const READ: &str = "cloudcode:users:read";
/// `userExport`.
pub const EXPORT: &str = "cloudcode:users:export";
/// The three `createUser*` mutations.
pub const CREATE: &str = "cloudcode:users:create";
/// `deleteUser`.
pub const DELETE: &str = "cloudcode:users:delete";
/// Password resets and `setPassword`.
pub const PASSWORD: &str = "cloudcode:users:password";
/// `createSelfServiceDeletionUrl`.
pub const DELETION_URL: &str = "cloudcode:users:deletion-url";
/// `updateUser`, `changeIdentity`, `attachIdentity`, `detachIdentity`, `disableUser`,
/// `enableUser`.
pub const UPDATE: &str = "cloudcode:users:update";
/// `verifyPassword`.
pub const AUTHENTICATE: &str = "cloudcode:users:authenticate";
/// `importUsers`.
pub const IMPORT: &str = "cloudcode:users:import";
/// Every scope of the User service.
pub const ALL: &str = "cloudcode:users:*";

/// Every specific scope, for tests and for the CLI's help.
pub const EVERY: [&str; 9] = [
    READ,
    EXPORT,
    CREATE,
    DELETE,
    PASSWORD,
    DELETION_URL,
    UPDATE,
    AUTHENTICATE,
    IMPORT,
];

/// The scope a root field needs; `None` means the field is not allowed to anyone.
pub fn required(parent_type: &str, field: &str) -> Option<&'static str> {
    match (parent_type, field) {
        ("Query", "userInfo" | "userByIdentity" | "users") => Some(READ),
        ("Query", "userExport") => Some(EXPORT),
        (
            "Mutation",
            "createUserEmailPassword" | "createUserUniversalId" | "createUserExternalAuth",
        ) => Some(CREATE),
        ("Mutation", "deleteUser") => Some(DELETE),
        (
            "Mutation",
            "sendPasswordResetEmail"
            | "sendPasswordResetUniversalId"
            | "createPasswordResetUrl"
            | "setPassword",
        ) => Some(PASSWORD),
        ("Mutation", "createSelfServiceDeletionUrl") => Some(DELETION_URL),
        (
            "Mutation",
            "updateUser" | "changeIdentity" | "attachIdentity" | "detachIdentity" | "disableUser"
            | "enableUser",
        ) => Some(UPDATE),
        ("Mutation", "verifyPassword") => Some(AUTHENTICATE),
        ("Mutation", "importUsers") => Some(IMPORT),
        _ => None,
    }
}

/// Whether a held scope grants a needed one: equal, or the `cloudcode:users:*` wildcard for
/// any `cloudcode:users:` scope.
pub fn grants(held: &str, needed: &str) -> bool {
    held == needed || (held == ALL && needed.starts_with("cloudcode:users:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_grants_only_user_scopes() {
        for s in EVERY {
            assert!(grants(ALL, s));
            assert!(grants(s, s));
        }
        assert!(!grants(READ, EXPORT));
        assert!(!grants(ALL, "cloudcode:other:read"));
        assert!(!grants("cloudcode:users:", READ));
    }
}
