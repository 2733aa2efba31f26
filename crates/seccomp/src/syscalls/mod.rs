//! Syscall name tables.
//!
//! `seccompiler` keeps its tables private, and `libc::SYS_*` constants cannot be looked up by
//! name, so the tables live here: one per architecture we can compile for, sorted by name, plus
//! the names that exist only on other architectures (so that a profile written for every
//! architecture is not rejected for naming `_llseek` or `s390_runtime_instr`).

mod aarch64;
mod other;
mod x86_64;

use crate::arch::Arch;

/// How a name resolves on one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The syscall exists here, with this number.
    Number(u32),
    /// The syscall exists on some other architecture only.
    OtherArch,
    /// No architecture we know has this name.
    Unknown,
}

fn table(arch: Arch) -> Option<&'static [(&'static str, u32)]> {
    match arch {
        Arch::X86_64 => Some(x86_64::X86_64),
        Arch::Aarch64 => Some(aarch64::AARCH64),
        _ => None,
    }
}

fn find(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| table[i].1)
}

/// Whether any architecture we know has a syscall of this name.
pub(crate) fn is_known(name: &str) -> bool {
    find(x86_64::X86_64, name).is_some()
        || find(aarch64::AARCH64, name).is_some()
        || other::OTHER_ARCH_NAMES.binary_search(&name).is_ok()
}

/// Resolve `name` for `arch` (which must be one with a table).
pub(crate) fn lookup(arch: Arch, name: &str) -> Lookup {
    match table(arch).and_then(|t| find(t, name)) {
        Some(nr) => Lookup::Number(nr),
        None if is_known(name) => Lookup::OtherArch,
        None => Lookup::Unknown,
    }
}

/// Whether `arch` has a syscall table here (and so can be compiled for).
pub(crate) fn has_table(arch: Arch) -> bool {
    table(arch).is_some()
}

/// The name of syscall `nr` on `arch`, if it has one.
pub fn name_of(arch: Arch, nr: u32) -> Option<&'static str> {
    table(arch)?
        .iter()
        .find(|(_, n)| *n == nr)
        .map(|(name, _)| *name)
}

/// The number of syscall `name` on `arch`, if it exists there.
pub fn number_of(arch: Arch, name: &str) -> Option<u32> {
    match lookup(arch, name) {
        Lookup::Number(nr) => Some(nr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for t in [x86_64::X86_64, aarch64::AARCH64] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert!(other::OTHER_ARCH_NAMES.windows(2).all(|w| w[0] < w[1]));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_numbers_match_libc() {
        let cases: &[(&str, libc::c_long)] = &[
            ("read", libc::SYS_read),
            ("getppid", libc::SYS_getppid),
            ("openat", libc::SYS_openat),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("unshare", libc::SYS_unshare),
            ("socket", libc::SYS_socket),
            ("ioctl", libc::SYS_ioctl),
            ("personality", libc::SYS_personality),
            ("mseal", libc::SYS_mseal),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("newfstatat", libc::SYS_newfstatat),
        ];
        for (name, nr) in cases {
            assert_eq!(number_of(Arch::X86_64, name), Some(*nr as u32), "{name}");
            assert_eq!(name_of(Arch::X86_64, *nr as u32), Some(*name));
        }
    }

    #[test]
    fn lookups_distinguish_other_arch_from_unknown() {
        assert_eq!(lookup(Arch::X86_64, "write"), Lookup::Number(1));
        assert_eq!(lookup(Arch::Aarch64, "write"), Lookup::Number(64));
        assert_eq!(lookup(Arch::Aarch64, "open"), Lookup::OtherArch);
        assert_eq!(lookup(Arch::X86_64, "_llseek"), Lookup::OtherArch);
        assert_eq!(
            lookup(Arch::X86_64, "s390_runtime_instr"),
            Lookup::OtherArch
        );
        assert_eq!(lookup(Arch::X86_64, "frobnicate"), Lookup::Unknown);
        assert_eq!(number_of(Arch::X86_64, "file_setattr"), Some(469));
    }
}
