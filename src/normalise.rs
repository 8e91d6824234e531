//! Normalisation and validation of identifiers, before they are stored or looked up.
//!
//! Emails and universal ids are NFKC-normalised, trimmed and lower-cased, so that visually
//! equal variants (case, full-width forms) collide on the unique index. External ids are
//! trimmed only: they belong to another system, which decides what equal means. Control,
//! format and other invisible characters (zero-width, bidi overrides) are refused in every
//! identifier: they make two different ids look alike and can smuggle line breaks into mail
//! headers.

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use crate::error::{AppError, AppResult};

/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest universal id or external id, in characters.
pub const MAX_ID: usize = 256;
/// Longest externalAuthType.
pub const MAX_AUTH_TYPE: usize = 64;

/// Whether a character is invisible or a control: Unicode controls, plus the
/// Default_Ignorable_Code_Point set (zero-width, bidi controls, variation selectors, tags…).
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
}

/// Refuses a value with invisible characters; `field` names it in the message.
pub fn visible(value: &str, field: &str) -> AppResult<()> {
    if value.chars().any(is_invisible) {
        return Err(AppError::bad_input(format!(
            "{field} contains control or invisible characters"
        )));
    }
    Ok(())
}

/// Refuses a value longer than `max` characters (checked on bytes first, so a huge value is
/// refused without walking it).
pub fn at_most(value: &str, max: usize, field: &str) -> AppResult<()> {
    if value.len() > max * 4 || value.chars().count() > max {
        return Err(AppError::bad_input(format!(
            "{field} must be at most {max} characters long"
        )));
    }
    Ok(())
}

fn folded(raw: &str) -> String {
    raw.nfkc().collect::<String>().trim().to_lowercase()
}

/// A universal id as stored: NFKC, trimmed, lower-cased; 1 to 256 visible characters.
pub fn universal_id(raw: &str) -> AppResult<String> {
    at_most(raw, MAX_ID, "universalId")?;
    let id = folded(raw);
    visible(&id, "universalId")?;
    if id.is_empty() {
        return Err(AppError::bad_input("universalId must not be empty"));
    }
    at_most(&id, MAX_ID, "universalId")?;
    Ok(id)
}

/// An external id as stored: trimmed only; 1 to 256 visible characters.
pub fn external_id(raw: &str) -> AppResult<String> {
    at_most(raw, MAX_ID, "externalId")?;
    let id = raw.trim();
    visible(id, "externalId")?;
    if id.is_empty() {
        return Err(AppError::bad_input("externalId must not be empty"));
    }
    Ok(id.to_owned())
}

/// An externalAuthType: 1 to 64 characters of letters, digits, `_`, `-`, `.`.
pub fn external_auth_type(raw: &str) -> AppResult<String> {
    let t = raw.trim();
    if t.is_empty()
        || t.len() > MAX_AUTH_TYPE
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(AppError::bad_input(
            "externalAuthType must be 1 to 64 letters, digits, '_', '-' or '.'",
        ));
    }
    Ok(t.to_owned())
}

/// An email address as stored: NFKC, trimmed, lower-cased, then checked to be an address
/// (`EMAIL_NOT_VALID` naming `field` otherwise).
pub fn email(raw: &str, field: &'static str) -> AppResult<String> {
    if raw.len() > MAX_EMAIL * 4 {
        return Err(AppError::EmailNotValid(field));
    }
    let e = folded(raw);
    if is_email(&e) {
        Ok(e)
    } else {
        Err(AppError::EmailNotValid(field))
    }
}

/// Lookup form of an email: normalised like [`email`] but not validated (a malformed
/// address simply matches nothing).
pub fn email_key(raw: &str) -> AppResult<String> {
    at_most(raw, MAX_EMAIL, "externalId")?;
    let e = folded(raw);
    visible(&e, "externalId")?;
    Ok(e)
}

