//! A private PostgreSQL cluster, started from the machine's own PostgreSQL binaries.
//!
//! usersvc needs a database, but nobody should have to install, configure and start one by hand
//! to run it on a laptop or in CI, and the integration tests need a throwaway one. This module
//! finds `initdb`, `postgres` and `pg_isready`, creates a cluster in a folder of ours on first
//! use, starts the postmaster on a Unix socket only, and shuts it down when we stop or die.
//!
//! Layout under [`EmbeddedOptions::root`] (all paths handed around are absolute):
//! - `data/`: PGDATA, mode 0700.
//! - `run/`: the socket folder, mode 0700. It is the only access control: the cluster uses
//!   `trust` authentication, which is safe because the server listens on no TCP address, so only
//!   whoever can enter this folder (we, and root) can connect.
//! - `postgres.log`: the server's stdout and stderr, appended to across runs.
//! - `.start.lock`: an flock held while starting, so that two processes starting on one folder
//!   neither both run initdb nor both start a server: the second one reuses the first's.
//! - `cluster`: only when running as root and the `postgres` OS user cannot reach `root`; a
//!   symlink to where `data/` and `run/` really are (see [`EmbeddedPostgres::start`]).
//!
//! Lifetime: the postmaster is forked by a dedicated "keeper" thread that owns the child and
//! lives until [`EmbeddedPostgres::stop`] (or until the handle is dropped), and the child sets
//! `PR_SET_PDEATHSIG = SIGINT` (fast shutdown). Linux sends that signal when the *thread* that
//! forked exits, which includes the whole process dying, even by SIGKILL, or a test binary just
//! returning from `main`; so a server we started never outlives us. A server that was already
//! running on the folder is reused and left alone.
//!
//! The parts: `binaries` finds the programs, `os_user` says whom children run as and ties
//! them to us, `folders` makes and checks the cluster's folders, `initdb` creates the
//! cluster, `postmaster` runs and stops the server, `readiness` tells when it takes
//! connections. This file holds the public handle and the start sequence that uses them all.

mod binaries;
mod folders;
mod initdb;
mod os_user;
mod postmaster;
mod readiness;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use tracing::{debug, info};

pub use binaries::find_bin_dir;
use folders::{cluster_dir_as_root, ensure_private_dir, lock_exclusive};
use initdb::run_initdb;
use os_user::{is_root, postgres_os_user};
use postmaster::{Keeper, spawn_postmaster};
use readiness::{Probe, log_tail, read_postmaster_pid, wait_until_ready, wait_while_busy};

/// The port number in the socket's name (`.s.PGSQL.5432`). Nothing listens on TCP and each
/// cluster has its own socket folder, so the usual number never clashes with another server.
pub const PORT: u16 = 5432;

/// `sizeof(sockaddr_un.sun_path)` less its NUL: PostgreSQL refuses longer socket paths.
const MAX_SOCKET_PATH: usize = 107;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LOG_TAIL_LINES: usize = 20;
const INSTALL_AS_ROOT: &str = "apt-get update && apt-get install -y postgresql";
const INSTALL_WITH_SUDO: &str = "sudo apt-get update && sudo apt-get install -y postgresql";

/// Where the cluster lives and how durable it is.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Folder that holds the cluster, e.g. `$USERSVC_DATA_DIR/postgres`. Created when missing.
    pub root: PathBuf,
    /// Throwaway cluster for tests: fsync=off, synchronous_commit=off, full_page_writes=off.
    pub ephemeral: bool,
}

