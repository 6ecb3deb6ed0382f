//! Server-only code: application state, sessions, services (one transaction each),
//! database access, password hashing, mail.

pub mod audit;
pub mod chart;
pub mod db;
pub mod demo;
#[cfg(any(test, feature = "generated-inputs"))]
pub mod generated_inputs;
pub mod ledger;
pub mod live;
pub mod mail;
pub mod notify;
pub mod password;
pub mod payments;
pub mod pdf;
pub mod services;
pub mod session;
pub mod state;

pub use state::{AppConfig, AppState};

use crate::error::AppError;

/// Logs an unexpected failure with a fresh reference and returns the opaque user-facing error.
pub fn internal(cause: impl std::fmt::Display) -> AppError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..10].to_uppercase();
    tracing::error!(reference = %reference, cause = %cause, "internal error");
    AppError::Internal { reference }
}
