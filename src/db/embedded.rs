//! A private PostgreSQL cluster, started from the machine's own PostgreSQL binaries.
//!
//! usersvc needs a database, but nobody should have to install, configure and start one by hand
//! to run it on a laptop or in CI, and the integration tests need a throwaway one. This module
//! finds `initdb` and `postgres`, creates a cluster in a folder of ours on first use, starts the
//! postmaster on a Unix socket only, and shuts it down when we stop or die.
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

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

/// The port number in the socket's name (`.s.PGSQL.5432`). Nothing listens on TCP and each
/// cluster has its own socket folder, so the usual number never clashes with another server.
pub const PORT: u16 = 5432;

/// `sizeof(sockaddr_un.sun_path)` less its NUL: PostgreSQL refuses longer socket paths.
const MAX_SOCKET_PATH: usize = 107;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const LOG_TAIL_LINES: usize = 20;
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";
/// Home of Debian's `postgres` OS user: first choice for clusters it must own but cannot reach.
const POSTGRES_HOME: &str = "/var/lib/postgresql";
/// Second choice. Unlike /tmp it survives reboots, though tmpfiles may clean it after weeks.
const VAR_TMP: &str = "/var/tmp";
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
    /// No folder holds both `postgres` and `initdb`; the message says how to install them.
    #[error(
        "PostgreSQL server binaries (postgres and initdb) not found on PATH nor in /usr/lib/postgresql/<version>/bin; install them with: {install}"
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
    /// `initdb` exited unsuccessfully.
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
            percent_encode(self.socket_dir.as_os_str().as_bytes()),
            percent_encode(database.as_bytes())
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
}

/// Finds the folder with initdb/postgres: first PATH (a `postgres` AND `initdb` both present
/// there), then the highest version under /usr/lib/postgresql/*/bin.
///
/// When the PATH entries are symlinks (as /usr/local/bin/postgres -> /usr/lib/postgresql/15/bin
/// here) and the folder they point into has both programs, that folder is returned instead: it
/// also holds psql, pg_dump and the rest, which a PATH folder of a few links may not.
pub fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    find_bin_dir_in(
        std::env::var_os("PATH").as_deref(),
        Path::new(DEBIAN_PG_LIB),
    )
    .ok_or(EmbeddedError::BinariesNotFound {
        install: if is_root() {
            INSTALL_AS_ROOT
        } else {
            INSTALL_WITH_SUDO
        },
    })
}

