//! Demo data for `make run`: one account per role (more as features arrive). Idempotent.

use app::server::demo::ACCOUNTS;
use app::server::services::accounts::{self, NewAccount};
use sqlx::PgPool;

pub async fn seed(pool: &PgPool, public_url: &str) -> anyhow::Result<()> {
    for a in ACCOUNTS {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)")
                .bind(a.email)
                .fetch_one(pool)
                .await?;
        if exists {
            continue;
        }
        let input = NewAccount {
            email: a.email.into(),
            full_name: a.full_name.into(),
            phone: a.phone.into(),
            role: a.role,
            password: Some(a.password.into()),
        };
        accounts::create_account(pool, public_url, None, input)
            .await
            .map_err(|e| anyhow::anyhow!("seeding {}: {e}", a.email))?;
        tracing::info!(email = a.email, role = ?a.role, "demo account created");
    }
    Ok(())
}
