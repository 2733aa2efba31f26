//! Masks: host files that hold secrets (by default
//! [`MASKED_PATHS`](crate::MASKED_PATHS)) hidden behind an empty, read-only
//! file or directory, and the pins that keep hidden directories in place.

use crate::image::Image;
use crate::{Base, RootfsError, RootfsPolicy};
use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// A directory of the view bound onto itself (see [`RootfsPolicy::pins`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The path inside the view.
    pub path: PathBuf,
    /// The host directory it shows (through its bind).
    pub source: PathBuf,
    /// Whether the bind it is in is read-only.
    pub read_only: bool,
}

/// One masked path of the view, as found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// The path inside the view.
    pub path: PathBuf,
    /// A directory (masked by an empty directory) or a file (by an empty file).
    pub is_dir: bool,
}

impl RootfsPolicy {
    /// The masked paths that exist in this view, globs expanded, in list
    /// order. A masked path that is a symbolic link is refused: a mount
    /// over it would follow the link. In a root directory
    /// ([`Base::Directory`]) paths are looked up without leaving it: one
    /// that passes through a link out of it fails (`EXDEV`).
    ///
    /// Launch sequence: in the parent, before `clone` (both runtimes).
    ///
    /// ```
    /// let policy = nucleus_rootfs::RootfsPolicy::default();
    /// for mask in policy.masks().unwrap() {
    ///     assert!(mask.path.starts_with("/etc"));
    /// }
    /// ```
    pub fn masks(&self) -> Result<Vec<Mask>, RootfsError> {
        let mut out = Vec::new();
        for (inside, meta) in self.masked_in_root()? {
            if !self.is_in_view(&inside) {
                continue;
            }
            if meta.file_type().is_symlink() {
                return Err(RootfsError::MaskedSymlink { path: inside });
            }
            out.push(Mask {
                path: inside,
                is_dir: meta.is_dir(),
            });
        }
        Ok(out)
    }

