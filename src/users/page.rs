//! SysGetPage / SysGetPageOffset as a Relay connection: keyset pages over one app's profiles,
//! with opaque cursors.
//!
//! A cursor is base64url of: a version byte, 8 bytes of a fingerprint of (app, filter, order),
//! the profile id, and the row's sort key. Decoding checks the version and the fingerprint, so
//! a cursor used with another app, filter or order — or one not made here — is refused with
//! `INVALID_CURSOR` instead of silently paging something else. The fingerprint is not a
//! secret: a cursor forged for the caller's own app, filter and order only moves the
//! caller's own position.
//!
//! `hasPreviousPage` / `hasNextPage` are exact in both directions. Whatever the page itself
//! reveals costs nothing; the rest (is there anything before the `after` cursor?) is one
//! `EXISTS` probe run only when the flag is selected.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::parse_profile_id;
use crate::auth::Caller;
use crate::db::models::IdentityKind;
use crate::db::models::Profile;
use crate::db::profiles::{Listing, OrderField, Position, ProfileFilter, Side, SortKey};
use crate::db::{DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::normalise;

const CURSOR_VERSION: u8 = 1;

/// Filters as a caller sent them.
#[derive(Debug, Clone, Default)]
pub struct FilterInput {
    pub user_name_prefix: Option<String>,
    pub contact_email: Option<String>,
    pub country_code: Option<String>,
    pub language_code: Option<String>,
    pub is_tester: Option<bool>,
    pub identity_type: Option<IdentityKind>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub parent_profile_id: Option<String>,
}

/// A page request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub filter: FilterInput,
    pub field: OrderField,
    pub descending: bool,
    /// Largest `first`/`last` allowed.
    pub max_page: i32,
    /// Page size when neither `first` nor `last` is given.
    pub default_page: i32,
}

/// A flag that is either known from the page or needs one probe.
#[derive(Debug, Clone)]
enum Flag {
    Known(bool),
    Probe(Side, Position),
}

/// One page, and what is needed to answer the lazy parts (flags, total count).
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<(Profile, String)>,
    app_id: String,
    filter: ProfileFilter,
    field: OrderField,
    descending: bool,
    has_next: Flag,
    has_previous: Flag,
}

