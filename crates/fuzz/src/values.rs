//! Sizes, CPU counts, counts and durations as users write them.

use crate::{strs, text, Target};
use nucleus_cgroup::{parse_count, parse_cpus, parse_size, CPUS_MIN, PIDS_MAX};
use std::time::Duration;

/// `nucleus_cgroup::parse_size`, `parse_cpus` (4 CPUs online) and `parse_count` (at most
/// `PIDS_MAX`) on the same text; what they accept is in range and a size or count printed
/// in decimal parses to itself.
pub(crate) const SIZE: Target = Target {
    name: "size",
    entry: "nucleus_cgroup::{parse_size, parse_cpus, parse_count}",
    run: size,
    seeds: size_seeds,
};

fn size(bytes: &[u8]) -> bool {
    let s = text(bytes);
    let size = parse_size(&s).ok();
    if let Some(n) = size {
        assert!(n > 0, "size {n} from {s:?}");
        assert_eq!(parse_size(&n.to_string()).ok(), Some(n), "{s:?}");
    }
    let cpus = parse_cpus(&s, 4).ok();
    if let Some(c) = cpus {
        assert!(
            c.is_finite() && (CPUS_MIN..=4.0).contains(&c),
            "cpus {c} from {s:?}"
        );
    }
    let count = parse_count(&s, PIDS_MAX).ok();
    if let Some(n) = count {
        assert!((1..=PIDS_MAX).contains(&n), "count {n} from {s:?}");
        assert_eq!(parse_count(&n.to_string(), PIDS_MAX).ok(), Some(n), "{s:?}");
    }
    size.is_some() || cpus.is_some() || count.is_some()
}

fn size_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "512M",
        "1G",
        "1024k",
        "4096",
        "2KiB",
        "3tb",
        " 7 ",
        "1.5",
        "0.01",
        "256",
        "4194304",
        "18446744073709551615",
        "16383T",
    ])
}

/// `nucleus_runner::parse_duration` (the cgroup crate's parser, behind the runner's
/// error): what it accepts is positive and at most 10^9 s.
pub(crate) const DURATION: Target = Target {
    name: "duration",
    entry: "nucleus_runner::parse_duration",
    run: duration,
    seeds: duration_seeds,
};

fn duration(bytes: &[u8]) -> bool {
    let s = text(bytes);
    let Ok(d) = nucleus_runner::parse_duration(&s) else {
        return false;
    };
    assert!(
        d > Duration::ZERO && d <= Duration::from_secs(1_000_000_000),
        "{d:?} from {s:?}"
    );
    true
}

fn duration_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "30s",
        "500ms",
        "250us",
        "2m",
        "1min",
        "1h",
        "1.5s",
        "3",
        "0.000001",
        "1000000000",
        "999999999.9999999s",
    ])
}
