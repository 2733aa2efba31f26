//! Host id ranges of their own for root-run sandboxes, leased while they live.
//!
//! One fixed range (`100000:65536`) for every sandbox root starts would be
//! shared: all of them one host uid, so one sandbox's files in a shared bind
//! are another's, and it is the range `useradd` hands the first regular user
//! in `/etc/subuid`, who could signal and write every sandbox. So each
//! sandbox leases a range of [`RangePool::size`] ids of its own from the
//! pool, skipping every range an `/etc/subuid` or `/etc/subgid` entry
//! overlaps.
//!
//! A lease is an exclusive `flock` on a file named after the range's first
//! id in the pool's directory (root's own, `0700`): the lock goes with the
//! last descriptor, so a runner killed half-way frees its range without a
//! sweep, and nothing ever has to tell a stale entry from a live one. The
//! files are never removed: removing a lock file races with its next
//! locker (two could then hold "the same" range through two files).

use crate::error::IdmapError;
use crate::mapping::IdMapping;
use crate::mode::DEFAULT_REMAP_COUNT;
use crate::subid::{parse_subid, SubIdPaths, SubIdRange};
use crate::sys;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where sandbox ranges are leased from.
///
/// The default pool, `0x70000000` (1879048192) on, 4094 ranges of 65536,
/// lies above systemd's container range (524288–1879048191, where
/// `systemd-nspawn --private-users=pick` picks) and below its reserved
/// ranges from `0x7FFE0000`, where no user and no other tool allocates.
///
/// ```
/// let pool = nucleus_idmap::RangePool::default();
/// assert_eq!(pool.start, 0x7000_0000);
/// assert!(u64::from(pool.start) + u64::from(pool.ranges) * u64::from(pool.size) <= 0x7FFE_0000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePool {
    /// The directory of the lock files (created `0700` when missing).
    pub dir: PathBuf,
    /// The first host id of the pool.
    pub start: u32,
    /// How many ranges the pool holds.
    pub ranges: u32,
    /// Ids in each range (65536: root to `nobody` and above inside).
    pub size: u32,
}

impl Default for RangePool {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/run/nucleus/ids"),
            start: 0x7000_0000,
            ranges: 4094,
            size: DEFAULT_REMAP_COUNT,
        }
    }
}

/// A host id range held by one sandbox; free again when dropped (or when
/// the process holding it dies).
///
/// ```no_run
/// use nucleus_idmap::{RangeLease, RangePool, SubIdPaths};
/// let lease = RangeLease::acquire(&RangePool::default(), &SubIdPaths::default())?;
/// println!("sandbox root is host uid {}", lease.mapping().outside);
/// # Ok::<(), nucleus_idmap::IdmapError>(())
/// ```
#[derive(Debug)]
pub struct RangeLease {
    /// The locked file; the lock lives as long as this descriptor.
    _lock: OwnedFd,
    start: u32,
    count: u32,
}

impl PartialEq for RangeLease {
    fn eq(&self, other: &Self) -> bool {
        (self.start, self.count) == (other.start, other.count)
    }
}

impl Eq for RangeLease {}

impl RangeLease {
    /// Leases a free range of `pool` that no entry of the subordinate id
    /// files at `paths` overlaps. The search starts at a place derived from
    /// the process id, so concurrent launches rarely try the same files.
    pub fn acquire(pool: &RangePool, paths: &SubIdPaths) -> Result<RangeLease, IdmapError> {
        let taken = [&paths.subuid, &paths.subgid]
            .into_iter()
            .map(|p| read_entries(p))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let dir = open_private_dir(&pool.dir)?;
        let first = std::process::id() % pool.ranges.max(1);
        for i in 0..pool.ranges {
            let slot = (first + i) % pool.ranges;
            let Some(start) = slot_start(pool, slot) else {
                continue;
            };
            if taken.iter().any(|r| overlaps(r, start, pool.size)) {
                continue;
            }
            if let Some(lock) = try_lock(&dir, start, &pool.dir)? {
                return Ok(RangeLease {
                    _lock: lock,
                    start,
                    count: pool.size,
                });
            }
        }
        Err(IdmapError::PoolExhausted {
            dir: pool.dir.clone(),
            ranges: pool.ranges,
        })
    }

    /// The map line: root inside is the first id of the range.
    pub fn mapping(&self) -> IdMapping {
        IdMapping::new(0, self.start, self.count)
    }
}

fn slot_start(pool: &RangePool, slot: u32) -> Option<u32> {
    let start = u64::from(pool.start) + u64::from(slot) * u64::from(pool.size);
    let end = start + u64::from(pool.size);
    // Never the last id (4294967295 is (uid_t)-1).
    (end <= u64::from(u32::MAX)).then_some(start as u32)
}

