//! Checkers for the hash schemes other services store, so their users can be imported with the
//! passwords they have: scrypt and PBKDF2 as PHC strings (through the RustCrypto
//! `password-hash` family, the same one argon2 comes from), and bcrypt in its own `$2?$`
//! format (through the `bcrypt` crate).
//!
//! Formats, exactly as read:
//! - `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`;
//! - `$pbkdf2-sha256$i=<rounds>,l=<hash bytes>$<salt>$<hash>` and `$pbkdf2-sha512$…`;
//! - `$2a$`, `$2b$`, `$2y$` + two-digit cost + 53 characters of bcrypt's base64;
//!
//! PHC salts and hashes are standard base64 without padding; the salt's decoded bytes are what
//! the key derivation is given. bcrypt uses the first 72 bytes of a password, as every bcrypt
//! implementation does, so a hash made elsewhere from a longer password still matches.
//!
//! Each scheme's cost is capped before any work: a hash above a cap cannot be imported, and
//! one that got into the database anyway is refused at login.

use password_hash::PasswordVerifier;
use password_hash::phc::PasswordHash;

use super::Refused;

/// Largest scrypt memory a hash may ask for (128 · r · N bytes): 256 MiB, as for argon2.
pub const SCRYPT_MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Largest scrypt work a hash may ask for (128 · r · N · p bytes mixed): 1 GiB.
pub const SCRYPT_MAX_WORK_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest scrypt parallelism a hash may ask for.
pub const SCRYPT_MAX_P: u32 = 16;
/// Largest PBKDF2 round count a hash may ask for (OWASP asks for 600,000 with SHA-256).
pub const PBKDF2_MAX_ROUNDS: u32 = 5_000_000;
/// Largest bcrypt cost a hash may ask for (2^15 rounds; common hashes use 10 to 12).
pub const BCRYPT_MAX_COST: u32 = 15;
/// Smallest bcrypt cost that exists.
const BCRYPT_MIN_COST: u32 = 4;

fn phc(stored: &str) -> Result<PasswordHash, Refused> {
    PasswordHash::new(stored).map_err(|e| Refused::Malformed(e.to_string()))
}

/// A parsed scrypt hash and its parameters, within the caps.
pub(super) fn scrypt_params(stored: &str) -> Result<(PasswordHash, scrypt::Params), Refused> {
    let hash = phc(stored)?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(Refused::Malformed("salt and hash are required".into()));
    }
    // The costs are checked first, as the hash states them: the crate's own parser accepts
    // any that fit in memory addresses.
    let stated = |name: &str, default: u32| hash.params.get_decimal(name).unwrap_or(default);
    let log_n = stated("ln", u32::from(scrypt::Params::RECOMMENDED_LOG_N));
    let r = stated("r", scrypt::Params::RECOMMENDED_R);
    let p = stated("p", scrypt::Params::RECOMMENDED_P);
    let memory = 1u64
        .checked_shl(log_n)
        .and_then(|n| n.checked_mul(128 * u64::from(r)));
    let work = memory.and_then(|m| m.checked_mul(u64::from(p)));
    match (memory, work) {
        (Some(m), Some(w))
            if m <= SCRYPT_MAX_MEMORY_BYTES && w <= SCRYPT_MAX_WORK_BYTES && p <= SCRYPT_MAX_P => {}
        _ => {
            return Err(Refused::TooCostly(format!(
                "ln={log_n}, r={r}, p={p} (at most {} MiB of memory, {} MiB of work, \
                 p={SCRYPT_MAX_P})",
                SCRYPT_MAX_MEMORY_BYTES >> 20,
                SCRYPT_MAX_WORK_BYTES >> 20
            )));
        }
    }
    let params = scrypt::Params::try_from(&hash).map_err(|e| Refused::Malformed(e.to_string()))?;
    Ok((hash, params))
}

/// Whether `password` is the one an scrypt hash was made from.
pub(super) fn scrypt(stored: &str, password: &[u8]) -> Result<bool, Refused> {
    let (hash, _) = scrypt_params(stored)?;
    Ok(scrypt::Scrypt::new()
        .verify_password(password, &hash)
        .is_ok())
}

/// A parsed PBKDF2 hash and its parameters, within the caps.
pub(super) fn pbkdf2_params(stored: &str) -> Result<(PasswordHash, pbkdf2::Params), Refused> {
    let hash = phc(stored)?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(Refused::Malformed("salt and hash are required".into()));
    }
    // The rounds are checked first: the crate's own parser takes any u32.
    if let Some(rounds) = hash.params.get_decimal("i")
        && rounds > PBKDF2_MAX_ROUNDS
    {
        return Err(Refused::TooCostly(format!(
            "i={rounds} (at most {PBKDF2_MAX_ROUNDS})"
        )));
    }
    let params = pbkdf2::Params::try_from(&hash).map_err(|e| Refused::Malformed(e.to_string()))?;
    Ok((hash, params))
}

/// Whether `password` is the one a PBKDF2 hash was made from.
pub(super) fn pbkdf2(stored: &str, password: &[u8]) -> Result<bool, Refused> {
    let (hash, _) = pbkdf2_params(stored)?;
    // The algorithm (SHA-256 or SHA-512) comes from the hash's own identifier.
    Ok(pbkdf2::Pbkdf2::default()
        .verify_password(password, &hash)
        .is_ok())
}

