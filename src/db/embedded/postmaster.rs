//! The postmaster process: its command line and settings, the keeper thread that forks it and
//! alone signals and reaps it, and the shutdown sequence (SIGINT, SIGQUIT, SIGKILL).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::os_user::{RunAs, prepare_child};
use super::{EmbeddedError, EmbeddedPostgres, IoContext, POLL_INTERVAL, PORT, describe};

const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The thread that forked the postmaster, which must live as long as the server should.
#[derive(Debug)]
pub(super) struct Keeper {
    pub(super) pid: u32,
    /// Never sent on: hanging up (drop) is the request to shut down.
    stop_tx: mpsc::Sender<()>,
    pub(super) thread: JoinHandle<KeeperEnd>,
}

#[derive(Debug)]
pub(super) enum KeeperEnd {
    /// The spawn failed; the error went back to the starter.
    NotStarted,
    /// We asked it to stop, and it exited (or could not be made to).
    Stopped(io::Result<ExitStatus>),
    /// It exited by itself: a crash, a startup failure, someone else's signal.
    Exited(ExitStatus),
    /// waitpid failed, so we lost track of it. The keeper ends, which fires the death signal.
    Lost(io::Error),
}

impl Keeper {
    /// Blocking: asks for a shutdown and waits for the keeper to report.
    pub(super) fn shut_down(self) -> Result<(), EmbeddedError> {
        let Keeper {
            pid,
            stop_tx,
            thread,
        } = self;
        drop(stop_tx);
        match thread.join() {
            Ok(KeeperEnd::Stopped(Ok(status))) => {
                info!(pid, %status, "PostgreSQL stopped");
                Ok(())
            }
            Ok(KeeperEnd::Stopped(Err(source))) => Err(EmbeddedError::Io {
                context: format!("stopping postgres (pid {pid})"),
                source,
            }),
            Ok(KeeperEnd::Exited(status)) => {
                warn!(pid, %status, "PostgreSQL had already exited");
                Ok(())
            }
            Ok(KeeperEnd::Lost(source)) => Err(EmbeddedError::Io {
                context: format!("waiting for postgres (pid {pid})"),
                source,
            }),
            Ok(KeeperEnd::NotStarted) => Ok(()),
            Err(_) => Err(EmbeddedError::Internal(
                "the postgres keeper thread panicked".into(),
            )),
        }
    }
}

