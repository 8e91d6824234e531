//! Sending: lettre's async SMTP transport for `USERSVC_SMTP_URL`, or `.eml` files under the data
//! dir when no SMTP server is configured. Messages are built with lettre's typed builder only.
//!
//! URL forms (lettre's own syntax): `smtp://host:port` (plain, for a local relay or catcher),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS required), `…?tls=opportunistic`
//! (STARTTLS when offered), `smtps://user:pass@host:465` (implicit TLS). Credentials are
//! percent-decoded. The configured timeout bounds each command *and* the whole send (lettre
//! alone bounds only the connect), so a dead, silent or slow server costs a worker at most that
//! long and never touches a request. Each send uses its own connection: a send cut off by the
//! deadline drops its connection instead of handing a half-spoken session back to a pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::templates::Rendered;

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// Unique id: the Message-ID's left part and the file name of file mail.
    pub message_id: String,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: Mailbox,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    /// Recorded in `X-Usersvc-Categories`.
    pub categories: Vec<String>,
    pub content: Rendered,
    /// Who gets this message when it is not everyone the headers name (the envelope): the
    /// account alone for the mail with its link, or the cc/bcc recipients for their copy.
    pub deliver_to: Option<Vec<lettre::Address>>,
}

/// A failed send. The message never contains the mail's body (it may hold a link).
#[derive(Debug, Clone)]
pub struct SendError {
    /// Retrying will not help (a 5xx reply, a message that cannot be built).
    pub permanent: bool,
    pub message: String,
}

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server, and the deadline for one whole send.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Duration),
    /// `.eml` files in a folder.
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(..) => write!(f, "Transport::Smtp"),
            Transport::Files(p) => write!(f, "Transport::Files({})", p.display()),
        }
    }
}

#[derive(Clone)]
struct Categories(String);

impl Header for Categories {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Usersvc-Categories")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Categories(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Builds the MIME message.
pub fn build(mail: &OutgoingMail) -> Result<Message, SendError> {
    let permanent = |e: &dyn std::fmt::Display| SendError {
        permanent: true,
        message: format!("building the message: {e}"),
    };
    let mut b = Message::builder()
        .from(mail.from.clone())
        .to(mail.to.clone())
        .subject(mail.content.subject.clone())
        .message_id(Some(format!("<{}@usersvc>", mail.message_id)));
    if let Some(r) = &mail.reply_to {
        b = b.reply_to(r.clone());
    }
    for c in &mail.cc {
        b = b.cc(c.clone());
    }
    for c in &mail.bcc {
        b = b.bcc(c.clone());
    }
    let categories: Vec<&str> = mail
        .categories
        .iter()
        .map(String::as_str)
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .collect();
    if !categories.is_empty() {
        b = b.header(Categories(categories.join(",")));
    }
    if let Some(to) = &mail.deliver_to {
        let envelope = lettre::address::Envelope::new(Some(mail.from.email.clone()), to.clone())
            .map_err(|e| permanent(&e))?;
        b = b.envelope(envelope);
    }
    let text = mail.content.text.clone();
    let msg = match &mail.content.html {
        Some(html) => b.multipart(MultiPart::alternative_plain_html(text, html.clone())),
        None => b.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        ),
    };
    msg.map_err(|e| permanent(&e))
}

