//! G2/B12, as properties: spellings of one address or login that look alike normalise to one
//! key; invisible characters are refused wherever they sit; and no accepted address can bend
//! a mail header (no CR or LF, exactly one `@`, within the length cap).

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use usersvc::normalise::{email, is_email, universal_id};

/// Full-width forms of ASCII letters, digits and `@` (NFKC maps them back).
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' if c != '.' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
            c => c,
        })
        .collect()
}

const INVISIBLE: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{00AD}',
    '\u{2060}', '\u{FE0F}', '\u{0000}', '\u{001B}', '\r', '\n',
];

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x62),
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn look_alike_spellings_of_an_address_are_one_address() {
    let strategy = (
        "[a-z0-9]{1,20}([._+-][a-z0-9]{1,8})?",
        "[a-z][a-z0-9]{0,12}",
        "[a-z]{2,6}",
    );
    runner()
        .run(&strategy, |(local, host, tld)| {
            let plain = format!("{local}@{host}.{tld}");
            let key = email(&plain, "email").unwrap();
            prop_assert_eq!(&key, &plain);
            for variant in [
                plain.to_uppercase(),
                format!("  {plain}\t"),
                full_width(&plain),
                full_width(&plain.to_uppercase()),
            ] {
                prop_assert_eq!(
                    email(&variant, "email").ok(),
                    Some(key.clone()),
                    "{:?}",
                    variant
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn invisible_characters_are_refused_wherever_they_sit() {
    let strategy = (
        "[a-z0-9]{1,20}",
        "[a-z]{1,12}",
        0..INVISIBLE.len(),
        any::<prop::sample::Index>(),
    );
    runner()
        .run(&strategy, |(local, host, which, at)| {
            let plain = format!("{local}@{host}.com");
            let mut chars: Vec<char> = plain.chars().collect();
            // Anywhere but the very ends, where trimming would legitimately remove whitespace.
            let i = 1 + at.index(chars.len() - 1);
            chars.insert(i, INVISIBLE[which]);
            let bent: String = chars.into_iter().collect();
            prop_assert!(email(&bent, "email").is_err(), "{:?}", bent);
            let login: String = bent.replace('@', "_");
            prop_assert!(universal_id(&login).is_err(), "{:?}", login);
            Ok(())
        })
        .unwrap();
}

#[test]
fn no_accepted_address_can_bend_a_mail_header() {
    // Address-shaped input with header-bending characters sprinkled in, and a header tail.
    let strategy = "[a-z0-9]{1,6}[a-z0-9.\r\n\"<>,;: ()@-]?[a-z0-9]{1,6}@[a-z0-9]{1,6}[.\r\n -]?[a-z0-9]{1,6}\\.[a-z]{2,4}(\r\n[A-Za-z]{2,4}: [a-z]{1,5}@x\\.com)?";
    let accepted = AtomicUsize::new(0);
    runner()
        .run(&strategy, |raw| {
            if let Ok(e) = email(&raw, "email") {
                accepted.fetch_add(1, Ordering::Relaxed);
                prop_assert!(!e.contains('\r') && !e.contains('\n'), "{:?}", e);
                prop_assert_eq!(e.matches('@').count(), 1, "{:?}", e);
                prop_assert!(e.chars().count() <= 254, "{:?}", e);
                prop_assert!(
                    !e.contains(['<', '>', ',', ';', ':', '"', ' ', '(', ')']),
                    "{:?}",
                    e
                );
                prop_assert!(is_email(&e));
            }
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.into_inner() > 10,
        "the property saw accepted addresses"
    );
}
