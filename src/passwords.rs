//! Passwords: the app's policy, argon2id hashing and verification off the async runtime, and
//! random secrets.
//!
//! Hashing costs about 19 MiB and tens of milliseconds of one core, and so does checking a
//! password against a hash, so both run on a few threads of their own, one more than the cores:
//! memory has a known ceiling, and a burst of creates or logins queues for the hasher instead
//! of starving the threads that serve reads. A hashing thread takes the next queued job as soon
//! as it is done with one, without a trip through the async runtime in between. Callers must
//! not hold a database connection while they wait here. Each app may have at most its share of
//! the threads' work queued or running at once ([`crate::quota::PerApp`]: all threads but one),
//! so one app's burst of creates or logins still uses every core, waits for its own slots, and
//! leaves a thread to every other app. How a stored hash is checked (which
//! schemes, which costs are refused) is [`verify`]'s.

mod memory;
pub mod verify;

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng;
use tokio::sync::oneshot;

use crate::db::models::App;
use crate::error::{AppError, AppResult};
use crate::quota::{PerApp, Unit};
use verify::{Refused, Verification};

/// Longest password accepted, in bytes, checked before any policy or hash work (a policy's
/// maximum is in characters and at most 1024 of them).
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// argon2id with OWASP's parameters: m = 19456 KiB, t = 2, p = 1.
pub fn argon2id() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An app's password rules. Lengths count Unicode characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub min_length: usize,
    pub max_length: usize,
    pub min_digits: usize,
    pub min_uppercase: usize,
    pub min_lowercase: usize,
    pub min_symbols: usize,
}

impl Default for Policy {
    /// NIST SP 800-63B: 8 to 128 characters, no composition rules.
    fn default() -> Self {
        Policy {
            min_length: 8,
            max_length: 128,
            min_digits: 0,
            min_uppercase: 0,
            min_lowercase: 0,
            min_symbols: 0,
        }
    }
}

fn count(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl Policy {
    /// The policy stored with an app.
    pub fn of(app: &App) -> Self {
        Policy {
            min_length: count(app.password_min_length),
            max_length: count(app.password_max_length),
            min_digits: count(app.password_min_digits),
            min_uppercase: count(app.password_min_uppercase),
            min_lowercase: count(app.password_min_lowercase),
            min_symbols: count(app.password_min_symbols),
        }
    }

    /// The rules in words, one per line, for people choosing a password.
    pub fn describe(&self) -> Vec<String> {
        let mut rules = vec![format!(
            "between {} and {} characters",
            self.min_length, self.max_length
        )];
        let extra = [
            (self.min_digits, "digit"),
            (self.min_uppercase, "uppercase letter"),
            (self.min_lowercase, "lowercase letter"),
            (self.min_symbols, "symbol"),
        ];
        for (n, what) in extra {
            if n > 0 {
                rules.push(format!("at least {}", plural(n, what)));
            }
        }
        rules
    }

    /// Checks a password; the error names the first rule it breaks.
    pub fn check(&self, password: &str) -> Result<(), String> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(format!(
                "must be at most {} characters long",
                self.max_length
            ));
        }
        let chars = password.chars().count();
        if chars < self.min_length {
            return Err(format!(
                "must be at least {} long",
                plural(self.min_length, "character")
            ));
        }
        if chars > self.max_length {
            return Err(format!(
                "must be at most {} long",
                plural(self.max_length, "character")
            ));
        }
        let digits = password.chars().filter(|c| c.is_numeric()).count();
        let upper = password.chars().filter(|c| c.is_uppercase()).count();
        let lower = password.chars().filter(|c| c.is_lowercase()).count();
        let symbols = password
            .chars()
            .filter(|c| !c.is_alphanumeric() && !c.is_whitespace())
            .count();
        let rules = [
            (digits, self.min_digits, "digit"),
            (upper, self.min_uppercase, "uppercase letter"),
            (lower, self.min_lowercase, "lowercase letter"),
            (symbols, self.min_symbols, "symbol"),
        ];
        for (have, need, what) in rules {
            if have < need {
                return Err(format!("must contain at least {}", plural(need, what)));
            }
        }
        Ok(())
    }
}

/// Work for a hashing thread.
enum Job {
    /// A password to hash, and where its PHC string goes.
    Hash(String, oneshot::Sender<AppResult<String>>),
    /// A password to check against a stored hash (`None`: against the dummy hash, which never
    /// matches), and where the answer goes.
    Verify(
        Option<String>,
        String,
        oneshot::Sender<Result<Verification, Refused>>,
    ),
}

