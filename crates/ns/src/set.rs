//! Which namespaces a sandbox gets.

use crate::NsError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One kind of Linux namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Namespace {
    /// Process ids: the sandbox sees only its own processes; its init is pid 1.
    Pid,
    /// Mount table: the sandbox's filesystem view is its own.
    Mount,
    /// Network stack: only a loopback interface.
    Network,
    /// Hostname and domain name.
    Uts,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// The cgroup root the sandbox sees.
    Cgroup,
    /// User and group ids, and the capabilities that come with them.
    User,
    /// `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` offsets (Linux 5.6+).
    Time,
}

impl Namespace {
    /// Every namespace kind, in the order they are listed to users.
    pub const ALL: [Namespace; 8] = [
        Self::Pid,
        Self::Mount,
        Self::Network,
        Self::Uts,
        Self::Ipc,
        Self::Cgroup,
        Self::User,
        Self::Time,
    ];

    /// The `CLONE_NEW*` flag of this namespace.
    ///
    /// ```
    /// assert_eq!(nucleus_ns::Namespace::Pid.clone_flag(), libc::CLONE_NEWPID);
    /// ```
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Self::Pid => libc::CLONE_NEWPID,
            Self::Mount => libc::CLONE_NEWNS,
            Self::Network => libc::CLONE_NEWNET,
            Self::Uts => libc::CLONE_NEWUTS,
            Self::Ipc => libc::CLONE_NEWIPC,
            Self::Cgroup => libc::CLONE_NEWCGROUP,
            Self::User => libc::CLONE_NEWUSER,
            Self::Time => libc::CLONE_NEWTIME,
        }
    }

    /// The name of this namespace in `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::Pid => "pid",
            Self::Mount => "mnt",
            Self::Network => "net",
            Self::Uts => "uts",
            Self::Ipc => "ipc",
            Self::Cgroup => "cgroup",
            Self::User => "user",
            Self::Time => "time",
        }
    }

    /// The name users write (`pid`, `mount`, `network`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pid => "pid",
            Self::Mount => "mount",
            Self::Network => "network",
            Self::Uts => "uts",
            Self::Ipc => "ipc",
            Self::Cgroup => "cgroup",
            Self::User => "user",
            Self::Time => "time",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Namespace {
    type Err = NsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pid" => Self::Pid,
            "mount" | "mnt" => Self::Mount,
            "network" | "net" => Self::Network,
            "uts" => Self::Uts,
            "ipc" => Self::Ipc,
            "cgroup" => Self::Cgroup,
            "user" => Self::User,
            "time" => Self::Time,
            _ => {
                return Err(NsError::UnknownNamespace { name: s.to_owned() });
            }
        })
    }
}

/// A set of namespaces, serialized as a list of names.
///
/// Presets: `default` (every namespace but time), `all` (with time) and
/// `none`. [`FromStr`] accepts a preset or a comma-separated list, where a
/// name prefixed with `-` removes it: `default,-network`.
///
/// ```
/// use nucleus_ns::{Namespace, NamespaceSet};
/// let set: NamespaceSet = "default,-network".parse().unwrap();
/// assert!(!set.contains(Namespace::Network));
/// assert_eq!(set.to_string(), "pid,mount,uts,ipc,cgroup,user");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NamespaceSet(u16);

impl NamespaceSet {
    /// No new namespace at all.
    pub const fn none() -> Self {
        Self(0)
    }

    /// Every namespace kind, the time namespace included.
    pub fn all() -> Self {
        Namespace::ALL.into_iter().collect()
    }

    /// The sandbox default: every namespace but time (whose offsets no
    /// workload needs, and which `clone3` supports only since Linux 5.8).
    pub fn default_set() -> Self {
        Self::all().without(Namespace::Time)
    }

    /// Whether `ns` is in the set.
    pub fn contains(self, ns: Namespace) -> bool {
        self.0 & ns.bit() != 0
    }

    /// The set with `ns` added.
    #[must_use]
    pub fn with(self, ns: Namespace) -> Self {
        Self(self.0 | ns.bit())
    }

    /// The set with `ns` removed.
    #[must_use]
    pub fn without(self, ns: Namespace) -> Self {
        Self(self.0 & !ns.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Namespace::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(move |ns| self.contains(*ns))
    }

    /// The `CLONE_NEW*` flags for `clone3`.
    pub fn clone_flags(self) -> u64 {
        self.iter()
            .fold(0u64, |acc, ns| acc | ns.clone_flag() as u64)
    }
}

impl Default for NamespaceSet {
    fn default() -> Self {
        Self::default_set()
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        iter.into_iter().fold(Self::none(), Self::with)
    }
}

impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, ns) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(ns.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromStr for NamespaceSet {
    type Err = NsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Self::none();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            set = match part {
                "default" => Self(set.0 | Self::default_set().0),
                "all" => Self::all(),
                "none" => Self::none(),
                _ => match part.strip_prefix('-') {
                    Some(name) => set.without(name.parse()?),
                    None => set.with(part.parse()?),
                },
            };
        }
        Ok(set)
    }
}

impl Serialize for NamespaceSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for NamespaceSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<Namespace>),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::List(list) => Ok(list.into_iter().collect()),
            Form::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        assert_eq!(NamespaceSet::default().iter().count(), 7);
        assert_eq!(NamespaceSet::all().iter().count(), 8);
        assert!("none".parse::<NamespaceSet>().unwrap().is_empty());
        assert_eq!("all".parse::<NamespaceSet>().unwrap(), NamespaceSet::all());
    }

    #[test]
    fn list_and_removal() {
        let set: NamespaceSet = "pid, mount,net".parse().unwrap();
        assert_eq!(set.to_string(), "pid,mount,network");
        let set: NamespaceSet = "default,-user,-ipc".parse().unwrap();
        assert!(!set.contains(Namespace::User));
        assert!(set.contains(Namespace::Cgroup));
    }

    #[test]
    fn unknown_name_is_an_error() {
        let err = "pid,bogus".parse::<NamespaceSet>().unwrap_err();
        assert!(err.to_string().contains("\"bogus\""), "{err}");
    }

    #[test]
    fn clone_flags_match_kernel_constants() {
        let set: NamespaceSet = "pid,user".parse().unwrap();
        assert_eq!(
            set.clone_flags(),
            (libc::CLONE_NEWPID | libc::CLONE_NEWUSER) as u64
        );
        assert_eq!(NamespaceSet::none().clone_flags(), 0);
    }

    #[test]
    fn serde_round_trip() {
        let set: NamespaceSet = "pid,network".parse().unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["pid","network"]"#);
        let back: NamespaceSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        let text: NamespaceSet = serde_json::from_str(r#""default,-time""#).unwrap();
        assert_eq!(text, NamespaceSet::default());
    }

    #[test]
    fn hostname_validation() {
        assert!(crate::validate_hostname("a.b-c").is_ok());
        assert!(crate::validate_hostname("").is_err());
        assert!(crate::validate_hostname("-x").is_err());
        assert!(crate::validate_hostname(&"x".repeat(65)).is_err());
    }
}
