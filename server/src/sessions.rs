//! Where sessions are kept: `tower_sessions.session`, one row per session with its data
//! (MessagePack, as tower-sessions' own PostgreSQL store writes it) and, in columns of their
//! own, the account it is signed in as and that account's session version. Those two columns
//! let `session::current` read a request's account together with its session in one query
//! (`users::by_session`); they are written from the session's data, in the same statement.

use app::server::session::{SESSION_VERSION, USER_ID};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, Error, SessionStore};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Sessions {
    pool: PgPool,
}

impl Sessions {
    pub fn new(pool: PgPool) -> Self {
        Sessions { pool }
    }

    /// Writes a session; with `replace` false, only if its id is free. Answers whether it was
    /// written.
    async fn write(&self, record: &Record, replace: bool) -> session_store::Result<bool> {
        let data = rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        let account = signed_in_as(record);
        let statement = if replace {
            "INSERT INTO tower_sessions.session (id, data, expiry_date, user_id, session_version)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expiry_date = EXCLUDED.expiry_date,
                 user_id = EXCLUDED.user_id, session_version = EXCLUDED.session_version"
        } else {
            "INSERT INTO tower_sessions.session (id, data, expiry_date, user_id, session_version)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING"
        };
        let written = sqlx::query(statement)
            .bind(record.id.to_string())
            .bind(data)
            .bind(expiry(record)?)
            .bind(account.map(|a| a.0))
            .bind(account.map(|a| a.1))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(written.rows_affected() == 1)
    }
}

/// The account and session version a session's data names, if it names both.
fn signed_in_as(record: &Record) -> Option<(Uuid, i32)> {
    let user = serde_json::from_value(record.data.get(USER_ID)?.clone()).ok()?;
    let version = serde_json::from_value(record.data.get(SESSION_VERSION)?.clone()).ok()?;
    Some((user, version))
}

fn expiry(record: &Record) -> session_store::Result<DateTime<Utc>> {
    let at = record.expiry_date;
    DateTime::from_timestamp(at.unix_timestamp(), at.nanosecond())
        .ok_or_else(|| Error::Encode(format!("expiry {at} out of range")))
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits: a taken one is all but impossible, but never overwritten.
        while !self.write(record, false).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.write(record, true).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT data FROM tower_sessions.session WHERE id = $1 AND expiry_date > now()",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        data.map(|d| rmp_serde::from_slice(&d).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM tower_sessions.session WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
