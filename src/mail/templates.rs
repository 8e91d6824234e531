//! Email templates: minijinja sources rendered with the message's variables, and the built-in
//! templates for every kind of mail usersvc sends.
//!
//! Values are HTML-escaped in HTML bodies only (text bodies and subjects are plain text).
//! Undefined variables render as nothing, so a template written for more variables than a
//! mail has still renders. Rendering is bounded — fuel limits the work, and each output is
//! capped — so no template can hang or flood the worker, and templates see nothing but their
//! variables (no file or network access).

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

/// Longest rendered subject, in characters.
pub const MAX_SUBJECT: usize = 200;
/// Largest rendered body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// Work a template may do (minijinja fuel units).
const FUEL: u64 = 50_000;

/// A template's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{part}: {message}")]
pub struct TemplateError {
    /// `subject`, `text` or `html`.
    pub part: &'static str,
    /// What is wrong (and where).
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

fn err(part: &'static str, e: &minijinja::Error) -> TemplateError {
    let message = match (e.detail(), e.line()) {
        (Some(d), Some(l)) => format!("{} on line {l}: {d}", e.kind()),
        (Some(d), None) => format!("{}: {d}", e.kind()),
        (None, Some(l)) => format!("{} on line {l}", e.kind()),
        (None, None) => e.kind().to_string(),
    };
    TemplateError { part, message }
}

fn parts(src: &TemplateSource) -> Vec<(&'static str, &'static str, &str)> {
    let mut v = vec![
        ("subject", "subject.txt", src.subject.as_str()),
        ("text", "body.txt", src.text.as_str()),
    ];
    if let Some(h) = &src.html {
        v.push(("html", "body.html", h.as_str()));
    }
    v
}

/// Checks a template's syntax (when it is stored, or when a caller sends an ad-hoc one).
pub fn check(src: &TemplateSource) -> Result<(), TemplateError> {
    let env = environment();
    for (part, name, source) in parts(src) {
        env.template_from_named_str(name, source)
            .map_err(|e| err(part, &e))?;
    }
    Ok(())
}

/// Renders a template with `vars` (a JSON object).
pub fn render(src: &TemplateSource, vars: &Value) -> Result<Rendered, TemplateError> {
    let env = environment();
    let ctx = minijinja::Value::from(minijinja::value::Serde(vars));
    let one =
        |part: &'static str, name: &'static str, source: &str| -> Result<String, TemplateError> {
            let out = env
                .template_from_named_str(name, source)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| err(part, &e))?;
            if out.len() > MAX_BODY {
                return Err(TemplateError {
                    part,
                    message: format!("renders to more than {MAX_BODY} bytes"),
                });
            }
            Ok(out)
        };
    let subject = one("subject", "subject.txt", &src.subject)?;
    // One line, whatever the template or its variables contain.
    let subject: String = subject
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_SUBJECT)
        .collect();
    Ok(Rendered {
        subject,
        text: one("text", "body.txt", &src.text)?,
        html: match &src.html {
            Some(h) => Some(one("html", "body.html", h)?),
            None => None,
        },
    })
}

/// The built-in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// Reset link for the EMAIL identity.
    PasswordResetEmail,
    /// Reset link for the UNIVERSAL_ID identity, sent to the contact email.
    PasswordResetUniversalId,
    /// Welcome mail.
    AccountCreated,
    /// Confirmation of a self-service deletion.
    AccountDeleted,
    /// Notice of a password change.
    PasswordChanged,
    /// Notice to an old email address that it no longer logs in to the account.
    IdentityChanged,
}

impl Builtin {
    /// Every built-in template.
    pub const ALL: [Builtin; 6] = [
        Builtin::PasswordResetEmail,
        Builtin::PasswordResetUniversalId,
        Builtin::AccountCreated,
        Builtin::AccountDeleted,
        Builtin::PasswordChanged,
        Builtin::IdentityChanged,
    ];

    /// The reserved id of an app template that replaces this built-in one for that app
    /// (`usersvc template put --app ID --id builtin.password-changed …`).
    pub fn override_id(self) -> &'static str {
        match self {
            Builtin::PasswordResetEmail => "builtin.password-reset-email",
            Builtin::PasswordResetUniversalId => "builtin.password-reset-universal-id",
            Builtin::AccountCreated => "builtin.account-created",
            Builtin::AccountDeleted => "builtin.account-deleted",
            Builtin::PasswordChanged => "builtin.password-changed",
            Builtin::IdentityChanged => "builtin.identity-changed",
        }
    }
}

const HTML_HEAD: &str =
    "<!doctype html><html><body style=\"font-family:sans-serif;color:#222;max-width:36rem\">";
const HTML_FOOT: &str =
    "<p style=\"color:#777;font-size:small\">Sent by {{ appName }}.</p></body></html>";

fn html(body: &str) -> Option<String> {
    Some(format!("{HTML_HEAD}{body}{HTML_FOOT}"))
}

