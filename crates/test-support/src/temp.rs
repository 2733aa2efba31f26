//! Temporary directories and names unique to one test of one run.

use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// `nucleus-<tag>-<pid>-<n>`: unique to this process (the pid) and to this call (`n` counts
/// up), so tests running in parallel, in one process or many, never share a name.
///
/// ```
/// let a = nucleus_test_support::unique_name("x");
/// let b = nucleus_test_support::unique_name("x");
/// assert_ne!(a, b);
/// assert!(a.starts_with(&format!("nucleus-x-{}-", std::process::id())));
/// ```
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("nucleus-{tag}-{}-{n}", std::process::id())
}

/// A fresh directory, mode `0755` (readable by every user, so a test can hand it to `nobody`
/// or to a sandbox), removed with its contents on drop. Derefs to its [`Path`].
///
/// ```
/// use nucleus_test_support::TempDir;
///
/// let dir = TempDir::new("doc");
/// std::fs::write(dir.join("file"), "x")?;
/// let kept = dir.to_path_buf();
/// drop(dir);
/// assert!(!kept.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new directory [`unique_name`]d after `tag` in the system's temporary directory.
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// A new directory [`unique_name`]d after `tag` in `base` (say, outside `/tmp` when the
    /// test must not be inside a tree its policy grants).
    ///
    /// ```
    /// let dir = nucleus_test_support::TempDir::new_in(std::path::Path::new("/var/tmp"), "doc");
    /// assert!(dir.starts_with("/var/tmp"));
    /// ```
    pub fn new_in(base: &Path, tag: &str) -> TempDir {
        let path = base.join(unique_name(tag));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the temporary directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temporary directory");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory as a command-line argument.
    ///
    /// ```
    /// let dir = nucleus_test_support::TempDir::new("doc");
    /// assert_eq!(dir.arg(), dir.path().display().to_string());
    /// ```
    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
