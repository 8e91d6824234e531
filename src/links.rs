//! One-time links: the tokens behind password-reset and account-deletion links, their stored
//! form, and the URLs of the hosted pages they open.
//!
//! Tokens carry 256 bits from the OS CSPRNG, travel only inside links, and are stored only as
//! SHA-256 hashes, so a database dump holds no usable link.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AppResult;
use crate::passwords::random_secret;

/// Longest link lifetime a caller may ask for: 30 days.
pub const MAX_TTL_MINUTES: i32 = 43_200;

/// What a query value keeps as it is: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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

/// The reset page's link for a token, under `base` (a public URL without trailing slash).
pub fn reset_url(base: &str, token: &str) -> String {
    format!(
        "{base}/self-service/reset-password?token={}",
        utf8_percent_encode(token, QUERY_VALUE)
    )
}

/// The deletion page's link, in brainCloud's shape.
pub fn deletion_url(base: &str, app_id: &str, token: &str, profile_id: Uuid) -> String {
    format!(
        "{base}/self-service/delete-account?appId={}&deletionToken={}&profileId={profile_id}",
        utf8_percent_encode(app_id, QUERY_VALUE),
        utf8_percent_encode(token, QUERY_VALUE),
    )
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
    fn link_values_are_percent_encoded() {
        assert_eq!(
            deletion_url("https://x.test", "a b&c", "t-_.~", Uuid::nil()),
            "https://x.test/self-service/delete-account?appId=a%20b%26c&deletionToken=t-_.~\
             &profileId=00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            reset_url("http://h", "abc=="),
            "http://h/self-service/reset-password?token=abc%3D%3D"
        );
    }
}
