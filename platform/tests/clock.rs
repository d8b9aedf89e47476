//! The shared clock (`clock.mode = "file"`): clocks built from the same settings, as every
//! process of a deployment builds its own, read the system clock moved by the offset in one
//! file, follow each write of it within their poll interval (bounded waits), and keep their
//! last offset while the file is unreadable or garbled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use ccp_platform::clock::{Clock, write_offset};
use ccp_platform::config::load_with_env;
use ccp_platform::context::CommonSettings;
use ccp_platform::testing::tempfile_dir::TempDir;
use chrono::Utc;

/// Builds a clock from settings naming `file`, as a `ccp serve` process does.
fn clock_from_settings(file: &std::path::Path) -> Clock {
    let env: HashMap<String, String> = [
        ("CCP_ENVIRONMENT", "test"),
        ("CCP_CLOCK__MODE", "file"),
        ("CCP_CLOCK__POLL_MS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([("CCP_CLOCK__FILE".to_owned(), file.display().to_string())])
    .collect();
    let settings = load_with_env::<CommonSettings>("", None, env).unwrap();
    settings.clock.build(settings.environment).unwrap()
}

/// Returns how far `clock` is ahead of the system clock.
fn ahead(clock: &Clock) -> chrono::Duration {
    let before = Utc::now();
    let now = clock.now();
    let after = Utc::now();
    // The midpoint of the system clock around the read: off by at most half
    // the (tiny) read time, which the comparisons below allow for.
    now - (before + (after - before) / 2)
}

/// Waits (bounded: 5 s) until `clock` is `offset` ahead of the system clock, give or take a
/// second; true when it got there.
fn reaches(clock: &Clock, offset: chrono::Duration) -> bool {
    for _ in 0..250 {
        if (ahead(clock) - offset).abs() < chrono::Duration::seconds(1) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn every_clock_following_a_file_moves_when_it_is_written() {
    let dir = TempDir::new();
    let file = dir.path().join("clock");
    write_offset(&file, chrono::Duration::zero()).unwrap();
    let first = clock_from_settings(&file);
    let second = clock_from_settings(&file);
    assert!(first.follows_file());
    assert!(reaches(&first, chrono::Duration::zero()));

    // Their own setters refuse: only the file moves them.
    assert!(!first.advance(chrono::Duration::days(1)));
    assert!(!first.set(Utc::now()));

    let thirty_days = chrono::Duration::days(30);
    write_offset(&file, thirty_days).unwrap();
    assert!(reaches(&first, thirty_days), "{}", ahead(&first));
    assert!(reaches(&second, thirty_days), "{}", ahead(&second));
    // A clone shares its clock's offset.
    assert!(reaches(&first.clone(), thirty_days));

    // Time keeps flowing on a shared clock.
    let t0 = first.now();
    std::thread::sleep(Duration::from_millis(30));
    assert!(first.now() > t0);

    // Back in time too.
    write_offset(&file, -chrono::Duration::hours(2)).unwrap();
    assert!(reaches(&second, -chrono::Duration::hours(2)));
}

#[test]
fn a_garbled_or_missing_file_keeps_the_last_offset() {
    let dir = TempDir::new();
    let file = dir.path().join("clock");
    std::fs::write(&file, "86400\n").unwrap();
    let clock = clock_from_settings(&file);
    assert!(reaches(&clock, chrono::Duration::days(1)));

    std::fs::write(&file, "next tuesday").unwrap();
    // Several poll intervals later the clock still holds the last good offset.
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        reaches(&clock, chrono::Duration::days(1)),
        "{}",
        ahead(&clock)
    );

    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        reaches(&clock, chrono::Duration::days(1)),
        "{}",
        ahead(&clock)
    );

    // Readable again: followed again.
    write_offset(&file, chrono::Duration::days(2)).unwrap();
    assert!(
        reaches(&clock, chrono::Duration::days(2)),
        "{}",
        ahead(&clock)
    );
}