/// Spawns the postmaster from a new keeper thread; returns it with the log's length before this
/// run, so that errors can quote only what this run wrote.
pub(super) fn spawn_postmaster(
    pg: &EmbeddedPostgres,
    run_as: Option<RunAs>,
    ephemeral: bool,
) -> Result<(Keeper, u64), EmbeddedError> {
    let log_path = &pg.log_path;
    // O_NOFOLLOW: we open it as root, so a planted symlink must not redirect the server's output.
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(log_path)
        .context(|| format!("opening {}", log_path.display()))?;
    let offset = log
        .metadata()
        .context(|| format!("inspecting {}", log_path.display()))?
        .len();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    writeln!(
        log,
        "usersvc: starting postgres on {} (unix time {now})",
        pg.data_dir.display()
    )
    .context(|| format!("writing {}", log_path.display()))?;
    let stderr = log
        .try_clone()
        .context(|| format!("duplicating {}", log_path.display()))?;

    let mut settings: Vec<OsString> = vec![
        // No TCP at all: the socket folder's permissions are then the whole access control.
        "listen_addresses=".into(),
        socket_dirs_setting(&pg.socket_dir),
        // Explicit, or a PGPORT in our environment would rename the socket.
        format!("port={PORT}").into(),
        "max_connections=200".into(),
        "shared_buffers=128MB".into(),
        // Shows in process titles: "postgres: usersvc: checkpointer".
        "cluster_name=usersvc".into(),
        // No DETAIL, HINT, QUERY or CONTEXT lines: a unique violation's DETAIL quotes the key,
        // and an identity's key is an email address, which has no place in a server log.
        "log_error_verbosity=terse".into(),
    ];
    if ephemeral {
        settings.extend(
            [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ]
            .map(OsString::from),
        );
    }
    let mut cmd = Command::new(pg.bin_dir.join("postgres"));
    cmd.arg("-D").arg(&pg.data_dir);
    for setting in settings {
        cmd.arg("-c").arg(setting);
    }
    cmd.stdout(log).stderr(stderr);
    prepare_child(&mut cmd, run_as, Signal::SIGINT);
    let command = describe(&cmd);
    debug!(%command, "starting PostgreSQL");

    let (pid_tx, pid_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("postgres-keeper".into())
        .spawn(move || keep(cmd, &pid_tx, &stop_rx))
        .context(|| "starting the postgres keeper thread".into())?;
    match pid_rx.recv() {
        Ok(Ok(pid)) => Ok((
            Keeper {
                pid,
                stop_tx,
                thread,
            },
            offset,
        )),
        Ok(Err(source)) => Err(EmbeddedError::Io {
            context: format!("starting {command}"),
            source,
        }),
        Err(_) => Err(EmbeddedError::Internal(
            "the postgres keeper thread ended before starting postgres".into(),
        )),
    }
}

/// `unix_socket_directories` is a list: quote the folder so a comma or a space in it is no
/// separator (PostgreSQL's list syntax doubles quotes inside quotes).
fn socket_dirs_setting(dir: &Path) -> OsString {
    let mut value = b"unix_socket_directories=\"".to_vec();
    for &byte in dir.as_os_str().as_bytes() {
        if byte == b'"' {
            value.push(b'"');
        }
        value.push(byte);
    }
    value.push(b'"');
    OsString::from_vec(value)
}

/// The keeper thread: forks the postmaster, then polls for its exit or for a hang-up on
/// `stop_rx`. Only this thread signals and reaps the child, so a signal can never hit a reused
/// pid. Polling every 100 ms costs nothing measurable.
fn keep(
    mut cmd: Command,
    pid_tx: &mpsc::Sender<io::Result<u32>>,
    stop_rx: &mpsc::Receiver<()>,
) -> KeeperEnd {
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = pid_tx.send(Err(e));
            return KeeperEnd::NotStarted;
        }
    };
    // Closes our copies of the log descriptors; the child has its own.
    drop(cmd);
    let pid = child.id();
    let _ = pid_tx.send(Ok(pid));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                warn!(pid, %status, "PostgreSQL exited on its own");
                return KeeperEnd::Exited(status);
            }
            Ok(None) => {}
            Err(e) => {
                warn!(pid, error = %e, "cannot wait for PostgreSQL; letting the death signal stop it");
                return KeeperEnd::Lost(e);
            }
        }
        match stop_rx.recv_timeout(POLL_INTERVAL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return KeeperEnd::Stopped(shut_down(&mut child));
            }
        }
    }
}

/// SIGINT (fast shutdown: ends sessions, checkpoints, exits), then SIGQUIT (immediate shutdown,
/// crash recovery at next start), then SIGKILL.
fn shut_down(child: &mut Child) -> io::Result<ExitStatus> {
    let pid = child.id();
    // A child's pid is a positive pid_t, so the cast keeps its value.
    let target = Pid::from_raw(pid as i32);
    for (signal, grace) in [
        (Signal::SIGINT, STOP_TIMEOUT),
        (Signal::SIGQUIT, QUIT_TIMEOUT),
    ] {
        // The child is not reaped yet (only this thread waits for it), so the pid is still its own.
        if let Err(errno) = kill(target, signal) {
            warn!(pid, error = %errno, "could not send {signal} to PostgreSQL");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        warn!(
            pid,
            "PostgreSQL still running {}s after {signal}",
            grace.as_secs()
        );
    }
    child.kill()?;
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_setting_quotes_the_folder() {
        assert_eq!(
            socket_dirs_setting(Path::new("/a,\"b")),
            OsString::from("unix_socket_directories=\"/a,\"\"b\"")
        );
    }
}