impl Transport {
    /// An SMTP transport for `smtp_url`, or files under `mail_dir` when there is none.
    pub fn from_url(
        smtp_url: Option<&str>,
        mail_dir: &Path,
        timeout: Duration,
    ) -> Result<Transport, String> {
        match smtp_url {
            None => Ok(Transport::Files(mail_dir.to_path_buf())),
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // Never echo the URL: it may hold a password.
                    .map_err(|e| {
                        format!(
                            "not a usable SMTP URL ({})",
                            e.to_string().replace(url, "…")
                        )
                    })?;
                Ok(Transport::Smtp(
                    builder.timeout(Some(timeout)).build(),
                    timeout,
                ))
            }
        }
    }

    /// Sends one message.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let message = build(mail)?;
        match self {
            Transport::Smtp(smtp, deadline) => {
                match tokio::time::timeout(*deadline, smtp.send(message)).await {
                    Ok(sent) => sent.map(drop).map_err(|e| SendError {
                        permanent: e.is_permanent(),
                        message: format!("SMTP: {e}"),
                    }),
                    Err(_) => Err(SendError {
                        permanent: false,
                        message: format!(
                            "SMTP: no complete answer within {} ms",
                            deadline.as_millis()
                        ),
                    }),
                }
            }
            Transport::Files(dir) => {
                let io = |e: std::io::Error| SendError {
                    permanent: false,
                    message: format!("writing mail file: {e}"),
                };
                tokio::fs::create_dir_all(dir).await.map_err(io)?;
                let name = format!(
                    "{}.eml",
                    mail.message_id
                        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(io)?;
                tokio::fs::rename(&tmp, dir.join(name)).await.map_err(io)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::address::mailbox;

    fn sample() -> OutgoingMail {
        OutgoingMail {
            message_id: "0198-abc".into(),
            from: mailbox("from@example.com", Some("Sender")).unwrap(),
            reply_to: Some(mailbox("reply@example.com", None).unwrap()),
            to: mailbox("to@example.com", None).unwrap(),
            cc: vec![mailbox("cc@example.com", None).unwrap()],
            bcc: vec![mailbox("bcc@example.com", None).unwrap()],
            categories: vec!["reset".into(), "bad cat".into()],
            content: Rendered {
                subject: "Hi".into(),
                text: "link: https://x.example/?token=abc".into(),
                html: Some("<p>hi</p>".into()),
            },
            deliver_to: None,
        }
    }

    #[test]
    fn messages_carry_every_header_but_bcc() {
        let raw = String::from_utf8(build(&sample()).unwrap().formatted()).unwrap();
        assert!(raw.contains("Reply-To: reply@example.com"), "{raw}");
        assert!(raw.contains("Cc: cc@example.com"));
        assert!(!raw.contains("bcc@example.com"));
        assert!(
            raw.contains("X-Usersvc-Categories: reset\r\n"),
            "invalid categories are left out"
        );
        assert!(raw.contains("Message-ID: <0198-abc@usersvc>"));
        assert!(raw.contains("multipart/alternative"));
    }

    #[test]
    fn an_explicit_envelope_decides_who_gets_a_message() {
        let mut mail = sample();
        assert_eq!(build(&mail).unwrap().envelope().to().len(), 3);
        mail.deliver_to = Some(vec!["to@example.com".parse().unwrap()]);
        let msg = build(&mail).unwrap();
        let to: Vec<String> = msg
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(to, ["to@example.com"]);
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(
            raw.contains("Cc: cc@example.com"),
            "the headers stay: {raw}"
        );
    }

    #[tokio::test]
    async fn file_mail_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transport::from_url(None, dir.path(), Duration::from_secs(1)).unwrap();
        t.send(&sample()).await.unwrap();
        let raw = std::fs::read_to_string(dir.path().join("0198-abc.eml")).unwrap();
        assert!(raw.contains("Subject: Hi"));
    }

    #[tokio::test]
    async fn a_dead_or_silent_server_fails_within_the_timeout() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let t = Transport::from_url(
            Some(&format!("smtp://127.0.0.1:{port}")),
            Path::new("/nonexistent"),
            Duration::from_millis(500),
        )
        .unwrap();
        let e = t.send(&sample()).await.unwrap_err();
        assert!(!e.permanent, "{}", e.message);

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s); // accept and never answer
            }
        });
        let t = Transport::from_url(
            Some(&format!("smtp://127.0.0.1:{port}")),
            Path::new("/nonexistent"),
            Duration::from_millis(500),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let e = t.send(&sample()).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(!e.permanent);
        assert!(!e.message.contains("token=abc"));
    }

    #[tokio::test]
    async fn smtp_urls() {
        for ok in [
            "smtp://localhost:1025",
            "smtp://u:p%40ss@mail.example:587?tls=required",
            "smtps://u:p@mail.example:465",
            "smtp://mail.example:587?tls=opportunistic",
        ] {
            assert!(
                Transport::from_url(Some(ok), Path::new("."), Duration::from_secs(1)).is_ok(),
                "{ok}"
            );
        }
        let e = Transport::from_url(
            Some("http://u:secret@x"),
            Path::new("."),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
