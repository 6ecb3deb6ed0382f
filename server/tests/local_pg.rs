//! The embedded PostgreSQL comes back after a crash: whatever a killed or stuck server left in
//! its data folder, the next start clears it, PostgreSQL recovers, and every committed row is
//! there. Starts PostgreSQL servers of its own, so it needs no `DATABASE_URL`.

use server::local_pg::{LocalPg, Options};
use sqlx::{Connection, PgConnection};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const OPTIONS: Options = Options { fsync: false };

/// How long a start may take after a crash: crash recovery of this small database takes well
/// under a second; the slowest case (a stuck server) waits a few seconds for answers first.
const COMES_BACK_WITHIN: Duration = Duration::from_secs(45);

/// What the previous run leaves behind when the server starts again.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// `kill -9` of the postmaster; nobody reaps it, so its pid file names a zombie.
    KilledPostmaster,
    /// `kill -9` of the postmaster while a query runs that does not notice for a long time:
    /// its process keeps the killed server's shared memory.
    KilledDuringALongQuery,
    /// The killed postmaster has been reaped: its pid file names no process.
    ReapedPostmaster,
    /// After the crash its pid was taken by an unrelated process of the postgres user.
    PidTakenByAnotherProcess,
    /// After the crash its pid was taken by the process that starts the server now.
    PidTakenByTheStarter,
    /// The postmaster is alive but stopped: it holds its pid and answers nothing.
    StuckPostmaster,
    /// The previous run's server is still up and well.
    StillRunning,
}

const CRASHES: [Crash; 8] = [
    Crash::KilledPostmaster,
    Crash::KilledPostmaster,
    Crash::KilledDuringALongQuery,
    Crash::ReapedPostmaster,
    Crash::PidTakenByAnotherProcess,
    Crash::PidTakenByTheStarter,
    Crash::StuckPostmaster,
    Crash::StillRunning,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_postgres_comes_back_with_every_committed_row_after_a_crash() {
    let _reaper = adopt_orphans();
    // What the start did about each leftover, shown when the test fails (or with --nocapture).
    tracing_subscriber::fmt().with_test_writer().try_init().ok();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("local-pg-crash");
    std::fs::remove_dir_all(&root).ok();
    let pgdata = root.join("pg");
    let mut pg = LocalPg::start(&root, OPTIONS).await.expect("first start");
    let mut db = connect(&pg).await;
    sqlx::query("CREATE TABLE crash_log (cycle int PRIMARY KEY)")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let mut committed = Vec::new();
    let mut helpers = Vec::new();

    for (cycle, crash) in (1..).zip(CRASHES) {
        commit_row(&pg, cycle).await;
        committed.push(cycle);
        // A transaction in flight when the server dies: its process is still attached to the
        // server's shared memory at that moment, and its row must not survive.
        let mut in_flight = connect(&pg).await;
        sqlx::query("BEGIN").execute(&mut in_flight).await.unwrap();
        sqlx::query("INSERT INTO crash_log VALUES ($1)")
            .bind(-cycle)
            .execute(&mut in_flight)
            .await
            .unwrap();
        if let Crash::KilledDuringALongQuery = crash {
            start_endless_query(&pg).await;
        }

        helpers.extend(leave_behind(crash, &pgdata));
        pg = tokio::time::timeout(COMES_BACK_WITHIN, LocalPg::start(&root, OPTIONS))
            .await
            .unwrap_or_else(|_| {
                panic!("no PostgreSQL within {COMES_BACK_WITHIN:?} after {crash:?}")
            })
            .unwrap_or_else(|e| panic!("no PostgreSQL after {crash:?}: {e:#}"));

        assert_eq!(rows(&pg).await, committed, "rows after {crash:?}");
        assert_eq!(
            socket_lock_files(&pgdata),
            1,
            "only the running server's socket lock is left after {crash:?}"
        );
    }

    pg.stop().await.unwrap();
    for mut helper in helpers {
        helper.kill().ok();
        helper.wait().ok();
    }
}

/// pg_ctl starts the postmaster and exits, so the postmaster is nobody's child. As this
/// process's orphans, killed postmasters stay zombies until reaped — what issue 22 saw under an
/// init that does not reap — on every machine, and `ReapedPostmaster` can reap one.
fn adopt_orphans() -> Reaper {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
    Reaper
}

/// Reaps the adopted processes when the test ends, passed or not: left to an init that does not
/// reap, they would stay zombies for as long as the machine runs.
struct Reaper;

impl Drop for Reaper {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let mut status = 0;
            // SAFETY: waitpid writes the exit status into `status`, which outlives the call.
            match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
                -1 => return, // no children left
                0 => std::thread::sleep(Duration::from_millis(20)),
                _ => {}
            }
        }
    }
}

