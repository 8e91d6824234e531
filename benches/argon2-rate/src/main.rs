//! Hashes passwords with argon2id (m = 19456 KiB, t = 2, p = 1, fresh salt each time, PHC
//! string out): exactly what usersvc's `passwords::Hasher` does per created user. Runs one
//! thread per core (or `--threads N`) for `--seconds S` and prints one JSON line:
//! `{"threads":N,"seconds":S,"hashes":H,"hashes_per_second":R}`.
//!
//! `--verify` checks a password against a PHC string of the same parameters instead (what
//! usersvc does per `verifyPassword`) and prints
//! `{"threads":N,"seconds":S,"mode":"verify","verifications":V,"verifications_per_second":R}`.
//! `--phc PASSWORD` prints the PHC string of PASSWORD with these parameters and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn argon2id() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn main() {
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut seconds = 10.0_f64;
    let mut verify = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--verify" {
            verify = true;
            continue;
        }
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--threads" => threads = value.parse().expect("--threads N"),
            "--seconds" => seconds = value.parse().expect("--seconds S"),
            "--phc" => {
                let phc = argon2id().hash_password(value.as_bytes()).expect("argon2id hash");
                println!("{phc}");
                return;
            }
            _ => panic!("usage: argon2-rate [--threads N] [--seconds S] [--verify] | --phc PASSWORD"),
        }
    }
    // What each verification checks: a right password against a hash of the same parameters.
    let stored = argon2id()
        .hash_password(b"correct horse battery staple")
        .expect("argon2id hash")
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let stop = Arc::clone(&stop);
            let done = Arc::clone(&done);
            let stored = stored.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if verify {
                        // Parsed each time, as usersvc parses the stored string per login.
                        let hash = PasswordHash::new(&stored).expect("a PHC string");
                        let ok = argon2id().verify_password(b"correct horse battery staple", &hash);
                        assert!(ok.is_ok(), "the right password verifies");
                    } else {
                        let password = format!("correct horse battery {t} {n}");
                        let phc = argon2id()
                            .hash_password(password.as_bytes())
                            .map(|h| h.to_string())
                            .expect("argon2id hash");
                        std::hint::black_box(phc);
                    }
                    n += 1;
                    // Only hashes finished inside the window count.
                    if start.elapsed().as_secs_f64() <= seconds {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker thread");
    }
    let hashes = done.load(Ordering::Relaxed);
    if verify {
        println!(
            "{{\"threads\":{threads},\"seconds\":{seconds},\"mode\":\"verify\",\"verifications\":{hashes},\"verifications_per_second\":{:.3}}}",
            hashes as f64 / seconds
        );
        return;
    }
    println!(
        "{{\"threads\":{threads},\"seconds\":{seconds},\"hashes\":{hashes},\"hashes_per_second\":{:.3}}}",
        hashes as f64 / seconds
    );
}
