//! The inbox: a person's notifications, newest first, read one by one or all at once, and which
//! events they also get by e-mail. Marking read announces the change so every open tab's bell
//! follows.

use crate::api::notifications::{EmailChoice, Inbox, InboxLive, Notice};
use crate::domain::notification::Kind;
use crate::domain::user::Role;
use crate::error::AppError;
use crate::server::live;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub const PAGE: i64 = 30;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    kind: String,
    title: String,
    body: String,
    link: String,
    repeats: i32,
    read_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<Row> for Notice {
    fn from(r: Row) -> Notice {
        Notice {
            id: r.id,
            // The schema admits only known kinds.
            kind: Kind::parse(&r.kind).unwrap_or(Kind::OrderUpdated),
            title: r.title,
            body: r.body,
            link: r.link,
            repeats: r.repeats,
            read: r.read_at.is_some(),
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, kind, title, body, link, repeats, read_at, created_at";

pub async fn unread(conn: &mut PgConnection, user: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
        .bind(user)
        .fetch_one(conn)
        .await
}

/// The bell: how many are unread and the newest one.
pub async fn live(conn: &mut PgConnection, user: Uuid) -> Result<InboxLive, sqlx::Error> {
    let unread = unread(conn, user).await?;
    let latest: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(user)
    .fetch_optional(conn)
    .await?;
    Ok(InboxLive {
        unread,
        latest: latest.map(Notice::from),
    })
}

/// One page of the inbox (`only_unread` hides what was read).
pub async fn list(
    pool: &PgPool,
    user: Uuid,
    page: i64,
    only_unread: bool,
) -> Result<Inbox, AppError> {
    let mut conn = pool.acquire().await?;
    let filter = if only_unread {
        " AND read_at IS NULL"
    } else {
        ""
    };
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM notifications WHERE user_id = $1{filter}"
    ))
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{filter}
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(user)
    .bind(PAGE)
    .bind((page - 1) * PAGE)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Inbox {
        notices: rows.into_iter().map(Notice::from).collect(),
        unread: unread(&mut conn, user).await?,
        page,
        pages: ((total + PAGE - 1) / PAGE).max(1),
        only_unread,
    })
}

/// Marks one of the caller's notifications read (again is fine) and answers where it leads.
pub async fn open(pool: &PgPool, user: Uuid, id: Uuid) -> Result<String, AppError> {
    let mut tx = pool.begin().await?;
    let link: Option<String> = sqlx::query_scalar(
        "UPDATE notifications SET read_at = coalesce(read_at, now())
         WHERE id = $1 AND user_id = $2 RETURNING link",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let link = link.ok_or_else(|| AppError::not_found("The notification"))?;
    announce(&mut tx, user).await?;
    tx.commit().await?;
    Ok(link)
}

/// Marks every unread notification of the caller read; answers how many.
pub async fn read_all(pool: &PgPool, user: Uuid) -> Result<u64, AppError> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    announce(&mut tx, user).await?;
    tx.commit().await?;
    Ok(n)
}

async fn announce(conn: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    let version = Utc::now().timestamp_micros();
    live::announce(conn, "inbox", &user.to_string(), version).await
}

/// The events of the caller's role, each with whether it is e-mailed.
pub async fn email_choices(
    pool: &PgPool,
    user: Uuid,
    role: Role,
) -> Result<Vec<EmailChoice>, AppError> {
    let off: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM email_preferences WHERE user_id = $1 AND NOT email")
            .bind(user)
            .fetch_all(pool)
            .await?;
    Ok(Kind::ALL
        .into_iter()
        .filter(|k| k.concerns(role))
        .map(|kind| EmailChoice {
            kind,
            label: kind.label().to_owned(),
            email: !off.iter().any(|o| o == kind.as_str()),
        })
        .collect())
}

/// Turns one event's e-mail on or off.
pub async fn set_email(
    pool: &PgPool,
    user: Uuid,
    role: Role,
    kind: Kind,
    email: bool,
) -> Result<Vec<EmailChoice>, AppError> {
    if !kind.concerns(role) {
        return Err(AppError::invalid(
            "kind",
            format!("“{}” is not an event your account receives.", kind.label()),
        ));
    }
    sqlx::query(
        "INSERT INTO email_preferences (user_id, kind, email) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, kind) DO UPDATE SET email = EXCLUDED.email, updated_at = now()",
    )
    .bind(user)
    .bind(kind.as_str())
    .bind(email)
    .execute(pool)
    .await?;
    email_choices(pool, user, role).await
}
