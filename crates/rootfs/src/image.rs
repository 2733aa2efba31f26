//! Looking into a root directory the user gave (an unpacked image) as the
//! sandbox will see it, without leaving it: every lookup is an
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` from the directory,
//! so a symbolic link in the image that points out of it (`etc ->
//! /etc`, `etc -> ../..`) is refused (`EXDEV`) instead of showing the
//! host's file.
//!
//! Launch sequence: in the parent, before `clone` (`nix`'s safe wrappers
//! are fine here).

use crate::RootfsError;
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use std::fs::Metadata;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A root directory, open.
pub(crate) struct Image<'a> {
    dir: &'a Path,
    fd: OwnedFd,
}

impl<'a> Image<'a> {
    /// Opens the root directory `dir` (the user's own path, followed as
    /// given).
    pub(crate) fn open(dir: &'a Path) -> Result<Image<'a>, RootfsError> {
        let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC);
        let fd = openat2(nix::fcntl::AT_FDCWD, dir, how).map_err(|e| source(dir, e))?;
        Ok(Image { dir, fd })
    }

    /// Where the view's path `inside` is on the host (for messages).
    pub(crate) fn host_path(&self, inside: &Path) -> PathBuf {
        self.dir.join(relative(inside))
    }

    fn open_below(&self, inside: &Path, flags: OFlag) -> Result<Option<OwnedFd>, RootfsError> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(self.fd.as_fd(), relative(inside), how) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(source(&self.host_path(inside), e)),
        }
    }

    /// What is at the view's path `inside` (a final symbolic link itself,
    /// not what it points to); `None` when nothing is.
    pub(crate) fn metadata(&self, inside: &Path) -> Result<Option<Metadata>, RootfsError> {
        let Some(fd) = self.open_below(inside, OFlag::O_PATH | OFlag::O_NOFOLLOW)? else {
            return Ok(None);
        };
        std::fs::File::from(fd)
            .metadata()
            .map(Some)
            .map_err(|source| RootfsError::Source {
                path: self.host_path(inside),
                source,
            })
    }

    /// The names in the view's directory `inside` (none when it is not
    /// there).
    pub(crate) fn names(&self, inside: &Path) -> Result<Vec<String>, RootfsError> {
        let Some(fd) = self.open_below(inside, OFlag::O_RDONLY | OFlag::O_DIRECTORY)? else {
            return Ok(Vec::new());
        };
        let dir = nix::dir::Dir::from_fd(fd).map_err(|e| source(&self.host_path(inside), e))?;
        Ok(dir
            .into_iter()
            .flatten()
            .map(|entry| String::from_utf8_lossy(entry.file_name().to_bytes()).into_owned())
            .filter(|name| name != "." && name != "..")
            .collect())
    }
}

/// `inside` without its leading `/` (`.` for the root).
fn relative(inside: &Path) -> &Path {
    match inside.strip_prefix("/") {
        Ok(rel) if !rel.as_os_str().as_bytes().is_empty() => rel,
        _ => Path::new("."),
    }
}

fn source(path: &Path, errno: Errno) -> RootfsError {
    RootfsError::Source {
        path: path.to_owned(),
        source: std::io::Error::from(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_that_leave_the_image_are_refused() {
        let base = std::env::temp_dir().join(format!("nucleus-image-{}", std::process::id()));
        let img = base.join("img");
        std::fs::create_dir_all(img.join("real")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret"), "x").unwrap();
        std::fs::write(img.join("real/file"), "y").unwrap();
        std::os::unix::fs::symlink("../outside", img.join("up")).unwrap();
        std::os::unix::fs::symlink("/etc", img.join("abs")).unwrap();
        std::os::unix::fs::symlink("real", img.join("inside")).unwrap();
        let image = Image::open(&img).unwrap();
        for escaping in ["/up/secret", "/abs/passwd", "/../outside/secret"] {
            match image.metadata(Path::new(escaping)) {
                Err(RootfsError::Source { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(libc::EXDEV), "{escaping}")
                }
                other => panic!("{escaping}: {other:?}"),
            }
        }
        assert!(image.metadata(Path::new("/inside/file")).unwrap().is_some());
        assert!(image.metadata(Path::new("/missing")).unwrap().is_none());
        assert!(image
            .metadata(Path::new("/inside"))
            .unwrap()
            .unwrap()
            .is_symlink());
        assert_eq!(image.names(Path::new("/inside")).unwrap(), ["file"]);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
