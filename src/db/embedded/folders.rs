//! The cluster's folders: where `data/` and `run/` live when we run as root and the postgres
//! OS user cannot reach `root`, the checks that keep them private (mode 0700, owned by whoever
//! runs the server, never through a symlink), and the lock that serializes starts on a folder.

use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::signal::Signal;
use nix::unistd::{AccessFlags, access, geteuid};
use sha2::{Digest, Sha256};
use tracing::info;

use super::os_user::{RunAs, prepare_child};
use super::{EmbeddedError, IoContext};

/// Home of Debian's `postgres` OS user: first choice for clusters it must own but cannot reach.
const POSTGRES_HOME: &str = "/var/lib/postgresql";
/// Second choice. Unlike /tmp it survives reboots, though tmpfiles may clean it after weeks.
const VAR_TMP: &str = "/var/tmp";

/// Decides where `data/` and `run/` live when we run as root and the server as `postgres`.
///
/// That user must reach its data and socket folders. When it cannot traverse the path to `root`,
/// they go to a folder of its own and `root/cluster` links there. We chose one symlink inside a
/// `root` that stays a real folder, rather than turning `root` itself into a link: `root` keeps
/// `postgres.log` and the start lock, written by us (root) and so better kept out of a folder the
/// postgres user controls; the link shows at a glance where the data went; and postgres is always
/// given the resolved paths, since it could not follow one through `root` anyway. Once the link
/// exists it is followed on every start, so the cluster does not move if permissions change.
pub(super) fn cluster_dir_as_root(
    root: &Path,
    bin_dir: &Path,
    ids: RunAs,
) -> Result<PathBuf, EmbeddedError> {
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
    prepare_child(&mut cmd, Some(ids), Signal::SIGKILL);
    let check = move || -> io::Result<()> { Ok(access(dir.as_c_str(), AccessFlags::X_OK)?) };
    // SAFETY: the closure runs between fork and exec and only calls access(), which is
    // async-signal-safe; the path was allocated before the fork, and an io::Error made from an
    // errno does not allocate.
    unsafe {
        cmd.pre_exec(check);
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
pub(super) fn ensure_private_dir(path: &Path, run_as: Option<RunAs>) -> Result<(), EmbeddedError> {
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
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(path)
        .map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ELOOP | Errno::ENOTDIR) => {
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
    let me = geteuid().as_raw();
    let owner = run_as.map_or(me, |ids| ids.uid.as_raw());
    if meta.uid() != owner {
        match run_as {
            Some(ids) if meta.uid() == me => {
                std::os::unix::fs::fchown(&dir, Some(ids.uid.as_raw()), Some(ids.gid.as_raw()))
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
pub(super) fn lock_exclusive(path: &Path) -> Result<Flock<File>, EmbeddedError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .context(|| format!("opening {}", path.display()))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(locked) => return Ok(locked),
            Err((unlocked, Errno::EINTR)) => file = unlocked,
            Err((_, errno)) => {
                return Err(EmbeddedError::Io {
                    context: format!("locking {}", path.display()),
                    source: errno.into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

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
}
