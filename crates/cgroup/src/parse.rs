//! Parsing of the command-line values this crate owns: sizes, CPU counts,
//! durations and counts.

use std::time::Duration;

use crate::error::CgroupError;
use crate::types::LimitKind;

/// The largest `pids` limit the kernel accepts (`PID_MAX_LIMIT`, 4 Mi).
pub const PIDS_MAX: u64 = 4 * 1024 * 1024;

/// The smallest CPU share we accept: the kernel's minimum CFS quota is 1 ms
/// per 100 ms period.
pub const CPUS_MIN: f64 = 0.01;

/// Parses a size in bytes: `512M`, `1G`, `1024k`, `4096`.
///
/// Suffixes `K`, `M`, `G`, `T` are binary (1 K = 1024) and case-insensitive;
/// `KB`, `KiB` and a trailing `B` are accepted too. Zero, negative numbers,
/// fractions and unknown units (`12Q`) are rejected.
///
/// ```
/// use nucleus_cgroup::parse_size;
/// assert_eq!(parse_size("512M").unwrap(), 512 * 1024 * 1024);
/// assert!(parse_size("12Q").is_err());
/// assert!(parse_size("0").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, CgroupError> {
    let value = parse_size_allow_zero(s).map_err(|reason| invalid_size(s, reason))?;
    if value == 0 {
        return Err(invalid_size(s, "must be greater than zero"));
    }
    Ok(value)
}

fn invalid_size(s: &str, reason: &'static str) -> CgroupError {
    CgroupError::InvalidSize {
        input: s.to_owned(),
        reason,
    }
}

/// Like [`parse_size`] but zero is a valid value (rlimits use it).
pub(crate) fn parse_size_allow_zero(s: &str) -> Result<u64, &'static str> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty");
    }
    if t.starts_with('-') {
        return Err("must not be negative");
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err("not a number");
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ if unit.starts_with('.') => return Err("fractions are not accepted"),
        _ => return Err("unknown unit"),
    };
    let n: u64 = digits.parse().map_err(|_| "too large")?;
    n.checked_mul(1u64 << shift).ok_or("too large")
}

/// Parses a CPU count (`--cpus 1.5`): a positive decimal number of CPUs, at
/// least 0.01 and at most `online_cpus`.
///
/// Asking for more CPUs than the machine has online is an error rather than
/// a silent "no limit": it is almost always a mistake in a pinned policy.
///
/// ```
/// use nucleus_cgroup::parse_cpus;
/// assert_eq!(parse_cpus("1.5", 2).unwrap(), 1.5);
/// assert!(parse_cpus("3", 2).is_err());
/// ```
pub fn parse_cpus(s: &str, online_cpus: usize) -> Result<f64, CgroupError> {
    let invalid = |reason| CgroupError::InvalidCpus {
        input: s.to_owned(),
        reason,
    };
    let t = s.trim();
    if t.starts_with('-') {
        return Err(invalid("must not be negative"));
    }
    let cpus: f64 = t.parse().map_err(|_| invalid("not a decimal number"))?;
    check_cpus(cpus, online_cpus).map_err(|e| match e {
        CgroupError::InvalidLimit { reason, .. } => invalid(reason),
        other => other,
    })?;
    Ok(cpus)
}

/// Range check shared by [`parse_cpus`] and [`Limits::validate`](crate::Limits::validate).
pub(crate) fn check_cpus(cpus: f64, online_cpus: usize) -> Result<(), CgroupError> {
    let invalid = |reason| CgroupError::InvalidLimit {
        limit: LimitKind::Cpus,
        reason,
    };
    if !cpus.is_finite() {
        return Err(invalid("must be a finite number"));
    }
    if cpus <= 0.0 {
        return Err(invalid("must be greater than zero"));
    }
    if cpus < CPUS_MIN {
        return Err(invalid("must be at least 0.01"));
    }
    if cpus > online_cpus as f64 {
        return Err(CgroupError::CpusAboveOnline {
            requested: cpus,
            online: online_cpus,
        });
    }
    Ok(())
}

