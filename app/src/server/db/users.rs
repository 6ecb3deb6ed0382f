//! Queries on `users`.

use crate::domain::user::{AccountStatus, Role};
use crate::server::password::HashedPassword;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

pub const EMAIL_TAKEN: &str = "users_email_key";

/// A row as stored. Holds the password hash, so it is never sent anywhere as is.
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub full_name: String,
    pub phone: String,
    pub status: String,
    pub session_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When an admin checked the person's identity (withdrawals need it).
    pub kyc_verified_at: Option<DateTime<Utc>>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        // The CHECK constraint on `users.role` admits exactly the four roles.
        Role::parse(&self.role).expect("users.role holds a known role")
    }

    pub fn status(&self) -> AccountStatus {
        AccountStatus::parse(&self.status).expect("users.status holds a known status")
    }

    pub fn password(&self) -> HashedPassword {
        HashedPassword::from_stored(self.password_hash.clone())
    }
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a HashedPassword,
    pub role: Role,
    pub full_name: &'a str,
    pub phone: &'a str,
}

pub async fn insert(conn: &mut PgConnection, new: NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "INSERT INTO users (id, email, password_hash, role, full_name, phone)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(new.email)
    .bind(new.password_hash.as_str())
    .bind(new.role.as_str())
    .bind(new.full_name)
    .bind(new.phone)
    .fetch_one(conn)
    .await
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A stored session as `by_session` finds it.
pub enum StoredSession {
    /// No session with that id, or it expired.
    Missing,
    /// A session whose columns name no account (saved before they existed, or holding no
    /// account): its data tells.
    Unnamed,
    /// Signed in as `user` (None if the account is gone) with this session version.
    Signed {
        version: i32,
        user: Option<Box<UserRow>>,
    },
}

/// A live session and the account it is signed in as, in one query.
pub async fn by_session(pool: &PgPool, session_id: &str) -> Result<StoredSession, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT s.user_id AS signed_user, s.session_version AS signed_version, u.*
         FROM tower_sessions.session s LEFT JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.expiry_date > now()",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(StoredSession::Missing);
    };
    let (Some(_), Some(version)) = (
        row.try_get::<Option<Uuid>, _>("signed_user")?,
        row.try_get::<Option<i32>, _>("signed_version")?,
    ) else {
        return Ok(StoredSession::Unnamed);
    };
    let user = match row.try_get::<Option<Uuid>, _>("id")? {
        Some(_) => Some(Box::new(UserRow::from_row(&row)?)),
        None => None,
    };
    Ok(StoredSession::Signed { version, user })
}

pub async fn by_id_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await
}

/// Sets a new password hash and ends every existing session of the user.
pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &HashedPassword,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "UPDATE users SET password_hash = $2, session_version = session_version + 1, updated_at = now()
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(hash.as_str())
    .fetch_one(conn)
    .await
}

pub async fn update_profile(
    conn: &mut PgConnection,
    id: Uuid,
    full_name: &str,
    phone: &str,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "UPDATE users SET full_name = $2, phone = $3, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(full_name)
    .bind(phone)
    .fetch_one(conn)
    .await
}

pub async fn set_role(
    conn: &mut PgConnection,
    id: Uuid,
    role: Role,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(role.as_str())
    .fetch_one(conn)
    .await
}

/// Suspension also ends every session of the user at once.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: AccountStatus,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(
        "UPDATE users SET status = $2,
                session_version = session_version + CASE WHEN $2 = 'suspended' THEN 1 ELSE 0 END,
                updated_at = now()
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(status.as_str())
    .fetch_one(conn)
    .await
}

pub struct UserSearch<'a> {
    pub text: Option<&'a str>,
    pub role: Option<Role>,
    pub status: Option<AccountStatus>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of users matching the search, newest first, and the total number of matches.
pub async fn search(pool: &PgPool, s: UserSearch<'_>) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
    let pattern = s.text.map(|t| {
        let escaped = t
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let filter = "($1::text IS NULL OR email ILIKE $1 OR full_name ILIKE $1 OR phone ILIKE $1)
                  AND ($2::text IS NULL OR role = $2) AND ($3::text IS NULL OR status = $3)";
    let rows = sqlx::query_as::<_, UserRow>(&format!(
        "SELECT * FROM users WHERE {filter} ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"
    ))
    .bind(&pattern)
    .bind(s.role.map(Role::as_str))
    .bind(s.status.map(AccountStatus::as_str))
    .bind(s.limit)
    .bind(s.offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {filter}"))
        .bind(&pattern)
        .bind(s.role.map(Role::as_str))
        .bind(s.status.map(AccountStatus::as_str))
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// Number of accounts per role and status, for the admin's home.
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT role, status, count(*) FROM users GROUP BY role, status ORDER BY role, status",
    )
    .fetch_all(pool)
    .await
}

pub async fn count_active_admins(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active'")
        .fetch_one(conn)
        .await
}
