//! The private per-run directory: the OCI bundle, runsc's state root and
//! runsc's log, created together and removed together.

use std::fs::{self, DirBuilder, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::GvisorError;
use crate::oci::{HostEntry, HostView, OciConfig, ROOTFS_DIR};

/// Largest part of runsc's log read back when looking for its error.
const LOG_CAP: u64 = 1 << 20;

/// A fresh container id: `nucleus-<pid>-<n>-<nanos>`, unique per process
/// and unlikely to repeat across processes.
pub(crate) fn container_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("nucleus-{}-{n}-{nanos:x}", std::process::id())
}

/// `<parent>/<id>/{bundle/{config.json,rootfs/}, state/, runsc.log}`, mode 0700.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) base: PathBuf,
    pub(crate) bundle: PathBuf,
    pub(crate) state_root: PathBuf,
    pub(crate) log: PathBuf,
}

fn write_err(path: &Path) -> impl Fn(io::Error) -> GvisorError + '_ {
    move |source| GvisorError::WriteBundle {
        path: path.to_owned(),
        source,
    }
}

impl Workspace {
    /// Creates the directories; fails if `<parent>/<id>` already exists.
    pub(crate) fn create(parent: &Path, id: &str) -> Result<Workspace, GvisorError> {
        let base = parent.join(id);
        let ws = Workspace {
            bundle: base.join("bundle"),
            state_root: base.join("state"),
            log: base.join("runsc.log"),
            base,
        };
        let mut b = DirBuilder::new();
        b.mode(0o700);
        b.create(&ws.base).map_err(write_err(&ws.base))?;
        for dir in [&ws.bundle, &ws.state_root] {
            b.create(dir).map_err(write_err(dir))?;
        }
        Ok(ws)
    }

    /// Writes `config.json` and, for a host-view root, the empty `rootfs`
    /// with the host's symlinked directories recreated in it.
    pub(crate) fn write(
        &self,
        config: &OciConfig,
        host: Option<&HostView>,
    ) -> Result<(), GvisorError> {
        if let Some(host) = host {
            let rootfs = self.bundle.join(ROOTFS_DIR);
            DirBuilder::new()
                .mode(0o755)
                .create(&rootfs)
                .map_err(write_err(&rootfs))?;
            for entry in &host.entries {
                if let HostEntry::Symlink { path, target } = entry {
                    let name = path.strip_prefix("/").unwrap_or(path);
                    let link = rootfs.join(name);
                    symlink(target, &link).map_err(write_err(&link))?;
                }
            }
        }
        let path = self.bundle.join("config.json");
        let file = File::create(&path).map_err(write_err(&path))?;
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, config)
            .map_err(|source| GvisorError::SerializeConfig { source })?;
        w.flush().map_err(write_err(&path))
    }

    /// Whether runsc still keeps any container state in our root.
    pub(crate) fn has_state(&self) -> bool {
        fs::read_dir(&self.state_root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }

    /// What runsc wrote to its log (at most [`LOG_CAP`] bytes).
    pub(crate) fn read_log(&self) -> String {
        read_log(&self.log)
    }

    /// Removes everything, refusing if anything is still mounted below
    /// (a recursive removal would then reach into the mounted host tree).
    pub(crate) fn remove(&self) -> Result<(), (PathBuf, io::Error)> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| (PathBuf::from("/proc/self/mountinfo"), e))?;
        if let Some(m) = mounts_below(&mountinfo, &self.base) {
            return Err((
                m.clone(),
                io::Error::other(format!("{} is still a mount point", m.display())),
            ));
        }
        match fs::remove_dir_all(&self.base) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err((self.base.clone(), e)),
            _ => Ok(()),
        }
    }
}

/// The first mount point in `mountinfo` at or below `dir`.
fn mounts_below(mountinfo: &str, dir: &Path) -> Option<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .find(|p| p.starts_with(dir))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What runsc wrote to the log at `path` (at most [`LOG_CAP`] bytes).
pub(crate) fn read_log(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(LOG_CAP).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_valid() {
        let a = container_id();
        let b = container_id();
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }

    #[test]
    fn finds_mounts_below() {
        let info = "36 35 98:0 / /tmp/x\\040y/bundle/rootfs/usr rw - ext4 /dev/root rw\n\
                    37 35 98:0 / /usr rw - ext4 /dev/root rw\n";
        assert_eq!(
            mounts_below(info, Path::new("/tmp/x y")),
            Some(PathBuf::from("/tmp/x y/bundle/rootfs/usr"))
        );
        assert_eq!(mounts_below(info, Path::new("/tmp/x")), None);
    }

    #[test]
    fn creates_writes_and_removes() {
        let parent = std::env::temp_dir();
        let id = container_id();
        let ws = Workspace::create(&parent, &id).unwrap();
        assert!(Workspace::create(&parent, &id).is_err(), "must not reuse");
        let spec = crate::BundleSpec::new(["/bin/true"]);
        let view = HostView::merged_usr();
        let config = crate::to_oci_config(&spec, &view).unwrap();
        ws.write(&config, Some(&view)).unwrap();
        let link = fs::read_link(ws.bundle.join("rootfs/bin")).unwrap();
        assert_eq!(link, Path::new("usr/bin"));
        let back = oci_spec::runtime::Spec::load(ws.bundle.join("config.json")).unwrap();
        assert_eq!(&back, config.spec());
        assert!(!ws.has_state());
        ws.remove().unwrap();
        assert!(!ws.base.exists());
    }
}
