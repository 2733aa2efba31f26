//! The container's filesystem, in its new mount namespace: the root made a
//! mount point, every mount of the spec at its destination (resolved inside
//! the root, symlinks included, never leading out), devices, the root
//! switch, masked and read-only paths.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use crate::error::OciError;

/// `mount(2)` with a readable error.
pub fn mount(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), OciError> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).ok();
    let src_c = src.and_then(c);
    let dst_c = c(dst).ok_or_else(|| OciError::Layer(format!("bad path {}", dst.display())))?;
    let fs_c = fstype.and_then(|t| CString::new(t).ok());
    let data_c = data
        .filter(|d| !d.is_empty())
        .and_then(|d| CString::new(d).ok());
    let ptr = |o: &Option<CString>| o.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a live NUL-terminated string.
    let rc = unsafe {
        libc::mount(
            ptr(&src_c),
            dst_c.as_ptr(),
            ptr(&fs_c),
            flags,
            ptr(&data_c).cast(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(OciError::io(
        format!(
            "mount {} on {} (type {}, flags {flags:#x}, {})",
            src.map_or("none".into(), |s| s.display().to_string()),
            dst.display(),
            fstype.unwrap_or("none"),
            data.unwrap_or("")
        ),
        io::Error::last_os_error(),
    ))
}

/// Resolves `path` (absolute, as seen in the container) inside `root`, as
/// the container would: symlinks followed relative to `root`, `..` never
/// above it. Components that do not exist are kept as they are.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf, OciError> {
    let mut pending: Vec<PathBuf> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut current = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part.as_os_str() == ".." {
            current.pop();
            continue;
        }
        let candidate = root.join(&current).join(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(OciError::io(
                        format!("resolve {}", path.display()),
                        io::Error::from_raw_os_error(libc::ELOOP),
                    ));
                }
                let target = fs::read_link(&candidate)
                    .map_err(|e| OciError::io(format!("readlink {}", candidate.display()), e))?;
                if target.is_absolute() {
                    current.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => current.push(part),
        }
    }
    Ok(root.join(current))
}

/// What a mount's options mean.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// Flags to set.
    pub flags: libc::c_ulong,
    /// Propagation flags, applied after the mount.
    pub propagation: Vec<libc::c_ulong>,
    /// Filesystem-specific data.
    pub data: Vec<String>,
    /// A bind mount (`bind` or `rbind`).
    pub bind: bool,
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers.
    pub copy_up: bool,
}

/// Parses a mount's options as runc does; refuses the ones it cannot honour.
pub fn parse_options(options: &[String]) -> Result<Options, OciError> {
    let mut o = Options::default();
    for opt in options {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
            "defaults" => (0, 0),
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "suid" => (0, libc::MS_NOSUID),
            "nosuid" => (libc::MS_NOSUID, 0),
            "dev" => (0, libc::MS_NODEV),
            "nodev" => (libc::MS_NODEV, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "noexec" => (libc::MS_NOEXEC, 0),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (libc::MS_BIND, 0)
            }
            "rbind" => {
                o.bind = true;
                (libc::MS_BIND | libc::MS_REC, 0)
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation.push(propagation(opt).unwrap_or(0));
                (0, 0)
            }
            "tmpcopyup" => {
                o.copy_up = true;
                (0, 0)
            }
            "idmap" | "ridmap" | "copy-symlink" | "rro" | "rrw" | "rnosuid" | "rnodev"
            | "rnoexec" | "nosymfollow" => {
                return Err(OciError::Unsupported {
                    field: "mounts[].options".to_owned(),
                    reason: format!("{opt:?} is not supported by nucleus-oci"),
                })
            }
            other => {
                o.data.push(other.to_owned());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    Ok(o)
}

/// The flag of a propagation name (`rshared` = `MS_SHARED | MS_REC`).
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(b) if !b.is_empty() && ["private", "shared", "slave", "unbindable"].contains(&b) => {
            (libc::MS_REC, b)
        }
        _ => (0, name),
    };
    let flag = match base {
        "private" => libc::MS_PRIVATE,
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    };
    Some(flag | rec)
}

/// Flags the kernel locks on a mount made in a user namespace; a remount
/// must keep them.
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs writes into a zeroed struct from a live path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            out |= ms;
        }
    }
    out
}

