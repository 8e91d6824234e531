//! One-time links: password resets (mailed or returned), `setPassword`, self-service account
//! deletion, and what the hosted pages do with the links. The service layer for everything
//! behind `cloudcode:users:password` and `cloudcode:users:deletion-url`.
//!
//! Tokens carry 256 bits from the OS CSPRNG, travel only inside links, and are stored only as
//! SHA-256 hashes. Reset links that are mailed are minted by the outbox worker at send time,
//! so no live link ever sits at rest, not even in the outbox (see `crate::mail::outbox`).

pub mod deletion;
pub mod params;
pub mod reset;
pub mod self_service;

use sha2::{Digest, Sha256};

use crate::error::AppResult;
use crate::passwords::random_secret;

/// Longest link lifetime a caller may ask for: 30 days.
pub const MAX_TTL_MINUTES: i32 = 43_200;

/// A new token and its hash.
pub fn new_token() -> AppResult<(String, [u8; 32])> {
    let token = random_secret(32)?;
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a string could be one of our tokens (43 base64url characters), checked before any
/// lookup so that junk never reaches the database.
pub fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A caller's `tokenTtlInMinutes`, checked.
pub fn check_ttl(ttl: Option<i32>) -> AppResult<Option<i32>> {
    match ttl {
        Some(t) if !(1..=MAX_TTL_MINUTES).contains(&t) => Err(crate::error::AppError::bad_input(
            format!("tokenTtlInMinutes must be between 1 and {MAX_TTL_MINUTES}"),
        )),
        t => Ok(t),
    }
}

/// The base of links for an app: its own `public_url`, else the server's.
pub fn link_base<'a>(app_public_url: Option<&'a str>, server_public_url: &'a str) -> &'a str {
    app_public_url
        .unwrap_or(server_public_url)
        .trim_end_matches('/')
}

/// Percent-encodes a query value (tokens are base64url and app ids are `[A-Za-z0-9._-]`, but
/// links are built defensively anyway).
pub fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_of_base64url_and_never_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let (t, h) = new_token().unwrap();
            assert!(plausible_token(&t), "{t}");
            assert_eq!(h, hash_token(&t));
            assert_ne!(&h[..], t.as_bytes());
            assert!(seen.insert(t));
        }
    }

    #[test]
    fn ttl_bounds() {
        assert!(check_ttl(Some(0)).is_err());
        assert!(check_ttl(Some(43_201)).is_err());
        assert!(check_ttl(Some(-5)).is_err());
        assert_eq!(check_ttl(Some(1)).unwrap(), Some(1));
        assert_eq!(check_ttl(Some(43_200)).unwrap(), Some(43_200));
        assert_eq!(check_ttl(None).unwrap(), None);
    }
}
