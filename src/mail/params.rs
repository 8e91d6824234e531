//! brainCloud's `serviceParams` for reset mails: checked strictly when the call is made (so a
//! bad sender is the caller's typed error, not a failed delivery later), then stored with the
//! queued message. Nothing here is a secret.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{address, templates};
use crate::error::{AppError, AppResult, MailboxField};
use crate::normalise;

/// Most cc or bcc recipients, and most categories.
pub const MAX_LIST: usize = 10;
/// Largest ad-hoc body, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest set of template variables, serialised, in bytes.
pub const MAX_VARIABLES: usize = 16 * 1024;

/// The parameters as a caller sent them.
#[derive(Debug, Clone, Default)]
pub struct ServiceParams {
    pub template_id: Option<String>,
    pub dynamic_data: Option<Value>,
    pub substitutions: Option<Value>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub use_html: Option<bool>,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub reply_to_address: Option<String>,
    pub reply_to_name: Option<String>,
    pub cc: Option<Vec<String>>,
    pub bcc: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
}

/// The checked parameters, as stored with a queued message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct StoredParams {
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub reply_to_address: Option<String>,
    pub reply_to_name: Option<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub categories: Vec<String>,
    /// Ad-hoc subject (a template), used when no templateId is given.
    pub subject: Option<String>,
    /// Ad-hoc body (a template), used when no templateId is given.
    pub body: Option<String>,
    /// Whether the ad-hoc body is HTML.
    pub use_html: bool,
    /// The caller's template variables: substitutions, overridden by dynamicData.
    pub variables: Map<String, Value>,
}

fn object(v: Option<Value>, field: &str) -> AppResult<Map<String, Value>> {
    if let Some(v) = &v {
        normalise::json_without_nul(v, &format!("serviceParams.{field}"))?;
    }
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(AppError::bad_input(format!(
            "serviceParams.{field} must be a JSON object"
        ))),
    }
}

fn one_line(v: Option<String>, max: usize, field: &str) -> AppResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) => {
            normalise::at_most(&s, max, field)?;
            normalise::visible(&s, field)?;
            Ok(Some(s))
        }
    }
}

fn addresses(list: Option<Vec<String>>, field: &'static str) -> AppResult<Vec<String>> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_LIST {
        return Err(AppError::bad_input(format!(
            "{field} takes at most {MAX_LIST} addresses"
        )));
    }
    list.iter()
        .map(|a| {
            address::mailbox(a, None)
                .map(|m| m.email.to_string())
                .map_err(|_| AppError::EmailNotValid(field))
        })
        .collect()
}

/// Checks a caller's parameters; returns the template id (still to be looked up) and what to
/// store.
pub fn check(p: ServiceParams) -> AppResult<(Option<String>, StoredParams)> {
    let template_id = match p.template_id {
        Some(t)
            if t.is_empty()
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            return Err(AppError::InvalidTemplateId(t.chars().take(128).collect()));
        }
        t => t,
    };
    let from_address = match &p.from_address {
        Some(a) => Some(
            address::mailbox(a, None)
                .map_err(|_| AppError::InvalidMailbox(MailboxField::FromAddress))?
                .email
                .to_string(),
        ),
        None => None,
    };
    if let Some(n) = &p.from_name {
        address::display_name(n).map_err(|_| AppError::InvalidMailbox(MailboxField::FromName))?;
    }
    let reply_to_address = match &p.reply_to_address {
        Some(a) => Some(
            address::mailbox(a, None)
                .map_err(|_| AppError::InvalidMailbox(MailboxField::ReplyToAddress))?
                .email
                .to_string(),
        ),
        None => None,
    };
    if let Some(n) = &p.reply_to_name {
        address::display_name(n)
            .map_err(|_| AppError::InvalidMailbox(MailboxField::ReplyToName))?;
    }
    let categories = p.categories.unwrap_or_default();
    if categories.len() > MAX_LIST
        || categories.iter().any(|c| {
            c.is_empty()
                || c.len() > 64
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
    {
        return Err(AppError::bad_input(format!(
            "serviceParams.categories takes at most {MAX_LIST} names of 1 to 64 letters, digits, '.', '_' or '-'"
        )));
    }
    let subject = one_line(p.subject, 200, "serviceParams.subject")?;
    let body = match p.body {
        Some(b) if b.len() > MAX_BODY => {
            return Err(AppError::bad_input(format!(
                "serviceParams.body must be at most {MAX_BODY} bytes"
            )));
        }
        b => b,
    };
    let use_html = p.use_html.unwrap_or(false);
    if template_id.is_none() && (subject.is_some() || body.is_some()) {
        let source = templates::TemplateSource {
            subject: subject.clone().unwrap_or_default(),
            text: if use_html {
                String::new()
            } else {
                body.clone().unwrap_or_default()
            },
            html: if use_html { body.clone() } else { None },
        };
        templates::check(&source)
            .map_err(|e| AppError::bad_input(format!("serviceParams: {e}")))?;
    }
    let mut variables = object(p.substitutions, "substitutions")?;
    variables.extend(object(p.dynamic_data, "dynamicData")?);
    if serde_json::to_vec(&variables)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > MAX_VARIABLES
    {
        return Err(AppError::bad_input(format!(
            "serviceParams.dynamicData and substitutions must be at most {MAX_VARIABLES} bytes of JSON"
        )));
    }
    Ok((
        template_id,
        StoredParams {
            from_address,
            from_name: p.from_name,
            reply_to_address,
            reply_to_name: p.reply_to_name,
            cc: addresses(p.cc, "serviceParams.cc")?,
            bcc: addresses(p.bcc, "serviceParams.bcc")?,
            categories,
            subject,
            body,
            use_html,
            variables,
        },
    ))
}
