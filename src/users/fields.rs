//! The optional profile fields shared by the three create calls and `updateUser`, and their
//! limits: one function per field, so a create and an update check a value the same way.
//! Every limit is checked before any database call or hash.

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

/// A userName as stored (`None`: empty after trimming).
pub fn user_name(v: String) -> AppResult<Option<String>> {
    text(Some(v), MAX_USER_NAME, "userName")
}

/// A contactEmail as stored: a normalised address (`None`: empty).
pub fn contact_email(v: String) -> AppResult<Option<String>> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(email(&v, "contactEmail")?))
}

/// A countryCode as stored (`None`: empty).
pub fn country_code(v: String) -> AppResult<Option<String>> {
    code(Some(v), "countryCode")
}

/// A languageCode as stored (`None`: empty).
pub fn language_code(v: String) -> AppResult<Option<String>> {
    code(Some(v), "languageCode")
}

/// A timeZoneOffset: hours between -24 and 24.
pub fn time_zone_offset(t: f64) -> AppResult<f64> {
    if !t.is_finite() || !(-24.0..=24.0).contains(&t) {
        return Err(AppError::bad_input(
            "timeZoneOffset must be a number of hours between -24 and 24",
        ));
    }
    Ok(t)
}

/// A pictureUrl as stored: an http or https URL (`None`: empty).
pub fn picture_url(v: String) -> AppResult<Option<String>> {
    match text(Some(v), MAX_URL, "pictureUrl")? {
        Some(url) => {
            crate::normalise::web_url(&url, "pictureUrl")?;
            Ok(Some(url))
        }
        None => Ok(None),
    }
}

/// summaryFriendData as stored: any JSON up to [`MAX_FRIEND_DATA`] bytes without NUL
/// (`None`: JSON null).
pub fn summary_friend_data(v: Value) -> AppResult<Option<Value>> {
    if v.is_null() {
        return Ok(None);
    }
    crate::normalise::json_without_nul(&v, "summaryFriendData")?;
    let size = serde_json::to_vec(&v)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_FRIEND_DATA {
        return Err(AppError::bad_input(format!(
            "summaryFriendData must be at most {MAX_FRIEND_DATA} bytes of JSON"
        )));
    }
    Ok(Some(v))
}

/// A parentProfileId: a UUID.
pub fn parent_profile_id(v: &str) -> AppResult<Uuid> {
    super::parse_profile_id(v, "parentProfileId")
}

impl ProfileFields {
    /// Checks every field; the first problem wins.
    pub fn validate(self) -> AppResult<ValidFields> {
        let contact_email = match self.contact_email {
            Some(e) => contact_email(e)?,
            None => None,
        };
        let time_zone_offset = self.time_zone_offset.map(time_zone_offset).transpose()?;
        let summary_friend_data = match self.summary_friend_data {
            Some(v) => summary_friend_data(v)?,
            None => None,
        };
        let parent_profile_id = match self.parent_profile_id {
            Some(p) => Some(parent_profile_id(&p)?),
            None => None,
        };
        Ok(ValidFields {
            user_name: self.user_name.map(user_name).transpose()?.flatten(),
            contact_email,
            country_code: self.country_code.map(country_code).transpose()?.flatten(),
            language_code: self.language_code.map(language_code).transpose()?.flatten(),
            time_zone_offset,
            picture_url: self.picture_url.map(picture_url).transpose()?.flatten(),
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
