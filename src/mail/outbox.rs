//! The outbox workers: claim due messages one at a time, prepare each (see
//! [`super::prepare`]), send it with no connection held, and record the outcome.
//!
//! Any number of `serve` instances may share one outbox. A claim takes one message for a
//! lease under a fresh lease token, and renews the lease while it works, so a message is worked
//! by one instance at a time however slow the SMTP server is (each send is bounded by the SMTP
//! timeout); only the claim that still holds the message records its outcome. Delivery is at
//! least once: a worker that dies after the SMTP server accepted a message but before recording
//! it leaves the message to be sent again when its lease runs out — with the same link, which
//! is derived from the message. A reset link replaces the profile's older links only once it
//! has been delivered, and a failed send revokes nothing.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::MailSettings;
use super::prepare::{self, MailedLink, Prepared, Ready};
use super::transport::{SendError, Transport};
use crate::db::models::OutboxMessage;
use crate::db::{self, Db};
use crate::error::{AppError, AppResult};

/// Most messages one [`Worker::tick`] handles before it looks at its shutdown signal again.
const TICK_MESSAGES: usize = 16;

/// Keeps renewing a claim's lease until it is dropped.
struct Renewal(JoinHandle<()>);

impl Renewal {
    fn start(db: Db, msg: &OutboxMessage, lease_token: Uuid, lease: Duration) -> Renewal {
        let (app_id, message_id) = (msg.app_id.clone(), msg.message_id);
        let every = (lease / 3).max(Duration::from_millis(10));
        Renewal(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let renewed = match db.conn().await {
                    Ok(mut conn) => {
                        db::outbox::renew(&mut conn, &app_id, message_id, lease_token, lease).await
                    }
                    Err(e) => {
                        tracing::warn!(message_id = %message_id, error = ?e, "outbox: could not renew a lease");
                        continue;
                    }
                };
                match renewed {
                    Ok(true) => {}
                    Ok(false) => return, // dropped, recorded, or taken over
                    Err(e) => {
                        tracing::warn!(message_id = %message_id, error = ?e, "outbox: could not renew a lease");
                    }
                }
            }
        }))
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A worker: one per `serve` process (several processes share the outbox safely).
#[derive(Clone)]
pub struct Worker {
    db: Db,
    transport: Arc<Transport>,
    settings: Arc<MailSettings>,
}

impl Worker {
    /// A worker sending through `transport`.
    pub fn new(db: Db, transport: Arc<Transport>, settings: Arc<MailSettings>) -> Self {
        Worker {
            db,
            transport,
            settings,
        }
    }