impl Job {
    /// Whether the request that queued the job is gone (deadline, disconnect).
    fn abandoned(&self) -> bool {
        match self {
            Job::Hash(_, done) => done.is_closed(),
            Job::Verify(_, _, done) => done.is_closed(),
        }
    }
}

/// Hashes and checks passwords on `concurrency` threads of its own; they end when the last
/// clone of the hasher is dropped.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    shares: Arc<PerApp>,
}

/// Longest wait for one of an app's hashing slots. The request deadline usually ends a wait
/// first; past this one the caller gets a retryable error.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Hasher {
    /// A hasher running at most `concurrency` hashes or checks at once (at least one).
    pub fn new(concurrency: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..concurrency.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("usersvc-hash-{i}"))
                .spawn(move || {
                    if i == 0 {
                        // Made before the first login needs it, so that one costs what all do.
                        dummy_hash();
                    }
                    hash_jobs(&queue)
                });
            if let Err(e) = spawned {
                // With no thread at all, hash() reports the closed hasher to its callers.
                tracing::error!("cannot start a password hashing thread: {e}");
            }
        }
        Hasher {
            jobs,
            // All but one thread, at least one: with the default of one thread more than the
            // cores, one app can keep every core busy and another app is never queued behind it.
            shares: Arc::new(PerApp::with_share(concurrency.saturating_sub(1).max(1))),
        }
    }

    /// How many hashes or checks one app may have queued or running at once.
    pub fn app_share(&self) -> usize {
        self.shares.share()
    }

    /// One of `app`'s slots, held while its job is queued and run.
    async fn slot(&self, app: &str) -> AppResult<Unit> {
        self.shares.acquire(app, SLOT_WAIT).await.ok_or_else(|| {
            AppError::Unavailable("every password hashing slot of the app is busy".into())
        })
    }

    /// The argon2id PHC string of a password, with a fresh random salt, hashed in one of
    /// `app`'s slots.
    pub async fn hash(&self, app: &str, password: String) -> AppResult<String> {
        let _slot = self.slot(app).await?;
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job::Hash(password, done))
            .map_err(|_| AppError::internal("password hasher closed"))?;
        result
            .await
            .map_err(|_| AppError::internal("password hasher closed"))?
    }

    /// Checks a password against a stored hash, in one of `app`'s slots. With `None` (no such identity) it does the
    /// same work against a dummy hash of the current parameters and never matches, so an
    /// unknown identity takes as long as a wrong password. `Err` inside: the stored hash could
    /// not be checked at all (an unknown scheme, or costs above the caps), which counts as a
    /// wrong password.
    pub async fn verify(
        &self,
        app: &str,
        stored: Option<String>,
        password: String,
    ) -> AppResult<Result<Verification, Refused>> {
        let _slot = self.slot(app).await?;
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job::Verify(stored, password, done))
            .map_err(|_| AppError::internal("password hasher closed"))?;
        result
            .await
            .map_err(|_| AppError::internal("password hasher closed"))
    }
}

/// An argon2id hash, of the current parameters, of a random password nobody knows: what an
/// unknown identity's password is checked against. Made once per process.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password = random_secret(32).unwrap_or_else(|_| "dummy".repeat(8));
        argon2id()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

fn run(job: Job) {
    match job {
        Job::Hash(password, done) => {
            let phc = std::panic::catch_unwind(|| hash_current(password.as_bytes()))
                .unwrap_or_else(|_| Err(AppError::internal("argon2 panicked")));
            let _ = done.send(phc);
        }
        Job::Verify(stored, password, done) => {
            let checked = std::panic::catch_unwind(|| match &stored {
                Some(stored) => verify::verify(stored, password.as_bytes()),
                None => verify::verify(dummy_hash(), password.as_bytes()).map(|_| Verification {
                    matches: false,
                    outdated: false,
                }),
            })
            .unwrap_or_else(|_| Err(Refused::Malformed("the check panicked".into())));
            let _ = done.send(checked);
        }
    }
}

/// A PHC string of [`argon2id`] for `password`, with a random 16-byte salt, computed in the
/// thread's kept memory ([`memory`]): what `argon2id().hash_password` makes.
fn hash_current(password: &[u8]) -> AppResult<String> {
    use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
    let argon = argon2id();
    let failed = |e: &dyn std::fmt::Display| AppError::internal(format!("argon2: {e}"));
    let salt_bytes = random_bytes(16)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    memory::hash_into(&argon, password, &salt_bytes, &mut out).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt_bytes).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// One hashing thread: the queued jobs, one after the other, until the hasher is gone.