/// A built-in template.
pub fn builtin(b: Builtin) -> TemplateSource {
    match b {
        Builtin::PasswordResetEmail | Builtin::PasswordResetUniversalId => {
            let which = if b == Builtin::PasswordResetUniversalId {
                "the password of your {{ appName }} account{% if userName %} ({{ userName }}){% endif %}"
            } else {
                "the password of your {{ appName }} account ({{ userEmail }})"
            };
            TemplateSource {
                subject: "Reset your {{ appName }} password".into(),
                text: format!(
                    "Hello{{% if userName %}} {{{{ userName }}}}{{% endif %}},\n\n\
                     Someone asked to reset {which}.\n\
                     To choose a new password, open this link:\n\n{{{{ webUrl }}}}\n\n\
                     The link works once and expires at {{{{ expiresAt }}}} (in {{{{ tokenTtlInMinutes }}}} minutes).\n\
                     If this was not you, ignore this mail: your password stays as it is.\n"
                ),
                html: html(&format!(
                    "<p>Hello{{% if userName %}} {{{{ userName }}}}{{% endif %}},</p>\
                     <p>Someone asked to reset {which}.</p>\
                     <p><a href=\"{{{{ webUrl }}}}\" style=\"display:inline-block;padding:.6rem 1rem;background:#2456c8;color:#fff;text-decoration:none;border-radius:4px\">Choose a new password</a></p>\
                     <p>Or copy this link: {{{{ webUrl }}}}</p>\
                     <p>The link works once and expires at {{{{ expiresAt }}}} (in {{{{ tokenTtlInMinutes }}}} minutes). \
                     If this was not you, ignore this mail: your password stays as it is.</p>"
                )),
            }
        }
        Builtin::AccountCreated => TemplateSource {
            subject: "Welcome to {{ appName }}".into(),
            text: "Hello{% if userName %} {{ userName }}{% endif %},\n\nyour {{ appName }} account is ready.\n".into(),
            html: html("<p>Hello{% if userName %} {{ userName }}{% endif %},</p><p>your {{ appName }} account is ready.</p>"),
        },
        Builtin::AccountDeleted => TemplateSource {
            subject: "Your {{ appName }} account was deleted".into(),
            text: "Hello{% if userName %} {{ userName }}{% endif %},\n\n\
                   your {{ appName }} account and everything that belonged to it have been deleted, as you asked.\n"
                .into(),
            html: html(
                "<p>Hello{% if userName %} {{ userName }}{% endif %},</p>\
                 <p>your {{ appName }} account and everything that belonged to it have been deleted, as you asked.</p>",
            ),
        },
        Builtin::PasswordChanged => TemplateSource {
            subject: "Your {{ appName }} password was changed".into(),
            text: "Hello{% if userName %} {{ userName }}{% endif %},\n\n\
                   the password of your {{ appName }} account was just changed. \
                   If this was not you, contact {{ appName }} support at once.\n"
                .into(),
            html: html(
                "<p>Hello{% if userName %} {{ userName }}{% endif %},</p>\
                 <p>the password of your {{ appName }} account was just changed. \
                 If this was not you, contact {{ appName }} support at once.</p>",
            ),
        },
        Builtin::IdentityChanged => TemplateSource {
            subject: "Your {{ appName }} sign-in email was changed".into(),
            text: "Hello{% if userName %} {{ userName }}{% endif %},\n\n\
                   {{ userEmail }} is no longer the email address you sign in to {{ appName }} with: \
                   it was just replaced by another address. Your password stays as it was.\n\
                   If this was not you, contact {{ appName }} support at once.\n"
                .into(),
            html: html(
                "<p>Hello{% if userName %} {{ userName }}{% endif %},</p>\
                 <p>{{ userEmail }} is no longer the email address you sign in to {{ appName }} with: \
                 it was just replaced by another address. Your password stays as it was.</p>\
                 <p>If this was not you, contact {{ appName }} support at once.</p>",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn html_bodies_escape_values_and_text_bodies_do_not() {
        let src = TemplateSource {
            subject: "Hi {{ name }}\r\nBcc: evil@example.com".into(),
            text: "Hello {{ name }} {{ missing }}!".into(),
            html: Some("<p>{{ name }}</p>".into()),
        };
        let r = render(&src, &json!({ "name": "<script>x</script>" })).unwrap();
        assert_eq!(r.text, "Hello <script>x</script> !");
        assert_eq!(
            r.html.unwrap(),
            "<p>&lt;script&gt;x&lt;&#x2f;script&gt;</p>"
        );
        assert!(
            !r.subject.contains('\n') && !r.subject.contains('\r'),
            "{}",
            r.subject
        );
    }

    #[test]
    fn runaway_templates_stop() {
        let src = TemplateSource {
            subject: "x".into(),
            text:
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
            html: None,
        };
        assert!(render(&src, &json!({})).is_err());
    }

    #[test]
    fn syntax_errors_name_the_part_and_line() {
        let src = TemplateSource {
            subject: "ok".into(),
            text: "line\n{{ broken".into(),
            html: None,
        };
        let e = check(&src).unwrap_err();
        assert_eq!(e.part, "text");
        assert!(e.message.contains("line 2"), "{e}");
    }

    #[test]
    fn override_ids_are_distinct_valid_template_ids() {
        let ids: std::collections::BTreeSet<&str> =
            Builtin::ALL.iter().map(|b| b.override_id()).collect();
        assert_eq!(ids.len(), Builtin::ALL.len());
        for id in ids {
            assert!(id.starts_with("builtin.") && id.len() <= 128, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
                "{id}"
            );
        }
    }

    #[test]
    fn builtins_render_every_variable() {
        let vars = json!({
            "appName": "Game", "appId": "g", "profileId": "p", "userName": "Ann",
            "userEmail": "ann@example.com", "webUrl": "https://x.example/self-service/reset-password?token=abc",
            "expiresAt": "2026-01-01T00:00:00Z", "tokenTtlInMinutes": 60,
        });
        for b in Builtin::ALL {
            let src = builtin(b);
            check(&src).unwrap();
            let r = render(&src, &vars).unwrap();
            assert!(r.subject.contains("Game"), "{b:?}");
            assert!(r.text.contains("Ann"), "{b:?}");
            if matches!(
                b,
                Builtin::PasswordResetEmail | Builtin::PasswordResetUniversalId
            ) {
                assert!(
                    r.text.contains("token=abc") && r.text.contains("60 minutes"),
                    "{b:?}"
                );
                assert!(r.html.unwrap().contains("token=abc"));
            }
        }
    }
}
