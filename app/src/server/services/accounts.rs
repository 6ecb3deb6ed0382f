//! Accounts: sign-up, sign-in, profile, password change and reset, and account creation
//! shared by the admin screen and the command line.

use crate::domain::user::{AccountStatus, Email, FullName, Password, Phone, Role};
use crate::error::{AppError, FieldErrors};
use crate::server::audit::{self, AuditEntry};
use crate::server::db::users::{self, NewUser, UserRow, EMAIL_TAKEN};
use crate::server::db::violated_constraint;
use crate::server::services::rate_limit::{self, Kind, Rule};
use crate::server::{mail, password, AppState};
use chrono::{Duration, Utc};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Raw sign-up input, as typed. The password is chosen later, on the page the e-mailed link
/// opens: only whoever reads the address's mail can finish the account.
pub struct SignUp {
    pub email: String,
    pub full_name: String,
    pub phone: String,
    pub role: String,
}

/// Asks for a self-service account (EV owner or buyer). Every field is checked and every
/// problem reported at once; then the request is queued and the answer is the same whether or
/// not the address has an account, after the same work (`handle_requests` mails its owner).
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn request_sign_up(state: &AppState, ip: &str, input: SignUp) -> Result<(), AppError> {
    // Counted before anything else is done, refused sign-ups included.
    let signups = [Rule::new(
        Kind::SignupIp,
        ip,
        state.config.limits.signup_per_ip,
    )];
    let _counted = rate_limit::take(&state.pool, &signups).await??;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&input.email));
    let full_name = errors.check("full_name", FullName::parse(&input.full_name));
    let phone = errors.check("phone", Phone::parse(&input.phone));
    let role = match Role::parse(&input.role) {
        Ok(r) if r.self_service() => Some(r),
        Ok(_) => {
            errors.add("role", "You can sign up as an EV owner or a buyer.");
            None
        }
        Err(_) => {
            errors.add("role", "Choose whether you are an EV owner or a buyer.");
            None
        }
    };
    errors.finish()?;
    let (email, full_name, phone, role) = (
        email.unwrap(),
        full_name.unwrap(),
        phone.unwrap(),
        role.unwrap(),
    );
    sqlx::query(
        "INSERT INTO account_requests (id, kind, email, full_name, phone, role)
         VALUES ($1, 'sign_up', $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(email.as_str())
    .bind(full_name.as_str())
    .bind(phone.as_str())
    .bind(role.as_str())
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// What the page of a sign-up link shows before the password is chosen.
pub struct PendingSignUp {
    pub email: String,
    pub full_name: String,
    pub role: Role,
}

/// The sign-up a link finishes, while it can still be used.
pub async fn pending_sign_up(pool: &PgPool, token: &str) -> Result<PendingSignUp, AppError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT r.email, r.full_name, r.role
         FROM sign_up_links l JOIN account_requests r ON r.id = l.request_id
         WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > now()",
    )
    .bind(token_hash(token.trim()))
    .fetch_optional(pool)
    .await?;
    let (email, full_name, role) = row.ok_or(AppError::InvalidToken)?;
    let role = Role::parse(&role).map_err(|_| AppError::InvalidToken)?;
    Ok(PendingSignUp {
        email,
        full_name,
        role,
    })
}

