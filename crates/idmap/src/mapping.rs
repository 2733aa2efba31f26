//! One line of a uid/gid map, and the text a whole map is written as.
//! The rules a map must follow are in `rules.rs`; reading one from text in
//! `parse.rs`.

use serde::{Deserialize, Serialize};
use std::fmt;

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

pub(crate) fn end(start: u32, count: u32) -> u64 {
    u64::from(start) + u64::from(count)
}

pub(crate) fn overlap(a_start: u32, b_start: u32, count_a: u32, count_b: u32) -> bool {
    u64::from(a_start) < end(b_start, count_b) && u64::from(b_start) < end(a_start, count_a)
}

impl fmt::Display for IdMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.inside, self.outside, self.count)
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

    const fn m(inside: u32, outside: u32, count: u32) -> IdMapping {
        IdMapping::new(inside, outside, count)
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
