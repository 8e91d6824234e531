//! Knowing when the server takes connections: probing its socket, waiting through start-up, and
//! quoting the server log when it does not come up.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tracing::warn;

use super::os_user::prepare_child;
use super::postmaster::{Keeper, KeeperEnd};
use super::{
    EmbeddedError, EmbeddedPostgres, IoContext, LOG_TAIL_LINES, POLL_INTERVAL, PORT, READY_TIMEOUT,
    describe,
};

/// How long one probe waits for an answer (pg_isready's `--timeout`; libpq's minimum is 2 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Polls the server we just forked until it takes connections. Fails when it exits first, when
/// it is not ready within [`READY_TIMEOUT`] (then it is shut down), or when it cannot be probed.
pub(super) fn wait_until_ready(
    keeper: Keeper,
    pg: &EmbeddedPostgres,
    log_offset: u64,
) -> Result<Keeper, EmbeddedError> {
    let log = &pg.log_path;
    let started = Instant::now();
    loop {
        if keeper.thread.is_finished() {
            let status = match keeper.thread.join() {
                Ok(KeeperEnd::Exited(status)) => status.to_string(),
                Ok(other) => format!("{other:?}"),
                Err(_) => "keeper thread panicked".into(),
            };
            return Err(EmbeddedError::ExitedEarly {
                status,
                log: log.clone(),
                tail: log_tail(log, log_offset),
            });
        }
        let failure = match probe(pg) {
            Ok(Probe::Ready) => return Ok(keeper),
            Ok(Probe::Busy | Probe::Down) if started.elapsed() < READY_TIMEOUT => None,
            Ok(Probe::Busy | Probe::Down) => Some(EmbeddedError::NotReady {
                socket: pg.socket(),
                waited: READY_TIMEOUT,
                log: log.clone(),
                tail: log_tail(log, log_offset),
            }),
            Err(e) => Some(e),
        };
        if let Some(failure) = failure {
            if let Err(e) = keeper.shut_down() {
                warn!(error = %e, "stopping the PostgreSQL that did not become ready");
            }
            return Err(failure);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// What the server says to a connection attempt on its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// It takes connections.
    Ready,
    /// It answers but refuses connections for now: starting up, shutting down or recovering.
    Busy,
    /// Nothing answers on the socket (no server, a stale socket file, or no answer in time).
    Down,
}

/// While the server is `Busy`, polls for up to `timeout` until it is `Ready` or `Down`.
pub(super) fn wait_while_busy(
    pg: &EmbeddedPostgres,
    timeout: Duration,
) -> Result<Probe, EmbeddedError> {
    let started = Instant::now();
    loop {
        let probe = probe(pg)?;
        if probe != Probe::Busy || started.elapsed() >= timeout {
            return Ok(probe);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Asks `pg_isready`, from the server's own bin folder, about the cluster's socket, as user
/// `postgres` on database `postgres`. An answer that is an error (say, a failed login) still
/// comes from a running server, so it counts as ready, as it does for pg_isready.
fn probe(pg: &EmbeddedPostgres) -> Result<Probe, EmbeddedError> {
    let mut cmd = Command::new(pg.bin_dir.join("pg_isready"));
    cmd.arg("--quiet")
        .arg("--host")
        .arg(&pg.socket_dir)
        .args(["--port", &PORT.to_string()])
        .args(["--dbname", "postgres", "--username", "postgres"])
        .args(["--timeout", &PROBE_TIMEOUT.as_secs().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // libpq reads PGHOST, PGSSLMODE, PGSERVICE and the like: only our arguments may count.
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
    prepare_child(&mut cmd, None, Signal::SIGKILL);
    let out = cmd
        .output()
        .context(|| format!("running {}", describe(&cmd)))?;
    probe_state(out.status).ok_or_else(|| EmbeddedError::CommandFailed {
        command: describe(&cmd),
        status: out.status,
        output: last_lines(&String::from_utf8_lossy(&out.stderr), LOG_TAIL_LINES),
    })
}

/// pg_isready's exit codes: 0 accepting connections, 1 rejecting them (starting up or shutting
/// down), 2 no response, 3 no attempt made (bad arguments: our mistake, so no state at all).
fn probe_state(status: ExitStatus) -> Option<Probe> {
    match status.code() {
        Some(0) => Some(Probe::Ready),
        Some(1) => Some(Probe::Busy),
        Some(2) => Some(Probe::Down),
        _ => None,
    }
}

pub(super) fn read_postmaster_pid(pid_file: &Path) -> Option<u32> {
    fs::read_to_string(pid_file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The last lines written to the log since `from` (capped at its last 64 KiB).
pub(super) fn log_tail(path: &Path, from: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(from.max(len.saturating_sub(64 * 1024))))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(last_lines(&String::from_utf8_lossy(&bytes), LOG_TAIL_LINES))
    };
    read().unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

pub(super) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn pg_isready_exit_codes_map_to_states() {
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(probe_state(exited(0)), Some(Probe::Ready));
        assert_eq!(probe_state(exited(1)), Some(Probe::Busy));
        assert_eq!(probe_state(exited(2)), Some(Probe::Down));
        assert_eq!(probe_state(exited(3)), None);
        assert_eq!(
            probe_state(ExitStatus::from_raw(9)),
            None,
            "killed by SIGKILL"
        );
    }

    #[test]
    fn probe_of_a_missing_socket_is_down() {
        let Ok(bin_dir) = super::super::find_bin_dir() else {
            eprintln!("skipped: no PostgreSQL binaries on this machine");
            return;
        };
        let pg = EmbeddedPostgres {
            root: PathBuf::from("/nonexistent"),
            data_dir: PathBuf::from("/nonexistent/data"),
            socket_dir: PathBuf::from("/nonexistent/run"),
            log_path: PathBuf::from("/nonexistent/postgres.log"),
            bin_dir,
            pid: None,
            keeper: None,
        };
        assert_eq!(probe(&pg).expect("probe"), Probe::Down);
    }
}