fn checked_text(v: Option<String>, max: usize, field: &str) -> AppResult<Option<String>> {
    match v {
        Some(s) => {
            normalise::at_most(&s, max, field)?;
            normalise::visible(&s, field)?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

fn check_filter(f: FilterInput) -> AppResult<ProfileFilter> {
    Ok(ProfileFilter {
        user_name_prefix: checked_text(f.user_name_prefix, 128, "filter.userNamePrefix")?,
        contact_email: checked_text(f.contact_email, normalise::MAX_EMAIL, "filter.contactEmail")?
            .map(|e| e.trim().to_owned()),
        country_code: checked_text(f.country_code, 16, "filter.countryCode")?,
        language_code: checked_text(f.language_code, 16, "filter.languageCode")?,
        is_tester: f.is_tester,
        identity_kind: f.identity_type.map(IdentityKind::as_str),
        created_after: f.created_after,
        created_before: f.created_before,
        parent_profile_id: match f.parent_profile_id {
            Some(p) => Some(parse_profile_id(&p, "filter.parentProfileId")?),
            None => None,
        },
    })
}

/// A stable digest of what a cursor is bound to.
fn fingerprint(
    app_id: &str,
    filter: &ProfileFilter,
    field: OrderField,
    descending: bool,
) -> [u8; 8] {
    let mut h = Sha256::new();
    let mut put = |label: &str, value: &str| {
        h.update(label.as_bytes());
        h.update((value.len() as u64).to_be_bytes());
        h.update(value.as_bytes());
    };
    put("app", app_id);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "\u{0}".into());
    put("prefix", &opt(&filter.user_name_prefix));
    put(
        "email",
        &opt(&filter.contact_email.as_ref().map(|e| e.to_lowercase())),
    );
    put("country", &opt(&filter.country_code));
    put("language", &opt(&filter.language_code));
    put("tester", &format!("{:?}", filter.is_tester));
    put("identity", filter.identity_kind.unwrap_or("\u{0}"));
    put(
        "after",
        &opt(&filter
            .created_after
            .map(|t| t.timestamp_micros().to_string())),
    );
    put(
        "before",
        &opt(&filter
            .created_before
            .map(|t| t.timestamp_micros().to_string())),
    );
    put(
        "parent",
        &opt(&filter.parent_profile_id.map(|p| p.to_string())),
    );
    put("order", &format!("{field:?}/{descending}"));
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode_cursor(fp: &[u8; 8], pos: &Position) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.push(CURSOR_VERSION);
    bytes.extend_from_slice(fp);
    bytes.extend_from_slice(pos.profile_id.as_bytes());
    match &pos.key {
        SortKey::Time(t) => {
            bytes.push(0);
            bytes.extend_from_slice(&t.timestamp_micros().to_be_bytes());
        }
        SortKey::Text(s) => {
            bytes.push(1);
            bytes.extend_from_slice(s.as_bytes());
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(cursor: &str, fp: &[u8; 8], field: OrderField) -> AppResult<Position> {
    // The longest key is a user name of 4 × 128 bytes, lower-cased (which can grow it).
    if cursor.len() > 2048 {
        return Err(AppError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| AppError::InvalidCursor)?;
    if bytes.len() < 26 || bytes[0] != CURSOR_VERSION || bytes[1..9] != fp[..] {
        return Err(AppError::InvalidCursor);
    }
    let profile_id = Uuid::from_slice(&bytes[9..25]).map_err(|_| AppError::InvalidCursor)?;
    let key = match (bytes[25], field) {
        (0, OrderField::CreatedAt | OrderField::LastLoginAt) if bytes.len() == 34 => {
            let micros = i64::from_be_bytes(
                bytes[26..34]
                    .try_into()
                    .map_err(|_| AppError::InvalidCursor)?,
            );
            SortKey::Time(DateTime::from_timestamp_micros(micros).ok_or(AppError::InvalidCursor)?)
        }
        (1, OrderField::UserName) => SortKey::Text(
            String::from_utf8(bytes[26..].to_vec()).map_err(|_| AppError::InvalidCursor)?,
        ),
        _ => return Err(AppError::InvalidCursor),
    };
    Ok(Position { key, profile_id })
}

fn check_count(n: Option<i32>, name: &str, max: i32) -> AppResult<Option<i64>> {
    match n {
        Some(n) if n < 0 => Err(AppError::bad_input(format!("{name} must not be negative"))),
        Some(n) if n > max => Err(AppError::bad_input(format!("{name} must be at most {max}"))),
        n => Ok(n.map(i64::from)),
    }
}

/// Reads one page.
pub async fn page(pool: &mut DbPool<'_>, caller: &Caller, req: PageRequest) -> AppResult<Page> {
    let first = check_count(req.first, "first", req.max_page)?;
    let last = check_count(req.last, "last", req.max_page)?;
    if first.is_some() && last.is_some() {
        return Err(AppError::bad_input("give first or last, not both"));
    }
    let filter = check_filter(req.filter)?;
    let fp = fingerprint(&caller.app_id, &filter, req.field, req.descending);
    let after = req
        .after
        .as_deref()
        .map(|c| decode_cursor(c, &fp, req.field))
        .transpose()?;
    let before = req
        .before
        .as_deref()
        .map(|c| decode_cursor(c, &fp, req.field))
        .transpose()?;
    let (limit, from_end) = match (first, last) {
        (_, Some(n)) => (n, true),
        (Some(n), None) => (n, false),
        (None, None) => (i64::from(req.default_page), false),
    };

    let listing = Listing {
        app_id: &caller.app_id,
        filter: &filter,
        field: req.field,
        descending: req.descending,
    };
    let mut rows = {
        let mut conn = get_conn(pool).await?;
        listing
            .range(
                &mut conn,
                after.as_ref(),
                before.as_ref(),
                limit + 1,
                from_end,
            )
            .await?
    };
    let more = rows.len() as i64 > limit;
    if more {
        if from_end {
            rows.remove(0);
        } else {
            rows.pop();
        }
    }
    // Beyond the page within the (after, before) range: `more`. Beyond the range: only rows
    // at or past the bounding cursor, which needs a probe.
    let beyond = |bound: &Option<Position>, side: Side| match bound {
        Some(p) => Flag::Probe(side, p.clone()),
        None => Flag::Known(false),
    };
    let (has_next, has_previous) = if from_end {
        (
            beyond(&before, Side::AtOrAfter),
            if more {
                Flag::Known(true)
            } else {
                beyond(&after, Side::AtOrBefore)
            },
        )
    } else {
        (
            if more {
                Flag::Known(true)
            } else {
                beyond(&before, Side::AtOrAfter)
            },
            beyond(&after, Side::AtOrBefore),
        )
    };
    let rows = rows
        .into_iter()
        .map(|(profile, key)| {
            let cursor = encode_cursor(
                &fp,
                &Position {
                    key,
                    profile_id: profile.profile_id,
                },
            );
            (profile, cursor)
        })
        .collect();
    Ok(Page {
        rows,
        app_id: caller.app_id.clone(),
        filter,
        field: req.field,
        descending: req.descending,
        has_next,
        has_previous,
    })
}

impl Page {
    fn listing(&self) -> Listing<'_> {
        Listing {
            app_id: &self.app_id,
            filter: &self.filter,
            field: self.field,
            descending: self.descending,
        }
    }

    async fn resolve(&self, pool: &mut DbPool<'_>, flag: &Flag) -> AppResult<bool> {
        match flag {
            Flag::Known(b) => Ok(*b),
            Flag::Probe(side, pos) => {
                let mut conn = get_conn(pool).await?;
                Ok(self.listing().any_on(&mut conn, *side, pos).await?)
            }
        }
    }

    /// Whether profiles follow this page.
    pub async fn has_next_page(&self, pool: &mut DbPool<'_>) -> AppResult<bool> {
        self.resolve(pool, &self.has_next).await
    }

    /// Whether profiles precede this page.
    pub async fn has_previous_page(&self, pool: &mut DbPool<'_>) -> AppResult<bool> {
        self.resolve(pool, &self.has_previous).await
    }

    /// How many profiles match the filter, on every page together.
    pub async fn total_count(&self, pool: &mut DbPool<'_>) -> AppResult<i64> {
        let mut conn = get_conn(pool).await?;
        Ok(self.listing().count(&mut conn).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos_time() -> Position {
        Position {
            key: SortKey::Time(DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap()),
            profile_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn cursors_round_trip_and_bind_to_their_listing() {
        let f = ProfileFilter::default();
        let fp = fingerprint("a", &f, OrderField::CreatedAt, false);
        let p = pos_time();
        let c = encode_cursor(&fp, &p);
        assert_eq!(decode_cursor(&c, &fp, OrderField::CreatedAt).unwrap(), p);

        let other_app = fingerprint("b", &f, OrderField::CreatedAt, false);
        let other_order = fingerprint("a", &f, OrderField::CreatedAt, true);
        let filtered = ProfileFilter {
            is_tester: Some(true),
            ..ProfileFilter::default()
        };
        let other_filter = fingerprint("a", &filtered, OrderField::CreatedAt, false);
        for fp2 in [other_app, other_order, other_filter] {
            assert!(decode_cursor(&c, &fp2, OrderField::CreatedAt).is_err());
        }
        let name = Position {
            key: SortKey::Text("zoë".into()),
            profile_id: Uuid::now_v7(),
        };
        let fpn = fingerprint("a", &f, OrderField::UserName, false);
        let c = encode_cursor(&fpn, &name);
        assert_eq!(decode_cursor(&c, &fpn, OrderField::UserName).unwrap(), name);
    }

    #[test]
    fn garbage_cursors_are_refused() {
        let fp = fingerprint("a", &ProfileFilter::default(), OrderField::CreatedAt, false);
        for bad in ["", "!!", "AAAA", "bm9wZQ", &"A".repeat(5000)] {
            assert!(
                decode_cursor(bad, &fp, OrderField::CreatedAt).is_err(),
                "{bad}"
            );
        }
        let mut good = URL_SAFE_NO_PAD
            .decode(encode_cursor(&fp, &pos_time()))
            .unwrap();
        good.truncate(30);
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(&good), &fp, OrderField::CreatedAt).is_err());
    }
}
