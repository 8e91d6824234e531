//! Checking a password against a stored hash, whatever made the hash.
//!
//! A stored hash is a PHC string (`$<scheme>$…`) or a bcrypt string (`$2a$`, `$2b$`, `$2y$`);
//! [`verify`] picks the scheme from its prefix and hands it to that scheme's checker: argon2
//! (`argon2id`, `argon2i`, `argon2d`) here, the imported schemes (scrypt, PBKDF2-SHA256/512,
//! bcrypt) in [`foreign`]. [`inspect`] parses a hash and checks its costs without checking any
//! password: what an import runs on every hash it is given.
//!
//! A stored hash names its own cost, and an imported one may name any: argon2 accepts a memory
//! cost of up to 4 TiB, scrypt as much, PBKDF2 four billion rounds, bcrypt 2^31. Costs above the
//! caps ([`ARGON2_MAX_M_KIB`], [`ARGON2_MAX_T`], [`ARGON2_MAX_P`] and those in [`foreign`]) are
//! refused before any work is done, so no stored string can make a login allocate gigabytes or
//! run for minutes.
//!
//! A hash that matched but is not what [`super::argon2id`] makes today (another scheme, argon2i,
//! older parameters) is reported as outdated, so the caller can store a current one.

pub mod foreign;

use argon2::PasswordHash;

/// Largest argon2 memory cost a stored hash may ask for: 256 MiB (in KiB).
pub const ARGON2_MAX_M_KIB: u32 = 256 * 1024;
/// Largest argon2 time cost (passes) a stored hash may ask for.
pub const ARGON2_MAX_T: u32 = 16;
/// Largest argon2 parallelism a stored hash may ask for.
pub const ARGON2_MAX_P: u32 = 16;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password is the one the hash was made from.
    pub matches: bool,
    /// The hash is not what would be stored today: when the password matched, the caller
    /// should replace the hash with a current one.
    pub outdated: bool,
}

/// Why a stored hash could not be checked at all (the password counts as wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a PHC string of a scheme usersvc knows.
    UnknownScheme,
    /// A PHC string of a known scheme that does not parse.
    Malformed(String),
    /// The hash asks for more work than the caps allow.
    TooCostly(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::UnknownScheme => f.write_str(
                "is not a hash usersvc can check (argon2id, argon2i, scrypt, pbkdf2-sha256, \
                 pbkdf2-sha512 PHC strings, or bcrypt $2a$/$2b$/$2y$)",
            ),
            Refused::Malformed(why) => write!(f, "does not parse: {why}"),
            Refused::TooCostly(why) => write!(f, "asks for more work than allowed: {why}"),
        }
    }
}

/// The hash schemes usersvc can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$argon2id$`, `$argon2i$`, `$argon2d$`.
    Argon2,
    /// `$scrypt$ln=…,r=…,p=…$salt$hash`.
    Scrypt,
    /// `$pbkdf2-sha256$i=…,l=…$salt$hash` and `$pbkdf2-sha512$…`.
    Pbkdf2,
    /// `$2a$`, `$2b$`, `$2y$` (bcrypt's own format, not PHC).
    Bcrypt,
}

/// The scheme a stored hash names by its prefix.
fn scheme(stored: &str) -> Option<Scheme> {
    let id = stored.strip_prefix('$')?.split('$').next()?;
    match id {
        "argon2id" | "argon2i" | "argon2d" => Some(Scheme::Argon2),
        "scrypt" => Some(Scheme::Scrypt),
        "pbkdf2-sha256" | "pbkdf2-sha512" => Some(Scheme::Pbkdf2),
        "2a" | "2b" | "2y" => Some(Scheme::Bcrypt),
        _ => None,
    }
}

/// Longest stored hash looked at, in bytes (a PHC string of any scheme here is far shorter).
pub const MAX_HASH_BYTES: usize = 512;

/// Parses a stored hash and checks its costs against the caps, without checking a password
/// (cheap: no key derivation). What [`verify`] would refuse, this refuses too.
pub fn inspect(stored: &str) -> Result<Scheme, Refused> {
    if stored.len() > MAX_HASH_BYTES {
        return Err(Refused::Malformed(format!(
            "longer than {MAX_HASH_BYTES} bytes"
        )));
    }
    let scheme = scheme(stored).ok_or(Refused::UnknownScheme)?;
    match scheme {
        Scheme::Argon2 => argon2_params(stored).map(|_| ()),
        Scheme::Scrypt => foreign::scrypt_params(stored).map(|_| ()),
        Scheme::Pbkdf2 => foreign::pbkdf2_params(stored).map(|_| ()),
        Scheme::Bcrypt => foreign::bcrypt_cost(stored).map(|_| ()),
    }?;
    Ok(scheme)
}

/// Checks `password` against a stored hash. Slow by design (the hash's own cost): run it on
/// the hashing threads.
pub fn verify(stored: &str, password: &[u8]) -> Result<Verification, Refused> {
    let scheme = inspect(stored)?;
    let matches = match scheme {
        Scheme::Argon2 => return argon2(stored, password),
        Scheme::Scrypt => foreign::scrypt(stored, password)?,
        Scheme::Pbkdf2 => foreign::pbkdf2(stored, password)?,
        Scheme::Bcrypt => foreign::bcrypt(stored, password)?,
    };
    // Every scheme but argon2id is replaced on the first successful check.
    Ok(Verification {
        matches,
        outdated: true,
    })
}

