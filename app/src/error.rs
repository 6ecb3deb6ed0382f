//! One error type at the wire. Expected outcomes are variants the UI matches on; internal
//! causes are logged on the server and reach the user only as an opaque reference.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A message about one form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("Your account does not have access to this.")]
    Forbidden,
    #[error("{what} was not found.")]
    NotFound { what: String },
    #[error("Please correct the fields marked below.")]
    Invalid { fields: Vec<FieldError> },
    #[error("{message}")]
    Conflict { message: String },
    /// The wallet does not cover a purchase, a bid or a withdrawal.
    #[error("{message}")]
    InsufficientFunds { message: String },
    /// The price per tonne is above the one the buyer saw (`expected_price`): nothing was
    /// bought. `price_per_t` is the price now.
    #[error("{message}")]
    PriceChanged {
        message: String,
        price_per_t: Decimal,
    },
    /// A price far from the price suggestion, sent without `confirm_price`: nothing was
    /// written. `resubmit` is the request's form as read, with `confirm_price=true`, so a page
    /// can offer "… anyway" in one click — with or without JavaScript, since a plain form post
    /// gets only this error back.
    #[error("{message}")]
    ConfirmPrice {
        message: String,
        price_per_t: Decimal,
        suggested_per_t: Decimal,
        resubmit: Vec<(String, String)>,
    },
    #[error("The e-mail address or password is not correct.")]
    BadCredentials,
    #[error("This account is suspended. Contact support to have it reactivated.")]
    Suspended,
    #[error("Too many attempts. Try again in {retry_after_secs} seconds.")]
    RateLimited { retry_after_secs: u64 },
    /// Sign-ins on one account failed from many addresses: its sign-ins pause for everyone,
    /// but a password reset (which clears the pause) lets the owner in at once.
    #[error("Too many failed sign-ins on this account. Reset your password to sign in now, or try again in {retry_after_secs} seconds.")]
    SignInPaused { retry_after_secs: u64 },
    /// The server is at capacity for this kind of work (password hashing): nothing was done.
    #[error("The server is busy. Try again in {retry_after_secs} seconds.")]
    Busy { retry_after_secs: u64 },
    #[error("This link is invalid, already used or expired. Ask for a new one.")]
    InvalidToken,
    #[error("The request could not be read: {message}")]
    BadRequest { message: String },
    #[error("The server could not be reached. Check your connection and try again.")]
    Unreachable,
    #[error("Something went wrong on our side. Reference: {reference}.")]
    Internal { reference: String },
}

impl AppError {
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound { what: what.into() }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            fields: vec![FieldError {
                field: field.into(),
                message: message.into(),
            }],
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict {
            message: message.into(),
        }
    }

    /// The message for one field, when this is a validation error that names it.
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            AppError::Invalid { fields } => fields
                .iter()
                .find(|f| f.field == name)
                .map(|f| f.message.clone()),
            _ => None,
        }
    }

    /// Seconds to wait before trying again, for refusals that say (sent as `Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after_secs }
            | AppError::SignInPaused { retry_after_secs }
            | AppError::Busy { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::Forbidden | AppError::Suspended => 403,
            AppError::NotFound { .. } => 404,
            AppError::Conflict { .. }
            | AppError::InsufficientFunds { .. }
            | AppError::PriceChanged { .. }
            | AppError::ConfirmPrice { .. } => 409,
            AppError::Invalid { .. } => 422,
            AppError::RateLimited { .. } | AppError::SignInPaused { .. } => 429,
            AppError::Busy { .. } => 503,
            AppError::InvalidToken | AppError::BadRequest { .. } => 400,
            AppError::Unreachable => 503,
            AppError::Internal { .. } => 500,
        }
    }
}

/// Collects per-field validation results into one `AppError::Invalid`.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the parsed value, or records the message against `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push(FieldError {
                    field: field.into(),
                    message,
                });
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid { fields: self.0 })
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                AppError::BadRequest { message: m }
            }
            ServerFnErrorErr::Request(_) => AppError::Unreachable,
            other => AppError::Internal {
                reference: short_reference(&other.to_string()),
            },
        }
    }
}

/// A short, stable-looking reference for errors that did not come from our own code paths.
fn short_reference(text: &str) -> String {
    // FNV-1a: deterministic and dependency free; the full text is in the server log.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("SF-{:08X}", h as u32)
}