fn find_bin_dir_in(path_var: Option<&OsStr>, debian_lib: &Path) -> Option<PathBuf> {
    let has_server =
        |dir: &Path| is_executable(&dir.join("postgres")) && is_executable(&dir.join("initdb"));
    for dir in path_var.into_iter().flat_map(std::env::split_paths) {
        if !dir.is_absolute() || !has_server(&dir) {
            continue;
        }
        if let Some(real) = fs::canonicalize(dir.join("postgres"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            && has_server(&real)
        {
            return Some(real);
        }
        return Some(dir);
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir(debian_lib).ok()?.flatten() {
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(parse_version) else {
            continue;
        };
        let bin = entry.path().join("bin");
        if has_server(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// "15" -> [15], "9.6" -> [9, 6], so that 15 > 10 > 9.6; anything else is not a version folder.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
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
    let socket = socket_dir.join(format!(".s.PGSQL.{PORT}"));
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(EmbeddedError::SocketPathTooLong { path: socket, len });
    }
    let mut pg = EmbeddedPostgres {
        log_path: root.join("postgres.log"),
        root,
        data_dir,
        socket_dir,
        bin_dir,
        pid: None,
        keeper: None,
    };

    // A pid file with a server answering on our socket: reuse it. A pid file and no answer:
    // stale, left by a server that was killed; postgres checks and replaces it by itself.
    let pid_file = pg.data_dir.join("postmaster.pid");
    if pid_file.exists() {
        match wait_while_busy(&socket, READY_TIMEOUT) {
            Probe::Ready => {
                pg.pid = read_postmaster_pid(&pid_file);
                info!(data = %pg.data_dir.display(), pid = ?pg.pid, "reusing the running PostgreSQL");
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
    pg.keeper = Some(wait_until_ready(keeper, &socket, &pg.log_path, log_offset)?);
    info!(socket = %pg.socket_dir.display(), pid = ?pg.pid, ephemeral = opts.ephemeral, "PostgreSQL started");
    Ok(pg)
}

/// The OS user the server runs as when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn postgres_os_user() -> Result<RunAs, EmbeddedError> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        let mut pwd = MaybeUninit::<libc::passwd>::uninit();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is its real size. The
        // reentrant variant is used because other threads may be looking up users too.
        let rc = unsafe {
            libc::getpwnam_r(
                c"postgres".as_ptr(),
                pwd.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            // "Not found" may come back as any of these, depending on the NSS module.
            0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM if found.is_null() => {
                return Err(EmbeddedError::NoPostgresUser);
            }
            0 => {
                // SAFETY: getpwnam_r returned 0 with a non-null result, so `pwd` is filled in.
                let pwd = unsafe { pwd.assume_init() };
                return Ok(RunAs {
                    uid: pwd.pw_uid,
                    gid: pwd.pw_gid,
                });
            }
            rc => {
                return Err(EmbeddedError::Io {
                    context: "looking up the postgres OS user".into(),
                    source: io::Error::from_raw_os_error(rc),
                });
            }
        }
    }
}

/// Decides where `data/` and `run/` live when we run as root and the server as `postgres`.
///
/// That user must reach its data and socket folders. When it cannot traverse the path to `root`,
/// they go to a folder of its own and `root/cluster` links there. We chose one symlink inside a
/// `root` that stays a real folder, rather than turning `root` itself into a link: `root` keeps
/// `postgres.log` and the start lock, written by us (root) and so better kept out of a folder the
/// postgres user controls; the link shows at a glance where the data went; and postgres is always
/// given the resolved paths, since it could not follow one through `root` anyway. Once the link
/// exists it is followed on every start, so the cluster does not move if permissions change.
fn cluster_dir_as_root(root: &Path, bin_dir: &Path, ids: RunAs) -> Result<PathBuf, EmbeddedError> {
    let link = root.join("cluster");
    match fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target =
                root.join(fs::read_link(&link).context(|| format!("reading {}", link.display()))?);
            if target == fallback_dir_path(root) {
                // Also recreates it if tmpfiles cleaned /var/tmp.
                create_fallback_dir(root, ids)?;
            } else {
                ensure_private_dir(&target, Some(ids))?;
            }
            return Ok(target);
        }
        Ok(_) => {
            return Err(EmbeddedError::UnsafePath {
                path: link,
                reason: "expected a symlink to the cluster folder".into(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(EmbeddedError::Io {
                context: format!("inspecting {}", link.display()),
                source: e,
            });
        }
    }
    let postgres = bin_dir.join("postgres");
    postgres_user_can_reach(&postgres, Path::new("/"), ids)
        .context(|| format!("running {} as the postgres OS user", postgres.display()))?;
    if root.join("data").exists() {
        return Ok(root.to_path_buf());
    }
    match postgres_user_can_reach(&postgres, root, ids) {
        Ok(()) => return Ok(root.to_path_buf()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
        Err(e) => {
            return Err(EmbeddedError::Io {
                context: format!(
                    "checking whether the postgres OS user can reach {}",
                    root.display()
                ),
                source: e,
            });
        }
    }
    let target = create_fallback_dir(root, ids)?;
    std::os::unix::fs::symlink(&target, &link)
        .context(|| format!("linking {} to {}", link.display(), target.display()))?;
    info!(root = %root.display(), cluster = %target.display(),
        "the postgres OS user cannot reach the data folder; keeping the cluster elsewhere");
    Ok(target)
}

/// Runs `postgres --version` as the postgres user, having the child first check with access(2)
/// that this user can search `dir`. access() checks the real uid, which std has already switched
/// when pre_exec closures run: so this is the kernel's own answer (ACLs, groups and all) rather
/// than our reading of mode bits. EACCES means no.
fn postgres_user_can_reach(postgres: &Path, dir: &Path, ids: RunAs) -> io::Result<()> {
    let dir = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut cmd = Command::new(postgres);
    cmd.arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    prepare_child(&mut cmd, Some(ids), libc::SIGKILL);
    // SAFETY: runs between fork and exec and only calls access(), which is async-signal-safe;
    // the path was allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::access(dir.as_ptr(), libc::X_OK) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`postgres --version` exited with {status}"
        )))
    }
}

fn fallback_dir_path(root: &Path) -> PathBuf {
    let base = if Path::new(POSTGRES_HOME).is_dir() {
        POSTGRES_HOME
    } else {
        VAR_TMP
    };
    let digest = Sha256::digest(root.as_os_str().as_bytes());
    let mut hash = String::with_capacity(16);
    for byte in &digest[..8] {
        let _ = write!(hash, "{byte:02x}");
    }
    Path::new(base).join("usersvc-clusters").join(hash)
}

fn create_fallback_dir(root: &Path, ids: RunAs) -> Result<PathBuf, EmbeddedError> {
    let dir = fallback_dir_path(root);
    if let Some(parent) = dir.parent() {
        ensure_private_dir(parent, Some(ids))?;
    }
    ensure_private_dir(&dir, Some(ids))?;
    Ok(dir)
}

/// Creates `path` (mode 0700) unless it exists, then makes sure it is a real folder owned by
/// whoever runs the server (chowning it from us to the postgres user when we are root), mode
/// 0700. Anything else is refused: as root we must not chown or chmod through a symlink that the
/// postgres user (or, under /var/tmp, anyone) planted, so the checks and changes go through a
/// descriptor opened with O_NOFOLLOW.
fn ensure_private_dir(path: &Path, run_as: Option<RunAs>) -> Result<(), EmbeddedError> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(EmbeddedError::Io {
                context: format!("creating {}", path.display()),
                source: e,
            });
        }
    }
    let unsafe_path = |reason: String| EmbeddedError::UnsafePath {
        path: path.to_path_buf(),
        reason,
    };
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) => {
                unsafe_path("not a plain folder (a symlink or a file?)".into())
            }
            _ => EmbeddedError::Io {
                context: format!("opening {}", path.display()),
                source: e,
            },
        })?;
    let meta = dir
        .metadata()
        .context(|| format!("inspecting {}", path.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner = run_as.map_or(me, |ids| ids.uid);
    if meta.uid() != owner {
        match run_as {
            Some(ids) if meta.uid() == me => {
                std::os::unix::fs::fchown(&dir, Some(ids.uid), Some(ids.gid))
                    .context(|| format!("chowning {} to the postgres OS user", path.display()))?
            }
            _ => {
                return Err(unsafe_path(format!(
                    "owned by uid {}, expected uid {owner}",
                    meta.uid()
                )));
            }
        }
    }
    if meta.mode() & 0o7777 != 0o700 {
        dir.set_permissions(Permissions::from_mode(0o700))
            .context(|| format!("making {} private (0700)", path.display()))?;
    }
    Ok(())
}

/// Serializes starts on one folder across threads and processes. Blocks; released on drop.
fn lock_exclusive(path: &Path) -> Result<File, EmbeddedError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .context(|| format!("opening {}", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor we own; closing `file` releases the lock.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(EmbeddedError::Io {
                context: format!("locking {}", path.display()),
                source: err,
            });
        }
    }
}