/// A parsed argon2 hash and its parameters, within the caps.
fn argon2_params(stored: &str) -> Result<(PasswordHash, argon2::Params), Refused> {
    let hash = PasswordHash::new(stored).map_err(|e| Refused::Malformed(e.to_string()))?;
    let params = argon2::Params::try_from(&hash).map_err(|e| Refused::Malformed(e.to_string()))?;
    if params.m_cost() > ARGON2_MAX_M_KIB
        || params.t_cost() > ARGON2_MAX_T
        || params.p_cost() > ARGON2_MAX_P
    {
        return Err(Refused::TooCostly(format!(
            "m={}, t={}, p={} (at most m={ARGON2_MAX_M_KIB}, t={ARGON2_MAX_T}, p={ARGON2_MAX_P})",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        )));
    }
    Ok((hash, params))
}

fn argon2(stored: &str, password: &[u8]) -> Result<Verification, Refused> {
    let (hash, params) = argon2_params(stored)?;
    // The algorithm, version and parameters come from the hash itself (as the crate's own
    // verify_password takes them), computed in the thread's kept memory.
    let malformed = |e: &dyn std::fmt::Display| Refused::Malformed(e.to_string());
    let algorithm =
        argon2::Algorithm::try_from(hash.algorithm.as_str()).map_err(|e| malformed(&e))?;
    let version = hash
        .version
        .map(argon2::Version::try_from)
        .transpose()
        .map_err(|e| malformed(&e))?
        .unwrap_or_default();
    let matches = match (&hash.salt, &hash.hash) {
        (Some(salt), Some(expected)) => {
            let argon = argon2::Argon2::new(algorithm, version, params.clone());
            let mut out = vec![0u8; expected.len()];
            super::memory::hash_into(&argon, password, salt, &mut out)
                .map_err(|e| malformed(&e))?;
            // Output's equality is constant-time.
            argon2::password_hash::phc::Output::new(&out).is_ok_and(|o| &o == expected)
        }
        _ => false,
    };
    let current = super::argon2id();
    let current = current.params();
    let outdated = hash.algorithm.as_str() != "argon2id"
        || hash.version != Some(0x13)
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost()
        || hash.hash.as_ref().map(|h| h.len()) != Some(argon2::Params::DEFAULT_OUTPUT_LEN);
    Ok(Verification { matches, outdated })
}

#[cfg(test)]
mod tests {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

    use super::*;

    fn hash_with(alg: Algorithm, m: u32, t: u32, p: u32, password: &str) -> String {
        let params = Params::new(m, t, p, None).unwrap();
        Argon2::new(alg, Version::V0x13, params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_current_hash_matches_its_password_only_and_is_not_outdated() {
        let phc = super::super::argon2id()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert_eq!(
            verify(&phc, b"correct horse"),
            Ok(Verification {
                matches: true,
                outdated: false
            })
        );
        assert!(!verify(&phc, b"correct horsf").unwrap().matches);
        assert!(!verify(&phc, b"").unwrap().matches);
    }

    #[test]
    fn older_parameters_and_argon2i_match_but_are_outdated() {
        for phc in [
            hash_with(Algorithm::Argon2id, 4096, 3, 1, "s3cret pass"),
            hash_with(Algorithm::Argon2i, 19_456, 2, 1, "s3cret pass"),
        ] {
            let v = verify(&phc, b"s3cret pass").unwrap();
            assert!(v.matches && v.outdated, "{phc}: {v:?}");
            assert!(!verify(&phc, b"s3cret pasS").unwrap().matches, "{phc}");
        }
    }

    #[test]
    fn hostile_costs_are_refused_before_any_work() {
        // A real salt and output, so that only the cost stands in the way: running this with
        // m = 4 TiB would abort the test process instead of returning.
        let good = hash_with(Algorithm::Argon2id, 19_456, 2, 1, "x");
        let tail = good.splitn(5, '$').nth(4).unwrap();
        for params in [
            "m=4294967295,t=2,p=1",
            "m=262145,t=2,p=1",
            "m=19456,t=4294967295,p=1",
            "m=19456,t=17,p=1",
            "m=19456,t=2,p=17",
        ] {
            let phc = format!("$argon2id$v=19${params}${tail}");
            assert!(
                matches!(verify(&phc, b"x"), Err(Refused::TooCostly(_))),
                "{phc}"
            );
        }
        let at_the_cap = hash_with(Algorithm::Argon2id, 8, 16, 1, "x");
        assert!(verify(&at_the_cap, b"x").unwrap().matches);
    }

    #[test]
    fn other_strings_are_refused_without_panic() {
        for stored in [
            "",
            "plain text",
            "$2b$12$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxV",
            "$2b$1$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxVGx",
            "$2c$12$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxVG",
            "$argon2id$",
            "$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$scrypt$ln=16,r=8$c2FsdA",
            "$scrypt$ln=x,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
            "$pbkdf2-sha256$i=1000,l=32$c2FsdA$aGFzaA",
            "$pbkdf2-sha1$i=1000,l=20$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhcw",
            "$pbkdf2-sha256$i=1000,l=3$c2FsdA$aGFz",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA$extra",
        ] {
            assert!(verify(stored, b"x").is_err(), "{stored}");
        }
    }
}