fn overlaps(r: &SubIdRange, start: u32, size: u32) -> bool {
    let (a0, a1) = (u64::from(r.start), u64::from(r.start) + u64::from(r.count));
    let (b0, b1) = (u64::from(start), u64::from(start) + u64::from(size));
    a0 < b1 && b0 < a1
}

fn read_entries(path: &Path) -> Result<Vec<SubIdRange>, IdmapError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_subid(&text).map_err(|e| match e {
            IdmapError::ParseSubid { line, reason, .. } => IdmapError::ParseSubid {
                path: Some(path.to_owned()),
                line,
                reason,
            },
            other => other,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(IdmapError::ReadSubid {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The pool's directory, created `0700` when missing, opened without
/// following a link, and refused unless it is root's and private: whoever
/// could write it could hold every range, or plant links.
fn open_private_dir(dir: &Path) -> Result<File, IdmapError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
    let lease_err = |source| IdmapError::Lease {
        path: dir.to_owned(),
        source,
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(lease_err(e)),
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(lease_err)?;
    let meta = file.metadata().map_err(lease_err)?;
    if meta.uid() != sys::getuid() || meta.mode() & 0o022 != 0 {
        return Err(IdmapError::Lease {
            path: dir.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "not owned by the caller, or writable by others",
            ),
        });
    }
    Ok(file)
}

/// Opens (creating) the lock file of the range at `start` below `dir` and
/// takes its lock without waiting; `None` when another sandbox holds it.
fn try_lock(dir: &File, start: u32, shown: &Path) -> Result<Option<OwnedFd>, IdmapError> {
    let name = std::ffi::CString::new(start.to_string().as_bytes())
        .unwrap_or_else(|_| std::ffi::CString::from(c"0"));
    let path = shown.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
    let fd = sys::open_lock_file(dir, &name).map_err(|source| IdmapError::Lease {
        path: path.clone(),
        source,
    })?;
    match sys::try_flock(&fd) {
        Ok(true) => Ok(Some(fd)),
        Ok(false) => Ok(None),
        Err(source) => Err(IdmapError::Lease { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(tag: &str, ranges: u32) -> RangePool {
        let dir = std::env::temp_dir().join(format!("nucleus-lease-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        RangePool {
            dir,
            start: 0x7000_0000,
            ranges,
            size: 65536,
        }
    }

    fn no_files() -> SubIdPaths {
        SubIdPaths::new("/nonexistent/subuid", "/nonexistent/subgid")
    }

    #[test]
    fn concurrent_leases_are_disjoint_and_freed_on_drop() {
        let pool = pool("disjoint", 3);
        let a = RangeLease::acquire(&pool, &no_files()).unwrap();
        let b = RangeLease::acquire(&pool, &no_files()).unwrap();
        let c = RangeLease::acquire(&pool, &no_files()).unwrap();
        let starts = [a.start, b.start, c.start];
        assert!(starts[0] != starts[1] && starts[1] != starts[2] && starts[0] != starts[2]);
        assert!(matches!(
            RangeLease::acquire(&pool, &no_files()),
            Err(IdmapError::PoolExhausted { ranges: 3, .. })
        ));
        let freed = b.start;
        drop(b);
        let again = RangeLease::acquire(&pool, &no_files()).unwrap();
        assert_eq!(again.start, freed);
        let _ = std::fs::remove_dir_all(&pool.dir);
    }

    #[test]
    fn ranges_of_subid_entries_are_skipped() {
        let pool = pool("subid", 3);
        std::fs::create_dir_all(&pool.dir).unwrap();
        let subuid = pool.dir.join("subuid");
        let subgid = pool.dir.join("subgid");
        // The first range for uids, the third (partly) for gids.
        std::fs::write(&subuid, "alice:1879048192:65536\n").unwrap();
        std::fs::write(&subgid, "bob:1879179264:1\n").unwrap();
        let paths = SubIdPaths::new(&subuid, &subgid);
        let lease = RangeLease::acquire(&pool, &paths).unwrap();
        assert_eq!(lease.mapping(), IdMapping::new(0, 0x7001_0000, 65536));
        assert!(matches!(
            RangeLease::acquire(&pool, &paths),
            Err(IdmapError::PoolExhausted { .. })
        ));
        let _ = std::fs::remove_dir_all(&pool.dir);
    }

    #[test]
    fn a_shared_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let pool = pool("shared", 1);
        std::fs::create_dir_all(&pool.dir).unwrap();
        std::fs::set_permissions(&pool.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            RangeLease::acquire(&pool, &no_files()),
            Err(IdmapError::Lease { .. })
        ));
        let _ = std::fs::remove_dir_all(&pool.dir);
    }
}