    /// Runs until `shutdown` turns true: works through due messages, then waits to be woken
    /// by a new message or for the poll interval.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let handled = match self.tick().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = ?e, "outbox: could not claim messages");
                        0
                    }
                };
                if handled == 0 {
                    tokio::select! {
                        _ = self.settings.wake.notified() => {}
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        })
    }

    /// Claims due messages one at a time and handles each, until none is due (or a few have
    /// been handled); returns how many.
    pub async fn tick(&self) -> AppResult<usize> {
        let mut handled = 0;
        while handled < TICK_MESSAGES {
            let lease_token = Uuid::new_v4();
            let claimed = async {
                let mut conn = self.db.conn().await?;
                let claimed =
                    db::outbox::claim(&mut conn, 1, self.settings.lease, lease_token).await?;
                Ok::<_, AppError>(claimed)
            }
            .await;
            let msg = match claimed {
                Ok(batch) => match batch.into_iter().next() {
                    Some(msg) => msg,
                    None => break,
                },
                Err(e) if handled == 0 => return Err(e),
                Err(e) => {
                    tracing::warn!(error = ?e, "outbox: could not claim messages");
                    break;
                }
            };
            handled += 1;
            let _renewal = Renewal::start(self.db.clone(), &msg, lease_token, self.settings.lease);
            if let Err(e) = self.handle(&msg, lease_token).await {
                // The lease brings it back; nothing is lost.
                tracing::warn!(message_id = %msg.message_id, error = ?e, "outbox: message left for a later attempt");
            }
        }
        Ok(handled)
    }

    async fn handle(&self, msg: &OutboxMessage, lease_token: Uuid) -> AppResult<()> {
        let (app_id, id) = (msg.app_id.as_str(), msg.message_id);
        let ready = match prepare::prepare(&self.db, &self.settings, msg, lease_token).await? {
            Prepared::Send(ready) => ready,
            Prepared::Lost => {
                tracing::info!(message_id = %id, "outbox: the message was taken over or dropped meanwhile");
                return Ok(());
            }
            Prepared::Drop(why) => {
                let mut conn = self.db.conn().await?;
                if db::outbox::mark_dropped(&mut conn, app_id, id, lease_token, &why).await? {
                    tracing::info!(message_id = %id, why, "outbox: dropped");
                }
                return Ok(());
            }
            Prepared::Fail(why) => {
                let mut conn = self.db.conn().await?;
                if db::outbox::mark_failed(&mut conn, app_id, id, lease_token, &why, None).await? {
                    tracing::warn!(message_id = %id, why, "outbox: given up");
                }
                return Ok(());
            }
        };
        // The copy first: when it cannot go yet, the account's own mail waits with it, so that
        // a retry never sends the account a second mail because of its cc recipients.
        let mut note = None;
        if let Some(copy) = &ready.copy {
            match self.transport.send(copy).await {
                Ok(()) => {}
                Err(e) if e.permanent => {
                    tracing::warn!(message_id = %id, error = %e.message, "outbox: the cc/bcc copy was refused");
                    note = Some(format!("the cc/bcc copy was refused: {}", e.message));
                }
                Err(e) => return self.failed(msg, lease_token, e).await,
            }
        }
        match self.transport.send(&ready.primary).await {
            Ok(()) => self.sent(msg, lease_token, &ready, note.as_deref()).await,
            Err(e) => self.failed(msg, lease_token, e).await,
        }
    }

    /// Records a delivery; a reset link now replaces the profile's older links and queued
    /// resets.
    async fn sent(
        &self,
        msg: &OutboxMessage,
        lease_token: Uuid,
        ready: &Ready,
        note: Option<&str>,
    ) -> AppResult<()> {
        let (app_id, id) = (msg.app_id.as_str(), msg.message_id);
        let mut conn = self.db.conn().await?;
        let recorded = conn
            .transaction::<_, AppError, _>(async |conn| {
                if !db::outbox::mark_sent(conn, app_id, id, lease_token, note).await? {
                    return Ok(false);
                }
                if let Some(MailedLink {
                    profile_id,
                    hash,
                    asked_at,
                }) = &ready.link
                {
                    let purpose = db::tokens::PASSWORD_RESET;
                    db::tokens::revoke_older(conn, app_id, *profile_id, purpose, hash, *asked_at)
                        .await?;
                    let why = "superseded by a newer reset mail";
                    db::outbox::drop_older_resets(conn, app_id, *profile_id, *asked_at, why)
                        .await?;
                }
                Ok(true)
            })
            .await?;
        metrics::counter!("usersvc_mail_sent_total", "kind" => msg.kind.clone()).increment(1);
        if recorded {
            tracing::info!(message_id = %id, kind = %msg.kind, "outbox: sent");
        } else {
            // Another claim holds it now and will record its own outcome (with the same link).
            tracing::warn!(message_id = %id, kind = %msg.kind, "outbox: sent, but the lease had run out");
        }
        Ok(())
    }

    /// Records a failed attempt: a retry after a backoff, or the end. Links are left alone: a
    /// link the user already has keeps working.
    async fn failed(&self, msg: &OutboxMessage, lease_token: Uuid, e: SendError) -> AppResult<()> {
        let give_up = e.permanent || msg.attempts >= self.settings.max_attempts;
        let delay = (!give_up).then(|| self.settings.backoff(msg.attempts));
        let mut conn = self.db.conn().await?;
        let (app_id, id) = (msg.app_id.as_str(), msg.message_id);
        let recorded =
            db::outbox::mark_failed(&mut conn, app_id, id, lease_token, &e.message, delay).await?;
        metrics::counter!("usersvc_mail_failures_total", "kind" => msg.kind.clone(), "final" => give_up.to_string())
            .increment(1);
        tracing::warn!(message_id = %id, attempts = msg.attempts, give_up, recorded, error = %e.message, "outbox: send failed");
        Ok(())
    }
}
