//! One line of a uid/gid map, and the rules a whole map must follow.

use crate::error::{IdmapError, MapProblem};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The most lines the kernel accepts in one uid/gid map (since Linux 4.15).
pub const MAX_MAP_LINES: usize = 340;

/// The most bytes of map text we write: the kernel takes a map in one write
/// smaller than a page; 4096 is the smallest page size Linux uses.
pub const MAX_MAP_BYTES: usize = 4095;

/// One line of a uid/gid map: ids `inside..inside+count` in the namespace are
/// host ids `outside..outside+count`.
///
/// Written and read as `CONTAINER:HOST:SIZE`; in a config file either that
/// string or a table `{ inside, outside, count }`.
///
/// ```
/// use nucleus_idmap::IdMapping;
/// let m: IdMapping = "0:100000:65536".parse().unwrap();
/// assert_eq!(m, IdMapping { inside: 0, outside: 100000, count: 65536 });
/// assert_eq!(m.to_string(), "0:100000:65536");
/// assert_eq!(m.to_outside(1), Some(100001));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdMapping {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id on the host (in the parent user namespace).
    pub outside: u32,
    /// How many consecutive ids.
    pub count: u32,
}

impl IdMapping {
    /// A mapping of `count` ids from `inside` to `outside`.
    pub const fn new(inside: u32, outside: u32, count: u32) -> Self {
        Self {
            inside,
            outside,
            count,
        }
    }

    /// Whether `id` (inside the namespace) is covered by this line.
    pub fn contains_inside(&self, id: u32) -> bool {
        id >= self.inside && u64::from(id) < end(self.inside, self.count)
    }

    /// The host id of `id` (inside the namespace), if this line covers it.
    pub fn to_outside(&self, id: u32) -> Option<u32> {
        if self.contains_inside(id) {
            self.outside.checked_add(id - self.inside)
        } else {
            None
        }
    }
}

fn end(start: u32, count: u32) -> u64 {
    u64::from(start) + u64::from(count)
}

fn overlap(a_start: u32, b_start: u32, count_a: u32, count_b: u32) -> bool {
    u64::from(a_start) < end(b_start, count_b) && u64::from(b_start) < end(a_start, count_a)
}

impl fmt::Display for IdMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.inside, self.outside, self.count)
    }
}

impl FromStr for IdMapping {
    type Err = IdmapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| IdmapError::ParseMapping {
            input: s.to_owned(),
            reason,
        };
        let mut parts = s.trim().split(':');
        let mut next = |what| {
            parts
                .next()
                .ok_or_else(|| err("expected three fields separated by ':'"))
                .and_then(|p| p.trim().parse::<u32>().map_err(|_| err(what)))
        };
        let inside = next("the container id is not a number")?;
        let outside = next("the host id is not a number")?;
        let count = next("the size is not a number")?;
        if parts.next().is_some() {
            return Err(err("expected three fields separated by ':'"));
        }
        Ok(Self::new(inside, outside, count))
    }
}

impl Serialize for IdMapping {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingTable {
    inside: u32,
    outside: u32,
    count: u32,
}

struct MappingVisitor;

impl<'de> de::Visitor<'de> for MappingVisitor {
    type Value = IdMapping;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"CONTAINER:HOST:SIZE\" or a table { inside, outside, count }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<IdMapping, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<IdMapping, A::Error> {
        let t = MappingTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(IdMapping::new(t.inside, t.outside, t.count))
    }
}

impl<'de> Deserialize<'de> for IdMapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MappingVisitor)
    }
}

/// Whether host id 0 may appear as an outside id of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostRoot {
    /// Host root must not be reachable from inside (the default).
    #[default]
    Deny,
    /// Host root may be mapped in, e.g. `keep-id` for a root caller.
    Allow,
}

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

/// The text of `/proc/PID/uid_map`: one `inside outside count` line per mapping.
pub(crate) fn map_text(maps: &[IdMapping]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(maps.len() * 24);
    for m in maps {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{} {} {}", m.inside, m.outside, m.count);
    }
    text
}

/// Whether any line of `maps` covers `id` inside the namespace.
pub(crate) fn maps_id(maps: &[IdMapping], id: u32) -> bool {
    maps.iter().any(|m| m.contains_inside(id))
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
    fn parses_and_displays() {
        let x: IdMapping = " 1000:2000:1 ".parse().unwrap();
        assert_eq!(x, m(1000, 2000, 1));
        assert_eq!(x.to_string(), "1000:2000:1");
        for bad in [
            "",
            "1:2",
            "1:2:3:4",
            "a:2:3",
            "1:-2:3",
            "1:2:4294967296",
            "1::3",
        ] {
            let err = bad.parse::<IdMapping>().unwrap_err();
            assert!(matches!(err, IdmapError::ParseMapping { .. }), "{bad}");
        }
    }

    #[test]
    fn serde_string_or_table() {
        #[derive(Debug, Deserialize, Serialize)]
        struct W {
            maps: Vec<IdMapping>,
        }
        let w: W = serde_json::from_str(
            r#"{"maps": ["0:1000:1", {"inside": 1, "outside": 100000, "count": 65536}]}"#,
        )
        .unwrap();
        assert_eq!(w.maps, [m(0, 1000, 1), m(1, 100000, 65536)]);
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"maps":["0:1000:1","1:100000:65536"]}"#
        );
        let bad = serde_json::from_str::<W>(
            r#"{"maps": [{"inside": 1, "outside": 2, "count": 3, "x": 1}]}"#,
        );
        assert!(bad.is_err());
        let bad = serde_json::from_str::<W>(r#"{"maps": ["1:2"]}"#);
        assert!(bad.unwrap_err().to_string().contains("CONTAINER:HOST:SIZE"));
    }

    #[test]
    fn contains_and_translates() {
        let x = m(10, 100, 5);
        assert!(!x.contains_inside(9));
        assert!(x.contains_inside(10) && x.contains_inside(14));
        assert!(!x.contains_inside(15));
        assert_eq!(x.to_outside(12), Some(102));
        assert_eq!(x.to_outside(15), None);
        assert!(maps_id(&[m(0, 1, 1), x], 0));
        assert!(!maps_id(&[m(0, 1, 1), x], 1));
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

    #[test]
    fn text_is_one_line_per_mapping() {
        assert_eq!(
            map_text(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
    }

    #[test]
    fn host_root_serde() {
        assert_eq!(
            serde_json::from_str::<HostRoot>(r#""allow""#).unwrap(),
            HostRoot::Allow
        );
        assert_eq!(serde_json::to_string(&HostRoot::Deny).unwrap(), r#""deny""#);
    }
}
