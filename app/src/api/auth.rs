//! Accounts: sign-up, sign-in, sign-out, profile, passwords (endpoints `/api/users/…`).

use super::User;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{services::accounts, session};

/// A demo account shown on the login page in development mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoAccount {
    pub role: crate::domain::user::Role,
    pub email: String,
    pub password: String,
}

/// The signed-in account, or `None` for a visitor.
#[server(endpoint = "users/me")]
pub async fn current_user() -> Result<Option<User>, AppError> {
    session::respond(async {
        // The app shell is also rendered once without a request, to list the routes at start;
        // its header's resource may run then, with no state and nobody signed in.
        let Some(state) = use_context::<crate::server::AppState>() else {
            return Ok(None);
        };
        let session = session::session().await?;
        Ok(session::current(&state, &session).await?.map(User::from))
    })
    .await
}

/// Asks for an EV owner or buyer account: the address receives a link to choose the password
/// and finish (or, when it has an account already, a note saying so). The answer is the same
/// either way.
#[server(endpoint = "users/register")]
pub async fn register(
    email: String,
    full_name: String,
    phone: String,
    role: String,
) -> Result<(), AppError> {
    session::respond(async {
        let state = session::state();
        let input = accounts::SignUp {
            email,
            full_name,
            phone,
            role,
        };
        accounts::request_sign_up(&state, &session::client_ip(), input).await?;
        leptos_axum::redirect("/signup?sent=1");
        Ok(())
    })
    .await
}

/// The sign-up an e-mailed link finishes, while the link can be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignUpDetails {
    pub email: String,
    pub full_name: String,
    pub role: crate::domain::user::Role,
}

/// What the e-mailed sign-up link stands for (`invalid_token` once used or expired).
#[server(endpoint = "users/register/link")]
pub async fn sign_up_link(token: String) -> Result<SignUpDetails, AppError> {
    session::respond(async {
        let state = session::state();
        let pending = accounts::pending_sign_up(&state.pool, &token).await?;
        Ok(SignUpDetails {
            email: pending.email,
            full_name: pending.full_name,
            role: pending.role,
        })
    })
    .await
}

/// Finishes a sign-up with the e-mailed link: creates the account with the chosen password and
/// signs it in.
#[server(endpoint = "users/register/confirm")]
pub async fn finish_sign_up(
    token: String,
    password: String,
    password_confirm: String,
) -> Result<User, AppError> {
    session::respond(async {
        let state = session::state();
        let session = session::session().await?;
        let user =
            accounts::finish_sign_up(&state.pool, &token, &password, &password_confirm).await?;
        session::sign_in(&session, &user).await?;
        leptos_axum::redirect("/");
        Ok(User::from(user))
    })
    .await
}

/// Signs in. `next` is where to go afterwards (a path on this site).
#[server(endpoint = "users/login")]
pub async fn login(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<User, AppError> {
    session::respond(async {
        let state = session::state();
        let session = session::session().await?;
        let user = accounts::sign_in(&state, &session::client_ip(), &email, password).await?;
        session::sign_in(&session, &user).await?;
        leptos_axum::redirect(&safe_next(next.as_deref()));
        Ok(User::from(user))
    })
    .await
}

/// Only same-site paths are followed after sign-in (no open redirect): a path that starts with
/// one `/`, with no backslash (browsers read it as `/`), no control character or whitespace
/// (browsers drop tabs and newlines, so `/\t/evil.example` becomes `//evil.example`; CR and LF
/// could not even be sent in a header) and not too long. Anything else goes home.
pub fn safe_next(next: Option<&str>) -> String {
    const LONGEST: usize = 2048;
    let same_site = |p: &str| {
        p.len() <= LONGEST
            && p.starts_with('/')
            && !p[1..].starts_with(['/', '\\'])
            && !p
                .chars()
                .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    };
    match next {
        Some(p) if same_site(p) => p.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    /// Known open-redirect bypasses, as they arrive after the form is decoded.
    #[test]
    fn only_same_site_paths_are_followed() {
        let home = [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/ /evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/market\u{0}",
            "/\u{2028}/evil.example",
            "/\u{a0}/evil.example",
            "/path\rSet-Cookie: x=1",
        ];
        for next in home {
            assert_eq!(safe_next(Some(next)), "/", "{next:?}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        for kept in [
            "/",
            "/market",
            "/market?q=xanh&region=VN",
            "/sandbox/pay/5f0c",
            "/orders/ORD-000001#invoice",
            "/market?next=https://evil.example",
        ] {
            assert_eq!(safe_next(Some(kept)), kept);
        }
    }
}

#[server(endpoint = "users/logout")]
pub async fn logout() -> Result<(), AppError> {
    session::respond(async {
        let session = session::session().await?;
        session::sign_out(&session).await?;
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

#[server(endpoint = "users/profile")]
pub async fn get_profile() -> Result<User, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        Ok(accounts::profile(&state.pool, caller.id).await?.into())
    })
    .await
}

#[server(endpoint = "users/profile/update")]
pub async fn update_profile(full_name: String, phone: String) -> Result<User, AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        Ok(
            accounts::update_profile(&state.pool, caller.id, &full_name, &phone)
                .await?
                .into(),
        )
    })
    .await
}

/// Changes the password; every other session of the account ends, this one stays.
#[server(endpoint = "users/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    new_password_confirm: String,
) -> Result<(), AppError> {
    session::respond(async {
        let (state, caller) = session::require(super::ANY_ROLE).await?;
        let user = accounts::change_password(
            &state.pool,
            caller.id,
            current_password,
            &new_password,
            &new_password_confirm,
        )
        .await?;
        let session = session::session().await?;
        session::sign_in(&session, &user).await?;
        Ok(())
    })
    .await
}

/// Mails a one-time reset link if the address has an account (the answer does not say).
#[server(endpoint = "users/password-reset/request")]
pub async fn request_password_reset(email: String) -> Result<(), AppError> {
    session::respond(async {
        let state = session::state();
        accounts::request_reset(&state, &session::client_ip(), &email).await?;
        leptos_axum::redirect("/forgot-password?sent=1");
        Ok(())
    })
    .await
}

/// Chooses a new password with the token from the e-mailed link.
#[server(endpoint = "users/password-reset/confirm")]
pub async fn reset_password(
    token: String,
    new_password: String,
    new_password_confirm: String,
) -> Result<(), AppError> {
    session::respond(async {
        let state = session::state();
        accounts::reset_password(&state.pool, &token, &new_password, &new_password_confirm).await?;
        leptos_axum::redirect("/login?reset=1");
        Ok(())
    })
    .await
}

/// The demo accounts and their passwords, in development mode only (empty otherwise).
#[server(endpoint = "users/demo-accounts")]
pub async fn demo_accounts() -> Result<Vec<DemoAccount>, AppError> {
    session::respond(async {
        let state = session::state();
        if !state.config.dev_mode {
            return Ok(Vec::new());
        }
        Ok(crate::server::demo::ACCOUNTS
            .iter()
            .map(|a| DemoAccount {
                role: a.role,
                email: a.email.into(),
                password: a.password.into(),
            })
            .collect())
    })
    .await
}
