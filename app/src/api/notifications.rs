//! Notifications (endpoints `/api/notifications/…`): the inbox behind the bell, and which
//! events are also e-mailed. The bell follows `GET /live/inbox` (Server-Sent Events).

use crate::domain::notification::Kind;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use crate::server::services::notifications;
#[cfg(feature = "ssr")]
use crate::server::session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: Uuid,
    pub kind: Kind,
    pub title: String,
    pub body: String,
    /// The page it is about.
    pub link: String,
    /// How many times it happened while unread ("3 new bids" is one notice).
    pub repeats: i32,
    pub read: bool,
    /// When it (last) happened.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbox {
    pub notices: Vec<Notice>,
    pub unread: i64,
    pub page: i64,
    pub pages: i64,
    pub only_unread: bool,
}

/// What the bell shows; also each event of `GET /live/inbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxLive {
    pub unread: i64,
    pub latest: Option<Notice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailChoice {
    pub kind: Kind,
    pub label: String,
    pub email: bool,
}

/// The caller's notifications, newest first, 30 a page; `unread` = "yes" shows only unread.
#[server(endpoint = "notifications/list")]
pub async fn list_notifications(
    page: Option<String>,
    unread: Option<String>,
) -> Result<Inbox, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        let page = super::parse_page(page.as_deref())?;
        let only_unread = matches!(
            unread.as_deref().map(str::trim),
            Some("yes" | "true" | "on")
        );
        notifications::list(&state.pool, caller.id, page, only_unread).await
    })
    .await
}

/// The bell: the unread count and the newest notification.
#[server(endpoint = "notifications/bell")]
pub async fn bell() -> Result<InboxLive, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        let mut conn = state.pool.acquire().await?;
        Ok(notifications::live(&mut conn, caller.id).await?)
    })
    .await
}

/// Marks one of the caller's notifications read and goes to the page it is about (answers
/// that address).
#[server(endpoint = "notifications/open")]
pub async fn open_notification(id: String) -> Result<String, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        let id = super::parse_id("id", &id)?;
        let link = notifications::open(&state.pool, caller.id, id).await?;
        leptos_axum::redirect(&link);
        Ok(link)
    })
    .await
}

/// Marks every unread notification of the caller read; answers how many were.
#[server(endpoint = "notifications/read-all")]
pub async fn read_all_notifications() -> Result<u64, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        notifications::read_all(&state.pool, caller.id).await
    })
    .await
}

/// The events the caller's role receives, each with whether it is e-mailed.
#[server(endpoint = "notifications/settings")]
pub async fn email_settings() -> Result<Vec<EmailChoice>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        notifications::email_choices(&state.pool, caller.id, caller.role).await
    })
    .await
}

/// Turns e-mail for one event `kind` on (`email` = "on") or off ("off"); answers the settings.
#[server(endpoint = "notifications/settings/email")]
pub async fn set_email(kind: String, email: String) -> Result<Vec<EmailChoice>, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        let kind = Kind::parse(&kind).map_err(|m| AppError::invalid("kind", m))?;
        let email = match email.trim() {
            "on" => true,
            "off" => false,
            _ => return Err(AppError::invalid("email", "Choose on or off.")),
        };
        notifications::set_email(&state.pool, caller.id, caller.role, kind, email).await
    })
    .await
}
