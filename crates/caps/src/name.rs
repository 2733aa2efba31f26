//! Capability names read from text: `CAP_NET_BIND_SERVICE`,
//! `cap_net_bind_service` or `net_bind_service`, in policies and on the
//! command line. Kept apart from `cap.rs` so that the capability types stay
//! a leaf module, which the error type can name without a cycle.

use crate::cap::Capability;
use crate::error::CapsError;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

impl FromStr for Capability {
    type Err = CapsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = match s.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("cap_") => &s[4..],
            _ => s,
        };
        Self::ALL
            .into_iter()
            .find(|c| c.name()[4..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| CapsError::UnknownCapability { name: s.to_owned() })
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Capability;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a capability name such as \"CAP_NET_BIND_SERVICE\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Capability, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_fail() {
        for bad in [
            "",
            "CAP_",
            "cap_net_bind",
            "CAP_NET_BIND_SERVICE ",
            "SYS-ADMIN",
            "CAP_41",
        ] {
            assert!(
                matches!(
                    bad.parse::<Capability>(),
                    Err(CapsError::UnknownCapability { .. })
                ),
                "{bad:?}"
            );
        }
        let err = serde_json::from_str::<Capability>("\"CAP_FLY\"").unwrap_err();
        assert!(err.to_string().contains("CAP_FLY"), "{err}");
    }
}
