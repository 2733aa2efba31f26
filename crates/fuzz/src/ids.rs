//! Uid/gid map lines and `/etc/subuid` / `/etc/subgid`.

use crate::{strs, text, Target};
use nucleus_idmap::{parse_subid, validate_maps, HostRoot, IdMapping, UsernsMode};

/// `IdMapping::from_str` on each line (and `UsernsMode::from_str`), then `validate_maps` on
/// the lines that parsed; a parsed line prints back to itself.
pub(crate) const IDMAP: Target = Target {
    name: "idmap",
    entry: "<nucleus_idmap::IdMapping as FromStr>::from_str",
    run: idmap,
    seeds: idmap_seeds,
};

fn idmap(bytes: &[u8]) -> bool {
    let text = text(bytes);
    let mut maps = Vec::new();
    for line in text.lines() {
        let _ = line.parse::<UsernsMode>();
        let Ok(map) = line.parse::<IdMapping>() else {
            continue;
        };
        assert_eq!(map.to_string().parse::<IdMapping>().ok(), Some(map));
        for id in [0, map.inside, map.inside.wrapping_add(map.count), u32::MAX] {
            let _ = map.to_outside(id);
        }
        maps.push(map);
    }
    let _ = validate_maps(&maps, HostRoot::Deny);
    let _ = validate_maps(&maps, HostRoot::Allow);
    !maps.is_empty()
}

fn idmap_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "0:100000:65536",
        "0:1000:1\n1:100000:65535\n",
        " 0 : 0 : 4294967295 ",
        "4294967295:4294967295:1",
        "auto\nkeep-id\n0:100000:65536",
    ])
}

/// `nucleus_idmap::parse_subid`: the ranges it returns are sound (count above 0, no range
/// past the last id) and print back to the same ranges.
pub(crate) const SUBID: Target = Target {
    name: "subid",
    entry: "nucleus_idmap::parse_subid",
    run: subid,
    seeds: subid_seeds,
};

fn subid(bytes: &[u8]) -> bool {
    let Ok(ranges) = parse_subid(&text(bytes)) else {
        return false;
    };
    let mut printed = String::new();
    for r in &ranges {
        assert!(r.count > 0 && u64::from(r.start) + u64::from(r.count) <= u64::from(u32::MAX));
        assert!(!r.user.is_empty());
        printed.push_str(&format!("{}:{}:{}\n", r.user, r.start, r.count));
    }
    assert_eq!(parse_subid(&printed).ok(), Some(ranges), "{printed}");
    true
}

fn subid_seeds() -> Vec<Vec<u8>> {
    strs(&[
        "# users\nalice:100000:65536\n",
        "alice:100000:65536\nbob:165536:65536\n1000:231072:65536\n\n",
        "root:4294901759:65536\r\n",
    ])
}
