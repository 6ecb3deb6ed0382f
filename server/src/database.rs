//! The database the server uses: `DATABASE_URL` when set, otherwise the embedded one.

use crate::config::Config;
use crate::local_pg::{self, LocalPg};
use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How long closing the pool waits for connections still in use.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub struct Database {
    pub pool: PgPool,
    /// Present when we started PostgreSQL ourselves and must stop it.
    pub local: Option<LocalPg>,
}

impl Database {
    pub async fn open(config: &Config) -> anyhow::Result<Database> {
        let (url, local) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let pg =
                    LocalPg::start(&config.data_dir, local_pg::Options { fsync: true }).await?;
                (pg.url(), Some(pg))
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .context("connecting to PostgreSQL")?;
        MIGRATOR.run(&pool).await.context("applying migrations")?;
        Ok(Database { pool, local })
    }

    /// Closes the pool (waiting a moment for connections still in use: a request cut at the
    /// end of the shutdown grace may hold one), then stops the embedded PostgreSQL, whose fast
    /// stop ends any session left.
    pub async fn close(self) {
        if tokio::time::timeout(CLOSE_GRACE, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still in use at exit");
        }
        if let Some(pg) = self.local {
            if let Err(e) = pg.stop().await {
                tracing::error!(error = %e, "stopping the embedded PostgreSQL failed");
            }
        }
    }
}

/// The newest migration this binary knows.
pub fn latest_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}
