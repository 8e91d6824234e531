//! The optional profile fields shared by the three create calls, and their limits. Every
//! limit is checked before any database call or hash.

use serde_json::Value;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::normalise::{at_most, email, visible};

/// Longest userName, in characters.
pub const MAX_USER_NAME: usize = 128;
/// Longest country or language code.
pub const MAX_CODE: usize = 16;
/// Longest pictureUrl.
pub const MAX_URL: usize = 2048;
/// Largest summaryFriendData, serialised, in bytes.
pub const MAX_FRIEND_DATA: usize = 16 * 1024;
/// Longest template id.
pub const MAX_TEMPLATE_ID: usize = 128;

/// Optional profile fields as a caller sent them.
#[derive(Debug, Clone, Default)]
pub struct ProfileFields {
    pub user_name: Option<String>,
    pub contact_email: Option<String>,
    pub country_code: Option<String>,
    pub language_code: Option<String>,
    pub time_zone_offset: Option<f64>,
    pub picture_url: Option<String>,
    pub is_tester: Option<bool>,
    pub summary_friend_data: Option<Value>,
    pub parent_profile_id: Option<String>,
    pub notification_template_id: Option<String>,
}

/// The same fields, checked and normalised.
#[derive(Debug, Clone, Default)]
pub struct ValidFields {
    pub user_name: Option<String>,
    pub contact_email: Option<String>,
    pub country_code: Option<String>,
    pub language_code: Option<String>,
    pub time_zone_offset: Option<f64>,
    pub picture_url: Option<String>,
    pub is_tester: bool,
    pub summary_friend_data: Option<Value>,
    pub parent_profile_id: Option<Uuid>,
    pub notification_template_id: Option<String>,
}

fn text(value: Option<String>, max: usize, field: &str) -> AppResult<Option<String>> {
    let Some(v) = value else { return Ok(None) };
    at_most(&v, max, field)?;
    let v = v.trim();
    visible(v, field)?;
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn code(value: Option<String>, field: &str) -> AppResult<Option<String>> {
    let v = text(value, MAX_CODE, field)?;
    if let Some(c) = &v
        && !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AppError::bad_input(format!(
            "{field} must be letters, digits, '-' or '_'"
        )));
    }
    Ok(v)
}

impl ProfileFields {
    /// Checks every field; the first problem wins.
    pub fn validate(self) -> AppResult<ValidFields> {
        let contact_email = match self.contact_email {
            Some(e) if !e.trim().is_empty() => Some(email(&e, "contactEmail")?),
            _ => None,
        };
        let time_zone_offset = match self.time_zone_offset {
            Some(t) if !t.is_finite() || !(-24.0..=24.0).contains(&t) => {
                return Err(AppError::bad_input(
                    "timeZoneOffset must be a number of hours between -24 and 24",
                ));
            }
            t => t,
        };
        let summary_friend_data = match self.summary_friend_data {
            Some(Value::Null) | None => None,
            Some(v) => {
                crate::normalise::json_without_nul(&v, "summaryFriendData")?;
                let size = serde_json::to_vec(&v)
                    .map(|b| b.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_FRIEND_DATA {
                    return Err(AppError::bad_input(format!(
                        "summaryFriendData must be at most {MAX_FRIEND_DATA} bytes of JSON"
                    )));
                }
                Some(v)
            }
        };
        let parent_profile_id = match self.parent_profile_id {
            Some(p) => Some(super::parse_profile_id(&p, "parentProfileId")?),
            None => None,
        };
        Ok(ValidFields {
            user_name: text(self.user_name, MAX_USER_NAME, "userName")?,
            contact_email,
            country_code: code(self.country_code, "countryCode")?,
            language_code: code(self.language_code, "languageCode")?,
            time_zone_offset,
            picture_url: match text(self.picture_url, MAX_URL, "pictureUrl")? {
                Some(url) => {
                    crate::normalise::web_url(&url, "pictureUrl")?;
                    Some(url)
                }
                None => None,
            },
            is_tester: self.is_tester.unwrap_or(false),
            summary_friend_data,
            parent_profile_id,
            notification_template_id: text(
                self.notification_template_id,
                MAX_TEMPLATE_ID,
                "notificationTemplateId",
            )?,
        })
    }
}
