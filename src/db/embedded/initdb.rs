//! Creating the cluster with `initdb`, the first time a folder is used.

use std::ffi::CStr;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;
use tracing::info;

use super::os_user::{RunAs, prepare_child};
use super::readiness::last_lines;
use super::{EmbeddedError, IoContext, LOG_TAIL_LINES, describe};

pub(super) fn run_initdb(
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
    prepare_child(&mut cmd, run_as, Signal::SIGTERM);
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
///
/// This stays a direct libc call: nix has no wrapper for newlocale(3), and asking the C library
/// itself is the one check that sees what initdb will see (`locale -a` output differs by libc).
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
