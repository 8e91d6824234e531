//! SysGetPage / SysGetPageOffset as a Relay connection: keyset pages over one app's profiles,
//! with opaque cursors.
//!
//! A cursor is base64url of: a version byte, the profile id, the row's sort key, and a MAC
//! (HMAC-SHA256, 16 bytes) over all of it and over what the cursor is bound to (app, filter,
//! order), keyed with a secret the server keeps in its database ([`CursorKey`]). Decoding
//! checks the MAC first, so a cursor used with another app, filter or order, altered in any
//! byte, or not made by this server is refused with `INVALID_CURSOR` before anything in it is
//! believed.
//!
//! `hasPreviousPage` / `hasNextPage` are exact in both directions. Whatever the page itself
//! reveals costs nothing; the rest (is there anything before the `after` cursor?) is one
//! `EXISTS` probe run only when the flag is selected.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::parse_profile_id;
use crate::auth::Caller;
use crate::db::models::Profile;
use crate::db::models::{IdentityKind, ProfileStatus};
use crate::db::profiles::{Listing, OrderField, Position, ProfileFilter, Side, SortKey};
use crate::db::{DbPool, get_conn};
use crate::error::{AppError, AppResult};
use crate::normalise;

const CURSOR_VERSION: u8 = 2;
/// Bytes of the MAC a cursor carries.
const MAC_LEN: usize = 16;

/// The key cursors are signed with: 32 random bytes, made once and kept in the database, so
/// every instance of the server accepts every other's cursors.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    /// A key from its bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        CursorKey(bytes)
    }
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

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
    pub status: Option<ProfileStatus>,
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
    /// The key cursors are signed with.
    pub key: CursorKey,
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
        status: f.status.map(ProfileStatus::as_str),
    })
}

