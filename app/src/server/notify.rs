//! Telling a person about an event (SPEC §8). `send` runs inside the transaction that causes
//! the event: the in-app notification, the e-mail (unless they turned it off) and the live
//! bell update all happen on commit, or not at all. The SQL function `notify` does the work, so
//! a statement can also call it itself (a bid does).

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
    sqlx::query("SELECT notify($1, $2, $3, $4, $5)")
        .bind(user)
        .bind(kind.as_str())
        .bind(title)
        .bind(body)
        .bind(link)
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
