//! What every benchmark needs: the private PostgreSQL, the release server on a free loopback
//! port (and its memory), signed-in HTTP clients, latency histograms and the `BENCH` line.

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Where benchmarks keep their files (generated data, the server's data dir).
pub fn work_dir() -> PathBuf {
    PathBuf::from("target/bench")
}

/// The release server binary (`EVCX_BENCH_SERVER` overrides `target/release/server`).
pub fn server_binary() -> PathBuf {
    std::env::var_os("EVCX_BENCH_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/server"))
}

/// Runs this binary again with the same arguments inside `server pg-run`: a fresh PostgreSQL
/// with fsync and synchronous commit on, stopped and removed when the benchmark ends.
pub fn rerun_under_private_postgres(args: &[String]) -> ExitCode {
    let server = server_binary();
    if !server.exists() {
        eprintln!(
            "{} is missing: build it with `cargo leptos build --release` (make bench does)",
            server.display()
        );
        return ExitCode::FAILURE;
    }
    let me = std::env::current_exe().expect("own path");
    let status = std::process::Command::new(&server)
        .arg("pg-run")
        .arg("--data-dir")
        .arg(work_dir().join("pg"))
        .arg("--")
        .arg(me)
        .args(args)
        .env("EVCX_LOG", "warn")
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("running {}: {e}", server.display());
            ExitCode::FAILURE
        }
    }
}

/// The release server, started on a free loopback port against `DATABASE_URL`.
pub struct Server {
    child: tokio::process::Child,
    pub base: String,
}

impl Server {
    pub async fn start() -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data_dir = work_dir().join("server-data");
        std::fs::create_dir_all(&data_dir)?;
        let child = tokio::process::Command::new(server_binary())
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("EVCX_DATA_DIR", &data_dir)
            .env("EVCX_SEED_DEMO", "false")
            .env(
                "EVCX_LOG",
                std::env::var("EVCX_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/health", server.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("the server did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Resident memory now and at its peak, in MB (Linux `/proc`).
    pub fn memory_mb(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM, then wait for the graceful shutdown.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await?;
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// An HTTP client with its own cookie jar: one signed-in user.
#[derive(Clone)]
pub struct Session {
    pub http: reqwest::Client,
    pub base: String,
}

impl Session {
    pub fn new(base: &str) -> Session {
        Session {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(600))
                .build()
                .expect("http client"),
            base: base.to_owned(),
        }
    }

    /// POSTs a form to a server function and returns its JSON answer; a non-2xx is an error
    /// carrying the body.
    pub async fn call(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<serde_json::Value> {
        let r = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        if !status.is_success() {
            bail!("{endpoint}: {status}: {body}");
        }
        Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
    }

    /// Signs up a new account of `role` (ev_owner or buyer) as a person does: the form, then
    /// the link the server mails (read from its outbox table), then the password; stays
    /// signed in.
    pub async fn sign_up(base: &str, email: &str, role: &str) -> anyhow::Result<Session> {
        let s = Session::new(base);
        let password = "bench-password-2026";
        s.call(
            "users/register",
            &[
                ("email", email),
                ("full_name", "Bench User"),
                ("phone", "+84 90 123 4567"),
                ("role", role),
            ],
        )
        .await?;
        let token = mailed_token(email).await?;
        s.call(
            "users/register/confirm",
            &[
                ("token", token.as_str()),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await?;
        Ok(s)
    }

    /// Signs in an existing account and stays signed in.
    pub async fn login(base: &str, email: &str, password: &str) -> anyhow::Result<Session> {
        let s = Session::new(base);
        s.call("users/login", &[("email", email), ("password", password)])
            .await?;
        Ok(s)
    }
}

/// Latency in microseconds, 1 µs to 60 s, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

pub fn ms(h: &Histogram<u64>, quantile: f64) -> f64 {
    h.value_at_quantile(quantile) as f64 / 1000.0
}

/// Prints `BENCH <name> k=v …`.
pub fn bench_line(name: &str, figures: &[(&str, String)]) {
    let mut line = format!("BENCH {name}");
    for (k, v) in figures {
        write!(line, " {k}={v}").ok();
    }
    println!("{line}");
}

/// The token of the link in the last message the server queued for `to`, once its mail job
/// has written one (it runs every second).
async fn mailed_token(to: &str) -> anyhow::Result<String> {
    let query = format!(
        "SELECT body_text FROM email_outbox WHERE to_address = '{}' ORDER BY created_at DESC LIMIT 1",
        to.replace('\'', "''")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = crate::market::sql(&query).await?;
        if let Some(token) = text
            .split("token=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        {
            return Ok(token.to_owned());
        }
        if Instant::now() > deadline {
            bail!("no sign-up link was mailed to {to} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `psql` from the PostgreSQL installation the private server runs on.
pub fn psql() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed under /usr/lib/postgresql")?
        .filter_map(|e| Some(e.ok()?.path().join("bin/psql")))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .context("no psql under /usr/lib/postgresql/*/bin")
}

pub fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}