    /// The masked paths found in the root, globs expanded, with what is
    /// there (a final symbolic link not followed). A root directory is
    /// looked into without leaving it (see [`Image`]): a masked path that
    /// passes through a link out of it fails (`EXDEV`), naming the path.
    fn masked_in_root(&self) -> Result<Vec<(PathBuf, Metadata)>, RootfsError> {
        let mut out = Vec::new();
        match &self.base {
            Base::Host => {
                for pattern in &self.masked_paths {
                    for path in expand(pattern, host_names)? {
                        if let Ok(meta) = std::fs::symlink_metadata(&path) {
                            out.push((path, meta));
                        }
                    }
                }
            }
            Base::Directory(dir) => {
                let image = Image::open(dir)?;
                for pattern in &self.masked_paths {
                    for inside in expand(pattern, |d| image.names(d))? {
                        if let Some(meta) = image.metadata(&inside)? {
                            out.push((inside, meta));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The directories bound onto themselves on the way to each of
    /// [`RootfsPolicy::hidden_dirs`]: every directory strictly between the
    /// destination of the bind it is reached through (the deepest one that
    /// holds it) and the hidden directory, top down. A mount point cannot be
    /// renamed or removed (`EBUSY`): the sandbox cannot move the hidden
    /// directory's parent aside and make a look-alike in its place for the
    /// runner to trust later. Sources are resolved as binds resolve them.
    ///
    /// Launch sequence: in the parent, before `clone` (both runtimes).
    ///
    /// ```
    /// use nucleus_rootfs::{MountSpec, RootfsPolicy};
    /// let mut policy = RootfsPolicy::default();
    /// policy.mounts.push("/usr:/host-usr".parse::<MountSpec>().unwrap());
    /// policy.hidden_dirs.push("/host-usr/share/doc".into());
    /// let pins = policy.pins().unwrap();
    /// assert_eq!(pins[0].path, std::path::Path::new("/host-usr/share"));
    /// assert_eq!(pins[0].source, std::path::Path::new("/usr/share"));
    /// ```
    pub fn pins(&self) -> Result<Vec<Pin>, RootfsError> {
        let mut out: Vec<Pin> = Vec::new();
        for hidden in &self.hidden_dirs {
            let hidden = crate::policy::normalize_destination(hidden)?;
            let Some((dst, spec)) = self.bind_holding(&hidden)? else {
                continue;
            };
            let Some(src) = &spec.source else {
                continue;
            };
            let real = crate::source::resolve_source(src, self.bind_follow_symlinks)?;
            let mut between: Vec<&Path> = hidden
                .ancestors()
                .skip(1)
                .take_while(|a| *a != dst.as_path())
                .collect();
            between.reverse();
            for path in between {
                if out.iter().any(|p| p.path == path) {
                    continue;
                }
                let rel = path.strip_prefix(&dst).unwrap_or(path);
                out.push(Pin {
                    path: path.to_owned(),
                    source: real.join(rel),
                    read_only: spec.kind == crate::MountKind::RoBind,
                });
            }
        }
        Ok(out)
    }

    /// The user bind whose destination is the deepest one holding `inside`
    /// (strictly), with that destination normalized.
    fn bind_holding(
        &self,
        inside: &Path,
    ) -> Result<Option<(PathBuf, &crate::MountSpec)>, RootfsError> {
        let mut best: Option<(PathBuf, &crate::MountSpec)> = None;
        for spec in &self.mounts {
            let dst = crate::policy::normalize_destination(&spec.destination)?;
            let deeper = best
                .as_ref()
                .is_none_or(|(b, _)| dst.components().count() >= b.components().count());
            if inside.starts_with(&dst) && inside != dst && deeper {
                best = Some((dst, spec));
            }
        }
        Ok(best)
    }

    /// Checks the mask list: absolute paths without `..`.
    pub(crate) fn validate_masks(&self) -> Result<(), RootfsError> {
        for path in &self.hidden_dirs {
            crate::policy::normalize_destination(path)
                .map_err(|_| RootfsError::InvalidMask { path: path.clone() })?;
        }
        for path in &self.masked_paths {
            crate::policy::normalize_destination(path)
                .map_err(|_| RootfsError::InvalidMask { path: path.clone() })?;
        }
        Ok(())
    }

    /// Removes `path` from the mask list (`--unmask`); fails for a relative
    /// path or one that is not masked.
    ///
    /// ```
    /// let mut policy = nucleus_rootfs::RootfsPolicy::default();
    /// policy.unmask("/etc/shadow").unwrap();
    /// assert!(policy.unmask("/etc/shadow").is_err());
    /// ```
    pub fn unmask(&mut self, path: impl AsRef<Path>) -> Result<(), RootfsError> {
        let path = path.as_ref();
        if !path.is_absolute() {
            return Err(RootfsError::InvalidMask {
                path: path.to_owned(),
            });
        }
        let before = self.masked_paths.len();
        self.masked_paths.retain(|p| p != path);
        if self.masked_paths.len() == before {
            return Err(RootfsError::NotMasked {
                path: path.to_owned(),
                masked: self.masked_paths.clone(),
            });
        }
        Ok(())
    }

    /// Whether a path shows in the view through the root (not through a
    /// user mount, which shows what the user asked for).
    fn is_in_view(&self, inside: &Path) -> bool {
        let shadowed = self
            .mounts
            .iter()
            .any(|m| inside.starts_with(&m.destination));
        let visible = match &self.base {
            Base::Host => self.host_dirs.iter().any(|d| inside.starts_with(d)),
            Base::Directory(_) => true,
        };
        visible && !shadowed
    }
}

/// The names in the host directory `dir` (none when it cannot be read).
fn host_names(dir: &Path) -> Result<Vec<String>, RootfsError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    Ok(entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// The paths a pattern names: itself, or the matches of a `*` in its last
/// component among the `names` of its directory, sorted.
fn expand(
    pattern: &Path,
    names: impl FnOnce(&Path) -> Result<Vec<String>, RootfsError>,
) -> Result<Vec<PathBuf>, RootfsError> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return Ok(vec![pattern.to_owned()]);
    };
    let Some(dir) = pattern.parent() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<PathBuf> = names(dir)?
        .into_iter()
        .filter(|n| {
            n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix)
        })
        .map(|n| dir.join(n))
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_the_last_component() {
        let dir = std::env::temp_dir().join(format!("nucleus-mask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "ssh_host_rsa_key",
            "ssh_host_rsa_key.pub",
            "ssh_host_ed25519_key",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let got = expand(&dir.join("ssh_host_*_key"), host_names).unwrap();
        assert_eq!(
            got,
            vec![
                dir.join("ssh_host_ed25519_key"),
                dir.join("ssh_host_rsa_key")
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directory_root_masks_inside_it() {
        let dir = std::env::temp_dir().join(format!("nucleus-maskroot-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc/sudoers.d")).unwrap();
        std::fs::write(dir.join("etc/shadow"), "x").unwrap();
        std::os::unix::fs::symlink("shadow", dir.join("etc/gshadow")).unwrap();
        let mut policy = RootfsPolicy {
            base: Base::Directory(dir.clone()),
            ..RootfsPolicy::default()
        };
        let err = policy.masks().unwrap_err();
        assert!(
            matches!(err, RootfsError::MaskedSymlink { ref path } if path == Path::new("/etc/gshadow"))
        );
        policy.unmask("/etc/gshadow").unwrap();
        let masks = policy.masks().unwrap();
        assert_eq!(
            masks,
            vec![
                Mask {
                    path: "/etc/shadow".into(),
                    is_dir: false
                },
                Mask {
                    path: "/etc/sudoers.d".into(),
                    is_dir: true
                },
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mask_through_a_link_out_of_the_root_directory_is_refused() {
        let base = std::env::temp_dir().join(format!("nucleus-maskout-{}", std::process::id()));
        std::fs::create_dir_all(base.join("img")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/shadow"), "x").unwrap();
        std::os::unix::fs::symlink("../outside", base.join("img/etc")).unwrap();
        let policy = RootfsPolicy {
            base: Base::Directory(base.join("img")),
            ..RootfsPolicy::default()
        };
        match policy.masks() {
            Err(RootfsError::Source { path, source }) => {
                assert_eq!(path, base.join("img/etc/shadow"));
                assert_eq!(source.raw_os_error(), Some(libc::EXDEV));
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn unmask_refuses_unknown_and_relative() {
        let mut policy = RootfsPolicy::default();
        assert!(matches!(
            policy.unmask("etc/shadow"),
            Err(RootfsError::InvalidMask { .. })
        ));
        assert!(matches!(
            policy.unmask("/etc/passwd"),
            Err(RootfsError::NotMasked { .. })
        ));
    }
}
