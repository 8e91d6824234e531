//! Strict checks for addresses and display names that end up in mail headers. Mail is built
//! with lettre's typed mailboxes only, and anything that could bend a header — CR, LF, other
//! controls, zero-width or bidi characters, a second `@` — is refused before it gets there.

use lettre::message::Mailbox;

use crate::normalise::{is_email, is_invisible};

/// Longest display name, in characters.
pub const MAX_NAME: usize = 128;

/// Which part of a mailbox was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The address.
    #[error("not a valid email address")]
    Address,
    /// The display name.
    #[error("not an acceptable display name (one line, at most 128 visible characters)")]
    Name,
}

/// Checks a display name.
pub fn display_name(name: &str) -> Result<(), AddressError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.chars().any(is_invisible) {
        return Err(AddressError::Name);
    }
    Ok(())
}

fn address_ok(address: &str, allow_local_domain: bool) -> bool {
    if address.len() > 254
        || address
            .chars()
            .any(|c| is_invisible(c) || c.is_whitespace())
    {
        return false;
    }
    if is_email(address) {
        return true;
    }
    // The server's own default sender may live on a single-label host (no-reply@localhost).
    allow_local_domain
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && !domain.is_empty()
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && is_email(&format!("{local}@{domain}.test"))
        })
}

fn build(
    address: &str,
    name: Option<&str>,
    allow_local_domain: bool,
) -> Result<Mailbox, AddressError> {
    if !address_ok(address, allow_local_domain) {
        return Err(AddressError::Address);
    }
    if let Some(n) = name {
        display_name(n)?;
    }
    let parsed = address.parse().map_err(|_| AddressError::Address)?;
    Ok(Mailbox::new(name.map(str::to_owned), parsed))
}

/// A mailbox from a caller-supplied address and optional display name.
pub fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, AddressError> {
    build(address, name, false)
}

/// The configured sender: `Name <address>` or a bare address (a single-label domain such as
/// `localhost` is accepted here, for the default `usersvc <no-reply@localhost>`).
pub fn parse_from_setting(s: &str) -> Result<Mailbox, AddressError> {
    let s = s.trim();
    match s.rsplit_once('<') {
        Some((name, rest)) if rest.ends_with('>') => {
            let name = name.trim().trim_matches('"').trim();
            let address = rest[..rest.len() - 1].trim();
            build(address, (!name.is_empty()).then_some(name), true)
        }
        _ => build(s, None, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_mailboxes() {
        let m = mailbox("support@game.example", Some("Game \"Support\", Team")).unwrap();
        assert_eq!(m.email.to_string(), "support@game.example");
        assert_eq!(
            parse_from_setting("usersvc <no-reply@localhost>")
                .unwrap()
                .email
                .to_string(),
            "no-reply@localhost"
        );
        assert_eq!(parse_from_setting("a@b.example").unwrap().name, None);
    }

    #[test]
    fn refuses_anything_that_could_bend_a_header() {
        for bad in [
            "a@b.com\r\nBcc: x@y.com",
            "a@b.com\n",
            "a@@b.com",
            "ab.com",
            "a@b.com\u{200B}",
            "a@b\u{202E}.com",
            "",
            "a b@c.com",
        ] {
            assert_eq!(
                mailbox(bad, None).unwrap_err(),
                AddressError::Address,
                "{bad:?}"
            );
        }
        assert_eq!(
            mailbox(&format!("{}@b.com", "a".repeat(250)), None).unwrap_err(),
            AddressError::Address
        );
        assert_eq!(
            mailbox("no-reply@localhost", None).unwrap_err(),
            AddressError::Address
        );
        for bad in ["Evil\r\nBcc: x@y.com", "a\u{202E}b", "", &"n".repeat(129)] {
            assert_eq!(
                mailbox("a@b.com", Some(bad)).unwrap_err(),
                AddressError::Name,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn accepted_addresses_are_safe_for_headers() {
        // A deterministic sweep over strings built from risky pieces.
        let pieces = [
            "a", "@", ".", "\r", "\n", " ", "b.com", "\u{200B}", "-", "x@y.io", "\"", "<", ">", ",",
        ];
        let mut seed: u64 = 42;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..6 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            if let Ok(m) = mailbox(&s, None) {
                let a = m.email.to_string();
                assert!(!a.contains('\r') && !a.contains('\n'), "{s:?}");
                assert_eq!(a.matches('@').count(), 1, "{s:?}");
                assert!(a.len() <= 254);
            }
        }
    }
}
