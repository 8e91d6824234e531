//! The operator's verbs on apps, their email templates and the outbox.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::failure;
use crate::apps::{self, templates};
use crate::db::Db;

#[derive(Subcommand, Debug)]
pub(super) enum AppCommand {
    /// Create an app.
    Create {
        /// The app id (brainCloud appId): 1 to 64 letters, digits, '.', '_' or '-'.
        #[arg(long)]
        id: String,
        /// A display name.
        #[arg(long)]
        name: String,
        /// The parent app (shared accounts), at most five levels deep.
        #[arg(long)]
        parent: Option<String>,
    },
    /// List apps.
    List,
    /// Show an app's settings.
    Show {
        /// The app id.
        id: String,
    },
    /// Change a setting (run `usersvc app set --help` for the keys).
    #[command(after_help = settings_help())]
    Set {
        /// The app id.
        id: String,
        /// The setting.
        key: String,
        /// The new value.
        value: String,
    },
    /// Delete an app with its templates, audit trail and mail history; refused while it has
    /// profiles or child apps.
    Delete {
        /// The app id.
        id: String,
    },
}

fn settings_help() -> String {
    let mut s = String::from("Settings:\n");
    for (k, what) in apps::SETTINGS {
        s.push_str(&format!("  {k:<26} {what}\n"));
    }
    s
}

#[derive(Subcommand, Debug)]
pub(super) enum TemplateCommand {
    /// Create or update a template (minijinja syntax: {{ webUrl }}, {{ appName }}, …).
    /// Parts not given keep their stored value.
    Put {
        /// The app.
        #[arg(long)]
        app: String,
        /// The template id (1 to 128 letters, digits, '.', '_' or '-').
        #[arg(long)]
        id: String,
        /// The subject line.
        #[arg(long)]
        subject: Option<String>,
        /// A file with the plain-text body.
        #[arg(long)]
        text: Option<PathBuf>,
        /// A file with the HTML body.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// List an app's templates.
    List {
        /// The app.
        #[arg(long)]
        app: String,
    },
    /// Show a template: its subject, text body and HTML body.
    Show {
        /// The app.
        #[arg(long)]
        app: String,
        /// The template id.
        #[arg(long)]
        id: String,
    },
    /// Delete a template (mail already queued with it fails, saying why).
    Delete {
        /// The app.
        #[arg(long)]
        app: String,
        /// The template id.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum MailCommand {
    /// Messages per state, the one waiting longest, and the latest failures with their reason.
    Status {
        /// How many recent failures to show.
        #[arg(long, default_value_t = 5)]
        errors: i64,
    },
}

pub(super) async fn app(command: AppCommand, db: Db) -> anyhow::Result<()> {
    let pool = &mut db.pool();
    match command {
        AppCommand::Create { id, name, parent } => {
            let app = apps::create(pool, &id, &name, parent.as_deref())
                .await
                .map_err(failure)?;
            println!("created app {}", app.app_id);
        }
        AppCommand::List => {
            for app in apps::list(pool).await.map_err(failure)? {
                let parent = app
                    .parent_app_id
                    .map(|p| format!(" (child of {p})"))
                    .unwrap_or_default();
                println!("{}\t{}{}", app.app_id, app.name, parent);
            }
        }
        AppCommand::Show { id } => {
            let app = apps::find(pool, &id).await.map_err(failure)?;
            for (k, v) in apps::describe(&app) {
                println!("{k} = {v}");
            }
        }
        AppCommand::Set { id, key, value } => {
            let app = apps::set(pool, &id, &key, &value).await.map_err(failure)?;
            let shown = apps::describe(&app).into_iter().find(|(k, _)| *k == key);
            if let Some((k, v)) = shown {
                println!("{} {k} = {v}", app.app_id);
            }
        }
        AppCommand::Delete { id } => {
            apps::delete(pool, &id).await.map_err(failure)?;
            println!("deleted app {id}");
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

pub(super) async fn template(command: TemplateCommand, db: Db) -> anyhow::Result<()> {
    let pool = &mut db.pool();
    match command {
        TemplateCommand::Put {
            app,
            id,
            subject,
            text,
            html,
        } => {
            let change = templates::TemplateChange {
                subject,
                text: text.as_deref().map(read).transpose()?,
                html: html.as_deref().map(read).transpose()?,
            };
            templates::put(pool, &app, &id, change)
                .await
                .map_err(failure)?;
            println!("template {id} of app {app} saved");
        }
        TemplateCommand::List { app } => {
            for t in templates::list(pool, &app).await.map_err(failure)? {
                let parts = if t.body_html.is_some() {
                    "text+html"
                } else {
                    "text"
                };
                println!("{}\t{}\t{}", t.template_id, parts, t.subject);
            }
        }
        TemplateCommand::Show { app, id } => {
            let t = templates::show(pool, &app, &id).await.map_err(failure)?;
            println!("subject: {}", t.subject);
            println!("updated: {}", t.updated_at.to_rfc3339());
            println!("--- text\n{}", t.body_text);
            if let Some(html) = t.body_html {
                println!("--- html\n{html}");
            }
        }
        TemplateCommand::Delete { app, id } => {
            templates::delete(pool, &app, &id).await.map_err(failure)?;
            println!("template {id} of app {app} deleted");
        }
    }
    Ok(())
}

pub(super) async fn mail(command: MailCommand, db: Db) -> anyhow::Result<()> {
    let MailCommand::Status { errors } = command;
    let status = crate::mail::status::status(&mut db.pool(), errors.clamp(0, 100))
        .await
        .map_err(failure)?;
    println!("messages by state:");
    if status.counts.is_empty() {
        println!("  (none)");
    }
    for (state, n) in &status.counts {
        println!("  {state:<8} {n}");
    }
    match &status.oldest_queued {
        Some(m) => println!(
            "oldest queued: {} ({} of app {}) since {}, {} attempt(s), next at {}",
            m.message_id,
            m.kind,
            m.app_id,
            m.created_at.to_rfc3339(),
            m.attempts,
            m.next_attempt_at.to_rfc3339()
        ),
        None => println!("oldest queued: none"),
    }
    if !status.recent_errors.is_empty() {
        println!("latest failures:");
    }
    for m in &status.recent_errors {
        println!(
            "  {} {} ({} of app {}, {} attempt(s)): {}",
            m.next_attempt_at.to_rfc3339(),
            m.status,
            m.kind,
            m.app_id,
            m.attempts,
            m.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
