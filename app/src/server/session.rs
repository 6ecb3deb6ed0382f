//! Who is calling: the session cookie, the account behind it, and the role check every server
//! function starts with. Identity only ever comes from here, never from a request body.

use crate::domain::user::{AccountStatus, Role};
use crate::error::AppError;
use crate::server::db::users::{self, StoredSession, UserRow};
use crate::server::AppState;
use axum::extract::ConnectInfo;
use http::header::{ACCEPT, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use leptos::prelude::{expect_context, use_context};
use leptos_axum::ResponseOptions;
use std::future::Future;
use std::net::SocketAddr;
use tower_sessions::Session;
use uuid::Uuid;

/// The session's keys for the account it is signed in as and that account's session version
/// (the session store also writes them to columns of their own).
pub const USER_ID: &str = "user_id";
pub const SESSION_VERSION: &str = "session_version";

/// The signed-in account making the current request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: Uuid,
    pub role: Role,
    pub email: String,
    pub full_name: String,
}

impl From<&UserRow> for Caller {
    fn from(row: &UserRow) -> Self {
        Caller {
            id: row.id,
            role: row.role(),
            email: row.email.clone(),
            full_name: row.full_name.clone(),
        }
    }
}

pub fn state() -> AppState {
    expect_context::<AppState>()
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(super::internal)
}

/// The caller's address, for rate limiting.
pub fn client_ip() -> String {
    let Some(parts) = use_context::<Parts>() else {
        return "unknown".to_owned();
    };
    if state().config.trust_proxy {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .last();
        if let Some(ip) = forwarded {
            return ip.to_owned();
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The signed-in account, if any. A session whose account was suspended, or whose password
/// changed since it was created, is ended here.
pub async fn current(state: &AppState, session: &Session) -> Result<Option<UserRow>, AppError> {
    // Unchanged in this request, the session is as stored: it and its account in one query.
    // Changed (signed in or out just now), its data in memory is what counts.
    if !session.is_modified() {
        let Some(id) = session.id() else {
            return Ok(None);
        };
        match users::by_session(&state.pool, &id.to_string()).await? {
            StoredSession::Missing => {
                // Expired or ended elsewhere: the cookie goes.
                session.flush().await.map_err(super::internal)?;
                return Ok(None);
            }
            StoredSession::Signed { version, user } => {
                return still_valid(session, user.map(|u| *u), Some(version)).await;
            }
            StoredSession::Unnamed => {}
        }
    }
    let Some(id) = session
        .get::<Uuid>(USER_ID)
        .await
        .map_err(super::internal)?
    else {
        return Ok(None);
    };
    let version = session
        .get::<i32>(SESSION_VERSION)
        .await
        .map_err(super::internal)?;
    let user = users::by_id(&state.pool, id).await?;
    still_valid(session, user, version).await
}

/// The session's account if it is active and its session version is the one the session was
/// signed in with; otherwise the session is ended.
async fn still_valid(
    session: &Session,
    user: Option<UserRow>,
    version: Option<i32>,
) -> Result<Option<UserRow>, AppError> {
    match user {
        Some(row)
            if row.status() == AccountStatus::Active && Some(row.session_version) == version =>
        {
            Ok(Some(row))
        }
        _ => {
            session.flush().await.map_err(super::internal)?;
            Ok(None)
        }
    }
}

/// The state and the caller, who must be signed in with one of `roles`.
pub async fn require(roles: &[Role]) -> Result<(AppState, Caller), AppError> {
    let state = state();
    let session = session().await?;
    let row = current(&state, &session)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let caller = Caller::from(&row);
    if roles.contains(&caller.role) {
        Ok((state, caller))
    } else {
        Err(AppError::Forbidden)
    }
}

/// The signed-in caller, if any (for public pages that show more to someone signed in).
pub async fn caller() -> Result<Option<Caller>, AppError> {
    let state = state();
    let session = session().await?;
    Ok(current(&state, &session).await?.as_ref().map(Caller::from))
}

/// Starts an authenticated session: a new session id (no fixation), then the identity.
pub async fn sign_in(session: &Session, user: &UserRow) -> Result<(), AppError> {
    session.cycle_id().await.map_err(super::internal)?;
    remember(session, user).await
}

/// Stores the account and its current session version in the session.
pub async fn remember(session: &Session, user: &UserRow) -> Result<(), AppError> {
    session
        .insert(USER_ID, user.id)
        .await
        .map_err(super::internal)?;
    session
        .insert(SESSION_VERSION, user.session_version)
        .await
        .map_err(super::internal)?;
    Ok(())
}

pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(super::internal)
}

/// Runs a server function body and gives its error the matching HTTP status (429 and 503 also
/// get `Retry-After`). A plain HTML form post keeps leptos' redirect back to the form instead,
/// which carries the error to the page in its URL.
pub async fn respond<T>(body: impl Future<Output = Result<T, AppError>>) -> Result<T, AppError> {
    let result = body.await;
    if let Err(err) = &result {
        let parts = use_context::<Parts>();
        let form_post = parts.as_ref().is_some_and(|p| {
            p.uri.path().starts_with("/api/")
                && p.headers
                    .get(ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("text/html"))
        });
        if let (false, Some(options)) = (form_post, use_context::<ResponseOptions>()) {
            options.set_status(
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            if let Some(secs) = err.retry_after_secs() {
                options.insert_header(RETRY_AFTER, HeaderValue::from(secs));
            }
        }
    }
    result
}
