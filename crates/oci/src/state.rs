//! Container state under the runtime's root: one directory per container,
//! holding `state.json` (written atomically), the exec fifo `create` leaves
//! for `start`, and a lock.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nucleus_cgroup::SavedCgroup;
use serde::{Deserialize, Serialize};

use crate::error::OciError;
use crate::proc;

/// The exec fifo's name in a container's directory.
pub const FIFO: &str = "exec.fifo";

/// What the runtime keeps of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The container's id.
    pub id: String,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// The init's pid (0 while creating).
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), to tell a reused pid.
    pub pid_start: u64,
    /// When it was created, RFC 3339.
    pub created: String,
    /// The uid that created it.
    pub owner: u32,
    /// The spec's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its cgroup.
    pub cgroup: Option<SavedCgroup>,
    /// Its cgroup v1 `devices` directory.
    pub devices: Option<crate::resources::DeviceCgroup>,
    /// The spec it was created from (exec defaults, hooks).
    pub config: oci_spec::runtime::Spec,
    /// Set when the container runs under gVisor: its commands go to runsc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gvisor: Option<Gvisor>,
}

/// How a gVisor container's commands reach runsc.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gvisor {
    /// The runsc binary.
    pub runsc: PathBuf,
    /// The platform (`ptrace`, `systrap`, `kvm`).
    pub platform: String,
    /// Whether the spec has a seccomp profile (`--oci-seccomp`).
    pub seccomp: bool,
    /// runsc's `--network`: `none` for a new network namespace (runsc makes
    /// none of its own: the sentry's stack then has loopback only, as a new
    /// namespace has), `sandbox` for one given by path, `host` without one.
    pub network: String,
}

impl Record {
    /// The record of container `id` from `bundle`, before its init exists
    /// (pid 0, no cgroup, native).
    pub fn new(bundle: &crate::spec::Bundle, id: &str) -> Record {
        Record {
            id: id.to_owned(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            pid: 0,
            pid_start: 0,
            created: now_rfc3339(),
            owner: proc::euid(),
            annotations: bundle
                .spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup: None,
            devices: None,
            config: bundle.spec.clone(),
            gvisor: None,
        }
    }

    /// The state JSON as `state` prints it (runc's fields), with `status`
    /// (a stopped container's pid is 0).
    pub fn state_json(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": self.config.version(),
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": if self.owner == 0 { "root".to_owned() } else { self.owner.to_string() },
            "annotations": self.annotations,
        })
    }
}

/// A container's status, as `state` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `create` has not finished.
    Creating,
    /// Waiting for `start`.
    Created,
    /// The process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init has exited.
    Stopped,
}

impl Status {
    /// The name the spec (and runc) gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Checks a container id as runc does: letters, digits, `_`, `+`, `-`, `.`,
/// not `.` or `..`, at most 1024 bytes.
pub fn check_id(id: &str) -> Result<(), OciError> {
    let bad = |reason| OciError::InvalidId {
        id: id.to_owned(),
        reason,
    };
    if id.is_empty() || id.len() > 1024 {
        return Err(bad("must be 1 to 1024 characters"));
    }
    if id == "." || id == ".." {
        return Err(bad("must not be '.' or '..'"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return Err(bad("may hold only letters, digits, '_', '+', '-' and '.'"));
    }
    Ok(())
}

impl Store {
    /// The root given with `--root`, or the default for this user.
    pub fn new(root: Option<PathBuf>) -> Store {
        let root = root.unwrap_or_else(|| {
            let euid = proc::euid();
            // podman runs some commands with XDG_RUNTIME_DIR empty: unset.
            match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
                Some(dir) if euid != 0 => PathBuf::from(dir).join("nucleus/oci"),
                _ => PathBuf::from("/run/nucleus/oci"),
            }
        });
        Store { root }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes the directory of a new container; an existing one is
    /// [`OciError::Exists`].
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, OciError> {
        check_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| OciError::io(format!("create state root {}", self.root.display()), e))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(OciError::Exists { id: id.to_owned() })
            }
            Err(e) => Err(OciError::io(format!("create {}", dir.display()), e)),
        }
    }

    /// Writes `record` atomically (a temporary file renamed over).
    pub fn save(&self, record: &Record) -> Result<(), OciError> {
        let dir = self.dir(&record.id);
        let text = serde_json::to_vec(record)
            .map_err(|e| OciError::Layer(format!("encode state: {e}")))?;
        write_atomic(&dir.join("state.json"), &text, 0o600)
    }

    /// Reads the record of `id`.
    pub fn load(&self, id: &str) -> Result<Record, OciError> {
        check_id(id)?;
        let path = self.dir(id).join("state.json");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::NotExist { id: id.to_owned() })
            }
            Err(e) => return Err(OciError::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&text).map_err(|e| OciError::Config {
            path,
            reason: format!("state is damaged ({e}); `delete --force` removes it"),
        })
    }

    /// Takes the container's lock (released when the file closes).
    pub fn lock(&self, id: &str) -> Result<File, OciError> {
        let path = self.dir(id);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OciError::NotExist { id: id.to_owned() },
            _ => OciError::io(format!("open {}", path.display()), e),
        })?;
        // SAFETY: flock on an fd we own; blocks until the lock is ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(OciError::io("lock state", io::Error::last_os_error()));
        }
        Ok(file)
    }

    /// Removes the container's directory.
    pub fn remove(&self, id: &str) -> Result<(), OciError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OciError::io(format!("remove {}", dir.display()), e)),
        }
    }

    /// The ids of every container.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| check_id(id).is_ok())
            .collect();
        ids.sort();
        ids
    }

    /// The status of a container from its record and the kernel.
    pub fn status(&self, record: &Record) -> Status {
        if record.pid <= 0 {
            return Status::Creating;
        }
        if !proc::alive(record.pid, record.pid_start) {
            return Status::Stopped;
        }
        if self.dir(&record.id).join(FIFO).exists() {
            return Status::Created;
        }
        let paused = record
            .cgroup
            .as_ref()
            .is_some_and(|c| nucleus_cgroup::Cgroup::restore(c).is_paused());
        if paused {
            Status::Paused
        } else {
            Status::Running
        }
    }
}

/// Writes `data` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), OciError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        OciError::io(format!("write {}", path.display()), e)
    })
}

/// Now as RFC 3339 in UTC with nanoseconds, as runc prints `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_runc_takes_them() {
        for ok in ["a", "ctr-1", "A_b.c+d", &"x".repeat(1024)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"x".repeat(1025)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_454), (2026, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert!(now_rfc3339().ends_with('Z'));
    }
}
