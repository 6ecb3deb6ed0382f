//! The command line: serve (default), migrate, seed, create an admin, run a command against a
//! throwaway PostgreSQL (used by `make test`).

use crate::config::Config;
use crate::database::Database;
use crate::local_pg::{self, LocalPg};
use crate::{demo, jobs, startup, telemetry};
use anyhow::Context;
use app::domain::user::Role;
use app::server::mail::Mailer;
use app::server::services::accounts::{self, NewAccount};
use app::server::AppState;
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "server", about = "EV Carbon Exchange")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the platform (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create the demo accounts (and data) if missing, then exit.
    Seed,
    /// Fill the database with a marketplace for the benchmarks (sellers, listings, funded
    /// buyers) through the real services, and write the accounts and listings as JSON to OUT.
    SeedMarket {
        #[arg(long, default_value_t = 20)]
        sellers: usize,
        #[arg(long, default_value_t = 1000)]
        listings: usize,
        /// Kilograms in each listing.
        #[arg(long, default_value_t = 1000)]
        listing_kg: i64,
        #[arg(long, default_value_t = 100)]
        buyers: usize,
        /// Money in each buyer's wallet.
        #[arg(long, default_value = "1000000000")]
        money: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Administer accounts.
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Start a throwaway PostgreSQL in DATA_DIR, run COMMAND with DATABASE_URL pointing at that
    /// server, then stop it and exit with COMMAND's status.
    PgRun {
        #[arg(long)]
        data_dir: PathBuf,
        /// Turn fsync off (tests only: faster, not durable).
        #[arg(long)]
        no_fsync: bool,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin account. The password is read from standard input, or prompted for.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        #[arg(long)]
        phone: String,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate => with_database(|_, _| async { Ok(()) }).await,
        Command::SeedMarket {
            sellers,
            listings,
            listing_kg,
            buyers,
            money,
            password,
            out,
        } => {
            with_database(|pool, config| async move {
                let plan = crate::market_seed::Plan {
                    currency: config.currency.clone(),
                    sellers,
                    listings,
                    listing_kg,
                    buyers,
                    money: money.parse().context("--money")?,
                    password,
                };
                let seeded = crate::market_seed::seed(&pool, plan).await?;
                std::fs::write(&out, serde_json::to_vec(&seeded)?)
                    .with_context(|| format!("writing {}", out.display()))?;
                Ok(())
            })
            .await
        }
        Command::Seed => {
            with_database(|db, config| async move { demo::seed(&db, &config).await }).await
        }
        Command::Admin {
            action: AdminCommand::Create { email, name, phone },
        } => create_admin(email, name, phone).await,
        Command::PgRun {
            data_dir,
            no_fsync,
            command,
        } => return pg_run(data_dir, no_fsync, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::load()?;
    telemetry::init(config.dev_mode);
    let db = Database::open(&config).await?;
    let outcome = serve_with(&config, &db).await;
    db.close().await;
    outcome
}

async fn serve_with(config: &Config, db: &Database) -> anyhow::Result<()> {
    if config.sandbox_payments && !config.dev_mode {
        tracing::warn!(
            "EVCX_SANDBOX_PAYMENTS is on in production: the sandbox gateway credits wallets \
             without real money; every page says so"
        );
    }
    if config.seed_demo {
        demo::seed(&db.pool, config).await?;
    }
    let mailer = match &config.smtp_url {
        Some(url) => Mailer::smtp(url).context("EVCX_SMTP_URL")?,
        None => Mailer::folder(config.data_dir.join("outbox"))
            .context("creating the mail outbox folder")?,
    };
    let state = AppState {
        pool: db.pool.clone(),
        config: Arc::new(config.app_config()),
        leptos_options: config.leptos.clone(),
        live: Default::default(),
        bids: Default::default(),
        purchases: Default::default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let background = jobs::spawn_all(state.clone(), db.pool.clone(), mailer, stop_rx.clone());
    // The jobs stop while the requests in flight finish, not after them.
    let jobs_stopped = tokio::spawn(jobs::stop_when_asked(background, stop_rx));

    let addr = config.leptos.site_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!("serving on http://{addr}");
    let hub = state.live.clone();
    let shutdown = {
        let stop_tx = stop_tx.clone();
        async move {
            startup::shutdown_signal().await;
            // Live streams never end by themselves: end them so the requests in flight can
            // finish.
            hub.close();
            stop_tx.send(true).ok();
        }
    };
    let served = startup::serve(
        listener,
        startup::router(state),
        shutdown,
        startup::DRAIN_GRACE,
    )
    .await;

    stop_tx.send(true).ok();
    jobs_stopped.await.ok();
    tracing::info!("server stopped");
    served.context("serving HTTP")
}

async fn with_database<F, Fut>(work: F) -> anyhow::Result<()>
where
    F: FnOnce(sqlx::PgPool, Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = Config::load()?;
    telemetry::init(config.dev_mode);
    let db = Database::open(&config).await?;
    let outcome = work(db.pool.clone(), config).await;
    db.close().await;
    outcome
}

async fn create_admin(email: String, name: String, phone: String) -> anyhow::Result<()> {
    let password = read_password()?;
    with_database(|pool, config| async move {
        let input = NewAccount {
            email,
            full_name: name,
            phone,
            role: Role::Admin,
            password: Some(password),
        };
        let user = accounts::create_account(&pool, &config.public_url, None, input)
            .await
            .map_err(|e| match e {
                app::error::AppError::Invalid { fields } => anyhow::anyhow!(
                    "{}",
                    fields
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                other => anyhow::anyhow!("{other}"),
            })?;
        println!("Admin account created: {} ({})", user.email, user.id);
        Ok(())
    })
    .await
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        Ok(first)
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s.trim_end_matches(['\r', '\n']).to_owned())
    }
}

async fn pg_run(data_dir: PathBuf, no_fsync: bool, command: Vec<String>) -> ExitCode {
    telemetry::init(true);
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).ok();
    }
    let pg = match LocalPg::start(&data_dir, local_pg::Options { fsync: !no_fsync }).await {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let status = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .env("DATABASE_URL", pg.url())
        .status()
        .await;
    if let Err(e) = pg.stop().await {
        eprintln!("warning: stopping PostgreSQL: {e:#}");
    }
    std::fs::remove_dir_all(&data_dir).ok();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("error: running {}: {e}", command[0]);
            ExitCode::FAILURE
        }
    }
}
