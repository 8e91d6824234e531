//! Per-app shares of a shared resource: no app may hold more than its share at once, so one
//! app's flood leaves room for every other app. Used for database connections and password
//! hashing threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many apps' idle entries are kept before the map is pruned.
const PRUNE_ABOVE: usize = 4096;

/// At most `share` units per app at once.
#[derive(Debug)]
pub struct PerApp {
    share: usize,
    apps: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

/// An app's unit, held until dropped.
pub type Unit = OwnedSemaphorePermit;

impl PerApp {
    /// An app's share of a resource of `total` units: all but a quarter of it (at least one unit
    /// is left for the others), and never less than one.
    pub fn of_total(total: usize) -> Self {
        let reserve = (total / 4).max(1);
        PerApp::with_share(total.saturating_sub(reserve).max(1))
    }

    /// At most `share` units per app.
    pub fn with_share(share: usize) -> Self {
        PerApp {
            share: share.max(1),
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// How many units one app may hold.
    pub fn share(&self) -> usize {
        self.share
    }

    /// One unit for `app`, waiting at most `timeout` for one of its units to come free; `None`
    /// when the wait ran out.
    pub async fn acquire(&self, app: &str, timeout: Duration) -> Option<Unit> {
        let semaphore = {
            // Every holder leaves the map valid (a lookup, an insert, a prune).
            let mut apps = self.apps.lock().unwrap_or_else(PoisonError::into_inner);
            match apps.get(app) {
                Some(semaphore) => semaphore.clone(),
                None => {
                    if apps.len() > PRUNE_ABOVE {
                        let share = self.share;
                        apps.retain(|_, s| s.available_permits() < share);
                    }
                    let semaphore = Arc::new(Semaphore::new(self.share));
                    apps.insert(Arc::from(app), semaphore.clone());
                    semaphore
                }
            }
        };
        // A free unit is taken at once, without arming a timer.
        if let Ok(unit) = semaphore.clone().try_acquire_owned() {
            return Some(unit);
        }
        tokio::time::timeout(timeout, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_leave_room_for_other_apps() {
        assert_eq!(PerApp::of_total(28).share(), 21);
        assert_eq!(PerApp::of_total(16).share(), 12);
        assert_eq!(PerApp::of_total(3).share(), 2);
        assert_eq!(PerApp::of_total(2).share(), 1);
        assert_eq!(PerApp::of_total(1).share(), 1);
    }

    #[tokio::test]
    async fn an_app_waits_for_its_own_units_only() {
        let q = PerApp::with_share(2);
        let short = Duration::from_millis(20);
        let a1 = q.acquire("a", short).await.expect("first");
        let _a2 = q.acquire("a", short).await.expect("second");
        assert!(
            q.acquire("a", short).await.is_none(),
            "a's share is used up"
        );
        assert!(
            q.acquire("b", short).await.is_some(),
            "b is not held up by a"
        );
        drop(a1);
        assert!(q.acquire("a", short).await.is_some(), "a unit came back");
    }
}
