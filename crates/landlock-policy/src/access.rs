//! Access-right names, the groups they form, and the Landlock ABI each one needs.

use landlock::{AccessFs, AccessNet, BitFlags};
use serde::{Deserialize, Serialize};

/// The highest Landlock ABI this crate knows (Linux 7.1: ABI 9).
pub const MAX_KNOWN_ABI: u8 = 9;

/// The ABI whose filesystem rights a policy handles by default (see [`crate::Policy::handle_fs`]).
///
/// Handling a right means denying it wherever no rule allows it. The default set is pinned
/// to a vetted ABI rather than to "whatever the kernel has", so a kernel upgrade never
/// starts denying something a policy did not name (ABI 9's `resolve-unix`, for instance).
pub const VETTED_ABI: u8 = 7;

/// A filesystem access right, or a named group of them, as written in a policy.
///
/// | name | rights | ABI |
/// |---|---|---|
/// | `read` | `read-file` + `read-dir` | 1 |
/// | `write` | `write-file` + `truncate` | 3 |
/// | `create` | `make-reg` + `make-dir` + `make-sym` + `make-sock` + `make-fifo` | 1 |
/// | `remove` | `remove-file` + `remove-dir` | 1 |
/// | `all` | every right up to ABI 7 ([`VETTED_ABI`]), `ioctl-dev` included | 5 |
/// | `execute` | run a file with `execve(2)` (also the ELF interpreter) | 1 |
/// | `read-file` | open a file for reading | 1 |
/// | `read-dir` | open or list a directory | 1 |
/// | `write-file` | open a file for writing | 1 |
/// | `remove-file` | unlink or rename away a file | 1 |
/// | `remove-dir` | remove or rename away a directory | 1 |
/// | `make-reg` | create a regular file | 1 |
/// | `make-dir` | create a directory | 1 |
/// | `make-sym` | create a symbolic link | 1 |
/// | `make-sock` | create a unix socket file | 1 |
/// | `make-fifo` | create a named pipe | 1 |
/// | `make-char` | create a character device | 1 |
/// | `make-block` | create a block device | 1 |
/// | `refer` | link or rename a file into another directory | 2 |
/// | `truncate` | `truncate(2)`, `ftruncate(2)`, `O_TRUNC` | 3 |
/// | `ioctl-dev` | `ioctl(2)` on a device file | 5 |
/// | `resolve-unix` | connect to a pathname unix socket | 9 |
///
/// Directory-only rights (`read-dir`, `remove-*`, `make-*`, `refer`) are silently left out
/// of a rule whose path is a file: they mean nothing there.
///
/// ```
/// use nucleus_landlock_policy::FsAccess;
/// assert_eq!(FsAccess::Read.min_abi(), 1);
/// assert_eq!(FsAccess::Write.min_abi(), 3);
/// assert_eq!(FsAccess::IoctlDev.name(), "ioctl-dev");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FsAccess {
    /// `read-file` + `read-dir`.
    Read,
    /// `write-file` + `truncate`.
    Write,
    /// `make-reg` + `make-dir` + `make-sym` + `make-sock` + `make-fifo` (no devices).
    Create,
    /// `remove-file` + `remove-dir`.
    Remove,
    /// Every right of ABI 7 ([`VETTED_ABI`]).
    All,
    /// Run a file with `execve(2)`.
    Execute,
    /// Open a file for reading.
    ReadFile,
    /// Open or list a directory.
    ReadDir,
    /// Open a file for writing.
    WriteFile,
    /// Unlink or rename away a file.
    RemoveFile,
    /// Remove or rename away a directory.
    RemoveDir,
    /// Create a regular file.
    MakeReg,
    /// Create a directory.
    MakeDir,
    /// Create a symbolic link.
    MakeSym,
    /// Create a unix socket file.
    MakeSock,
    /// Create a named pipe.
    MakeFifo,
    /// Create a character device.
    MakeChar,
    /// Create a block device.
    MakeBlock,
    /// Link or rename a file into another directory (ABI 2).
    Refer,
    /// Truncate a file (ABI 3).
    Truncate,
    /// `ioctl(2)` on a device file (ABI 5).
    IoctlDev,
    /// Connect to a pathname unix socket (ABI 9).
    ResolveUnix,
}

