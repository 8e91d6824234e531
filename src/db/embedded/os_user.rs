//! The OS user the server runs as, and how every child process we spawn is set up: as root,
//! PostgreSQL refuses to run, so initdb and postgres run as the `postgres` OS user; and every
//! child gets a death signal so that it never outlives the thread that forked it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User, geteuid, getpid, getppid, getuid};

use super::EmbeddedError;

/// The OS user the server runs as when we are root.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunAs {
    pub(super) uid: Uid,
    pub(super) gid: Gid,
}

pub(super) fn is_root() -> bool {
    geteuid().is_root()
}

/// Looks up `postgres` with the reentrant getpwnam_r, since other threads may be looking up
/// users too.
pub(super) fn postgres_os_user() -> Result<RunAs, EmbeddedError> {
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(RunAs {
            uid: user.uid,
            gid: user.gid,
        }),
        // "Not found" may come back as any of these errors, depending on the NSS module.
        Ok(None) | Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => {
            Err(EmbeddedError::NoPostgresUser)
        }
        Err(errno) => Err(EmbeddedError::Io {
            context: "looking up the postgres OS user".into(),
            source: errno.into(),
        }),
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
pub(super) fn prepare_child(cmd: &mut Command, run_as: Option<RunAs>, death_signal: Signal) {
    cmd.current_dir("/").stdin(Stdio::null());
    if let Some(ids) = run_as {
        cmd.uid(ids.uid.as_raw()).gid(ids.gid.as_raw());
    }
    let expected_uid = run_as.map(|ids| ids.uid);
    let parent = getpid();
    let tie_to_parent = move || -> io::Result<()> {
        if let Some(uid) = expected_uid
            && getuid() != uid
        {
            return Err(Errno::EPERM.into());
        }
        set_pdeathsig(death_signal)?;
        // Our parent died before the death signal was set: it will never come.
        if getppid() != parent {
            return Err(Errno::ESRCH.into());
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec, where only async-signal-safe calls are
    // allowed: getuid, prctl and getppid are, and it does not allocate (an io::Error made from
    // an errno stores the number inline).
    unsafe {
        cmd.pre_exec(tie_to_parent);
    }
}