/// `linux.rootfsPropagation` as mount flags (`None`: not given).
pub fn root_propagation(name: Option<&str>) -> Result<Option<libc::c_ulong>, OciError> {
    match name {
        None | Some("") => Ok(None),
        Some(p) => propagation(p).map(Some).ok_or_else(|| OciError::Invalid {
            field: "linux.rootfsPropagation".to_owned(),
            reason: format!("{p:?} is not a propagation"),
        }),
    }
}

/// Prepares the root: nothing propagates back to the host (the host's root
/// is made a slave, recursively), and the root filesystem is a mount point
/// of its own. The spec's `rootfsPropagation` comes after the root switch
/// ([`apply_root_propagation`]): `pivot_root` refuses a shared root, and
/// an unbindable one could not be bound here.
pub fn prepare_root(rootfs: &Path) -> Result<(), OciError> {
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )?;
    mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
}

/// After the root switch: the container's `/` gets `flags` (from
/// [`root_propagation`]); `shared` then shares with the container's own
/// mounts only, its peers on the host being slaves' masters.
pub fn apply_root_propagation(flags: Option<libc::c_ulong>) -> Result<(), OciError> {
    match flags {
        Some(f) => mount(None, Path::new("/"), None, f, None),
        None => Ok(()),
    }
}

/// Makes every mount of the spec under `rootfs`, in order.
pub fn mount_all(spec: &Spec, rootfs: &Path, cgroupns: bool) -> Result<(), OciError> {
    for m in spec.mounts().iter().flatten() {
        mount_one(rootfs, m, cgroupns).map_err(|e| match e {
            OciError::Io { what, source } => OciError::Io {
                what: format!("mount {}: {what}", m.destination().display()),
                source,
            },
            other => other,
        })?;
    }
    Ok(())
}

fn mount_one(rootfs: &Path, m: &Mount, cgroupns: bool) -> Result<(), OciError> {
    let opts = parse_options(m.options().as_deref().unwrap_or_default())?;
    let kind = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "none" });
    let dest = secure_join(rootfs, m.destination())?;
    let bind = opts.bind || kind == "bind";
    if kind == "cgroup" || kind == "cgroup2" {
        return mount_cgroup(&dest, &opts, cgroupns);
    }
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(kind));
    let source_is_file = bind && fs::metadata(&source).is_ok_and(|md| !md.is_dir());
    make_mountpoint(rootfs, &dest, source_is_file)?;
    let data = opts.data.join(",");
    if bind {
        let rec = opts.flags & libc::MS_REC;
        mount(Some(&source), &dest, None, libc::MS_BIND | rec, None)?;
        let wanted = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if wanted != 0 {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | wanted | locked_flags(&dest);
            mount(None, &dest, None, flags, None)?;
        }
    } else if opts.copy_up && kind == "tmpfs" {
        // The covered directory stays reachable through this fd.
        let below = fs::File::open(&dest)
            .map_err(|e| OciError::io(format!("open {}", dest.display()), e))?;
        mount(
            Some(&source),
            &dest,
            Some(kind),
            opts.flags & !libc::MS_RDONLY,
            Some(&data),
        )?;
        copy_tree(
            &PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&below)
            )),
            &dest,
        )?;
        if opts.flags & libc::MS_RDONLY != 0 {
            mount(
                None,
                &dest,
                None,
                libc::MS_REMOUNT | opts.flags,
                Some(&data),
            )?;
        }
    } else {
        let kind_ref = Some(kind);
        mount(Some(&source), &dest, kind_ref, opts.flags, Some(&data)).or_else(|e| {
            // Some filesystems refuse data they do not know on a remount; retry
            // read-only in two steps as runc does for sysfs/mqueue in a user ns.
            if opts.flags & libc::MS_RDONLY != 0 {
                mount(
                    Some(&source),
                    &dest,
                    kind_ref,
                    opts.flags & !libc::MS_RDONLY,
                    Some(&data),
                )?;
                mount(
                    None,
                    &dest,
                    None,
                    libc::MS_REMOUNT | opts.flags | locked_flags(&dest),
                    None,
                )
            } else {
                Err(e)
            }
        })?;
    }
    for p in &opts.propagation {
        mount(None, &dest, None, *p, None)?;
    }
    Ok(())
}

