//! Device nodes in the container's `/dev`: the spec's, plus the defaults
//! every container gets (`null`, `zero`, `full`, `random`, `urandom`,
//! `tty`), and the usual links. Made with `mknod` by host root; bound from
//! the host's node inside a user namespace, where `mknod` is not allowed.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};

use super::mounts::{mount, secure_join};
use crate::error::OciError;

/// The devices every container has, as `(path, major, minor)` (char devices, mode 0666).
const DEFAULTS: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Whether the spec binds `/dev` from the host (then nothing is made).
fn dev_from_host(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

/// Makes the devices and links under `rootfs` (before the root switch).
pub fn create(spec: &Spec, rootfs: &Path, in_userns: bool) -> Result<(), OciError> {
    if dev_from_host(spec) {
        return Ok(());
    }
    let listed: Vec<&LinuxDevice> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .collect();
    for dev in &listed {
        make(
            rootfs,
            dev.path(),
            dev.typ(),
            dev.major(),
            dev.minor(),
            dev.file_mode().unwrap_or(0o666),
            dev.uid(),
            dev.gid(),
            in_userns,
        )?;
    }
    for (path, major, minor) in DEFAULTS {
        if listed.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make(
            rootfs,
            Path::new(path),
            LinuxDeviceType::C,
            *major,
            *minor,
            0o666,
            Some(0),
            Some(0),
            in_userns,
        )?;
    }
    links(rootfs)
}

#[allow(clippy::too_many_arguments)]
fn make(
    rootfs: &Path,
    path: &Path,
    kind: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    in_userns: bool,
) -> Result<(), OciError> {
    let dest = secure_join(rootfs, path)?;
    if !dest.starts_with(rootfs) {
        return Err(OciError::Invalid {
            field: "linux.devices[].path".to_owned(),
            reason: format!("{} leads out of the root", path.display()),
        });
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| OciError::io(format!("mkdir {}", parent.display()), e))?;
    }
    if in_userns {
        return bind_host(path, &dest);
    }
    let kind_bits = match kind {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(OciError::Invalid {
                field: "linux.devices[].type".to_owned(),
                reason: format!("{}: 'a' is not a device type", path.display()),
            })
        }
    };
    let _ = fs::remove_file(&dest);
    let c = cstr(&dest)?;
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: mknod on a live NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), kind_bits | (mode & 0o7777), dev) } != 0 {
        return Err(OciError::io(
            format!("mknod {}", dest.display()),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: chmod (mknod applied the umask) and chown on the live path.
    let rc = unsafe {
        libc::chmod(c.as_ptr(), mode & 0o7777)
            | libc::chown(c.as_ptr(), uid.unwrap_or(0), gid.unwrap_or(0))
    };
    if rc != 0 {
        return Err(OciError::io(
            format!("chown {}", dest.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn bind_host(path: &Path, dest: &Path) -> Result<(), OciError> {
    if fs::symlink_metadata(dest).is_err() {
        fs::File::create(dest)
            .map_err(|e| OciError::io(format!("create {}", dest.display()), e))?;
    }
    mount(Some(path), dest, None, libc::MS_BIND, None)
}

fn cstr(p: &Path) -> Result<CString, OciError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| OciError::Layer(format!("bad path {}", p.display())))
}

/// `/dev/fd`, `stdin`, `stdout`, `stderr`, `core` and `ptmx` (to `pts/ptmx`).
fn links(rootfs: &Path) -> Result<(), OciError> {
    let dev = rootfs.join("dev");
    let table: [(&str, PathBuf); 6] = [
        ("fd", "/proc/self/fd".into()),
        ("stdin", "/proc/self/fd/0".into()),
        ("stdout", "/proc/self/fd/1".into()),
        ("stderr", "/proc/self/fd/2".into()),
        ("core", "/proc/kcore".into()),
        ("ptmx", "pts/ptmx".into()),
    ];
    for (name, target) in table {
        let link = dev.join(name);
        if name == "ptmx" && !dev.join("pts/ptmx").exists() {
            continue;
        }
        if fs::symlink_metadata(&link).is_ok() {
            if name != "ptmx" {
                continue;
            }
            let _ = fs::remove_file(&link);
        }
        symlink(&target, &link)
            .map_err(|e| OciError::io(format!("symlink {}", link.display()), e))?;
    }
    Ok(())
}