/// Brings about `crash` on the running server; returns a process to end after the test.
fn leave_behind(crash: Crash, pgdata: &Path) -> Option<Child> {
    let postmaster = postmaster_pid(pgdata);
    match crash {
        Crash::KilledPostmaster | Crash::KilledDuringALongQuery => {
            signal(postmaster, libc::SIGKILL)
        }
        Crash::ReapedPostmaster => kill_and_reap(postmaster),
        Crash::PidTakenByAnotherProcess => {
            kill_and_reap(postmaster);
            let other = as_postgres_user(Command::new("sleep").arg("600"))
                .spawn()
                .expect("starting sleep as the postgres user");
            set_postmaster_pid(pgdata, other.id());
            return Some(other);
        }
        Crash::PidTakenByTheStarter => {
            kill_and_reap(postmaster);
            set_postmaster_pid(pgdata, std::process::id());
        }
        Crash::StuckPostmaster => signal(postmaster, libc::SIGSTOP),
        Crash::StillRunning => {}
    }
    None
}

fn postmaster_pid(pgdata: &Path) -> u32 {
    let file = std::fs::read_to_string(pgdata.join("postmaster.pid")).unwrap();
    file.lines().next().unwrap().trim().parse().unwrap()
}

fn set_postmaster_pid(pgdata: &Path, pid: u32) {
    let path = pgdata.join("postmaster.pid");
    let file = std::fs::read_to_string(&path).unwrap();
    let (_, rest) = file.split_once('\n').unwrap();
    std::fs::write(&path, format!("{pid}\n{rest}")).unwrap();
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill takes plain integers and touches no memory.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

fn kill_and_reap(pid: u32) {
    signal(pid, libc::SIGKILL);
    let mut status = 0;
    // SAFETY: waitpid writes the exit status into `status`, which outlives the call.
    let reaped = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    assert_eq!(reaped, pid as libc::pid_t, "reaping the killed postmaster");
}

/// As root, PostgreSQL runs as `postgres`, and so must a process its pid could be reused by.
fn as_postgres_user(command: &mut Command) -> &mut Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.uid(id_of("-u")).gid(id_of("-g"));
    }
    command
}

fn id_of(which: &str) -> u32 {
    let out = Command::new("id")
        .args([which, "postgres"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

async fn connect(pg: &LocalPg) -> PgConnection {
    let mut db = PgConnection::connect(&pg.url()).await.unwrap();
    // The test server runs with synchronous_commit off, where a commit may still sit in
    // shared memory when the server is killed. On for these sessions: a commit then waits
    // until its log record is written (fsync stays off; a killed process does not lose it).
    sqlx::query("SET synchronous_commit = on")
        .execute(&mut db)
        .await
        .unwrap();
    db
}

/// A query that keeps a server process busy until it is killed: a PL/pgSQL loop never waits,
/// so it never learns that its postmaster has died.
async fn start_endless_query(pg: &LocalPg) {
    let mut busy = connect(pg).await;
    tokio::spawn(async move {
        sqlx::query("DO $$ BEGIN LOOP END LOOP; END $$")
            .execute(&mut busy)
            .await
    });
    let mut db = connect(pg).await;
    let running = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
                   WHERE state = 'active' AND query LIKE 'DO $$%')";
    while !sqlx::query_scalar::<_, bool>(running)
        .fetch_one(&mut db)
        .await
        .unwrap()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn commit_row(pg: &LocalPg, cycle: i32) {
    let mut db = connect(pg).await;
    sqlx::query("INSERT INTO crash_log VALUES ($1)")
        .bind(cycle)
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
}

async fn rows(pg: &LocalPg) -> Vec<i32> {
    let mut db = connect(pg).await;
    sqlx::query_scalar("SELECT cycle FROM crash_log ORDER BY cycle")
        .fetch_all(&mut db)
        .await
        .unwrap()
}

fn socket_lock_files(pgdata: &Path) -> usize {
    std::fs::read_dir(pgdata)
        .unwrap()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(".s.PGSQL.") && name.ends_with(".lock")
        })
        .count()
}