/// Copies the tree `from` into `to`: directories, files, links, with modes
/// and owners (`tmpcopyup`).
fn copy_tree(from: &Path, to: &Path) -> Result<(), OciError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let err = |p: &Path, e| OciError::io(format!("copy up {}", p.display()), e);
    for entry in fs::read_dir(from).map_err(|e| err(from, e))? {
        let entry = entry.map_err(|e| err(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let md = fs::symlink_metadata(&src).map_err(|e| err(&src, e))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| err(&src, e))?;
            symlink(target, &dst).map_err(|e| err(&dst, e))?;
        } else if ft.is_dir() {
            fs::create_dir(&dst).map_err(|e| err(&dst, e))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(|e| err(&dst, e))?;
        } else {
            continue;
        }
        if !ft.is_symlink() {
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(|e| err(&dst, e))?;
        }
        std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()))
            .map_err(|e| err(&dst, e))?;
    }
    Ok(())
}

/// Creates the directory (or, for a file bind, the empty file) to mount on.
/// `dest` is already resolved inside `rootfs`.
fn make_mountpoint(rootfs: &Path, dest: &Path, file: bool) -> Result<(), OciError> {
    if !dest.starts_with(rootfs) {
        return Err(OciError::Invalid {
            field: "mounts[].destination".to_owned(),
            reason: format!("{} leads out of the root", dest.display()),
        });
    }
    let dir = if file {
        dest.parent().unwrap_or(rootfs)
    } else {
        dest
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| OciError::io(format!("mkdir {}", dir.display()), e))?;
    if file && fs::symlink_metadata(dest).is_err() {
        fs::File::create(dest)
            .map_err(|e| OciError::io(format!("create {}", dest.display()), e))?;
    }
    Ok(())
}

/// `cgroup`: a tmpfs holding one directory per hierarchy, each the
/// container's own cgroup: in a cgroup namespace a fresh mount of the
/// hierarchy (its root is the container's cgroup), else the container's
/// cgroup bound from the host. On a v2-only host, the one hierarchy.
fn mount_cgroup(dest: &Path, opts: &Options, cgroupns: bool) -> Result<(), OciError> {
    fs::create_dir_all(dest).map_err(|e| OciError::io(format!("mkdir {}", dest.display()), e))?;
    let flags = opts.flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return one_hierarchy(
            Path::new("/sys/fs/cgroup"),
            dest,
            "unified",
            flags,
            cgroupns,
        );
    }
    let base = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )?;
    for entry in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = dest.join(&name);
        if let Ok(link) = fs::read_link(entry.path()) {
            let _ = symlink(link, &target);
            continue;
        }
        fs::create_dir_all(&target)
            .map_err(|e| OciError::io(format!("mkdir {}", target.display()), e))?;
        one_hierarchy(&entry.path(), &target, &name, flags, cgroupns)?;
    }
    if flags & libc::MS_RDONLY != 0 {
        mount(
            None,
            dest,
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | base,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// One hierarchy (`host`, named `name` under /sys/fs/cgroup) at `target`.
fn one_hierarchy(
    host: &Path,
    target: &Path,
    name: &str,
    flags: libc::c_ulong,
    cgroupns: bool,
) -> Result<(), OciError> {
    if cgroupns {
        let (fstype, data) = match name {
            "unified" => ("cgroup2", String::new()),
            "systemd" => ("cgroup", "none,name=systemd".to_owned()),
            other => ("cgroup", other.to_owned()),
        };
        let src = Path::new("cgroup");
        return mount(Some(src), target, Some(fstype), flags, Some(&data));
    }
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| OciError::io("read /proc/self/cgroup", e))?;
    let Some(path) =
        hierarchy_path(&own, name).or_else(|| (host == Path::new("/sys/fs/cgroup")).then_some("/"))
    else {
        return Ok(());
    };
    let path = if host == Path::new("/sys/fs/cgroup") {
        own.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or(path)
    } else {
        path
    };
    bind_ro(&host.join(path.trim_start_matches('/')), target, flags)
}

/// The path of this process's cgroup in the hierarchy mounted as `name`.
fn hierarchy_path<'a>(own: &'a str, name: &str) -> Option<&'a str> {
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match name {
            "unified" => ctrls.is_empty(),
            "systemd" => ctrls == "name=systemd",
            _ => {
                let mut want: Vec<&str> = name.split(',').collect();
                let mut have: Vec<&str> = ctrls.split(',').collect();
                want.sort_unstable();
                have.sort_unstable();
                want == have
            }
        };
        hit.then_some(path)
    })
}

