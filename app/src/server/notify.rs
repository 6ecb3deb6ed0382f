//! Telling a person about an event (SPEC §8). `send` runs inside the transaction that causes
//! the event: the in-app notification, the e-mail (unless they turned it off) and the live
//! bell update all happen on commit, or not at all. The SQL functions `notify` and `notify_all`
//! do the work, so a statement can also call them itself (a bid does).

use crate::domain::notification::Kind;
use sqlx::PgConnection;
use uuid::Uuid;

pub async fn send(
    conn: &mut PgConnection,
    user: Uuid,
    kind: Kind,
    title: &str,
    body: &str,
    link: &str,
) -> Result<(), sqlx::Error> {
    send_all(
        conn,
        &[Note {
            user,
            kind,
            title,
            body,
            link,
        }],
    )
    .await
}

/// One notification of several sent together.
pub struct Note<'a> {
    pub user: Uuid,
    pub kind: Kind,
    pub title: &'a str,
    pub body: &'a str,
    pub link: &'a str,
}

/// Sends several notifications in one statement (the SQL function `notify_all`); no two of
/// them may share user, kind and link.
pub async fn send_all(conn: &mut PgConnection, notes: &[Note<'_>]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT notify_all($1, $2, $3, $4, $5)")
        .bind(notes.iter().map(|n| n.user).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.title).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.body).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.link).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

/// Every active admin is told (a dispute opened).
pub async fn admins(
    conn: &mut PgConnection,
    kind: Kind,
    title: &str,
    body: &str,
    link: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT notify(id, $1, $2, $3, $4) FROM users WHERE role = 'admin' AND status = 'active'",
    )
    .bind(kind.as_str())
    .bind(title)
    .bind(body)
    .bind(link)
    .execute(conn)
    .await?;
    Ok(())
}
