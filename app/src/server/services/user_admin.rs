//! The admin's user management: search, role changes, suspension. Every change is audited;
//! an admin cannot lock themselves out, and the last active admin cannot be removed.

use crate::domain::user::{AccountStatus, Role};
use crate::error::AppError;
use crate::server::audit::{self, AuditEntry};
use crate::server::db::users::{self, UserRow, UserSearch};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

pub const PAGE_SIZE: i64 = 25;

pub struct Filter {
    pub text: Option<String>,
    pub role: Option<Role>,
    pub status: Option<AccountStatus>,
    /// 1-based.
    pub page: i64,
}

pub async fn search(pool: &PgPool, f: &Filter) -> Result<(Vec<UserRow>, i64), AppError> {
    let page = f.page.max(1);
    Ok(users::search(
        pool,
        UserSearch {
            text: f.text.as_deref(),
            role: f.role,
            status: f.status,
            limit: PAGE_SIZE,
            offset: (page - 1) * PAGE_SIZE,
        },
    )
    .await?)
}

#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn set_role(
    pool: &PgPool,
    actor: Uuid,
    target: Uuid,
    role: Role,
) -> Result<UserRow, AppError> {
    if actor == target {
        return Err(AppError::conflict(
            "You cannot change your own role; ask another admin.",
        ));
    }
    let mut tx = pool.begin().await?;
    let before = users::by_id_for_update(&mut tx, target)
        .await?
        .ok_or_else(|| AppError::not_found("The user"))?;
    if before.role() == role {
        return Ok(before);
    }
    if before.role() == Role::Admin
        && before.status() == AccountStatus::Active
        && users::count_active_admins(&mut tx).await? <= 1
    {
        return Err(AppError::conflict(
            "This is the last active admin; make someone else admin first.",
        ));
    }
    let after = users::set_role(&mut tx, target, role).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(actor),
            action: "user.set_role",
            entity: "user",
            entity_id: target.to_string(),
            before: Some(json!({ "role": before.role })),
            after: Some(json!({ "role": after.role })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn set_status(
    pool: &PgPool,
    actor: Uuid,
    target: Uuid,
    status: AccountStatus,
) -> Result<UserRow, AppError> {
    if actor == target {
        return Err(AppError::conflict(
            "You cannot suspend or reactivate your own account.",
        ));
    }
    let mut tx = pool.begin().await?;
    let before = users::by_id_for_update(&mut tx, target)
        .await?
        .ok_or_else(|| AppError::not_found("The user"))?;
    if before.status() == status {
        return Ok(before);
    }
    let after = users::set_status(&mut tx, target, status).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(actor),
            action: if status == AccountStatus::Suspended {
                "user.suspend"
            } else {
                "user.reactivate"
            },
            entity: "user",
            entity_id: target.to_string(),
            before: Some(json!({ "status": before.status })),
            after: Some(json!({ "status": after.status })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>, AppError> {
    Ok(users::counts(pool).await?)
}
