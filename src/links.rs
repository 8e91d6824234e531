//! One-time links: the tokens behind password-reset and account-deletion links, their stored
//! form, and the URLs of the hosted pages they open.
//!
//! Tokens carry 256 bits, travel only inside links, and are stored only as SHA-256 hashes, so a
//! database dump holds no usable link. Links returned to a caller take their bits from the OS
//! CSPRNG. Links in mail are derived from the message they travel in —
//! HMAC-SHA256(link key, "reset" ‖ message id) — so every attempt at sending one message, by
//! whichever instance, carries the same link; the link key is a secret of the servers, never
//! stored in the database, so the message ids there do not lead to a link.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
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

/// Shortest link key, in bytes.
pub const MIN_LINK_KEY: usize = 32;

/// The servers' secret that mail links are derived from (`USERSVC_LINK_KEY`). Shared by every
/// instance on a database, kept out of it, and never printed.
#[derive(Clone)]
pub struct LinkKey(Vec<u8>);

impl LinkKey {
    /// A key of at least [`MIN_LINK_KEY`] bytes.
    pub fn new(key: &[u8]) -> Result<LinkKey, String> {
        if key.len() < MIN_LINK_KEY {
            return Err(format!(
                "the link key must be at least {MIN_LINK_KEY} bytes long (it has {})",
                key.len()
            ));
        }
        Ok(LinkKey(key.to_vec()))
    }

    /// The token of the reset link mailed in message `message_id`, and its hash: the same for
    /// every attempt at sending that message.
    pub fn reset_token(&self, message_id: Uuid) -> (String, [u8; 32]) {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"reset");
        mac.update(message_id.as_bytes());
        let token = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let hash = hash_token(&token);
        (token, hash)
    }
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(…)")
    }
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
    fn mail_tokens_are_fixed_by_key_and_message() {
        let key = LinkKey::new(&[7u8; 32]).unwrap();
        let other = LinkKey::new(&[8u8; 32]).unwrap();
        let (m1, m2) = (Uuid::now_v7(), Uuid::now_v7());
        let (t, h) = key.reset_token(m1);
        assert!(plausible_token(&t), "{t}");
        assert_eq!(h, hash_token(&t));
        assert_eq!(key.reset_token(m1).0, t, "the same message, the same link");
        assert_ne!(key.reset_token(m2).0, t);
        assert_ne!(other.reset_token(m1).0, t, "another key, another link");
        assert!(LinkKey::new(&[1u8; 31]).is_err());
        assert_eq!(format!("{key:?}"), "LinkKey(…)");
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
