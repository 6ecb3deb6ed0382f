//! E-mail: messages are queued in `email_outbox` inside the transaction that causes them and
//! delivered by a background job, to SMTP or (in development) as `.eml` files in a folder.

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::{PgConnection, PgPool};
use std::path::PathBuf;
use uuid::Uuid;

pub const FROM: &str = "EV Carbon Exchange <no-reply@evcx.local>";

/// Queues a message; it is sent only if the surrounding transaction commits.
pub async fn enqueue(
    conn: &mut PgConnection,
    to: &str,
    subject: &str,
    body_text: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_outbox (id, to_address, subject, body_text) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::new_v4())
    .bind(to)
    .bind(subject)
    .bind(body_text)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// Development: every message becomes an `.eml` file in this folder.
    Folder(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn folder(dir: impl Into<PathBuf>) -> std::io::Result<Mailer> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Mailer::Folder(dir))
    }

    /// `smtp://user:pass@host:port` or `smtps://…` (lettre's URL format).
    pub fn smtp(url: &str) -> Result<Mailer, lettre::transport::smtp::Error> {
        Ok(Mailer::Smtp(
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build(),
        ))
    }

    async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Mailer::Folder(dir) => AsyncFileTransport::<Tokio1Executor>::new(dir)
                .send(message)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Mailer::Smtp(t) => t.send(message).await.map(drop).map_err(|e| e.to_string()),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: Uuid,
    to_address: String,
    subject: String,
    body_text: String,
    /// A notification's page on the platform (a path).
    link: Option<String>,
    attempts: i32,
}

/// Sends up to `limit` due messages and returns how many were sent. Rows are claimed with
/// `FOR UPDATE SKIP LOCKED`, so any number of instances can run this at once; a failure is
/// retried later with a growing delay.
pub async fn deliver_due(
    pool: &PgPool,
    mailer: &Mailer,
    public_url: &str,
    limit: i64,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due = sqlx::query_as::<_, Pending>(
        "SELECT id, to_address, subject, body_text, link, attempts FROM email_outbox
         WHERE sent_at IS NULL AND next_attempt_at <= now() AND attempts < 10
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut sent = 0;
    for m in due {
        let outcome = match build(&m, public_url) {
            Ok(message) => mailer.send(message).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                sent += 1;
                sqlx::query("UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1")
                    .bind(m.id)
                    .execute(&mut *tx)
                    .await?;
            }
            Err(error) => {
                tracing::warn!(id = %m.id, %error, "e-mail delivery failed; will retry");
                let delay_secs = 30 * 2_i64.pow(m.attempts.clamp(0, 8) as u32);
                sqlx::query(
                    "UPDATE email_outbox SET attempts = attempts + 1, last_error = $2,
                            next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
                )
                .bind(m.id)
                .bind(error)
                .bind(delay_secs as f64)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(sent)
}

/// A notification's text with its link and how to stop such e-mails; other mail as queued.
fn body(m: &Pending, public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    match &m.link {
        None => m.body_text.clone(),
        Some(link) => format!(
            "{}\n\nOpen it: {base}{link}\n\n--\nYou get this e-mail because of your notification settings on EV Carbon Exchange.\nChoose which events are e-mailed to you: {base}/notifications/settings\n",
            m.body_text
        ),
    }
}

fn build(m: &Pending, public_url: &str) -> Result<Message, String> {
    let to: Mailbox = m
        .to_address
        .parse()
        .map_err(|e| format!("bad recipient: {e}"))?;
    Message::builder()
        .from(FROM.parse().expect("valid sender"))
        .to(to)
        .subject(&m.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body(m, public_url))
        .map_err(|e| e.to_string())
}
