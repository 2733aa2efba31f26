//! The gVisor run directory's contents beside the bundle: the covers that
//! hide masked files from runsc itself, and the bind sources root opens,
//! attached below the run directory.

use crate::Envelope;
use nucleus_gvisor::BundleSpec;
use nucleus_rootfs::MountKind;
use std::path::{Path, PathBuf};

/// The overlays that hide masked files from runsc: for each directory of
/// the view holding masked files (`/etc` of the host, or the root
/// directory), a tree in the run directory with an empty, read-only file
/// at each masked path, laid over it.
pub(crate) fn mask_covers(
    env: &Envelope,
    masks: &[nucleus_rootfs::Mask],
    run_dir: &Path,
) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut covers: Vec<(PathBuf, PathBuf)> = Vec::new();
    for mask in masks.iter().filter(|m| !m.is_dir) {
        let (top, rel) = match &env.rootfs.base {
            nucleus_rootfs::Base::Directory(dir) => (
                dir.clone(),
                mask.path.strip_prefix("/").unwrap_or(&mask.path).to_owned(),
            ),
            nucleus_rootfs::Base::Host => {
                let Some(d) = env
                    .rootfs
                    .host_dirs
                    .iter()
                    .find(|d| mask.path.starts_with(d))
                else {
                    continue;
                };
                (
                    d.clone(),
                    mask.path.strip_prefix(d).unwrap_or(&mask.path).to_owned(),
                )
            }
        };
        let cover = match covers.iter().find(|(_, t)| *t == top) {
            Some((c, _)) => c.clone(),
            None => {
                let c = run_dir.join(format!("cover-{}", covers.len()));
                std::fs::DirBuilder::new().mode(0o755).create(&c)?;
                covers.push((c.clone(), top.clone()));
                c
            }
        };
        // Each directory on the way keeps the host's mode: the merged
        // directory shows the top layer's.
        let mut host_dir = top.clone();
        let mut dir = cover.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            host_dir.push(part);
            dir.push(part);
            let mode = std::fs::metadata(&host_dir)?.permissions().mode() & 0o7777;
            match std::fs::DirBuilder::new().mode(mode).create(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let file = cover.join(&rel);
        std::fs::write(&file, b"")?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444))?;
    }
    Ok(covers)
}

/// A bind source root opens itself: its host path, where it is attached
/// (relative to the run directory), read-only or not.
pub(crate) struct Detached {
    source: PathBuf,
    target: PathBuf,
    read_only: bool,
}

/// Points each bind of the bundle at `binds/N` in the run directory and
/// returns what to attach there.
pub(crate) fn detach_binds(spec: &mut BundleSpec) -> Vec<Detached> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts.iter_mut().enumerate() {
        let read_only = match m.kind {
            MountKind::Bind => false,
            MountKind::RoBind => true,
            MountKind::Tmpfs => continue,
        };
        let Some(source) = m.source.take() else {
            continue;
        };
        let target = PathBuf::from(format!("binds/{i}"));
        m.source = Some(target.clone());
        out.push(Detached {
            source,
            target,
            read_only,
        });
    }
    out
}

/// Makes each bind's mount point in the run directory (a directory or an
/// empty file, as its source is) and returns the binds for runsc's view.
pub(crate) fn attach_binds(
    detached: Vec<Detached>,
    run_dir: &Path,
) -> std::io::Result<Vec<nucleus_rootfs::RuntimeBind>> {
    if detached.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir(run_dir.join("binds"))?;
    detached
        .into_iter()
        .map(|d| {
            let target = run_dir.join(&d.target);
            if std::fs::metadata(&d.source)?.is_dir() {
                std::fs::create_dir(&target)?;
            } else {
                std::fs::write(&target, b"")?;
            }
            Ok(nucleus_rootfs::RuntimeBind {
                source: d.source,
                target,
                read_only: d.read_only,
            })
        })
        .collect()
}

/// The host id that `inside` maps to.
pub(crate) fn outside(maps: &[nucleus_idmap::IdMapping], inside: u32) -> u32 {
    maps.iter()
        .find_map(|m| m.to_outside(inside))
        .unwrap_or(inside)
}
