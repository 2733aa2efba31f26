//! The host as a sandbox sees it: which of its directories make up a
//! system view, and which of its files hold secrets. The one home of these
//! lists: the Landlock defaults and the gVisor bundle take them from here.

/// The host's system directories: shown read-only in a view built on the
/// host ([`Base::Host`](crate::Base::Host)), in this order. Missing ones are
/// skipped; symbolic links (`/bin -> usr/bin` on merged-`/usr` systems) are
/// recreated as links.
///
/// ```
/// assert!(nucleus_rootfs::HOST_SYSTEM_DIRS.contains(&"/usr"));
/// ```
pub const HOST_SYSTEM_DIRS: [&str; 8] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// The one of [`HOST_SYSTEM_DIRS`] that holds configuration rather than
/// programs and libraries: read, never executed.
///
/// ```
/// use nucleus_rootfs::{HOST_CONFIG_DIR, HOST_SYSTEM_DIRS};
/// let programs = HOST_SYSTEM_DIRS.iter().filter(|d| **d != HOST_CONFIG_DIR);
/// assert_eq!(programs.count(), HOST_SYSTEM_DIRS.len() - 1);
/// ```
pub const HOST_CONFIG_DIR: &str = "/etc";

/// The paths masked by default: the ones that hold secrets on a typical
/// Debian, Fedora or Ubuntu host. A `*` in the last component matches any
/// run of characters (`/etc/ssh/ssh_host_*_key`).
///
/// ```
/// assert!(nucleus_rootfs::MASKED_PATHS.contains(&"/etc/shadow"));
/// ```
pub const MASKED_PATHS: [&str; 10] = [
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh/ssh_host_*_key",
    "/etc/ssl/private",
    "/etc/security/opasswd",
    "/etc/krb5.keytab",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_dir_is_a_system_dir_and_masks_live_in_it() {
        assert!(HOST_SYSTEM_DIRS.contains(&HOST_CONFIG_DIR));
        assert!(MASKED_PATHS.iter().all(|p| p.starts_with(HOST_CONFIG_DIR)));
    }
}