/// The MAC state of a listing: keyed with the server's key, over what a cursor of this listing
/// is bound to (each value length-prefixed, so no two bindings feed the same bytes).
fn binding(
    key: &CursorKey,
    app_id: &str,
    filter: &ProfileFilter,
    field: OrderField,
    descending: bool,
) -> Hmac<Sha256> {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes any key length");
    let mut put = |label: &str, value: &str| {
        h.update(label.as_bytes());
        h.update(&(value.len() as u64).to_be_bytes());
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
    // Last, and only when set: cursors made before the filter existed stay valid without it.
    if let Some(status) = filter.status {
        put("status", status);
    }
    h
}

fn encode_cursor(binding: &Hmac<Sha256>, pos: &Position) -> String {
    let mut bytes = Vec::with_capacity(34 + MAC_LEN);
    bytes.push(CURSOR_VERSION);
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
    let mac = binding.clone().chain_update(&bytes).finalize().into_bytes();
    bytes.extend_from_slice(&mac[..MAC_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Earliest and latest sort times PostgreSQL can compare with (years 1 and 9999 are far
/// inside its range; stored keys never leave it).
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

fn decode_cursor(cursor: &str, binding: &Hmac<Sha256>, field: OrderField) -> AppResult<Position> {
    // The longest key is a user name of 4 × 128 bytes, lower-cased (which can grow it).
    if cursor.len() > 2048 {
        return Err(AppError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| AppError::InvalidCursor)?;
    if bytes.len() < 18 + MAC_LEN {
        return Err(AppError::InvalidCursor);
    }
    let (bytes, mac) = bytes.split_at(bytes.len() - MAC_LEN);
    binding
        .clone()
        .chain_update(bytes)
        .verify_truncated_left(mac)
        .map_err(|_| AppError::InvalidCursor)?;
    if bytes[0] != CURSOR_VERSION {
        return Err(AppError::InvalidCursor);
    }
    let profile_id = Uuid::from_slice(&bytes[1..17]).map_err(|_| AppError::InvalidCursor)?;
    let key = match (bytes[17], field) {
        (0, OrderField::CreatedAt | OrderField::LastLoginAt) if bytes.len() == 26 => {
            let micros = i64::from_be_bytes(
                bytes[18..26]
                    .try_into()
                    .map_err(|_| AppError::InvalidCursor)?,
            );
            if !(MIN_MICROS..=MAX_MICROS).contains(&micros) {
                return Err(AppError::InvalidCursor);
            }
            SortKey::Time(DateTime::from_timestamp_micros(micros).ok_or(AppError::InvalidCursor)?)
        }
        (1, OrderField::UserName) => {
            let text =
                String::from_utf8(bytes[18..].to_vec()).map_err(|_| AppError::InvalidCursor)?;
            if text.contains('\0') {
                return Err(AppError::InvalidCursor);
            }
            SortKey::Text(text)
        }
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
    let fp = binding(&req.key, &caller.app_id, &filter, req.field, req.descending);
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
    use proptest::prelude::*;

    use super::*;

    fn key() -> CursorKey {
        CursorKey::new([7; 32])
    }

    fn pos_time() -> Position {
        Position {
            key: SortKey::Time(DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap()),
            profile_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn cursors_round_trip_and_bind_to_their_listing_and_key() {
        let f = ProfileFilter::default();
        let fp = binding(&key(), "a", &f, OrderField::CreatedAt, false);
        let p = pos_time();
        let c = encode_cursor(&fp, &p);
        assert_eq!(decode_cursor(&c, &fp, OrderField::CreatedAt).unwrap(), p);

        let other_app = binding(&key(), "b", &f, OrderField::CreatedAt, false);
        let other_order = binding(&key(), "a", &f, OrderField::CreatedAt, true);
        let filtered = ProfileFilter {
            is_tester: Some(true),
            ..ProfileFilter::default()
        };
        let other_filter = binding(&key(), "a", &filtered, OrderField::CreatedAt, false);
        let disabled = ProfileFilter {
            status: Some("DISABLED"),
            ..ProfileFilter::default()
        };
        let other_status = binding(&key(), "a", &disabled, OrderField::CreatedAt, false);
        let other_key = binding(
            &CursorKey::new([8; 32]),
            "a",
            &f,
            OrderField::CreatedAt,
            false,
        );
        for fp2 in [
            other_app,
            other_order,
            other_filter,
            other_status,
            other_key,
        ] {
            assert!(decode_cursor(&c, &fp2, OrderField::CreatedAt).is_err());
        }
        let name = Position {
            key: SortKey::Text("zoë".into()),
            profile_id: Uuid::now_v7(),
        };
        let fpn = binding(&key(), "a", &f, OrderField::UserName, false);
        let c = encode_cursor(&fpn, &name);
        assert_eq!(decode_cursor(&c, &fpn, OrderField::UserName).unwrap(), name);
    }

    #[test]
    fn garbage_cursors_are_refused() {
        let fp = binding(
            &key(),
            "a",
            &ProfileFilter::default(),
            OrderField::CreatedAt,
            false,
        );
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

    fn any_position() -> impl Strategy<Value = (Position, OrderField)> {
        let id = any::<u128>().prop_map(Uuid::from_u128);
        prop_oneof![
            (id.clone(), MIN_MICROS..=MAX_MICROS).prop_map(|(profile_id, micros)| (
                Position {
                    key: SortKey::Time(DateTime::from_timestamp_micros(micros).unwrap()),
                    profile_id,
                },
                OrderField::CreatedAt
            )),
            (id, "[^\\x00]{0,128}").prop_map(|(profile_id, name)| (
                Position {
                    key: SortKey::Text(name),
                    profile_id,
                },
                OrderField::UserName
            )),
        ]
    }

    proptest! {
        #[test]
        fn every_position_round_trips((pos, field) in any_position()) {
            let fp = binding(&key(), "app", &ProfileFilter::default(), field, false);
            prop_assert_eq!(decode_cursor(&encode_cursor(&fp, &pos), &fp, field).unwrap(), pos);
        }

        #[test]
        fn any_altered_byte_is_refused(
            (pos, field) in any_position(),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let fp = binding(&key(), "app", &ProfileFilter::default(), field, false);
            let mut bytes = URL_SAFE_NO_PAD.decode(encode_cursor(&fp, &pos)).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            let altered = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(matches!(
                decode_cursor(&altered, &fp, field),
                Err(AppError::InvalidCursor)
            ));
        }

        #[test]
        fn any_string_is_refused_without_panic(junk in ".{0,200}") {
            let fp = binding(&key(), "app", &ProfileFilter::default(), OrderField::UserName, false);
            prop_assert!(decode_cursor(&junk, &fp, OrderField::UserName).is_err());
        }
    }
}
