//! Capabilities, their bit sets, and the names of a thread's five sets:
//! the leaf types every other module of the crate names.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! capabilities {
    ($( $(#[$doc:meta])* $variant:ident = $idx:literal, $name:literal; )*) => {
        /// A Linux capability, numbered as in `<linux/capability.h>`.
        ///
        /// Parsed from `CAP_NET_BIND_SERVICE`, `cap_net_bind_service` or
        /// `net_bind_service`; shown and serialized as `CAP_NET_BIND_SERVICE`.
        ///
        /// ```
        /// use nucleus_caps::Capability;
        /// let cap: Capability = "net_bind_service".parse().unwrap();
        /// assert_eq!(cap, Capability::NetBindService);
        /// assert_eq!(cap.to_string(), "CAP_NET_BIND_SERVICE");
        /// assert_eq!(cap.index(), 10);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Capability {
            $( $(#[$doc])* $variant = $idx, )*
        }

        impl Capability {
            /// Every capability this crate knows, in index order.
            pub const ALL: [Capability; 41] = [ $( Capability::$variant, )* ];

            /// The kernel's name, e.g. `CAP_CHOWN`.
            pub const fn name(self) -> &'static str {
                match self { $( Capability::$variant => $name, )* }
            }
        }
    };
}

capabilities! {
    /// Change file owners and groups.
    Chown = 0, "CAP_CHOWN";
    /// Bypass file read, write and execute permission checks.
    DacOverride = 1, "CAP_DAC_OVERRIDE";
    /// Bypass file read and directory read/search permission checks.
    DacReadSearch = 2, "CAP_DAC_READ_SEARCH";
    /// Bypass checks that the process owns the file.
    Fowner = 3, "CAP_FOWNER";
    /// Keep set-user/group-ID bits when a file is modified.
    Fsetid = 4, "CAP_FSETID";
    /// Send signals to any process.
    Kill = 5, "CAP_KILL";
    /// Change gids and supplementary groups.
    Setgid = 6, "CAP_SETGID";
    /// Change uids.
    Setuid = 7, "CAP_SETUID";
    /// Change capability sets, bounding set and securebits.
    Setpcap = 8, "CAP_SETPCAP";
    /// Set immutable and append-only file attributes.
    LinuxImmutable = 9, "CAP_LINUX_IMMUTABLE";
    /// Bind ports below 1024.
    NetBindService = 10, "CAP_NET_BIND_SERVICE";
    /// Broadcast and listen to multicast (unused by the kernel).
    NetBroadcast = 11, "CAP_NET_BROADCAST";
    /// Configure network interfaces, routes, firewalls.
    NetAdmin = 12, "CAP_NET_ADMIN";
    /// Use raw and packet sockets.
    NetRaw = 13, "CAP_NET_RAW";
    /// Lock memory.
    IpcLock = 14, "CAP_IPC_LOCK";
    /// Bypass System V IPC permission checks.
    IpcOwner = 15, "CAP_IPC_OWNER";
    /// Load and unload kernel modules.
    SysModule = 16, "CAP_SYS_MODULE";
    /// Raw I/O: ioperm, /dev/mem, ...
    SysRawio = 17, "CAP_SYS_RAWIO";
    /// Call chroot.
    SysChroot = 18, "CAP_SYS_CHROOT";
    /// Trace any process.
    SysPtrace = 19, "CAP_SYS_PTRACE";
    /// Configure process accounting.
    SysPacct = 20, "CAP_SYS_PACCT";
    /// Mount, create namespaces, and much more.
    SysAdmin = 21, "CAP_SYS_ADMIN";
    /// Reboot and kexec.
    SysBoot = 22, "CAP_SYS_BOOT";
    /// Raise priorities, set scheduling policies of any process.
    SysNice = 23, "CAP_SYS_NICE";
    /// Override resource limits and quotas.
    SysResource = 24, "CAP_SYS_RESOURCE";
    /// Set the system clock.
    SysTime = 25, "CAP_SYS_TIME";
    /// Configure tty devices, vhangup.
    SysTtyConfig = 26, "CAP_SYS_TTY_CONFIG";
    /// Create device nodes.
    Mknod = 27, "CAP_MKNOD";
    /// Take leases on any file.
    Lease = 28, "CAP_LEASE";
    /// Write the kernel audit log.
    AuditWrite = 29, "CAP_AUDIT_WRITE";
    /// Configure auditing.
    AuditControl = 30, "CAP_AUDIT_CONTROL";
    /// Set file capabilities.
    Setfcap = 31, "CAP_SETFCAP";
    /// Override mandatory access control.
    MacOverride = 32, "CAP_MAC_OVERRIDE";
    /// Configure mandatory access control.
    MacAdmin = 33, "CAP_MAC_ADMIN";
    /// Use privileged syslog operations.
    Syslog = 34, "CAP_SYSLOG";
    /// Set alarms that wake the system.
    WakeAlarm = 35, "CAP_WAKE_ALARM";
    /// Block system suspend.
    BlockSuspend = 36, "CAP_BLOCK_SUSPEND";
    /// Read the audit log over multicast netlink.
    AuditRead = 37, "CAP_AUDIT_READ";
    /// Use performance monitoring.
    Perfmon = 38, "CAP_PERFMON";
    /// Use privileged BPF operations.
    Bpf = 39, "CAP_BPF";
    /// Checkpoint/restore: set pids of new processes, read other processes' maps.
    CheckpointRestore = 40, "CAP_CHECKPOINT_RESTORE";
}

impl Capability {
    /// The kernel's number of this capability.
    pub const fn index(self) -> u8 {
        self as u8
    }

    /// The capability numbered `index`, if this crate knows it.
    pub fn from_index(index: u8) -> Option<Self> {
        Self::ALL.get(usize::from(index)).copied()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability number shown by name when known, as `CAP_<n>` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapIndex(pub(crate) u8);

impl fmt::Display for CapIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Capability::from_index(self.0) {
            Some(cap) => f.write_str(cap.name()),
            None => write!(f, "CAP_{}", self.0),
        }
    }
}

/// A set of capabilities as a bit mask (bit `n` is capability `n`), the
/// form the kernel uses. Bits above [`Capability::CheckpointRestore`] stand
/// for capabilities of newer kernels and are kept as they are.
///
/// ```
/// use nucleus_caps::{CapSet, Capability};
/// let mut set = CapSet::EMPTY;
/// set.insert(Capability::NetBindService);
/// assert!(set.contains(Capability::NetBindService));
/// assert_eq!(set.bits(), 1 << 10);
/// assert_eq!(set.names(), ["CAP_NET_BIND_SERVICE"]);
/// assert_eq!(set.to_string(), "CAP_NET_BIND_SERVICE");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapSet(u64);

impl CapSet {
    /// No capability.
    pub const EMPTY: Self = Self(0);

    /// The set with these bits.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Capabilities `0..=last`.
    pub const fn up_to(last: u8) -> Self {
        if last >= 63 {
            Self(u64::MAX)
        } else {
            Self((1u64 << (last + 1)) - 1)
        }
    }

    /// The bit mask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether `cap` is in the set.
    pub const fn contains(self, cap: Capability) -> bool {
        self.has(cap.index())
    }

    /// Whether capability number `index` is in the set.
    pub const fn has(self, index: u8) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    /// Adds `cap`.
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= 1 << cap.index();
    }

    /// Removes `cap`.
    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !(1 << cap.index());
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many capabilities are in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Both sets together.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// What both sets have.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// What `self` has and `other` lacks.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every member of `self` is in `other`.
    pub const fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// The known capabilities in the set, in index order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }

    /// The capability numbers in the set (known or not), in order.
    pub fn indices(self) -> impl Iterator<Item = u8> {
        (0..64u8).filter(move |i| self.has(*i))
    }

    /// The names of the members, `CAP_<n>` for numbers this crate does not know.
    pub fn names(self) -> Vec<String> {
        self.indices().map(|i| CapIndex(i).to_string()).collect()
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for cap in iter {
            set.insert(cap);
        }
        set
    }
}

