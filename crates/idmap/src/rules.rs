//! The rules a whole uid/gid map must follow: the kernel's and ours.

use crate::error::{IdmapError, MapProblem};
use crate::mapping::{end, map_text, overlap, HostRoot, IdMapping, MAX_MAP_BYTES, MAX_MAP_LINES};

/// Checks a uid or gid map against the kernel's rules and ours: at least one
/// line, no zero size, no range past the last id, no overlap inside or on the
/// host, at most [`MAX_MAP_LINES`] lines and [`MAX_MAP_BYTES`] bytes, and
/// host id 0 only with [`HostRoot::Allow`].
///
/// ```
/// use nucleus_idmap::{validate_maps, HostRoot, IdMapping};
/// let ok = [IdMapping::new(0, 100000, 65536)];
/// assert!(validate_maps(&ok, HostRoot::Deny).is_ok());
/// let root = [IdMapping::new(0, 0, 1)];
/// assert!(validate_maps(&root, HostRoot::Deny).is_err());
/// assert!(validate_maps(&root, HostRoot::Allow).is_ok());
/// ```
pub fn validate_maps(maps: &[IdMapping], host_root: HostRoot) -> Result<(), IdmapError> {
    validate_named(maps, host_root, "id map")
}

pub(crate) fn validate_named(
    maps: &[IdMapping],
    host_root: HostRoot,
    map: &'static str,
) -> Result<(), IdmapError> {
    check_rules(maps, host_root).map_err(|problem| IdmapError::InvalidMap { map, problem })
}

fn check_rules(maps: &[IdMapping], host_root: HostRoot) -> Result<(), MapProblem> {
    if maps.is_empty() {
        return Err(MapProblem::Empty);
    }
    if maps.len() > MAX_MAP_LINES {
        return Err(MapProblem::TooManyLines {
            lines: maps.len(),
            max: MAX_MAP_LINES,
        });
    }
    // The kernel rejects a range whose end wraps to 0, so id u32::MAX (the
    // invalid id, (uid_t)-1) can never be mapped.
    let last = u64::from(u32::MAX);
    for (i, m) in maps.iter().enumerate() {
        if m.count == 0 {
            return Err(MapProblem::ZeroCount(*m));
        }
        if end(m.inside, m.count) > last || end(m.outside, m.count) > last {
            return Err(MapProblem::Overflow(*m));
        }
        if m.outside == 0 && host_root == HostRoot::Deny {
            return Err(MapProblem::HostRoot(*m));
        }
        for prev in &maps[..i] {
            if overlap(prev.inside, m.inside, prev.count, m.count) {
                return Err(MapProblem::OverlapInside(*prev, *m));
            }
            if overlap(prev.outside, m.outside, prev.count, m.count) {
                return Err(MapProblem::OverlapOutside(*prev, *m));
            }
        }
    }
    let bytes = map_text(maps).len();
    if bytes > MAX_MAP_BYTES {
        return Err(MapProblem::TooLong {
            bytes,
            max: MAX_MAP_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(maps: &[IdMapping], host_root: HostRoot) -> MapProblem {
        match validate_maps(maps, host_root) {
            Err(IdmapError::InvalidMap { problem, .. }) => problem,
            other => panic!("expected InvalidMap, got {other:?}"),
        }
    }

    const fn m(inside: u32, outside: u32, count: u32) -> IdMapping {
        IdMapping::new(inside, outside, count)
    }

    #[test]
    fn validation_accepts_good_maps() {
        validate_maps(&[m(0, 1000, 1), m(1, 100000, 65536)], HostRoot::Deny).unwrap();
        validate_maps(&[m(0, 1, u32::MAX - 1)], HostRoot::Deny).unwrap();
        validate_maps(&[m(0, 0, 1)], HostRoot::Allow).unwrap();
    }
    #[test]
    fn validation_rules() {
        assert_eq!(problem(&[], HostRoot::Deny), MapProblem::Empty);
        assert_eq!(
            problem(&[m(0, 1000, 0)], HostRoot::Deny),
            MapProblem::ZeroCount(m(0, 1000, 0))
        );
        assert_eq!(
            problem(&[m(u32::MAX - 1, 1000, 2)], HostRoot::Deny),
            MapProblem::Overflow(m(u32::MAX - 1, 1000, 2))
        );
        assert_eq!(
            problem(&[m(0, u32::MAX, 1)], HostRoot::Deny),
            MapProblem::Overflow(m(0, u32::MAX, 1))
        );
        assert_eq!(
            problem(&[m(0, 1000, 10), m(9, 5000, 1)], HostRoot::Deny),
            MapProblem::OverlapInside(m(0, 1000, 10), m(9, 5000, 1))
        );
        assert_eq!(
            problem(&[m(0, 1000, 10), m(10, 1005, 5)], HostRoot::Deny),
            MapProblem::OverlapOutside(m(0, 1000, 10), m(10, 1005, 5))
        );
        assert_eq!(
            problem(&[m(0, 0, 1)], HostRoot::Deny),
            MapProblem::HostRoot(m(0, 0, 1))
        );
        let many: Vec<_> = (0..341).map(|i| m(i, 1000 + i, 1)).collect();
        assert_eq!(
            problem(&many, HostRoot::Deny),
            MapProblem::TooManyLines {
                lines: 341,
                max: 340
            }
        );
        validate_maps(&many[..340], HostRoot::Deny).unwrap();
        let long: Vec<_> = (0..200)
            .map(|i| m(4_000_000_000 + i * 10, 3_000_000_000 + i * 10, 10))
            .collect();
        assert!(matches!(
            problem(&long, HostRoot::Deny),
            MapProblem::TooLong { max: 4095, .. }
        ));
    }
    #[test]
    fn adjacent_ranges_do_not_overlap() {
        validate_maps(&[m(0, 1000, 10), m(10, 1010, 10)], HostRoot::Deny).unwrap();
    }
}
