//! What an earlier run of the embedded PostgreSQL can leave in its data folder — a pid file, its
//! processes, socket lock files — and how to tell a live server of ours from a stale file.
//! Processes are read from `/proc`: `kill(pid, 0)`, which pg_ctl relies on, also succeeds for a
//! zombie and for any process that took a dead server's pid.

use std::path::{Path, PathBuf};

/// The first lines of `postmaster.pid` (PostgreSQL's `LOCK_FILE_LINE_*`).
#[derive(Debug)]
pub(super) struct PidFile {
    pub pid: u32,
    pub port: Option<u16>,
    socket_dir: Option<String>,
    listen_address: Option<String>,
}

impl PidFile {
    /// None when there is no pid file or it holds no pid (a server killed while writing it).
    pub fn read(pgdata: &Path) -> Option<PidFile> {
        let text = std::fs::read_to_string(pid_file_path(pgdata)).ok()?;
        PidFile::parse(&text)
    }

    fn parse(text: &str) -> Option<PidFile> {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let line = |n: usize| lines.get(n - 1).copied().filter(|l| !l.is_empty());
        Some(PidFile {
            // A single-user backend writes its pid negated.
            pid: line(1)?.trim_start_matches('-').parse().ok()?,
            port: line(4).and_then(|p| p.parse().ok()),
            socket_dir: line(5).map(str::to_owned),
            listen_address: line(6).map(str::to_owned),
        })
    }

    /// Where a client reaches the server: the socket's folder, else its listen address.
    pub fn host(&self) -> &str {
        match (&self.socket_dir, &self.listen_address) {
            (Some(dir), _) => dir,
            (None, Some(address)) if address != "*" => address,
            _ => "127.0.0.1",
        }
    }
}

/// A running (not zombie) process of the PostgreSQL server binary that works in `pgdata`:
/// the postmaster changes to its data folder and every process it forks inherits that.
pub(super) fn is_server_process_of(pid: u32, pgdata: &Path) -> bool {
    is_running(pid) && runs_postgres(pid) && working_dir(pid).as_deref() == Some(pgdata)
}

/// The running processes of a PostgreSQL server in `pgdata`: after its postmaster is gone,
/// those it left, which hold its shared memory until they end.
pub(super) fn server_processes_of(pgdata: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&pid| is_server_process_of(pid, pgdata))
        .collect()
}

/// Alive: neither gone nor a zombie, which has ended and only waits for its parent.
pub(super) fn is_running(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// Removes `postmaster.pid` and the socket lock files (with their sockets) from `pgdata`. Only
/// for when no process of a server runs there: then nobody holds them, and PostgreSQL would
/// refuse a pid file whose pid now names some other process.
pub(super) fn remove_stale_lock_files(pgdata: &Path) -> anyhow::Result<()> {
    let mut stale = vec![pid_file_path(pgdata)];
    for entry in std::fs::read_dir(pgdata)?.flatten() {
        let name = entry.file_name();
        let Some(socket) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
            continue;
        };
        if socket.starts_with(".s.PGSQL.") {
            stale.push(entry.path());
            stale.push(pgdata.join(socket));
        }
    }
    for path in stale.into_iter().filter(|p| p.exists()) {
        tracing::warn!(file = %path.display(), "removing a stale file of an earlier PostgreSQL");
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

fn pid_file_path(pgdata: &Path) -> PathBuf {
    pgdata.join("postmaster.pid")
}

/// The state letter of `/proc/<pid>/stat` (R, S, D, T, Z, …); None when there is no such process.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name before the state is in parentheses and may itself hold some.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().next()?.chars().next()
}

/// Whether the process runs a `postgres` binary (`postgres (deleted)` after an upgrade).
/// Unreadable for a process of another user when we are not root: then it is none of ours.
fn runs_postgres(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|exe| Some(exe.file_name()?.to_str()?.starts_with("postgres")))
        .unwrap_or(false)
}

fn working_dir(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_gives_where_its_server_listens() {
        let file = PidFile::parse(
            "4242\n/data/pg\n1700000000\n54321\n/data/pg\n127.0.0.1\n  5432001    32768\nready   \n",
        )
        .unwrap();
        assert_eq!(file.pid, 4242);
        assert_eq!(file.port, Some(54321));
        assert_eq!(file.host(), "/data/pg");
    }

    #[test]
    fn without_a_socket_the_server_is_reached_at_its_listen_address() {
        let file = PidFile::parse("4242\n/data/pg\n1700000000\n54321\n\n127.0.0.1\n").unwrap();
        assert_eq!(file.host(), "127.0.0.1");
    }

    #[test]
    fn a_pid_file_cut_short_by_a_crash_names_no_process() {
        assert!(PidFile::parse("").is_none());
        assert!(PidFile::parse("\n").is_none());
    }

    #[test]
    fn this_process_runs_and_is_no_postgres_server() {
        let me = std::process::id();
        assert!(is_running(me));
        assert!(!is_server_process_of(me, &std::env::current_dir().unwrap()));
    }

    #[test]
    fn an_ended_child_not_yet_waited_for_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_state(pid) != Some('Z') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(process_state(pid), Some('Z'));
        assert!(!is_running(pid));
        child.wait().unwrap();
    }
}
