//! The error types of `nucleus-rootfs`.

use std::path::PathBuf;

/// A configuration problem found in the parent, before anything is created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// A mount specification that does not parse.
    #[error("invalid mount {spec:?}: expected SRC[:DST] with absolute paths")]
    InvalidSpec {
        /// What was given.
        spec: String,
    },
    /// A destination that is relative, contains `..`, or is `/`.
    #[error("invalid mount destination {path}: it must be absolute, without '..', and not '/'")]
    InvalidDestination {
        /// The destination given.
        path: PathBuf,
    },
    /// A source path that must be absolute.
    #[error("invalid mount source {path}: it must be an absolute path")]
    RelativeSource {
        /// The source given.
        path: PathBuf,
    },
    /// A destination that the runtime itself manages.
    #[error(
        "mount destination {path} is reserved by the sandbox (/proc, /dev and their subtrees)"
    )]
    ReservedDestination {
        /// The destination given.
        path: PathBuf,
    },
    /// A bind source or root directory that cannot be used.
    #[error("{path}")]
    Source {
        /// The host path.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// A `--rootfs` path that is not a directory.
    #[error("root directory {path} is not a directory")]
    RootNotDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A bind whose filesystem cannot be idmapped.
    #[error("bind {path}: its filesystem ({fs_type}) cannot be idmapped; bind it without idmapping (the sandbox then sees and writes files as its mapped ids, not yours), or bind a directory of a filesystem that can be (ext4, xfs, btrfs; tmpfs from Linux 6.3)")]
    IdmapUnsupported {
        /// The bind source.
        path: PathBuf,
        /// Its filesystem type.
        fs_type: String,
    },
    /// A bind source that is, or passes through, a symbolic link.
    #[error("bind source {path} passes through the symbolic link {link} (-> {target}); give the resolved path, or allow following symbolic links in bind sources", target = target.display())]
    SymlinkSource {
        /// The source given.
        path: PathBuf,
        /// The first component that is a link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A masked path that is a symbolic link on the host: a mount over it
    /// would follow the link.
    #[error("masked path {path} is a symbolic link on the host; masking it would follow the link (remove the link, or unmask the path)")]
    MaskedSymlink {
        /// The path inside the view.
        path: PathBuf,
    },
    /// A mask path that is relative or contains `..`.
    #[error("invalid masked path {path}: it must be absolute, without '..'")]
    InvalidMask {
        /// The path given.
        path: PathBuf,
    },
    /// `--unmask` of a path that is not masked.
    #[error("{path} is not masked (masked: {})", masked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotMasked {
        /// The path given.
        path: PathBuf,
        /// What is masked.
        masked: Vec<PathBuf>,
    },
    /// A path with an interior NUL byte.
    #[error("path {path:?} contains a NUL byte")]
    NulByte {
        /// The path given.
        path: PathBuf,
    },
}

/// A step of [`MountPlan::apply`](crate::MountPlan::apply) that failed in
/// the sandbox child: which step and the errno. `Copy` and allocation-free,
/// so it can cross the child-to-parent pipe as plain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyError {
    /// Index of the failed step in the plan.
    pub step: u32,
    /// The errno the kernel returned.
    pub errno: i32,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mount step {}: {}",
            self.step,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for ApplyError {}

impl RootfsError {
    /// The errno behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Source { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