impl<'a> FromIterator<&'a Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = &'a Capability>>(iter: I) -> Self {
        iter.into_iter().copied().collect()
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (n, i) in self.indices().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", CapIndex(i))?;
        }
        Ok(())
    }
}

impl Serialize for CapSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.indices().map(CapIndex).map(|c| c.to_string()))
    }
}

impl<'de> Deserialize<'de> for CapSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<Capability>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// Capabilities that let a process create or enter namespaces, refused by
/// [`CapsPolicy::validate`](crate::CapsPolicy::validate) unless `allow_namespace_caps = true`:
///
/// - `CAP_SYS_ADMIN`: `clone`/`unshare` of every namespace but the user
///   namespace, `setns`, `mount`: everything a sandbox escape needs.
/// - `CAP_SYS_PTRACE`: bypasses the ptrace access checks that guard
///   `/proc/PID/ns/*` and other processes' memory, so a process holding it
///   can take over a process that lives in (or holds fds of) other namespaces.
///
/// Not listed: `CAP_SYS_CHROOT` (entering a mount namespace needs it *and*
/// `CAP_SYS_ADMIN`), and user namespaces, which need no capability at all;
/// bound those with `user.max_user_namespaces` or seccomp.
pub const NAMESPACE_CAPS: CapSet =
    CapSet::from_bits((1 << Capability::SysAdmin as u8) | (1 << Capability::SysPtrace as u8));

