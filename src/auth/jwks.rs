//! Keys from an identity provider's published JWK Set (`USERSVC_JWT_JWKS_URL`). The set is
//! cached for the response's `Cache-Control: max-age` (10 minutes without one, clamped to
//! 30 s … 1 day). A `kid` not cached, or a stale cache, makes one fetch, at most once per 30 s;
//! requests that arrive meanwhile wait for it. A failed fetch (unreachable, 5 s timeout, not 200,
//! over 1 MiB, not a JWK Set, no usable key) keeps the last good keys.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use reqwest::{StatusCode, Url, header::CACHE_CONTROL};
use tokio::sync::Mutex;

use super::JwtSettings;
use super::keys::{Key, KeySet, MAX_SET_BYTES, from_jwk};

const COOLDOWN_SECS: u64 = 30;

/// The cached keys of one JWKS URL.
pub(super) struct Jwks {
    url: Url,
    client: reqwest::Client,
    s: JwtSettings,
    state: RwLock<State>,
    /// Held while fetching: one fetch at a time.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: KeySet,
    fresh_until: u64,
    last_attempt: Option<u64>,
    attempts: u64,
    /// Counts the fetches that brought keys.
    generation: u64,
}

impl Jwks {
    /// Checks the URL (https, or http to a loopback address) and makes the HTTP client.
    pub(super) fn new(url: &str, s: &JwtSettings) -> Result<Jwks, String> {
        let url = Url::parse(url).map_err(|e| format!("USERSVC_JWT_JWKS_URL: {e}"))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let local = host == "localhost" || host.parse().is_ok_and(|ip: IpAddr| ip.is_loopback());
        if url.scheme() != "https" && !(url.scheme() == "http" && local) {
            return Err("USERSVC_JWT_JWKS_URL: https only (http to a loopback address)".into());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the JWKS client: {e}"))?;
        let (s, state, fetching) = (s.clone(), RwLock::default(), Mutex::new(()));
        Ok(Jwks {
            url,
            client,
            s,
            state,
            fetching,
        })
    }

    fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes whenever a fetch brings keys; `None` while the cache is stale.
    pub(super) fn generation(&self, now: u64) -> Option<u64> {
        let st = self.state();
        (now < st.fresh_until).then_some(st.generation)
    }

    /// The key of `kid`, after a fetch if it is unknown or the cache stale (see the module docs).
    pub(super) async fn key(&self, kid: &str) -> Option<Arc<Key>> {
        let now = (self.s.clock)();
        let (key, due, attempts) = {
            let st = self.state();
            let key = st.keys.get(kid).cloned();
            let cooled = st.last_attempt.is_none_or(|t| now >= t + COOLDOWN_SECS);
            (
                key.clone(),
                (key.is_none() || now >= st.fresh_until) && cooled,
                st.attempts,
            )
        };
        if !due {
            return key;
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Whoever held the lock before may have fetched: then only look again.
        if self.state().attempts == attempts {
            let _ = self.fetch().await;
        }
        self.state().keys.get(kid).cloned()
    }

    /// Fetches the set now (at start-up).
    pub(super) async fn fetch_now(&self) -> Result<(), String> {
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch().await
    }

    /// Fetches the set (the caller holds `fetching`); on failure the last good keys stay.
    async fn fetch(&self) -> Result<(), String> {
        let result = self.download().await;
        let now = (self.s.clock)();
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        st.attempts += 1;
        st.last_attempt = Some(now);
        let (url, kept) = (&self.url, st.keys.len());
        let (keys, max_age) = result.inspect_err(|error| {
            tracing::warn!(%url, %error, kept, "JWKS fetch failed; the last good keys stay");
        })?;
        tracing::info!(%url, keys = keys.len(), max_age, "JWKS fetched");
        st.keys = keys;
        st.fresh_until = now + max_age;
        st.generation += 1;
        Ok(())
    }

    async fn download(&self) -> Result<(KeySet, u64), String> {
        let sent = self.client.get(self.url.clone()).send().await;
        let mut resp = sent.map_err(|e| e.to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("HTTP status {}", resp.status()));
        }
        let header = resp
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok());
        let max_age = header
            .and_then(max_age)
            .unwrap_or(600)
            .clamp(COOLDOWN_SECS, 86_400);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_SET_BYTES {
                return Err(format!("the JWK Set is over {MAX_SET_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut keys = KeySet::new();
        for jwk in &set.keys {
            match from_jwk(jwk, true, &self.s) {
                Ok((kid, key)) => _ = keys.entry(kid).or_insert(key),
                Err(reason) => tracing::debug!(url = %self.url, %reason, "JWKS key skipped"),
            }
        }
        if keys.is_empty() {
            return Err("the JWK Set has no key usable here".into());
        }
        Ok((keys, max_age))
    }
}

/// `max-age` of a `Cache-Control` value; `no-store` and `no-cache` count as 0.
fn max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').find_map(|directive| {
        let directive = directive.trim().to_ascii_lowercase();
        match directive.split_once('=') {
            Some(("max-age", seconds)) => seconds.trim_matches('"').parse().ok(),
            _ => matches!(directive.as_str(), "no-store" | "no-cache").then_some(0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::max_age;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300, must-revalidate"), Some(300));
        assert_eq!(max_age("Max-Age=\"60\""), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
