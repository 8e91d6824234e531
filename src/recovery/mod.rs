//! One-time links: password resets (mailed or returned), `setPassword`, self-service account
//! deletion, and what the hosted pages do with the links. The service layer for everything
//! behind `cloudcode:users:password` and `cloudcode:users:deletion-url`.
//!
//! Reset links that are mailed are minted by the outbox worker at send time, so no live link
//! ever sits at rest, not even in the outbox (see `crate::mail::outbox`); the tokens themselves
//! are [`crate::links`]'.

pub mod deletion;
pub mod reset;
pub mod self_service;

use crate::error::{AppError, AppResult};
use crate::links::MAX_TTL_MINUTES;

/// A caller's `tokenTtlInMinutes`, checked.
pub fn check_ttl(ttl: Option<i32>) -> AppResult<Option<i32>> {
    match ttl {
        Some(t) if !(1..=MAX_TTL_MINUTES).contains(&t) => Err(AppError::bad_input(format!(
            "tokenTtlInMinutes must be between 1 and {MAX_TTL_MINUTES}"
        ))),
        t => Ok(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert!(check_ttl(Some(0)).is_err());
        assert!(check_ttl(Some(43_201)).is_err());
        assert!(check_ttl(Some(-5)).is_err());
        assert_eq!(check_ttl(Some(1)).unwrap(), Some(1));
        assert_eq!(check_ttl(Some(43_200)).unwrap(), Some(43_200));
        assert_eq!(check_ttl(None).unwrap(), None);
    }
}