fn hash_jobs(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // A thread that panicked while holding the lock left the receiver as it was.
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        if job.abandoned() {
            continue; // the request gave up (deadline, disconnect): spare the work
        }
        run(job);
    }
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> AppResult<Vec<u8>> {
    let mut buf = vec![0u8; n];
    rand::rngs::SysRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| AppError::internal(format!("OS random source: {e}")))?;
    Ok(buf)
}

/// A random secret of `n` bytes, base64url without padding.
pub fn random_secret(n: usize) -> AppResult<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(n)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_counts_characters_not_bytes() {
        let p = Policy::default();
        assert!(p.check("ééééééé").is_err(), "7 characters");
        assert!(p.check("éééééééé").is_ok(), "8 characters, 16 bytes");
        assert!(p.check(&"x".repeat(128)).is_ok());
        let long = p.check(&"x".repeat(129)).unwrap_err();
        assert!(long.contains("at most 128"), "{long}");
    }

    #[test]
    fn composition_rules_name_the_rule() {
        let p = Policy {
            min_digits: 2,
            min_uppercase: 1,
            min_symbols: 1,
            ..Policy::default()
        };
        assert_eq!(
            p.check("abcdefgh1").unwrap_err(),
            "must contain at least 2 digits"
        );
        assert_eq!(
            p.check("abcdefgh12").unwrap_err(),
            "must contain at least 1 uppercase letter"
        );
        assert_eq!(
            p.check("Abcdefgh12").unwrap_err(),
            "must contain at least 1 symbol"
        );
        assert!(p.check("Abcdefgh12!").is_ok());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters() {
        let phc = Hasher::new(1)
            .hash("a", "correct horse".into())
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let again = Hasher::new(1)
            .hash("a", "correct horse".into())
            .await
            .unwrap();
        assert_ne!(phc, again, "each hash has its own salt");
    }

    #[tokio::test]
    async fn queued_hashes_all_complete_on_the_hashers_threads() {
        let hasher = Hasher::new(2);
        let jobs: Vec<_> = (0..6)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash("a", format!("password {i}")).await })
            })
            .collect();
        let mut phcs = Vec::new();
        for job in jobs {
            phcs.push(job.await.unwrap().unwrap());
        }
        for (i, phc) in phcs.iter().enumerate() {
            let parsed = argon2::PasswordHash::new(phc).unwrap();
            let ok = argon2::PasswordVerifier::verify_password(
                &argon2id(),
                format!("password {i}").as_bytes(),
                &parsed,
            );
            assert!(ok.is_ok(), "hash {i} verifies its own password");
        }
        // A request that gave up before its turn costs nothing and breaks nothing.
        let h = hasher.clone();
        let abandoned = tokio::spawn(async move { h.hash("a", "never mind".into()).await });
        abandoned.abort();
        assert!(hasher.hash("a", "after".into()).await.is_ok());
    }

    #[tokio::test]
    async fn verification_runs_on_the_hashers_threads() {
        let hasher = Hasher::new(2);
        let phc = hasher.hash("a", "correct horse".into()).await.unwrap();
        let right = hasher
            .verify("a", Some(phc.clone()), "correct horse".into())
            .await
            .unwrap()
            .unwrap();
        assert!(right.matches && !right.outdated);
        let wrong = hasher
            .verify("a", Some(phc), "correct horsE".into())
            .await
            .unwrap()
            .unwrap();
        assert!(!wrong.matches);
        // No identity: the dummy is checked, and nothing matches it, not even its own kind of
        // input.
        for guess in [
            "",
            "dummydummydummydummydummydummydummydummy",
            "correct horse",
        ] {
            let none = hasher
                .verify("a", None, guess.into())
                .await
                .unwrap()
                .unwrap();
            assert!(!none.matches, "{guess}");
        }
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let hostile = "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(matches!(
            hasher
                .verify("a", Some(hostile.into()), "x".into())
                .await
                .unwrap(),
            Err(Refused::TooCostly(_))
        ));
    }

    #[test]
    fn random_secrets_are_long_and_distinct() {
        let a = random_secret(32).unwrap();
        let b = random_secret(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