/// One of the five capability sets of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetName {
    /// The bounding set: the ceiling for what `execve` can grant.
    Bounding,
    /// The effective set: what the kernel checks.
    Effective,
    /// The permitted set: what the thread may make effective.
    Permitted,
    /// The inheritable set: kept across `execve` for files that allow it.
    Inheritable,
    /// The ambient set: kept across `execve` of unprivileged programs.
    Ambient,
}

impl fmt::Display for SetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bounding => "bounding",
            Self::Effective => "effective",
            Self::Permitted => "permitted",
            Self::Inheritable => "inheritable",
            Self::Ambient => "ambient",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_names_round_trip() {
        assert_eq!(Capability::ALL.len(), 41);
        for (i, cap) in Capability::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(cap.index()), i);
            assert_eq!(Capability::from_index(cap.index()), Some(cap));
            let name = cap.to_string();
            assert!(name.starts_with("CAP_"));
            assert_eq!(name.parse::<Capability>().unwrap(), cap);
            assert_eq!(name.to_lowercase().parse::<Capability>().unwrap(), cap);
            assert_eq!(name[4..].parse::<Capability>().unwrap(), cap);
            assert_eq!(name[4..].to_lowercase().parse::<Capability>().unwrap(), cap);
            let json = serde_json::to_string(&cap).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Capability>(&json).unwrap(), cap);
        }
        assert_eq!(Capability::from_index(41), None);
    }

    #[test]
    fn set_operations() {
        let a: CapSet = [Capability::Chown, Capability::Kill].iter().collect();
        let b: CapSet = [Capability::Kill, Capability::SysAdmin]
            .into_iter()
            .collect();
        assert_eq!(a.bits(), 0b100001);
        assert_eq!(a.union(b).len(), 3);
        assert_eq!(
            a.intersection(b).iter().collect::<Vec<_>>(),
            [Capability::Kill]
        );
        assert_eq!(
            a.difference(b).iter().collect::<Vec<_>>(),
            [Capability::Chown]
        );
        assert!(a.intersection(b).is_subset(a));
        assert!(!a.is_subset(b));
        let mut c = a;
        c.remove(Capability::Chown);
        assert!(!c.contains(Capability::Chown) && c.contains(Capability::Kill));
        assert_eq!(CapSet::up_to(40).len(), 41);
        assert_eq!(CapSet::up_to(63).bits(), u64::MAX);
        assert!(!CapSet::EMPTY.has(64));
    }

    #[test]
    fn set_names_and_serde() {
        let set = CapSet::from_bits((1 << 21) | (1 << 45));
        assert_eq!(set.names(), ["CAP_SYS_ADMIN", "CAP_45"]);
        assert_eq!(set.to_string(), "CAP_SYS_ADMIN, CAP_45");
        assert_eq!(CapSet::EMPTY.to_string(), "none");
        let known = CapSet::from_bits(1 << 21);
        let json = serde_json::to_string(&known).unwrap();
        assert_eq!(json, r#"["CAP_SYS_ADMIN"]"#);
        assert_eq!(serde_json::from_str::<CapSet>(&json).unwrap(), known);
    }
}
