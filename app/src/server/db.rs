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

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        super::internal(err)
    }
}