/// A bcrypt hash's cost, after checking its shape and the cap.
pub(super) fn bcrypt_cost(stored: &str) -> Result<u32, Refused> {
    let parts: bcrypt::HashParts = stored
        .parse()
        .map_err(|e: bcrypt::BcryptError| Refused::Malformed(e.to_string()))?;
    let cost = parts.get_cost();
    if cost < BCRYPT_MIN_COST {
        return Err(Refused::Malformed(format!(
            "cost {cost} (bcrypt costs start at {BCRYPT_MIN_COST})"
        )));
    }
    if cost > BCRYPT_MAX_COST {
        return Err(Refused::TooCostly(format!(
            "cost {cost} (at most {BCRYPT_MAX_COST})"
        )));
    }
    Ok(cost)
}

/// Whether `password` is the one a bcrypt hash was made from.
pub(super) fn bcrypt(stored: &str, password: &[u8]) -> Result<bool, Refused> {
    bcrypt_cost(stored)?;
    bcrypt::verify(password, stored).map_err(|e| Refused::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::{Scheme, Verification, inspect, verify};
    use super::*;

    #[derive(serde::Deserialize)]
    struct Fixture {
        scheme: String,
        password: String,
        hash: String,
    }

    /// Hashes made by Python's hashlib and its `bcrypt` and `argon2-cffi` packages
    /// (`tests/fixtures/foreign_hashes.py`), not by usersvc.
    fn fixtures() -> Vec<Fixture> {
        let text = include_str!("../../../tests/fixtures/foreign-hashes.json");
        serde_json::from_str(text).expect("the fixture file parses")
    }

    #[test]
    fn hashes_made_elsewhere_match_their_password_only_and_are_outdated() {
        let fixtures = fixtures();
        for scheme in [
            "scrypt",
            "pbkdf2-sha256",
            "pbkdf2-sha512",
            "bcrypt",
            "argon2i",
        ] {
            assert!(fixtures.iter().any(|f| f.scheme == scheme), "{scheme}");
        }
        for f in &fixtures {
            let v = verify(&f.hash, f.password.as_bytes()).unwrap();
            assert!(v.matches, "{}: {}", f.scheme, f.hash);
            assert_eq!(v.outdated, f.scheme != "argon2id", "{}", f.hash);
            let mut wrong = f.password.clone();
            wrong.push('!');
            assert!(
                !verify(&f.hash, wrong.as_bytes()).unwrap().matches,
                "{}",
                f.hash
            );
            assert!(!verify(&f.hash, b"").unwrap().matches, "{}", f.hash);
        }
    }

    #[test]
    fn inspect_names_the_scheme_without_a_password() {
        for f in fixtures() {
            let expected = match f.scheme.as_str() {
                "scrypt" => Scheme::Scrypt,
                "bcrypt" => Scheme::Bcrypt,
                "argon2i" | "argon2id" => Scheme::Argon2,
                _ => Scheme::Pbkdf2,
            };
            assert_eq!(inspect(&f.hash), Ok(expected), "{}", f.hash);
        }
    }

    #[test]
    fn a_changed_salt_or_hash_never_matches() {
        for f in fixtures() {
            // Flip one character of the salt, then of the hash (the last field).
            let salt_at = f.hash.rfind('$').unwrap() - 2;
            for at in [salt_at, f.hash.len() - 2] {
                let mut bytes = f.hash.clone().into_bytes();
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                let changed = String::from_utf8(bytes).unwrap();
                let v = verify(&changed, f.password.as_bytes());
                assert!(
                    !matches!(v, Ok(Verification { matches: true, .. })),
                    "{changed}"
                );
            }
        }
    }

    #[test]
    fn hostile_costs_are_refused_before_any_work() {
        let salt = "c2FsdHNhbHRzYWx0c2FsdA";
        let out = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        for stored in [
            format!("$scrypt$ln=30,r=8,p=1${salt}${out}"),
            format!("$scrypt$ln=18,r=9,p=1${salt}${out}"),
            format!("$scrypt$ln=14,r=8,p=1000${salt}${out}"),
            format!("$scrypt$ln=63,r=4294967295,p=1${salt}${out}"),
            format!("$pbkdf2-sha256$i=4294967295,l=32${salt}${out}"),
            format!("$pbkdf2-sha512$i=5000001,l=32${salt}${out}"),
            "$2b$31$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxVG".to_string(),
            "$2y$16$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxVG".to_string(),
        ] {
            let refused = inspect(&stored).unwrap_err();
            assert!(
                matches!(refused, Refused::TooCostly(_)),
                "{stored}: {refused:?}"
            );
            assert_eq!(verify(&stored, b"x"), Err(refused), "{stored}");
        }
        let at_the_caps = [
            format!("$pbkdf2-sha256$i={PBKDF2_MAX_ROUNDS},l=32${salt}${out}"),
            format!("$scrypt$ln=18,r=8,p=1${salt}${out}"),
            "$2b$15$abcdefghijklmnopqrstuuKd0gqE3Z/7L5K5t1dD4U8eY1F1HQxVG".to_string(),
        ];
        for stored in at_the_caps {
            assert!(inspect(&stored).is_ok(), "{stored}");
        }
    }
}
