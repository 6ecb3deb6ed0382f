//! The embedded default database: a private PostgreSQL server started from the machine's
//! PostgreSQL binaries, with its data in a folder of ours, listening on a free loopback port
//! and on a Unix socket in its data folder. The server connects through the socket: a round
//! trip there skips the TCP stack, and a purchase makes several. As root, PostgreSQL refuses
//! to run, so it runs as the `postgres` user.

mod leftovers;

use anyhow::{bail, Context};
use leftovers::PidFile;
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;

pub const DATABASE: &str = "evcx";
const SUPERUSER: &str = "evcx";

/// Starts tried before giving up, the wait before the first retry (doubled each time): a
/// killed server's last processes may hold its shared memory for a moment after they are seen
/// ending, and PostgreSQL refuses to start until they have let go.
const START_ATTEMPTS: u32 = 5;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
/// How long the processes of a killed server get to notice and end by themselves; one busy
/// with a long query notices late, and is then killed.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);
/// How long a server that does not answer gets to end after an immediate stop (its processes
/// end at once, or get SIGKILL from it after 5 s), and a killed process to be gone.
const IMMEDIATE_STOP_GRACE: Duration = Duration::from_secs(6);
const EXIT_GRACE: Duration = Duration::from_secs(10);

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
    /// Initialises `root/pg` on first use, then starts the server — after clearing whatever an
    /// earlier run left there — and makes sure the application database exists.
    pub async fn start(root: &Path, options: Options) -> anyhow::Result<LocalPg> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let root = root.canonicalize()?;
        let pgdata = root.join("pg");
        let mut pg = LocalPg {
            bin_dir: find_bin_dir()?,
            socket_dir: socket_dir(&pgdata),
            pgdata,
            as_postgres: running_as_root().await?,
            port: 0,
            password: String::new(),
        };
        pg.init_or_open(&root, options).await?;
        pg.start_with_retries().await?;
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

    /// Creates the database cluster with a new password on first use; reads the password after.
    async fn init_or_open(&mut self, root: &Path, options: Options) -> anyhow::Result<()> {
        let password_file = root.join("pg-password");
        if self.pgdata.join("PG_VERSION").exists() {
            self.password = std::fs::read_to_string(&password_file)
                .with_context(|| format!("reading {}", password_file.display()))?
                .trim()
                .to_owned();
            return Ok(());
        }
        self.password = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        self.init(root, options).await?;
        write_private(&password_file, &self.password)
    }

    /// A start can fail while a killed server's processes still let go of its shared memory;
    /// each try begins again from clearing what is left.
    async fn start_with_retries(&mut self) -> anyhow::Result<()> {
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempt = 1;
        loop {
            let started = match self.clear_earlier_run().await {
                Ok(()) => self.start_server().await,
                Err(e) => Err(e),
            };
            match started {
                Err(e) if attempt < START_ATTEMPTS => {
                    tracing::warn!(
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %format!("{e:#}"),
                        "embedded PostgreSQL did not start; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Leaves the data folder with no server running and no stale lock: stops a server of an
    /// earlier run, waits for (or ends) the processes of a killed one, then removes the pid and
    /// socket lock files nobody holds. PostgreSQL replays its write-ahead log when it starts.
    async fn clear_earlier_run(&self) -> anyhow::Result<()> {
        if let Some(file) = PidFile::read(&self.pgdata) {
            if leftovers::is_server_process_of(file.pid, &self.pgdata) {
                self.stop_earlier(&file).await?;
            }
        }
        self.end_orphaned_processes().await?;
        leftovers::remove_stale_lock_files(&self.pgdata)
    }

    /// A server of an earlier run is up. One that answers gets the clean (fast) stop; one that
    /// does not, or whose fast stop fails, an immediate stop, then a kill.
    async fn stop_earlier(&self, file: &PidFile) -> anyhow::Result<()> {
        let pid = file.pid;
        if self.answers(file).await {
            tracing::warn!(
                pid,
                "a PostgreSQL from an earlier run is still up; restarting it"
            );
            match self.ctl(&["stop", "-m", "fast", "-w", "-t", "60"]).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(pid, error = %format!("{e:#}"), "fast stop failed"),
            }
        } else {
            tracing::warn!(pid, "a PostgreSQL from an earlier run does not answer");
        }
        // SIGQUIT is what `pg_ctl stop -m immediate` sends; pg_ctl then waits for the pid file
        // to go, which never happens when the postmaster dies unclean (already killed, not yet
        // a zombie when looked at). Waiting for the process instead ends as soon as it is gone.
        for (signal, grace) in [("QUIT", IMMEDIATE_STOP_GRACE), ("KILL", EXIT_GRACE)] {
            if let Err(e) = self.signal(pid, signal).await {
                tracing::warn!(pid, signal, error = %format!("{e:#}"), "signalling it failed");
            }
            if wait_until(grace, || !leftovers::is_running(pid)).await {
                return Ok(());
            }
            tracing::warn!(pid, signal, "the PostgreSQL of an earlier run did not end");
        }
        bail!("the PostgreSQL of an earlier run (pid {pid}) does not end")
    }

    /// Whether the server named by `file` responds to a connection attempt at all (also
    /// "starting up", which is an answer); a stopped or wedged one does not within 3 s.
    async fn answers(&self, file: &PidFile) -> bool {
        let Some(port) = file.port else {
            return false;
        };
        let status = self
            .command("pg_isready")
            .args(["-h", file.host(), "-p", &port.to_string(), "-t", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        // pg_isready: 0 accepting connections, 1 rejecting them (starting up), 2 no response.
        matches!(status.map(|s| s.code()), Ok(Some(0 | 1)))
    }

    /// The processes of a killed postmaster notice it is gone and end, but until they have,
    /// they hold its shared memory and PostgreSQL refuses to start. One busy with a long query
    /// notices late: after a grace period it is killed (its postmaster is gone, and recovery
    /// keeps exactly what was committed).
    async fn end_orphaned_processes(&self) -> anyhow::Result<()> {
        let gone = || leftovers::server_processes_of(&self.pgdata).is_empty();
        if wait_until(ORPHAN_GRACE, gone).await {
            return Ok(());
        }
        for pid in leftovers::server_processes_of(&self.pgdata) {
            tracing::warn!(pid, "killing a process left by an earlier PostgreSQL");
            if let Err(e) = self.signal(pid, "KILL").await {
                tracing::warn!(pid, error = %format!("{e:#}"), "killing it failed");
            }
        }
        if !wait_until(EXIT_GRACE, gone).await {
            bail!(
                "processes {:?} of an earlier PostgreSQL in {} do not end",
                leftovers::server_processes_of(&self.pgdata),
                self.pgdata.display()
            );
        }
        Ok(())
    }

    /// Sends `signal` (a name: QUIT, KILL, …) as the user PostgreSQL runs as.
    async fn signal(&self, pid: u32, signal: &str) -> anyhow::Result<()> {
        self.run("pg_ctl", &["kill", signal, &pid.to_string()])
            .await
    }

    /// Starts PostgreSQL on a free port and waits until it accepts connections (after crash
    /// recovery, when there was a crash).
    async fn start_server(&mut self) -> anyhow::Result<()> {
        self.port = free_port()?;
        let log = self.pgdata.join("server.log");
        let mut port_option = format!("-p {}", self.port);
        if let Some(dir) = &self.socket_dir {
            // pg_ctl hands these to a shell; `socket_dir` only accepts paths without quotes.
            port_option.push_str(&format!(" -k '{}'", dir.display()));
        }
        self.ctl(&[
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
        .with_context(|| format!("starting PostgreSQL (see {})", log.display()))
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
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running {}", self.bin_dir.join(program).display()))?;
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

    /// One of PostgreSQL's programs, run as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin_dir.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.arg("-u").arg("postgres").arg("--").arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.current_dir("/");
        cmd
    }
}

/// Polls `done` until it holds or `limit` has passed; whether it held.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