/// What every child we spawn gets: `/` as working folder (ours may be closed to the postgres
/// user), no stdin, the postgres user's ids when we are root, and a death signal so that it does
/// not outlive the thread that forked it.
///
/// std applies uid/gid before running pre_exec closures, and that order matters: the kernel
/// clears the death signal whenever the euid/egid change, so it must be set after. The closure
/// checks the uid really changed, so a future std doing otherwise fails loudly instead of
/// silently losing the death signal.
fn prepare_child(cmd: &mut Command, run_as: Option<RunAs>, death_signal: libc::c_int) {
    cmd.current_dir("/").stdin(Stdio::null());
    if let Some(ids) = run_as {
        cmd.uid(ids.uid).gid(ids.gid);
    }
    let expected_uid = run_as.map(|ids| ids.uid);
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: runs between fork and exec; it only makes async-signal-safe calls (getuid, prctl,
    // getppid) and does not allocate (raw OS errors are stored inline).
    unsafe {
        cmd.pre_exec(move || {
            if let Some(uid) = expected_uid
                && libc::getuid() != uid
            {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Our parent died before prctl took effect: the signal will never come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

fn run_initdb(
    bin_dir: &Path,
    data: &Path,
    run_as: Option<RunAs>,
    ephemeral: bool,
) -> Result<(), EmbeddedError> {
    let locale = if locale_available(c"C.UTF-8") {
        "--locale=C.UTF-8"
    } else {
        "--no-locale"
    };
    let mut cmd = Command::new(bin_dir.join("initdb"));
    cmd.arg("-D")
        .arg(data)
        .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", locale]);
    // Only a throwaway cluster may skip the fsync of initdb's files: nothing syncs them later (a
    // checkpoint syncs only what went through shared buffers, and a clean start does no
    // recovery), so a power cut could leave a durable cluster half-written.
    if ephemeral {
        cmd.arg("--no-sync");
    }
    prepare_child(&mut cmd, run_as, libc::SIGTERM);
    let command = describe(&cmd);
    info!(data = %data.display(), "initializing a PostgreSQL cluster");
    let out = cmd.output().context(|| format!("running {command}"))?;
    if !out.status.success() {
        let output = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        return Err(EmbeddedError::CommandFailed {
            command,
            status: out.status,
            output: last_lines(&output, LOG_TAIL_LINES),
        });
    }
    Ok(())
}

/// Whether the C library knows `name`. newlocale, unlike setlocale, leaves the process-wide
/// locale alone, so it is safe with other threads running.
fn locale_available(name: &CStr) -> bool {
    // SAFETY: `name` is NUL-terminated; a non-null result is ours and is freed right away.
    unsafe {
        let locale = libc::newlocale(libc::LC_ALL_MASK, name.as_ptr(), std::ptr::null_mut());
        if locale.is_null() {
            false
        } else {
            libc::freelocale(locale);
            true
        }
    }
}

fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// The thread that forked the postmaster, which must live as long as the server should.
#[derive(Debug)]
struct Keeper {
    pid: u32,
    /// Never sent on: hanging up (drop) is the request to shut down.
    stop_tx: mpsc::Sender<()>,
    thread: JoinHandle<KeeperEnd>,
}

#[derive(Debug)]
enum KeeperEnd {
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
    fn shut_down(self) -> Result<(), EmbeddedError> {
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
fn spawn_postmaster(
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
        .custom_flags(libc::O_NOFOLLOW)
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
    prepare_child(&mut cmd, run_as, libc::SIGINT);
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
    for (signal, name, grace) in [
        (libc::SIGINT, "SIGINT", STOP_TIMEOUT),
        (libc::SIGQUIT, "SIGQUIT", QUIT_TIMEOUT),
    ] {
        // SAFETY: kill has no memory preconditions. The child is not reaped yet (only this thread
        // waits for it), so the pid is still its own.
        if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
            let err = io::Error::last_os_error();
            warn!(pid, error = %err, "could not send {name} to PostgreSQL");
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
            "PostgreSQL still running {}s after {name}",
            grace.as_secs()
        );
    }
    child.kill()?;
    child.wait()
}

fn wait_until_ready(
    keeper: Keeper,
    socket: &Path,
    log: &Path,
    log_offset: u64,
) -> Result<Keeper, EmbeddedError> {
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
                log: log.to_path_buf(),
                tail: log_tail(log, log_offset),
            });
        }
        if probe(socket) == Probe::Ready {
            return Ok(keeper);
        }
        if started.elapsed() >= READY_TIMEOUT {
            if let Err(e) = keeper.shut_down() {
                warn!(error = %e, "stopping the PostgreSQL that did not become ready");
            }
            return Err(EmbeddedError::NotReady {
                socket: socket.to_path_buf(),
                waited: READY_TIMEOUT,
                log: log.to_path_buf(),
                tail: log_tail(log, log_offset),
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A server answered as one that takes connections.
    Ready,
    /// Something is there but not taking connections yet (or any more): starting up, shutting
    /// down, recovering, or too slow to answer.
    Busy,
    /// Nothing listens on the socket.
    Down,
}

/// While the server is `Busy`, polls for up to `timeout` until it is `Ready` or `Down`.
fn wait_while_busy(socket: &Path, timeout: Duration) -> Probe {
    let started = Instant::now();
    loop {
        let probe = probe(socket);
        if probe != Probe::Busy || started.elapsed() >= timeout {
            return probe;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// What `pg_isready` does, without needing it: connect, send a StartupMessage for user and
/// database `postgres`, read the first reply. SQLSTATE 57P03 (cannot_connect_now) means starting
/// or stopping; any other answer, even an error, means a running server.
fn probe(socket: &Path) -> Probe {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return Probe::Down;
    };
    match startup_handshake(&mut stream) {
        Ok(true) => Probe::Ready,
        Ok(false) | Err(_) => Probe::Busy,
    }
}

fn startup_handshake(stream: &mut UnixStream) -> io::Result<bool> {
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    let mut body = 196_608_u32.to_be_bytes().to_vec(); // protocol 3.0
    for part in ["user", "postgres", "database", "postgres", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    stream.write_all(&message)?;

    let mut header = [0_u8; 5];
    stream.read_exact(&mut header)?;
    if header[0] == b'E' {
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut fields = vec![0; len.saturating_sub(4).min(8192)];
        stream.read_exact(&mut fields)?;
        // Each field is a type byte and a NUL-terminated string; 'C' holds the SQLSTATE.
        let sqlstate = fields
            .split(|&b| b == 0)
            .find_map(|field| field.strip_prefix(b"C"));
        return Ok(sqlstate != Some(b"57P03".as_slice()));
    }
    // Authenticated (trust). Say Terminate and read to EOF, so the backend exits quietly rather
    // than logging a broken connection.
    stream.write_all(&[b'X', 0, 0, 0, 4])?;
    let _ = io::copy(stream, &mut io::sink());
    Ok(true)
}

fn read_postmaster_pid(pid_file: &Path) -> Option<u32> {
    fs::read_to_string(pid_file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The last lines written to the log since `from` (capped at its last 64 KiB).
fn log_tail(path: &Path, from: u64) -> String {
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

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a path or a name goes
/// into a URL as one component (`/` becomes `%2F`).
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
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

    /// A scratch folder without extra dev-dependencies (the module must build in usersvc's tree).
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("embedded-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch folder");
        dir
    }

    fn fake_server(bin: &Path) {
        fs::create_dir_all(bin).expect("create bin");
        for name in ["postgres", "initdb"] {
            fs::write(bin.join(name), "#!/bin/sh\n").expect("write program");
            fs::set_permissions(bin.join(name), Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    #[test]
    fn bin_dir_prefers_path_then_highest_debian_version() {
        let dir = scratch("bins");
        let lib = dir.join("lib");
        for version in ["9.6", "10", "15", "notaversion"] {
            fake_server(&lib.join(version).join("bin"));
        }
        fake_server(&lib.join("16")); // no bin/ inside: not a candidate
        assert_eq!(find_bin_dir_in(None, &lib), Some(lib.join("15/bin")));

        let on_path = dir.join("path");
        fake_server(&on_path);
        let path_var = std::env::join_paths([dir.join("empty"), on_path.clone()]).expect("join");
        assert_eq!(find_bin_dir_in(Some(&path_var), &lib), Some(on_path));

        // A PATH folder of symlinks resolves to the folder they point into.
        let links = dir.join("links");
        fs::create_dir_all(&links).expect("create links");
        for name in ["postgres", "initdb"] {
            std::os::unix::fs::symlink(lib.join("10/bin").join(name), links.join(name))
                .expect("symlink");
        }
        assert_eq!(
            find_bin_dir_in(Some(links.as_os_str()), &lib),
            Some(lib.join("10/bin"))
        );

        assert_eq!(find_bin_dir_in(None, &dir.join("missing")), None);
        fs::remove_dir_all(&dir).expect("clean up");
    }

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
    fn percent_encoding_and_socket_setting() {
        assert_eq!(percent_encode(b"/tmp/a b/run"), "%2Ftmp%2Fa%20b%2Frun");
        assert_eq!(percent_encode(b"Db-1_x.y~"), "Db-1_x.y~");
        assert_eq!(
            socket_dirs_setting(Path::new("/a,\"b")),
            OsString::from("unix_socket_directories=\"/a,\"\"b\"")
        );
    }

    #[test]
    fn probe_of_a_missing_socket_is_down() {
        assert_eq!(probe(Path::new("/nonexistent/.s.PGSQL.5432")), Probe::Down);
    }

    #[test]
    fn fallback_folder_is_named_by_a_hash_of_root() {
        let path = fallback_dir_path(Path::new("/root/data/postgres"));
        let name = path.file_name().and_then(OsStr::to_str).expect("name");
        assert_eq!(name.len(), 16);
        assert!(
            path.parent()
                .is_some_and(|p| p.ends_with("usersvc-clusters"))
        );
        assert_ne!(path, fallback_dir_path(Path::new("/root/data/postgres2")));
    }

    #[test]
    fn handle_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedPostgres>();
    }
}