fn bind_ro(src: &Path, dst: &Path, flags: libc::c_ulong) -> Result<(), OciError> {
    mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
    if flags != 0 {
        mount(
            None,
            dst,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | flags | locked_flags(dst),
            None,
        )?;
    }
    Ok(())
}

/// Switches the root to `rootfs`: `pivot_root` (the old root detached), or
/// with `no_pivot` a move over `/` and `chroot`.
pub fn switch_root(rootfs: &Path, no_pivot: bool) -> Result<(), OciError> {
    std::env::set_current_dir(rootfs)
        .map_err(|e| OciError::io(format!("chdir {}", rootfs.display()), e))?;
    if no_pivot {
        mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)?;
        nix::unistd::chroot(".").map_err(|e| OciError::io("chroot", e.into()))?;
    } else {
        nix::unistd::pivot_root(".", ".").map_err(|e| OciError::io("pivot_root", e.into()))?;
        // The old root is stacked under the new one: make it a slave so its
        // unmount reaches no peer, then detach it.
        mount(
            None,
            Path::new("."),
            None,
            libc::MS_SLAVE | libc::MS_REC,
            None,
        )?;
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| OciError::io("detach the old root", e.into()))?;
    }
    std::env::set_current_dir("/").map_err(|e| OciError::io("chdir /", e))
}

/// Masks each path (after the root switch): a directory under an empty
/// read-only tmpfs, anything else under `/dev/null`. Absent paths are skipped.
pub fn mask_paths(paths: &[String]) -> Result<(), OciError> {
    for p in paths {
        let path = Path::new(p);
        match fs::metadata(path) {
            Ok(md) if md.is_dir() => mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some("size=0,mode=555"),
            )?,
            Ok(_) => mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                libc::MS_BIND,
                None,
            )?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// Makes each path read-only (after the root switch). Absent paths are skipped.
pub fn readonly_paths(paths: &[String]) -> Result<(), OciError> {
    for p in paths {
        let path = Path::new(p);
        if fs::symlink_metadata(path).is_err() {
            continue;
        }
        mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None)?;
        let flags =
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | locked_flags(path);
        mount(None, path, None, flags, None)?;
    }
    Ok(())
}

/// Remounts the new root read-only.
pub fn readonly_root() -> Result<(), OciError> {
    let root = Path::new("/");
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(root);
    mount(None, root, None, flags, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_as_runc_reads_them() {
        let o = parse_options(&[
            "nosuid".into(),
            "noexec".into(),
            "nodev".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ])
        .expect("parse");
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        let o = parse_options(&["rbind".into(), "ro".into(), "rprivate".into()]).expect("parse");
        assert!(o.bind);
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(o.propagation, [libc::MS_PRIVATE | libc::MS_REC]);
        let o = parse_options(&["ro".into(), "rw".into()]).expect("parse");
        assert_eq!(o.flags, 0);
        assert!(parse_options(&["idmap".into()]).is_err());
    }

    #[test]
    fn joins_never_leave_the_root() {
        let dir = std::env::temp_dir().join(format!("nucleus-oci-join-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("a")).expect("mkdir");
        symlink("/etc", dir.join("abs")).expect("link");
        symlink("../../../..", dir.join("a/up")).expect("link");
        assert_eq!(
            secure_join(&dir, Path::new("/abs/passwd")).ok(),
            Some(dir.join("etc/passwd"))
        );
        assert_eq!(
            secure_join(&dir, Path::new("/a/up/x")).ok(),
            Some(dir.join("x"))
        );
        assert_eq!(
            secure_join(&dir, Path::new("/../../x")).ok(),
            Some(dir.join("x"))
        );
        assert_eq!(
            secure_join(&dir, Path::new("/a/b")).ok(),
            Some(dir.join("a/b"))
        );
        symlink("loop", dir.join("loop")).expect("link");
        assert!(secure_join(&dir, Path::new("/loop")).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn cgroup_hierarchies_by_name() {
        let own = "12:cpu,cpuacct:/a\n3:name=systemd:/s\n0::/u\n";
        assert_eq!(hierarchy_path(own, "cpuacct,cpu"), Some("/a"));
        assert_eq!(hierarchy_path(own, "systemd"), Some("/s"));
        assert_eq!(hierarchy_path(own, "unified"), Some("/u"));
        assert_eq!(hierarchy_path(own, "memory"), None);
    }
}