/// Creates the account a sign-up link stands for, with the password chosen now. The link is
/// spent in the same transaction.
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn finish_sign_up(
    pool: &PgPool,
    token: &str,
    password: &str,
    confirm: &str,
) -> Result<UserRow, AppError> {
    let pending = pending_sign_up(pool, token).await?;
    let email = Email::parse(&pending.email).map_err(|_| AppError::InvalidToken)?;
    let full_name = FullName::parse(&pending.full_name).map_err(|_| AppError::InvalidToken)?;
    let mut errors = FieldErrors::new();
    let checked = errors.check("password", Password::parse(password, Some(&email)));
    if checked.is_some() && password != confirm {
        errors.add("password_confirm", "The two passwords do not match.");
    }
    errors.finish()?;
    let hash = password::hash(checked.unwrap()).await?;

    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT l.request_id, r.phone
         FROM sign_up_links l JOIN account_requests r ON r.id = l.request_id
         WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > now()
         FOR UPDATE OF l",
    )
    .bind(token_hash(token.trim()))
    .fetch_optional(&mut *tx)
    .await?;
    let (request_id, phone) = row.ok_or(AppError::InvalidToken)?;
    let phone = Phone::parse(&phone).map_err(|_| AppError::InvalidToken)?;
    let user = insert_user(&mut tx, &email, &hash, pending.role, &full_name, &phone)
        .await
        .map_err(|e| match e {
            AppError::Invalid { .. } => AppError::conflict(
                "An account with this e-mail address exists already. Sign in, or reset its password if you forgot it.",
            ),
            other => other,
        })?;
    sqlx::query("UPDATE sign_up_links SET used_at = now(), user_id = $2 WHERE request_id = $1")
        .bind(request_id)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(user.id),
            action: "user.sign_up",
            entity: "user",
            entity_id: user.id.to_string(),
            before: None,
            after: Some(json!({ "email": user.email, "role": user.role })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

fn email_taken() -> AppError {
    AppError::invalid(
        "email",
        "An account with this e-mail address already exists.",
    )
}

async fn insert_user(
    conn: &mut PgConnection,
    email: &Email,
    hash: &password::HashedPassword,
    role: Role,
    full_name: &FullName,
    phone: &Phone,
) -> Result<UserRow, AppError> {
    let new = NewUser {
        email: email.as_str(),
        password_hash: hash,
        role,
        full_name: full_name.as_str(),
        phone: phone.as_str(),
    };
    users::insert(conn, new)
        .await
        .map_err(|e| match violated_constraint(&e) {
            Some(EMAIL_TAKEN) => email_taken(),
            _ => e.into(),
        })
}

/// Checks the credentials. Every attempt is counted before the password is checked, and a
/// successful one is forgiven: failures are limited per address, per account and address, and
/// per account, where they first slow sign-ins down (see `RateLimits`).
#[tracing::instrument(skip(state, password), err(level = "info"))]
pub async fn sign_in(
    state: &AppState,
    ip: &str,
    email: &str,
    password: String,
) -> Result<UserRow, AppError> {
    let limits = state.config.limits;
    let account_key = email.trim().to_lowercase();
    let rules = [
        Rule::new(Kind::LoginIp, ip, limits.login_per_ip),
        Rule::new(
            Kind::LoginPair,
            format!("{account_key} {ip}"),
            limits.login_per_pair,
        ),
        Rule::new(Kind::LoginAccount, &account_key, limits.login_per_account),
    ];
    let attempt = match rate_limit::take(&state.pool, &rules).await? {
        Ok(attempt) => attempt,
        Err(e) if e.kind == Kind::LoginAccount => {
            return Err(AppError::SignInPaused {
                retry_after_secs: e.retry_after_secs,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let delay = limits
        .login_slowdown
        .delay(attempt.earlier(Kind::LoginAccount));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let user = match Email::parse(email) {
        Ok(email) => users::by_email(&state.pool, email.as_str()).await?,
        Err(_) => None,
    };
    let valid = password::verify(password, user.as_ref().map(UserRow::password)).await?;
    match user {
        Some(user) if valid => {
            if user.status() == AccountStatus::Suspended {
                return Err(AppError::Suspended);
            }
            rate_limit::forgive(&state.pool, attempt).await?;
            forget_failed_sign_ins(&state.pool, &account_key).await?;
            Ok(user)
        }
        _ => Err(AppError::BadCredentials),
    }
}

/// The account's failed sign-ins stop counting: its owner proved who they are.
async fn forget_failed_sign_ins(pool: &PgPool, account_key: &str) -> Result<(), AppError> {
    rate_limit::clear(pool, Kind::LoginAccount, account_key).await?;
    rate_limit::clear_prefix(pool, Kind::LoginPair, &format!("{account_key} ")).await
}

pub async fn profile(pool: &PgPool, id: Uuid) -> Result<UserRow, AppError> {
    users::by_id(pool, id)
        .await?
        .ok_or_else(|| AppError::not_found("The account"))
}

#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn update_profile(
    pool: &PgPool,
    id: Uuid,
    full_name: &str,
    phone: &str,
) -> Result<UserRow, AppError> {
    let mut errors = FieldErrors::new();
    let full_name = errors.check("full_name", FullName::parse(full_name));
    let phone = errors.check("phone", Phone::parse(phone));
    errors.finish()?;
    let (full_name, phone) = (full_name.unwrap(), phone.unwrap());

    let mut tx = pool.begin().await?;
    let before = users::by_id_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| AppError::not_found("The account"))?;
    let after = users::update_profile(&mut tx, id, full_name.as_str(), phone.as_str()).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(id),
            action: "user.update_profile",
            entity: "user",
            entity_id: id.to_string(),
            before: Some(json!({ "full_name": before.full_name, "phone": before.phone })),
            after: Some(json!({ "full_name": after.full_name, "phone": after.phone })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Changes the password after checking the current one. Every session of the account ends;
/// the caller re-stores the returned row in its own session to stay signed in.
#[tracing::instrument(skip_all, fields(user = %id), err(level = "info"))]
pub async fn change_password(
    pool: &PgPool,
    id: Uuid,
    current: String,
    new: &str,
    confirm: &str,
) -> Result<UserRow, AppError> {
    let user = profile(pool, id).await?;
    let email = Email::parse(&user.email).ok();
    let mut errors = FieldErrors::new();
    let new_password = errors.check("new_password", Password::parse(new, email.as_ref()));
    if new_password.is_some() && new != confirm {
        errors.add("new_password_confirm", "The two passwords do not match.");
    }
    if current == new {
        errors.add(
            "new_password",
            "Choose a password different from the current one.",
        );
    }
    if !password::verify(current, Some(user.password())).await? {
        errors.add("current_password", "This is not your current password.");
    }
    errors.finish()?;
    let hash = password::hash(new_password.unwrap()).await?;
    let mut tx = pool.begin().await?;
    let updated = users::set_password(&mut tx, id, &hash).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(id),
            action: "user.change_password",
            entity: "user",
            entity_id: id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// How long a link sent by e-mail stays valid.
const RESET_LINK_HOURS: i64 = 1;
const WELCOME_LINK_HOURS: i64 = 72;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a one-time token and returns the link that carries it. Only its hash is stored.
async fn issue_link(
    conn: &mut PgConnection,
    public_url: &str,
    user_id: Uuid,
    purpose: &str,
    hours: i64,
) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    sqlx::query(
        "INSERT INTO password_reset_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(&token))
    .bind(user_id)
    .bind(purpose)
    .bind(Utc::now() + Duration::hours(hours))
    .execute(conn)
    .await?;
    Ok(format!(
        "{}/reset-password?token={token}",
        public_url.trim_end_matches('/')
    ))
}

/// Asks for a one-time reset link. The request is queued and the answer is the same, after the
/// same work, whether or not the address has an account (`handle_requests` mails the link to an
/// active account), so nobody can probe which addresses have accounts.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn request_reset(state: &AppState, ip: &str, email: &str) -> Result<(), AppError> {
    let email = Email::parse(email).map_err(|m| AppError::invalid("email", m))?;
    let resets = [Rule::new(
        Kind::ResetIp,
        ip,
        state.config.limits.reset_per_ip,
    )];
    let _counted = rate_limit::take(&state.pool, &resets).await??;
    sqlx::query("INSERT INTO account_requests (id, kind, email) VALUES ($1, 'reset', $2)")
        .bind(Uuid::new_v4())
        .bind(email.as_str())
        .execute(&state.pool)
        .await?;
    Ok(())
}

/// How many links and notes one address receives in an hour at most; further requests for it
/// are recorded and mail nothing (nobody can flood someone's mailbox through the forms).
const MAILS_PER_ADDRESS_PER_HOUR: i64 = 5;
const SIGN_UP_LINK_HOURS: i64 = 24;

#[derive(sqlx::FromRow)]
struct AccountRequest {
    id: Uuid,
    kind: String,
    email: String,
    full_name: Option<String>,
}

/// Handles up to `limit` queued sign-up and reset requests, oldest first, each in its own
/// transaction (claimed with `FOR UPDATE SKIP LOCKED`, so any number of instances can run it),
/// and returns how many were handled.
pub async fn handle_requests(
    pool: &PgPool,
    public_url: &str,
    limit: usize,
) -> Result<usize, AppError> {
    let mut handled = 0;
    while handled < limit {
        let mut tx = pool.begin().await?;
        let request: Option<AccountRequest> = sqlx::query_as(
            "SELECT id, kind, email, full_name FROM account_requests
             WHERE handled_at IS NULL ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(request) = request else {
            break;
        };
        let outcome = handle_request(&mut tx, public_url, &request).await?;
        sqlx::query("UPDATE account_requests SET handled_at = now(), outcome = $2 WHERE id = $1")
            .bind(request.id)
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        handled += 1;
    }
    Ok(handled)
}

async fn handle_request(
    conn: &mut PgConnection,
    public_url: &str,
    request: &AccountRequest,
) -> Result<&'static str, AppError> {
    let mailed_this_hour: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM account_requests
         WHERE email = $1 AND outcome IN ('link_sent', 'notice_sent')
           AND handled_at > now() - interval '1 hour'",
    )
    .bind(&request.email)
    .fetch_one(&mut *conn)
    .await?;
    let user: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE email = $1")
        .bind(&request.email)
        .fetch_optional(&mut *conn)
        .await?;
    let wants_mail = request.kind == "sign_up"
        || user
            .as_ref()
            .is_some_and(|u| u.status() == AccountStatus::Active);
    if !wants_mail {
        return Ok("no_account");
    }
    if mailed_this_hour >= MAILS_PER_ADDRESS_PER_HOUR {
        return Ok("too_many");
    }
    let site = public_url.trim_end_matches('/');
    match (request.kind.as_str(), user) {
        ("reset", Some(user)) => {
            let link = issue_link(conn, public_url, user.id, "reset", RESET_LINK_HOURS).await?;
            let body = format!(
                "Hello {},\n\nSomeone (hopefully you) asked to reset the password of your EV Carbon Exchange account.\n\
                 Open this link within {RESET_LINK_HOURS} hour to choose a new password:\n\n{link}\n\n\
                 The link works once. If you did not ask for this, ignore this message; your password stays as it is.\n",
                user.full_name
            );
            mail::enqueue(
                conn,
                &user.email,
                "Reset your EV Carbon Exchange password",
                &body,
            )
            .await?;
            Ok("link_sent")
        }
        (_, Some(user)) => {
            let body = format!(
                "Hello {},\n\nSomeone (perhaps you) tried to create an EV Carbon Exchange account with this address. \
                 You have an account already, so none was created.\n\n\
                 Sign in: {site}/login\nForgot your password? Choose a new one: {site}/forgot-password\n\n\
                 If it was not you, ignore this message; nothing changed.\n",
                user.full_name
            );
            mail::enqueue(
                conn,
                &user.email,
                "You already have an EV Carbon Exchange account",
                &body,
            )
            .await?;
            Ok("notice_sent")
        }
        (_, None) => {
            let mut bytes = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut bytes);
            let token = hex::encode(bytes);
            sqlx::query(
                "INSERT INTO sign_up_links (token_hash, request_id, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(token_hash(&token))
            .bind(request.id)
            .bind(Utc::now() + Duration::hours(SIGN_UP_LINK_HOURS))
            .execute(&mut *conn)
            .await?;
            let body = format!(
                "Hello {},\n\nThank you for signing up to EV Carbon Exchange. Open this link within {SIGN_UP_LINK_HOURS} hours \
                 to choose your password and finish creating your account:\n\n{site}/signup/confirm?token={token}\n\n\
                 If you did not sign up, ignore this message; no account is created without the link.\n",
                request.full_name.as_deref().unwrap_or_default()
            );
            mail::enqueue(
                conn,
                &request.email,
                "Finish creating your EV Carbon Exchange account",
                &body,
            )
            .await?;
            Ok("link_sent")
        }
    }
}

/// Sets a new password with a one-time link; the link is spent and every session ends.
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn reset_password(
    pool: &PgPool,
    token: &str,
    new: &str,
    confirm: &str,
) -> Result<UserRow, AppError> {
    let mut tx = pool.begin().await?;
    let user_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM password_reset_tokens
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() FOR UPDATE",
    )
    .bind(token_hash(token.trim()))
    .fetch_optional(&mut *tx)
    .await?;
    let user_id = user_id.ok_or(AppError::InvalidToken)?;
    let user = users::by_id_for_update(&mut tx, user_id)
        .await?
        .ok_or(AppError::InvalidToken)?;
    let email = Email::parse(&user.email).ok();
    let mut errors = FieldErrors::new();
    let password = errors.check("new_password", Password::parse(new, email.as_ref()));
    if password.is_some() && new != confirm {
        errors.add("new_password_confirm", "The two passwords do not match.");
    }
    errors.finish()?;
    let hash = password::hash(password.unwrap()).await?;
    sqlx::query("UPDATE password_reset_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(token_hash(token.trim()))
        .execute(&mut *tx)
        .await?;
    let updated = users::set_password(&mut tx, user_id, &hash).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(user_id),
            action: "user.reset_password",
            entity: "user",
            entity_id: user_id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    // The way in for an owner whose sign-ins others paused.
    forget_failed_sign_ins(pool, &updated.email).await?;
    Ok(updated)
}

/// Raw input for an account created by someone else (admin screen, command line).
pub struct NewAccount {
    pub email: String,
    pub full_name: String,
    pub phone: String,
    pub role: Role,
    /// With a password the account can sign in at once (command line); without one, the
    /// person receives a link to choose their own (admin screen).
    pub password: Option<String>,
}

#[tracing::instrument(skip_all, fields(email = %input.email, role = ?input.role), err(level = "info"))]
pub async fn create_account(
    pool: &PgPool,
    public_url: &str,
    actor_id: Option<Uuid>,
    input: NewAccount,
) -> Result<UserRow, AppError> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&input.email));
    let full_name = errors.check("full_name", FullName::parse(&input.full_name));
    let phone = errors.check("phone", Phone::parse(&input.phone));
    let password = match &input.password {
        Some(p) => errors.check("password", Password::parse(p, email.as_ref())),
        None => None,
    };
    errors.finish()?;
    let (email, full_name, phone) = (email.unwrap(), full_name.unwrap(), phone.unwrap());
    let hash = match password {
        Some(p) => password::hash(p).await?,
        None => password::unusable(),
    };
    let mut tx = pool.begin().await?;
    let user = insert_user(&mut tx, &email, &hash, input.role, &full_name, &phone).await?;
    if input.password.is_none() {
        let link = issue_link(&mut tx, public_url, user.id, "welcome", WELCOME_LINK_HOURS).await?;
        let body = format!(
            "Hello {},\n\nAn EV Carbon Exchange account was created for you with the role {}.\n\
             Open this link within {WELCOME_LINK_HOURS} hours to choose your password:\n\n{link}\n",
            user.full_name,
            input.role.label()
        );
        mail::enqueue(
            &mut tx,
            &user.email,
            "Your EV Carbon Exchange account",
            &body,
        )
        .await?;
    }
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id,
            action: "user.create",
            entity: "user",
            entity_id: user.id.to_string(),
            before: None,
            after: Some(
                json!({ "email": user.email, "role": user.role, "full_name": user.full_name }),
            ),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}
