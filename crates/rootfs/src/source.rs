//! Bind sources as the invoker names them: no symbolic link is followed
//! unless asked, so that a link a sandbox planted in a shared directory
//! (`ln -s ../home/u/.ssh /proj/out`) cannot turn a later run's bind of
//! that path into a bind of something else.

use crate::RootfsError;
use std::path::{Path, PathBuf};

/// The path a bind of `src` mounts: `src` itself when no component of it
/// is a symbolic link, else an error naming the link — or, with `follow`,
/// the fully resolved path (resolved here, on the host, as the invoker sees
/// it). `src` must exist.
///
/// Launch sequence: in the parent, before `clone`; the child binds the
/// result without following links again.
///
/// ```
/// use std::path::Path;
/// let real = nucleus_rootfs::resolve_source(Path::new("/usr/share"), false).unwrap();
/// assert_eq!(real, Path::new("/usr/share"));
/// ```
pub fn resolve_source(src: &Path, follow: bool) -> Result<PathBuf, RootfsError> {
    let io = |source| RootfsError::Source {
        path: src.to_owned(),
        source,
    };
    if follow {
        return std::fs::canonicalize(src).map_err(io);
    }
    let mut at = PathBuf::from("/");
    for part in src.components().skip(1) {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at).map_err(io)?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&at).unwrap_or_default();
            return Err(RootfsError::SymlinkSource {
                path: src.to_owned(),
                link: at,
                target,
            });
        }
    }
    Ok(src.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_anywhere_in_the_path_is_named() {
        let dir = std::env::temp_dir().join(format!("nucleus-src-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("real", dir.join("link")).unwrap();
        let err = resolve_source(&dir.join("link/sub"), false).unwrap_err();
        match err {
            RootfsError::SymlinkSource { link, target, .. } => {
                assert_eq!(link, dir.join("link"));
                assert_eq!(target, Path::new("real"));
            }
            other => panic!("{other}"),
        }
        let real = resolve_source(&dir.join("link/sub"), true).unwrap();
        assert_eq!(real, std::fs::canonicalize(dir.join("real/sub")).unwrap());
        assert!(matches!(
            resolve_source(&dir.join("missing"), false),
            Err(RootfsError::Source { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
