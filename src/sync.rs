//! Locking shared maps and queues.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also after a holder panicked: every mutex usersvc shares guards a map or queue
/// that each operation leaves valid (an insert, a removal, a receive), so a panic elsewhere
/// must not turn every later request into a second panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
