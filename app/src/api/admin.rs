//! Admin: user management (endpoints `/api/admin/…`).

use super::User;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::domain::user::{AccountStatus, Role};
#[cfg(feature = "ssr")]
use crate::server::{services::accounts, services::user_admin, session};

#[cfg(feature = "ssr")]
const ADMIN: &[Role] = &[Role::Admin];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountCount {
    pub role: crate::domain::user::Role,
    pub active: i64,
    pub suspended: i64,
}

/// Search users by e-mail, name or phone; filter by role and status; 25 per page.
#[server(endpoint = "admin/users")]
pub async fn list_users(
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    page: Option<String>,
) -> Result<UserPage, AppError> {
    session::respond(async {
        let (state, _) = session::require(ADMIN).await?;
        let non_empty =
            |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let filter = user_admin::Filter {
            text: non_empty(q),
            role: non_empty(role)
                .map(|r| Role::parse(&r))
                .transpose()
                .map_err(|m| AppError::invalid("role", m))?,
            status: non_empty(status)
                .map(|s| AccountStatus::parse(&s))
                .transpose()
                .map_err(|m| AppError::invalid("status", m))?,
            page: super::parse_page(page.as_deref())?,
        };
        let (rows, total) = user_admin::search(&state.pool, &filter).await?;
        let pages = ((total + user_admin::PAGE_SIZE - 1) / user_admin::PAGE_SIZE).max(1);
        Ok(UserPage {
            users: rows.into_iter().map(User::from).collect(),
            total,
            page: filter.page,
            pages,
        })
    })
    .await
}

/// Creates a CVA or admin account; the person gets an e-mail link to choose a password.
#[server(endpoint = "admin/users/create")]
pub async fn create_user(
    email: String,
    full_name: String,
    phone: String,
    role: String,
) -> Result<User, AppError> {
    session::respond(async {
        let (state, caller) = session::require(ADMIN).await?;
        let role =
            match Role::parse(&role) {
                Ok(r @ (Role::Cva | Role::Admin)) => r,
                _ => return Err(AppError::invalid(
                    "role",
                    "Admins create CVA or admin accounts; owners and buyers sign up themselves.",
                )),
            };
        let input = accounts::NewAccount {
            email,
            full_name,
            phone,
            role,
            password: None,
        };
        let user = accounts::create_account(
            &state.pool,
            &state.config.public_url,
            Some(caller.id),
            input,
        )
        .await?;
        Ok(user.into())
    })
    .await
}

#[server(endpoint = "admin/users/role")]
pub async fn set_user_role(user_id: String, role: String) -> Result<User, AppError> {
    session::respond(async {
        let (state, caller) = session::require(ADMIN).await?;
        let target = super::parse_id("user_id", &user_id)?;
        let role = Role::parse(&role).map_err(|m| AppError::invalid("role", m))?;
        Ok(user_admin::set_role(&state.pool, caller.id, target, role)
            .await?
            .into())
    })
    .await
}

/// Suspends (ending the user's sessions at once) or reactivates an account.
#[server(endpoint = "admin/users/status")]
pub async fn set_user_status(user_id: String, status: String) -> Result<User, AppError> {
    session::respond(async {
        let (state, caller) = session::require(ADMIN).await?;
        let target = super::parse_id("user_id", &user_id)?;
        let status = AccountStatus::parse(&status).map_err(|m| AppError::invalid("status", m))?;
        Ok(
            user_admin::set_status(&state.pool, caller.id, target, status)
                .await?
                .into(),
        )
    })
    .await
}

/// Accounts per role, active and suspended, for the admin's home.
#[server(endpoint = "admin/overview")]
pub async fn account_counts() -> Result<Vec<AccountCount>, AppError> {
    session::respond(async {
        let (state, _) = session::require(ADMIN).await?;
        let rows = user_admin::counts(&state.pool).await?;
        Ok(Role::ALL
            .into_iter()
            .map(|role| {
                let n = |status: &str| {
                    rows.iter()
                        .find(|(r, s, _)| r == role.as_str() && s == status)
                        .map_or(0, |(_, _, n)| *n)
                };
                AccountCount {
                    role,
                    active: n("active"),
                    suspended: n("suspended"),
                }
            })
            .collect())
    })
    .await
}