/// Parses a duration: `30s`, `500ms`, `250us`, `2m`, `1h`, `1.5s`, or a
/// bare number of seconds. Zero and negative durations are rejected.
///
/// ```
/// use std::time::Duration;
/// use nucleus_cgroup::parse_duration;
/// assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, CgroupError> {
    let invalid = |reason| CgroupError::InvalidDuration {
        input: s.to_owned(),
        reason,
    };
    let t = s.trim();
    if t.starts_with('-') {
        return Err(invalid("must not be negative"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "us" => 0.000_001,
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(invalid("unknown unit")),
    };
    let n: f64 = num.parse().map_err(|_| invalid("not a number"))?;
    let secs = n * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(invalid("too large"));
    }
    let d = Duration::from_secs_f64(secs);
    if d.is_zero() {
        return Err(invalid("must be greater than zero"));
    }
    Ok(d)
}

/// Parses a positive count (`--pids 256`), at most `max`.
pub fn parse_count(s: &str, max: u64) -> Result<u64, CgroupError> {
    let invalid = |reason| CgroupError::InvalidCount {
        input: s.to_owned(),
        reason,
    };
    let t = s.trim();
    if t.starts_with('-') {
        return Err(invalid("must not be negative"));
    }
    let n: u64 = t.parse().map_err(|_| invalid("not a whole number"))?;
    if n == 0 {
        return Err(invalid("must be greater than zero"));
    }
    if n > max {
        return Err(invalid("too large"));
    }
    Ok(n)
}

/// Number of CPUs online on this machine (`sysconf(_SC_NPROCESSORS_ONLN)`),
/// the bound [`parse_cpus`] checks against. At least 1.
pub fn online_cpus() -> usize {
    crate::sys::online_cpus().max(1)
}

/// serde helpers: sizes and CPU counts in config files may be numbers or
/// the same strings the command line takes (`memory = "512M"`).
pub(crate) mod de {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size in bytes or a string such as \"512M\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("size must not be negative"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            super::parse_size_allow_zero(v).map_err(E::custom)
        }
    }

    /// `Option<u64>` size from a number or a size string.
    pub fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(SizeVisitor).map(Some)
    }

    struct CpusVisitor;

    impl Visitor<'_> for CpusVisitor {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of cpus such as 1.5 or \"1.5\"")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom("not a decimal number"))
        }
    }

    /// `Option<f64>` cpu count from a number or a string.
    pub fn opt_cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(CpusVisitor).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1024k").unwrap(), 1024 * 1024);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size(" 7b ").unwrap(), 7);
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "12Q",
            "0",
            "0M",
            "-1",
            "-5M",
            "M",
            "1.5G",
            "1 G",
            "99999999999999999999",
            "20000000T",
            "+5",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidSize { .. }),
                "{bad}: {err}"
            );
        }
        let msg = parse_size("12Q").unwrap_err().to_string();
        assert!(msg.contains("unknown unit"), "{msg}");
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5", 2).unwrap(), 1.5);
        assert_eq!(parse_cpus("2", 2).unwrap(), 2.0);
        assert_eq!(parse_cpus("0.01", 2).unwrap(), 0.01);
        for bad in ["0", "-1", "0.001", "nan", "inf", "x", ""] {
            assert!(
                matches!(parse_cpus(bad, 2), Err(CgroupError::InvalidCpus { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_cpus("2.5", 2),
            Err(CgroupError::CpusAboveOnline { online: 2, .. })
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        for bad in ["0", "0s", "-1s", "s", "3d", "", "1e99h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("256", PIDS_MAX).unwrap(), 256);
        for bad in ["0", "-3", "1.5", "x", "99999999"] {
            assert!(parse_count(bad, PIDS_MAX).is_err(), "{bad}");
        }
    }

    #[test]
    fn online_is_positive() {
        assert!(online_cpus() >= 1);
    }
}
