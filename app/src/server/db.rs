//! Database access: queries grouped by table, and classification of database errors.

pub mod users;
pub mod vehicles;

use crate::error::AppError;

/// The name of the constraint a statement violated, if that is why it failed.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// PostgreSQL's "invalid byte sequence" (a NUL character in text, which no text column holds).
const BAD_CHARACTER: &str = "22021";
const DEADLOCK: &str = "40P01";
const SERIALIZATION_FAILURE: &str = "40001";

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(BAD_CHARACTER) => {
                AppError::BadRequest {
                    message: "text cannot contain a NUL character".into(),
                }
            }
            // PostgreSQL broke a deadlock or a serialization conflict by rolling this
            // transaction back: nothing was done; try again.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some(DEADLOCK | SERIALIZATION_FAILURE)) =>
            {
                tracing::warn!(error = %db, "transaction rolled back by the database");
                AppError::Busy {
                    retry_after_secs: 1,
                }
            }
            // Every connection busy or the database restarting: nothing was done; try again.
            sqlx::Error::PoolTimedOut => {
                tracing::warn!("no database connection became free in time");
                AppError::Busy {
                    retry_after_secs: 2,
                }
            }
            _ => super::internal(err),
        }
    }
}