/// One Landlock filesystem right: its flag, its name, the ABI that brought it, its variant.
struct FsRight(AccessFs, &'static str, u8, FsAccess);

/// Every single filesystem right, in kernel bit order.
const FS_RIGHTS: &[FsRight] = &[
    FsRight(AccessFs::Execute, "execute", 1, FsAccess::Execute),
    FsRight(AccessFs::WriteFile, "write-file", 1, FsAccess::WriteFile),
    FsRight(AccessFs::ReadFile, "read-file", 1, FsAccess::ReadFile),
    FsRight(AccessFs::ReadDir, "read-dir", 1, FsAccess::ReadDir),
    FsRight(AccessFs::RemoveDir, "remove-dir", 1, FsAccess::RemoveDir),
    FsRight(AccessFs::RemoveFile, "remove-file", 1, FsAccess::RemoveFile),
    FsRight(AccessFs::MakeChar, "make-char", 1, FsAccess::MakeChar),
    FsRight(AccessFs::MakeDir, "make-dir", 1, FsAccess::MakeDir),
    FsRight(AccessFs::MakeReg, "make-reg", 1, FsAccess::MakeReg),
    FsRight(AccessFs::MakeSock, "make-sock", 1, FsAccess::MakeSock),
    FsRight(AccessFs::MakeFifo, "make-fifo", 1, FsAccess::MakeFifo),
    FsRight(AccessFs::MakeBlock, "make-block", 1, FsAccess::MakeBlock),
    FsRight(AccessFs::MakeSym, "make-sym", 1, FsAccess::MakeSym),
    FsRight(AccessFs::Refer, "refer", 2, FsAccess::Refer),
    FsRight(AccessFs::Truncate, "truncate", 3, FsAccess::Truncate),
    FsRight(AccessFs::IoctlDev, "ioctl-dev", 5, FsAccess::IoctlDev),
    FsRight(
        AccessFs::ResolveUnix,
        "resolve-unix",
        9,
        FsAccess::ResolveUnix,
    ),
];

/// Rights that apply to a non-directory file; the rest only make sense beneath a directory.
pub(crate) fn file_rights() -> BitFlags<AccessFs> {
    AccessFs::ReadFile
        | AccessFs::WriteFile
        | AccessFs::Execute
        | AccessFs::Truncate
        | AccessFs::IoctlDev
        | AccessFs::ResolveUnix
}

/// The filesystem rights a kernel of Landlock ABI `abi` can handle.
pub(crate) fn fs_supported(abi: u8) -> BitFlags<AccessFs> {
    FS_RIGHTS
        .iter()
        .filter(|r| r.2 <= abi)
        .fold(BitFlags::EMPTY, |acc, r| acc | r.0)
}

/// The single rights in `flags`, in kernel bit order.
pub(crate) fn fs_singles(flags: BitFlags<AccessFs>) -> impl Iterator<Item = FsAccess> {
    FS_RIGHTS
        .iter()
        .filter(move |r| flags.contains(r.0))
        .map(|r| r.3)
}

/// Names of the rights in `flags`, in kernel bit order.
pub(crate) fn fs_names(flags: BitFlags<AccessFs>) -> impl Iterator<Item = &'static str> {
    FS_RIGHTS
        .iter()
        .filter(move |r| flags.contains(r.0))
        .map(|r| r.1)
}

impl FsAccess {
    /// The Landlock rights this name stands for.
    pub fn flags(self) -> BitFlags<AccessFs> {
        match self {
            FsAccess::Read => AccessFs::ReadFile | AccessFs::ReadDir,
            FsAccess::Write => AccessFs::WriteFile | AccessFs::Truncate,
            FsAccess::Create => {
                AccessFs::MakeReg
                    | AccessFs::MakeDir
                    | AccessFs::MakeSym
                    | AccessFs::MakeSock
                    | AccessFs::MakeFifo
            }
            FsAccess::Remove => AccessFs::RemoveFile | AccessFs::RemoveDir,
            FsAccess::All => fs_supported(VETTED_ABI),
            FsAccess::Execute => AccessFs::Execute.into(),
            FsAccess::ReadFile => AccessFs::ReadFile.into(),
            FsAccess::ReadDir => AccessFs::ReadDir.into(),
            FsAccess::WriteFile => AccessFs::WriteFile.into(),
            FsAccess::RemoveFile => AccessFs::RemoveFile.into(),
            FsAccess::RemoveDir => AccessFs::RemoveDir.into(),
            FsAccess::MakeReg => AccessFs::MakeReg.into(),
            FsAccess::MakeDir => AccessFs::MakeDir.into(),
            FsAccess::MakeSym => AccessFs::MakeSym.into(),
            FsAccess::MakeSock => AccessFs::MakeSock.into(),
            FsAccess::MakeFifo => AccessFs::MakeFifo.into(),
            FsAccess::MakeChar => AccessFs::MakeChar.into(),
            FsAccess::MakeBlock => AccessFs::MakeBlock.into(),
            FsAccess::Refer => AccessFs::Refer.into(),
            FsAccess::Truncate => AccessFs::Truncate.into(),
            FsAccess::IoctlDev => AccessFs::IoctlDev.into(),
            FsAccess::ResolveUnix => AccessFs::ResolveUnix.into(),
        }
    }

    /// The lowest Landlock ABI that can enforce every right this name stands for.
    pub fn min_abi(self) -> u8 {
        let flags = self.flags();
        FS_RIGHTS
            .iter()
            .filter(|r| flags.contains(r.0))
            .map(|r| r.2)
            .max()
            .unwrap_or(1)
    }

