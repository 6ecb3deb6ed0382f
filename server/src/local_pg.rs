//! The embedded default database: a private PostgreSQL server started from the machine's
//! PostgreSQL binaries, with its data in a folder of ours, listening on a free loopback port
//! and on a Unix socket in its data folder. The server connects through the socket: a round
//! trip there skips the TCP stack, and a purchase makes several. As root, PostgreSQL refuses
//! to run, so it runs as the `postgres` user.

use anyhow::{bail, Context};
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

pub const DATABASE: &str = "evcx";
const SUPERUSER: &str = "evcx";

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Off only for throwaway test databases; the real server and benchmarks keep it on.
    pub fsync: bool,
}

#[derive(Debug)]
pub struct LocalPg {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    as_postgres: bool,
    port: u16,
    /// The folder of its Unix socket, when the socket's path is short enough for one.
    socket_dir: Option<PathBuf>,
    password: String,
}

impl LocalPg {
    /// Initialises `root/pg` on first use, then starts the server and makes sure the
    /// application database exists.
    pub async fn start(root: &Path, options: Options) -> anyhow::Result<LocalPg> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let root = root.canonicalize()?;
        let bin_dir = find_bin_dir()?;
        let as_postgres = running_as_root().await?;
        let pgdata = root.join("pg");
        let password_file = root.join("pg-password");

        let mut pg = LocalPg {
            bin_dir,
            pgdata,
            as_postgres,
            port: 0,
            socket_dir: None,
            password: String::new(),
        };
        if !pg.pgdata.join("PG_VERSION").exists() {
            pg.password = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(32)
                .map(char::from)
                .collect();
            pg.init(&root, options).await?;
            write_private(&password_file, &pg.password)?;
        } else {
            pg.password = std::fs::read_to_string(&password_file)
                .with_context(|| format!("reading {}", password_file.display()))?
                .trim()
                .to_owned();
        }
        if pg.pgdata.join("postmaster.pid").exists() && pg.ctl(&["status"]).await.is_ok() {
            tracing::warn!("a PostgreSQL from an earlier run is still up; restarting it");
            pg.ctl(&["stop", "-m", "fast", "-w"]).await?;
        }
        pg.port = free_port()?;
        pg.socket_dir = socket_dir(&pg.pgdata);
        let log = pg.pgdata.join("server.log");
        let mut port_option = format!("-p {}", pg.port);
        if let Some(dir) = &pg.socket_dir {
            // pg_ctl hands these to a shell; `socket_dir` only accepts paths without quotes.
            port_option.push_str(&format!(" -k '{}'", dir.display()));
        }
        pg.ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.to_string_lossy(),
            "-o",
            &port_option,
        ])
        .await
        .with_context(|| format!("starting PostgreSQL (see {})", log.display()))?;
        pg.ensure_database().await?;
        tracing::info!(
            port = pg.port,
            socket = pg.socket_dir.is_some(),
            data = %pg.pgdata.display(),
            "embedded PostgreSQL is up"
        );
        Ok(pg)
    }

    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// Connection URL for the server itself (no database), e.g. for `#[sqlx::test]`: through
    /// the Unix socket when there is one (sqlx and libpq both read a host that is a
    /// percent-encoded absolute path as the socket's folder), else loopback TCP.
    pub fn url_for(&self, database: &str) -> String {
        let host = match &self.socket_dir {
            Some(dir) => dir.to_string_lossy().replace('/', "%2F"),
            None => "127.0.0.1".to_owned(),
        };
        format!(
            "postgres://{SUPERUSER}:{}@{host}:{}/{database}",
            self.password, self.port
        )
    }

    /// Stops the server cleanly (fast shutdown: waits for the checkpoint).
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.ctl(&["stop", "-m", "fast", "-w", "-t", "60"]).await?;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    async fn init(&self, root: &Path, options: Options) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.pgdata)?;
        let pwfile = root.join("pg-initial-password");
        write_private(&pwfile, &self.password)?;
        if self.as_postgres {
            chown_postgres(&self.pgdata).await?;
            chown_postgres(&pwfile).await?;
        }
        let result = self
            .run(
                "initdb",
                &[
                    "-D",
                    &self.pgdata.to_string_lossy(),
                    "-U",
                    SUPERUSER,
                    &format!("--pwfile={}", pwfile.display()),
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
            )
            .await;
        std::fs::remove_file(&pwfile).ok();
        result.context("initdb failed")?;
        let mut conf = String::from(
            "\n# EV Carbon Exchange embedded server\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\nshared_buffers = 256MB\n",
        );
        // The ledger, orders and bids grow by thousands of rows a minute from a small start:
        // statistics follow within seconds, so plans — and the cached plans of foreign-key
        // checks, which otherwise keep scanning a grown table as if it still had a few rows —
        // are made again on the new figures.
        conf.push_str("autovacuum_naptime = 10s\n");
        if !options.fsync {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        // Profiling a benchmark: `EVCX_PG_PROFILE=1` loads pg_stat_statements.
        if std::env::var("EVCX_PG_PROFILE").is_ok_and(|v| v == "1") {
            conf.push_str(
                "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n",
            );
        }
        let conf_path = self.pgdata.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        Ok(())
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url_for("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    async fn ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut full = vec![
            "-D",
            self.pgdata.to_str().context("data path is not UTF-8")?,
        ];
        full.extend_from_slice(args);
        self.run("pg_ctl", &full).await
    }

    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = self.bin_dir.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let output = cmd
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running {}", exe.display()))?;
        if !output.status.success() {
            bail!(
                "{program} {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

/// `EVCX_PG_BIN`, or the newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("EVCX_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries were not found under /usr/lib/postgresql. \
             Install them (`apt-get install postgresql`; `make run` does it), set EVCX_PG_BIN, \
             or set DATABASE_URL to use an existing database."
        ),
    }
}

async fn running_as_root() -> anyhow::Result<bool> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .await
        .context("running id -u")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

async fn chown_postgres(path: &Path) -> anyhow::Result<()> {
    let status = Command::new("chown")
        .arg("-R")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .await?;
    if !status.success() {
        bail!(
            "could not give {} to the postgres user (does the user exist?)",
            path.display()
        );
    }
    // The postgres user must be able to reach the folder through every parent.
    let mut parent = path.parent();
    while let Some(dir) = parent {
        let check = Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-x"])
            .arg(dir)
            .status()
            .await?;
        if !check.success() {
            bail!(
                "the postgres user cannot enter {}; put the data folder elsewhere with EVCX_DATA_DIR",
                dir.display()
            );
        }
        parent = dir.parent();
    }
    Ok(())
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// The data folder as the socket's folder, unless the socket's path would be too long for a
/// Unix socket (108 bytes on Linux) or the folder's name has characters a shell or a URL would
/// need quoted; then the server is reached over loopback TCP only.
fn socket_dir(pgdata: &Path) -> Option<PathBuf> {
    let dir = pgdata.to_str()?;
    let plain = dir
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    (plain && dir.len() + "/.s.PGSQL.65535".len() < 100).then(|| pgdata.to_owned())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