/// What can go wrong while starting or stopping the cluster; each message names the command or
/// path involved.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No folder holds `postgres`, `initdb` and `pg_isready`; the message says how to install
    /// them.
    #[error(
        "PostgreSQL server binaries (postgres, initdb and pg_isready) not found on PATH nor in /usr/lib/postgresql/<version>/bin; install them with: {install}"
    )]
    BinariesNotFound {
        /// The install command for this user (root or not).
        install: &'static str,
    },
    /// Running as root (which PostgreSQL refuses), but there is no `postgres` OS user to run as.
    #[error(
        "running as root, which PostgreSQL refuses, and there is no `postgres` OS user to run it as; installing PostgreSQL creates that user: {}",
        INSTALL_AS_ROOT
    )]
    NoPostgresUser,
    /// The socket path would not fit in a Unix socket address.
    #[error(
        "the Unix socket path {path} is {len} bytes, over the {} a socket address holds; set USERSVC_DATA_DIR to a shorter folder",
        MAX_SOCKET_PATH
    )]
    SocketPathTooLong {
        /// The socket path that would have been used.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A file operation or a process spawn failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path or command.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A PostgreSQL program (`initdb`, `pg_isready`) exited unsuccessfully.
    #[error("{command} failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// The last lines of its output.
        output: String,
    },
    /// A folder we were about to use belongs to someone else or is not a plain folder.
    #[error("refusing to use {path}: {reason}")]
    UnsafePath {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The postmaster exited before it accepted connections.
    #[error("postgres exited during startup ({status}); last lines of {log}:\n{tail}")]
    ExitedEarly {
        /// How it exited.
        status: String,
        /// The server log.
        log: PathBuf,
        /// The last lines this run wrote to it.
        tail: String,
    },
    /// The server did not accept connections in time.
    #[error("postgres did not accept connections on {socket} within {}s; last lines of {log}:\n{tail}", .waited.as_secs())]
    NotReady {
        /// The socket that was polled.
        socket: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// The server log.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// A background thread or task doing the work panicked or was cancelled.
    #[error("{0}")]
    Internal(String),
}

/// A running cluster: either started by us (and stopped by [`stop`](Self::stop), by dropping the
/// handle, or by our death) or found already running on the folder and reused.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    bin_dir: PathBuf,
    pid: Option<u32>,
    /// Present when we own the server. Dropping it (without `stop`) makes the keeper shut the
    /// server down in the background.
    keeper: Option<Keeper>,
}

impl EmbeddedPostgres {
    /// initdb when the cluster does not exist yet, then start it, or reuse one already running
    /// on that folder.
    ///
    /// As root, initdb and postgres run as the `postgres` OS user (PostgreSQL refuses root), and
    /// `data/` and `run/` are chowned to it. If that user cannot traverse the path to `root`
    /// (e.g. it is under /root, mode 0700), `data/` and `run/` go to
    /// `/var/lib/postgresql/usersvc-clusters/<hash of root>` (or `/var/tmp/...` when there is
    /// no /var/lib/postgresql), and `root/cluster` is a symlink to that folder.
    pub async fn start(opts: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        tokio::task::spawn_blocking(move || start_blocking(opts))
            .await
            .map_err(|e| EmbeddedError::Internal(format!("starting PostgreSQL: {e}")))?
    }

    /// Connection URL for a database on this cluster, over the Unix socket, as superuser
    /// `postgres`: `postgresql://postgres@%2Fabs%2Fpath%2Fto%2Frun:5432/DBNAME`.
    ///
    /// The socket folder is the percent-encoded host, not a `?host=` parameter behind
    /// `localhost`: tokio-postgres *adds* a `host` parameter to the hosts of the authority, so
    /// `postgres@localhost/db?host=...` would first try TCP localhost:5432 and could reach some
    /// other server there. This form means the socket alone, to tokio-postgres and libpq alike.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://postgres@{}:{PORT}/{}",
            percent_encode(self.socket_dir.as_os_str().as_bytes(), URL_COMPONENT),
            percent_encode(database.as_bytes(), URL_COMPONENT)
        )
    }

    /// The socket directory (absolute).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// True when this process started the server (and so must stop it).
    pub fn owned(&self) -> bool {
        self.keeper.is_some()
    }

    /// The folder given in [`EmbeddedOptions::root`], made absolute.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// PGDATA (absolute; under the fallback folder when running as root needed one).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log, `root/postgres.log`.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The folder the PostgreSQL programs were taken from (also holds `psql`, `pg_dump`...).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The postmaster's pid: our child's, or for a reused server the one in `postmaster.pid`.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Fast shutdown (SIGINT to the postmaster) and wait for it to exit, if we own it: up to 30 s,
    /// then SIGQUIT (immediate shutdown), then SIGKILL. No-op for a reused cluster.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        let Some(keeper) = self.keeper.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || keeper.shut_down())
            .await
            .map_err(|e| EmbeddedError::Internal(format!("stopping PostgreSQL: {e}")))?
    }

    /// The socket file, `.s.PGSQL.5432` in the socket folder.
    fn socket(&self) -> PathBuf {
        self.socket_dir.join(format!(".s.PGSQL.{PORT}"))
    }
}