/// A practical address check: one `@`; a local part of 1–64 bytes made of atext characters
/// and single dots; a domain of at least two labels of letters, digits and inner hyphens
/// (non-ASCII letters allowed), 1–63 bytes each, with a non-numeric last label. No
/// whitespace, quotes, comments or IP literals: nothing a mail header could misread.
pub fn is_email(e: &str) -> bool {
    if e.chars().count() > MAX_EMAIL || e.chars().any(|c| is_invisible(c) || c.is_whitespace()) {
        return false;
    }
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    if domain.contains('@') || local.is_empty() || local.len() > 64 {
        return false;
    }
    let atext = |c: char| {
        c.is_alphanumeric()
            || "!#$%&'*+/=?^_`{|}~-".contains(c)
            || (!c.is_ascii() && !c.is_control())
    };
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    if !local.chars().all(|c| c == '.' || atext(c)) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    labels.iter().all(label_ok) && !labels[labels.len() - 1].chars().all(|c| c.is_ascii_digit())
}

/// Checks that a JSON value holds no NUL character in any string or key: PostgreSQL's `jsonb`
/// cannot store one, so it is the caller's malformed argument, refused before any work.
pub fn json_without_nul(value: &Value, field: &str) -> AppResult<()> {
    fn has_nul(v: &Value, depth: usize) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            // serde_json refuses documents nested deeper than 128 levels on input.
            Value::Array(items) => depth < 256 && items.iter().any(|i| has_nul(i, depth + 1)),
            Value::Object(map) => {
                depth < 256
                    && map
                        .iter()
                        .any(|(k, v)| k.contains('\0') || has_nul(v, depth + 1))
            }
            _ => false,
        }
    }
    if has_nul(value, 0) {
        return Err(AppError::bad_input(format!(
            "{field} must not contain the character U+0000"
        )));
    }
    Ok(())
}

/// A picture URL: an absolute `http` or `https` URL with a host (no `javascript:`, `data:` or
/// other schemes a client might follow).
pub fn web_url(raw: &str, field: &str) -> AppResult<()> {
    let refused = || AppError::bad_input(format!("{field} must be an http:// or https:// URL"));
    let url = url::Url::parse(raw).map_err(|_| refused())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(refused());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_fold_case_width_and_space() {
        assert_eq!(
            email("  Alice@Example.COM ", "email").unwrap(),
            "alice@example.com"
        );
        // Full-width letters and @ normalise to ASCII under NFKC.
        assert_eq!(
            email("ＡＬＩＣＥ＠ｅｘａｍｐｌｅ.com", "email").unwrap(),
            "alice@example.com"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b .com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b-.com",
            "a@b.123",
            "a@[1.2.3.4]",
            "\"a\"@b.com",
            "a\r\n@b.com",
            "a@b.com\r\nBcc: x@y.com",
            "a\u{200B}@b.com",
            "a@b\u{202E}.com",
        ] {
            assert!(email(bad, "email").is_err(), "{bad:?} must be refused");
        }
        let long_local = format!("{}@b.com", "a".repeat(65));
        assert!(email(&long_local, "email").is_err());
        let long = format!("a@{}.com", "b".repeat(250));
        assert!(email(&long, "email").is_err());
    }

    #[test]
    fn universal_ids_fold_and_refuse_invisible() {
        assert_eq!(universal_id(" Player_One ").unwrap(), "player_one");
        assert!(universal_id("play\u{200D}er").is_err());
        assert!(universal_id("   ").is_err());
        assert!(universal_id(&"x".repeat(257)).is_err());
        assert!(universal_id(&"x".repeat(256)).is_ok());
    }

    #[test]
    fn external_ids_keep_case() {
        assert_eq!(external_id(" AbC-123 ").unwrap(), "AbC-123");
        assert!(external_id("a\u{0000}b").is_err());
        assert!(external_auth_type("corpdir").is_ok());
        assert!(external_auth_type("corp dir").is_err());
    }
}
