//! Uid/gid maps and user namespace modes read from text: the command line's
//! `CONTAINER:HOST:SIZE` and mode names, and the config file's forms. Kept
//! apart from the types so that `mapping.rs` and `mode.rs` stay leaves the
//! error type can name without a cycle.

use crate::error::IdmapError;
use crate::mapping::IdMapping;
use crate::mode::UsernsMode;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

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

impl FromStr for UsernsMode {
    type Err = IdmapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Auto,
            Self::Rootless,
            Self::KeepId,
            Self::RootRemapped,
            Self::Explicit,
            Self::Host,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| IdmapError::UnknownMode { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
