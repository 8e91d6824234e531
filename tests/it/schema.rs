//! The committed `schema.graphql` is exactly what the code prints.

#[test]
fn committed_schema_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let generated = usersvc::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn no_secret_shaped_field_is_in_the_schema() {
    let sdl = usersvc::graphql::sdl();
    let mut in_input = false;
    for line in sdl.lines().map(str::trim) {
        if line.starts_with("input ") {
            in_input = true;
        } else if line.starts_with("type ") || line.starts_with("enum ") {
            in_input = false;
        }
        // Field and argument names only; descriptions may speak about passwords.
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        if name.contains(' ') || name.starts_with('"') {
            continue;
        }
        let name = name.to_lowercase();
        // The contract's link lifetime is the one name that speaks of tokens without holding one.
        if name == "tokenttlinminutes" {
            continue;
        }
        // An imported user's password hash may be written (importUsers), never read back.
        if in_input && name == "passwordhash" {
            continue;
        }
        for word in ["hash", "secret", "token"] {
            assert!(!name.contains(word), "field {name} looks like a secret");
        }
        // Passwords may be written (create input) but never read back: `hasPassword` only.
        assert!(
            !name.contains("password") || name == "password" || name == "haspassword",
            "{name}"
        );
    }
}
