//! Knowing when the server takes connections: probing its socket, waiting through start-up, and
//! quoting the server log when it does not come up.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use tracing::warn;

use super::postmaster::{Keeper, KeeperEnd};
use super::{EmbeddedError, LOG_TAIL_LINES, POLL_INTERVAL, READY_TIMEOUT};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn wait_until_ready(
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
pub(super) enum Probe {
    /// A server answered as one that takes connections.
    Ready,
    /// Something is there but not taking connections yet (or any more): starting up, shutting
    /// down, recovering, or too slow to answer.
    Busy,
    /// Nothing listens on the socket.
    Down,
}

/// While the server is `Busy`, polls for up to `timeout` until it is `Ready` or `Down`.
pub(super) fn wait_while_busy(socket: &Path, timeout: Duration) -> Probe {
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
    use super::*;

    #[test]
    fn probe_of_a_missing_socket_is_down() {
        assert_eq!(probe(Path::new("/nonexistent/.s.PGSQL.5432")), Probe::Down);
    }
}
