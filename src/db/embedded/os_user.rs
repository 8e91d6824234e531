//! The OS user the server runs as, and how every child process we spawn is set up: as root,
//! PostgreSQL refuses to run, so initdb and postgres run as the `postgres` OS user; and every
//! child gets a death signal so that it never outlives the thread that forked it.

use std::io;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::EmbeddedError;

/// The OS user the server runs as when we are root.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunAs {
    pub(super) uid: libc::uid_t,
    pub(super) gid: libc::gid_t,
}

pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub(super) fn postgres_os_user() -> Result<RunAs, EmbeddedError> {
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

/// What every child we spawn gets: `/` as working folder (ours may be closed to the postgres
/// user), no stdin, the postgres user's ids when we are root, and a death signal so that it does
/// not outlive the thread that forked it.
///
/// std applies uid/gid before running pre_exec closures, and that order matters: the kernel
/// clears the death signal whenever the euid/egid change, so it must be set after. The closure
/// checks the uid really changed, so a future std doing otherwise fails loudly instead of
/// silently losing the death signal.
pub(super) fn prepare_child(cmd: &mut Command, run_as: Option<RunAs>, death_signal: libc::c_int) {
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
