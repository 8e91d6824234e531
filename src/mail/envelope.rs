//! Who a message is from and who gets it. One function, [`compose`], decides it both when a
//! call asks for a message and when the worker sends it, with the same parser, so a message
//! the worker would refuse is refused to the caller instead, with the contract's code.
//!
//! The sender is the caller's `fromAddress`, else the app's `mail.from`, else the server's
//! `USERSVC_MAIL_FROM`, under the caller's `fromName` when one is given. The app's and the
//! server's senders were checked when they were configured (they may live on a single-label
//! host such as `localhost`); a caller's name is put in front of that address as it is, never
//! by parsing the address again under the stricter rules for caller-supplied addresses.

use lettre::message::Mailbox;

use super::address::{self, AddressError};
use super::params::StoredParams;
use crate::error::{AppError, MailboxField};

/// Sender, reply-to and recipients of one message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// The account's own address: the only one that gets a live link.
    pub to: Mailbox,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
}

/// Which part of a message cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The app's `mail.from` setting.
    AppFrom,
    FromAddress,
    FromName,
    ReplyToAddress,
    ReplyToName,
    /// The account's address.
    Recipient,
    Cc,
    Bcc,
}

impl Refusal {
    /// Why, for the outbox record and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::AppFrom => "the app's mail.from is not a valid sender",
            Refusal::FromAddress => "fromAddress is not a valid email address",
            Refusal::FromName => "fromName is not an acceptable display name",
            Refusal::ReplyToAddress => "replyToAddress is not a valid email address",
            Refusal::ReplyToName => "replyToName is not an acceptable display name",
            Refusal::Recipient => "the recipient is not a valid email address",
            Refusal::Cc => "a cc address is not a valid email address",
            Refusal::Bcc => "a bcc address is not a valid email address",
        }
    }

    /// The caller's error.
    pub fn into_error(self) -> AppError {
        match self {
            Refusal::AppFrom => AppError::InvalidMailbox(MailboxField::AppFrom),
            Refusal::FromAddress => AppError::InvalidMailbox(MailboxField::FromAddress),
            Refusal::FromName => AppError::InvalidMailbox(MailboxField::FromName),
            Refusal::ReplyToAddress => AppError::InvalidMailbox(MailboxField::ReplyToAddress),
            Refusal::ReplyToName => AppError::InvalidMailbox(MailboxField::ReplyToName),
            Refusal::Recipient => AppError::EmailNotValid("the recipient address"),
            Refusal::Cc => AppError::EmailNotValid("serviceParams.cc"),
            Refusal::Bcc => AppError::EmailNotValid("serviceParams.bcc"),
        }
    }
}

fn caller_mailbox(
    address: &str,
    name: Option<&str>,
    bad_address: Refusal,
    bad_name: Refusal,
) -> Result<Mailbox, Refusal> {
    address::mailbox(address, name).map_err(|e| match e {
        AddressError::Address => bad_address,
        AddressError::Name => bad_name,
    })
}

/// The envelope of a message to `recipient` with the caller's `params`, sent for an app whose
/// `mail.from` is `app_from`, by a server whose default sender is `default_from`.
pub fn compose(
    default_from: &Mailbox,
    app_from: Option<&str>,
    params: &StoredParams,
    recipient: &str,
) -> Result<Envelope, Refusal> {
    // The app's or the server's sender, when the caller names no address of its own.
    let base = || match app_from {
        Some(s) => address::parse_from_setting(s).map_err(|_| Refusal::AppFrom),
        None => Ok(default_from.clone()),
    };
    let from = match (&params.from_address, &params.from_name) {
        (Some(a), name) => {
            caller_mailbox(a, name.as_deref(), Refusal::FromAddress, Refusal::FromName)?
        }
        (None, Some(name)) => {
            address::display_name(name).map_err(|_| Refusal::FromName)?;
            Mailbox::new(Some(name.clone()), base()?.email)
        }
        (None, None) => base()?,
    };
    let reply_to = match &params.reply_to_address {
        Some(a) => Some(caller_mailbox(
            a,
            params.reply_to_name.as_deref(),
            Refusal::ReplyToAddress,
            Refusal::ReplyToName,
        )?),
        None => {
            if let Some(n) = &params.reply_to_name {
                address::display_name(n).map_err(|_| Refusal::ReplyToName)?;
            }
            None
        }
    };
    let to = address::mailbox(recipient, None).map_err(|_| Refusal::Recipient)?;
    let list = |v: &[String], refusal: Refusal| -> Result<Vec<Mailbox>, Refusal> {
        v.iter()
            .map(|a| address::mailbox(a, None).map_err(|_| refusal))
            .collect()
    };
    Ok(Envelope {
        from,
        reply_to,
        to,
        cc: list(&params.cc, Refusal::Cc)?,
        bcc: list(&params.bcc, Refusal::Bcc)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn localhost_default() -> Mailbox {
        address::parse_from_setting("usersvc <no-reply@localhost>").unwrap()
    }

    #[test]
    fn a_name_alone_keeps_a_single_label_default_address() {
        // lettre itself takes `localhost` as a domain; only the stricter check for
        // caller-supplied addresses refuses it, and it must not be applied to the server's own.
        assert!("no-reply@localhost".parse::<lettre::Address>().is_ok());
        assert!(address::mailbox("no-reply@localhost", Some("Support Team")).is_err());
        let params = StoredParams {
            from_name: Some("Support Team".into()),
            ..StoredParams::default()
        };
        let e = compose(&localhost_default(), None, &params, "ann@example.com").unwrap();
        assert_eq!(e.from.name.as_deref(), Some("Support Team"));
        assert_eq!(e.from.email.to_string(), "no-reply@localhost");
    }

    #[test]
    fn every_part_is_refused_with_its_own_reason() {
        let d = localhost_default();
        let with = |f: &dyn Fn(&mut StoredParams)| {
            let mut p = StoredParams::default();
            f(&mut p);
            compose(&d, None, &p, "ann@example.com").unwrap_err()
        };
        assert_eq!(
            with(&|p| p.from_address = Some("x".into())),
            Refusal::FromAddress
        );
        assert_eq!(
            with(&|p| p.from_name = Some("a\nb".into())),
            Refusal::FromName
        );
        assert_eq!(
            with(&|p| p.reply_to_address = Some("x@".into())),
            Refusal::ReplyToAddress
        );
        assert_eq!(
            with(&|p| p.reply_to_name = Some(String::new())),
            Refusal::ReplyToName
        );
        assert_eq!(with(&|p| p.cc = vec!["nope".into()]), Refusal::Cc);
        assert_eq!(with(&|p| p.bcc = vec!["nope".into()]), Refusal::Bcc);
        let p = StoredParams::default();
        assert_eq!(
            compose(&d, Some("Game <not an address>"), &p, "ann@example.com").unwrap_err(),
            Refusal::AppFrom
        );
        assert_eq!(
            compose(&d, None, &p, "ann@localhost").unwrap_err(),
            Refusal::Recipient
        );
        let app = compose(&d, Some("Game <play@game.example>"), &p, "ann@example.com").unwrap();
        assert_eq!(app.from.to_string(), "Game <play@game.example>");
    }
}