fn start_blocking(opts: EmbeddedOptions) -> Result<EmbeddedPostgres, EmbeddedError> {
    let bin_dir = find_bin_dir()?;
    let run_as = if is_root() {
        Some(postgres_os_user()?)
    } else {
        None
    };
    fs::create_dir_all(&opts.root).context(|| format!("creating {}", opts.root.display()))?;
    let root =
        fs::canonicalize(&opts.root).context(|| format!("resolving {}", opts.root.display()))?;
    let _lock = lock_exclusive(&root.join(".start.lock"))?;

    let cluster_dir = match run_as {
        Some(ids) => cluster_dir_as_root(&root, &bin_dir, ids)?,
        None => root.clone(),
    };
    let data_dir = cluster_dir.join("data");
    let socket_dir = cluster_dir.join("run");
    let mut pg = EmbeddedPostgres {
        log_path: root.join("postgres.log"),
        root,
        data_dir,
        socket_dir,
        bin_dir,
        pid: None,
        keeper: None,
    };
    let socket = pg.socket();
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(EmbeddedError::SocketPathTooLong { path: socket, len });
    }

    // A pid file with a server answering on our socket: reuse it. A pid file and no answer:
    // stale, left by a server that was killed; postgres checks and replaces it by itself.
    let pid_file = pg.data_dir.join("postmaster.pid");
    if pid_file.exists() {
        match wait_while_busy(&pg, READY_TIMEOUT)? {
            Probe::Ready => {
                pg.pid = read_postmaster_pid(&pid_file);
                info!(data = %pg.data_dir.display(), pid = pg.pid, "reusing the running PostgreSQL");
                return Ok(pg);
            }
            Probe::Down => {
                debug!(file = %pid_file.display(), "stale pid file, starting PostgreSQL")
            }
            Probe::Busy => {
                return Err(EmbeddedError::NotReady {
                    socket,
                    waited: READY_TIMEOUT,
                    tail: log_tail(&pg.log_path, 0),
                    log: pg.log_path,
                });
            }
        }
    }

    ensure_private_dir(&pg.data_dir, run_as)?;
    ensure_private_dir(&pg.socket_dir, run_as)?;
    if !pg.data_dir.join("PG_VERSION").exists() {
        run_initdb(&pg.bin_dir, &pg.data_dir, run_as, opts.ephemeral)?;
    }
    let (keeper, log_offset) = spawn_postmaster(&pg, run_as, opts.ephemeral)?;
    pg.pid = Some(keeper.pid);
    pg.keeper = Some(wait_until_ready(keeper, &pg, log_offset)?);
    info!(socket = %pg.socket_dir.display(), pid = pg.pid, ephemeral = opts.ephemeral, "PostgreSQL started");
    Ok(pg)
}

/// Everything but RFC 3986's unreserved characters is percent-encoded, so that a path or a name
/// goes into a URL as one component (`/` becomes `%2F`).
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The command line, for messages.
fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, EmbeddedError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, EmbeddedError> {
        self.map_err(|source| EmbeddedError::Io {
            context: what(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_message_says_how_to_install() {
        let message = EmbeddedError::BinariesNotFound {
            install: INSTALL_AS_ROOT,
        }
        .to_string();
        assert!(
            message.contains("apt-get update && apt-get install -y postgresql"),
            "{message}"
        );
        assert!(!message.contains('\n'));
        let message = EmbeddedError::BinariesNotFound {
            install: INSTALL_WITH_SUDO,
        }
        .to_string();
        assert!(
            message.contains("sudo apt-get install -y postgresql"),
            "{message}"
        );
    }

    #[test]
    fn url_encodes_the_socket_folder_and_the_database_as_one_component_each() {
        let pg = EmbeddedPostgres {
            root: PathBuf::from("/tmp/a b"),
            data_dir: PathBuf::from("/tmp/a b/data"),
            socket_dir: PathBuf::from("/tmp/a b/run"),
            log_path: PathBuf::from("/tmp/a b/postgres.log"),
            bin_dir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            pid: None,
            keeper: None,
        };
        assert_eq!(
            pg.url("Db-1_x.y~"),
            "postgresql://postgres@%2Ftmp%2Fa%20b%2Frun:5432/Db-1_x.y~"
        );
        assert_eq!(
            pg.url("ü/{}"),
            "postgresql://postgres@%2Ftmp%2Fa%20b%2Frun:5432/%C3%BC%2F%7B%7D"
        );
    }

    #[test]
    fn handle_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedPostgres>();
    }
}