    /// The name as written in a policy file.
    pub fn name(self) -> &'static str {
        match self {
            FsAccess::Read => "read",
            FsAccess::Write => "write",
            FsAccess::Create => "create",
            FsAccess::Remove => "remove",
            FsAccess::All => "all",
            single => fs_names(single.flags()).next().unwrap_or("?"),
        }
    }
}

/// Union of the rights of several names.
pub(crate) fn fs_union(access: &[FsAccess]) -> BitFlags<AccessFs> {
    access
        .iter()
        .fold(BitFlags::EMPTY, |acc, a| acc | a.flags())
}

/// A TCP access right (Landlock ABI 4).
///
/// ```
/// use nucleus_landlock_policy::NetAccess;
/// assert_eq!(NetAccess::ConnectTcp.name(), "connect-tcp");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NetAccess {
    /// `bind(2)` a TCP socket to the port.
    BindTcp,
    /// `connect(2)` a TCP socket to the port.
    ConnectTcp,
}

/// The ABI that brought TCP rules.
pub(crate) const NET_ABI: u8 = 4;

impl NetAccess {
    /// The Landlock right.
    pub fn flags(self) -> BitFlags<AccessNet> {
        match self {
            NetAccess::BindTcp => AccessNet::BindTcp.into(),
            NetAccess::ConnectTcp => AccessNet::ConnectTcp.into(),
        }
    }

    /// The name as written in a policy file.
    pub fn name(self) -> &'static str {
        match self {
            NetAccess::BindTcp => "bind-tcp",
            NetAccess::ConnectTcp => "connect-tcp",
        }
    }
}

/// Union of the rights of several names.
pub(crate) fn net_union(access: &[NetAccess]) -> BitFlags<AccessNet> {
    access
        .iter()
        .fold(BitFlags::EMPTY, |acc, a| acc | a.flags())
}

/// Names of the rights in `flags`.
pub(crate) fn net_names(flags: BitFlags<AccessNet>) -> impl Iterator<Item = &'static str> {
    [NetAccess::BindTcp, NetAccess::ConnectTcp]
        .into_iter()
        .filter(move |a| flags.contains(a.flags()))
        .map(NetAccess::name)
}

/// An IPC scope (Landlock ABI 6): what a sandboxed process may not reach outside its domain.
///
/// ```
/// use nucleus_landlock_policy::Scope;
/// assert_eq!(Scope::Signal.name(), "signal");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Scope {
    /// `connect(2)`/`sendmsg(2)` to an abstract unix socket bound outside the domain
    /// fails with `EPERM`.
    AbstractUnixSocket,
    /// `kill(2)` and friends on a process outside the domain fail with `EPERM`.
    Signal,
}

/// The ABI that brought scopes.
pub(crate) const SCOPE_ABI: u8 = 6;

impl Scope {
    /// The Landlock scope flag.
    pub fn flags(self) -> BitFlags<landlock::Scope> {
        match self {
            Scope::AbstractUnixSocket => landlock::Scope::AbstractUnixSocket.into(),
            Scope::Signal => landlock::Scope::Signal.into(),
        }
    }

    /// The name as written in a policy file.
    pub fn name(self) -> &'static str {
        match self {
            Scope::AbstractUnixSocket => "abstract-unix-socket",
            Scope::Signal => "signal",
        }
    }
}

/// Names of the scopes in `flags`.
pub(crate) fn scope_names(flags: BitFlags<landlock::Scope>) -> impl Iterator<Item = &'static str> {
    [Scope::AbstractUnixSocket, Scope::Signal]
        .into_iter()
        .filter(move |s| flags.contains(s.flags()))
        .map(Scope::name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlock::{Access, ABI};

    #[test]
    fn supported_sets_match_the_landlock_crate() {
        for abi in 0..=MAX_KNOWN_ABI {
            let theirs = AccessFs::from_all(ABI::from(i32::from(abi)));
            assert_eq!(fs_supported(abi), theirs, "abi {abi}");
        }
    }

    #[test]
    fn group_abis() {
        assert_eq!(FsAccess::Read.min_abi(), 1);
        assert_eq!(FsAccess::Write.min_abi(), 3);
        assert_eq!(FsAccess::Refer.min_abi(), 2);
        assert_eq!(FsAccess::IoctlDev.min_abi(), 5);
        assert_eq!(FsAccess::All.min_abi(), 5);
        assert_eq!(FsAccess::ResolveUnix.min_abi(), 9);
        assert!(!FsAccess::Create.flags().contains(AccessFs::MakeChar));
    }

    #[test]
    fn names_round_trip_through_serde() {
        for a in [
            FsAccess::Read,
            FsAccess::Execute,
            FsAccess::IoctlDev,
            FsAccess::MakeReg,
            FsAccess::ResolveUnix,
        ] {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
        }
        assert_eq!(
            serde_json::to_string(&Scope::AbstractUnixSocket).unwrap(),
            "\"abstract-unix-socket\""
        );
        assert_eq!(
            serde_json::to_string(&NetAccess::BindTcp).unwrap(),
            "\"bind-tcp\""
        );
    }
}
