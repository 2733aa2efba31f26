//! The runner's own state, out of every sandbox's reach: the wasm cache
//! (whose key authenticates compiled native code), `/run/nucleus` and the
//! caller's `$TMPDIR/nucleus-UID` (gVisor run directories, runsc's
//! discovery cache).
//!
//! A bind whose source contains one of them would show it to the sandbox,
//! which could then plant a cache entry, read the cache key, or leave a
//! look-alike for a later run to trust. For each such bind the directory's
//! path inside the view goes to [`RootfsPolicy::hidden_dirs`]: an empty
//! read-only directory over it, after every user mount, with the way to it
//! pinned ([`RootfsPolicy::pins`]), under both runtimes. A state directory
//! that a bind would contain but that does not exist yet is made first (it
//! is the caller's), so that the sandbox cannot make a look-alike there. A
//! bind *inside* a state directory is refused.

use crate::{Envelope, RunError};
use nucleus_idmap::Caller;
use nucleus_rootfs::{MountKind, RootfsPolicy};
use std::path::{Component, Path, PathBuf};

/// One state directory: where it is, and how the caller makes it.
struct StateDir {
    path: PathBuf,
    make: Make,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Make {
    /// A wasm cache directory: `0700`, parents too.
    Cache,
    /// The runtime directory of gVisor runs (see `runtime_dir`).
    Runtime,
    /// Not the caller's: hidden when it exists, never made.
    Never,
}

/// The state directories of a run by this caller.
fn state_dirs(env: &Envelope) -> Vec<StateDir> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut dirs = Vec::new();
    if let Some(dir) = nucleus_wasm::default_cache_dir() {
        dirs.push(StateDir {
            path: dir,
            make: Make::Cache,
        });
    }
    if let Some(nucleus_wasm::CacheMode::Dir(dir)) = env.wasm.as_ref().map(|w| &w.cache) {
        if dir.is_absolute() {
            dirs.push(StateDir {
                path: dir.clone(),
                make: Make::Cache,
            });
        }
    }
    let own_runtime = |root: bool| if root { Make::Runtime } else { Make::Never };
    dirs.push(StateDir {
        path: PathBuf::from("/run/nucleus"),
        make: own_runtime(uid == 0),
    });
    dirs.push(StateDir {
        path: std::env::temp_dir().join(format!("nucleus-{uid}")),
        make: own_runtime(uid != 0),
    });
    dirs
}

/// `path` without `.` or `..` components nor repeated slashes, its
/// existing part resolved as the kernel would (links followed).
fn canonical(path: &Path) -> PathBuf {
    let mut existing = path.to_owned();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return lexical(&out);
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_owned();
            }
            _ => return lexical(path),
        }
    }
}

/// `path` with `.` dropped and `..` applied, lexically.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Makes a missing state directory the caller's own way. One the caller
/// cannot make (another user's home, say) the sandbox, with the caller's
/// rights or fewer, cannot make either: it is left alone.
fn make(dir: &StateDir) {
    use std::os::unix::fs::DirBuilderExt;
    match dir.make {
        Make::Never => {}
        Make::Cache => {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir.path);
        }
        Make::Runtime => {
            let _ = runtime_dir(&nucleus_idmap::Caller::current());
        }
    }
}

/// The paths inside the view of `rootfs` at which a user bind (or a wasm
/// preopen, which is one) would show a state directory of this run's
/// caller. Makes those that do not exist yet; refuses a bind whose source
/// lies inside one.
///
/// Launch sequence: in the parent, before the mount plan is compiled (or
/// the gVisor bundle written).
pub(crate) fn hidden_dirs(env: &Envelope, rootfs: &RootfsPolicy) -> Result<Vec<PathBuf>, RunError> {
    let binds: Vec<(PathBuf, PathBuf)> = rootfs
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::Bind | MountKind::RoBind))
        .filter_map(|m| {
            let src = m.source.as_ref()?;
            // A source that cannot be resolved fails the mount plan itself,
            // with its own message.
            let real = nucleus_rootfs::resolve_source(src, rootfs.bind_follow_symlinks).ok()?;
            Some((canonical(&real), lexical(&m.destination)))
        })
        .collect();
    let mut hidden: Vec<PathBuf> = Vec::new();
    if binds.is_empty() {
        return Ok(hidden);
    }
    for dir in state_dirs(env) {
        let mut state = canonical(&dir.path);
        for (source, destination) in &binds {
            if source.starts_with(&state) && *source != state {
                return Err(RunError::BindInsideState {
                    bind: source.clone(),
                    state: state.clone(),
                });
            }
            if !state.starts_with(source) {
                continue;
            }
            if !state.exists() {
                make(&dir);
                if !dir.path.exists() {
                    // Not made, and not there: nothing to show.
                    continue;
                }
                state = canonical(&dir.path);
                if !state.starts_with(source) {
                    continue;
                }
            }
            let rel = state.strip_prefix(source).unwrap_or(Path::new(""));
            let inside = lexical(&destination.join(rel));
            if !hidden.contains(&inside) {
                hidden.push(inside);
            }
        }
    }
    Ok(hidden)
}

/// Under gVisor: the same hidden directories for the bundle (a read-only
/// tmpfs of the sentry's over each, after every mount) and the same pins (a
/// bind of each directory on the way onto itself, as the bind it is in:
/// the sentry refuses to rename or remove a mount point too). Returns the
/// hidden paths, for the result's `masked_paths`.
pub(crate) fn hide_in_bundle(
    env: &Envelope,
    spec: &mut nucleus_gvisor::BundleSpec,
) -> Result<Vec<PathBuf>, RunError> {
    let mut rootfs = env.rootfs.clone();
    rootfs.hidden_dirs = hidden_dirs(env, &rootfs)?;
    for pin in rootfs.pins()? {
        // The mount flags of the bind it is in (exec or not).
        let exec = spec
            .mounts
            .iter()
            .filter(|m| pin.path.starts_with(&m.destination))
            .max_by_key(|m| m.destination.components().count())
            .is_some_and(|m| m.exec);
        let kind = match pin.read_only {
            true => MountKind::RoBind,
            false => MountKind::Bind,
        };
        spec.mounts.push(nucleus_rootfs::MountSpec {
            source: Some(pin.source),
            destination: pin.path,
            kind,
            exec,
        });
    }
    for path in &rootfs.hidden_dirs {
        spec.masked.push(nucleus_gvisor::MaskedPath {
            path: path.clone(),
            is_dir: true,
        });
    }
    Ok(rootfs.hidden_dirs)
}

/// Where run directories live: private to the caller, reachable by the
/// mapped ids (0711 up to it, the run directory itself is theirs).
pub(crate) fn runtime_dir(caller: &Caller) -> Result<PathBuf, RunError> {
    let base = if caller.uid == 0 {
        PathBuf::from("/run/nucleus")
    } else {
        std::env::temp_dir().join(format!("nucleus-{}", caller.uid))
    };
    runtime_dir_in(&base, caller.uid)
}

/// [`runtime_dir`] below `base`, which `uid` owns.
fn runtime_dir_in(base: &Path, uid: u32) -> Result<PathBuf, RunError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let base = base.to_owned();
    let dir = base.join("gvisor");
    for d in [&base, &dir] {
        let made = std::fs::DirBuilder::new().mode(0o711).create(d);
        let err = |source| RunError::GvisorWorkspace {
            path: d.clone(),
            source,
        };
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
        let meta = std::fs::symlink_metadata(d).map_err(err)?;
        // Somebody else's directory (or a link) in a shared /tmp is refused.
        if !meta.is_dir() || meta.uid() != uid {
            return Err(err(std::io::Error::from_raw_os_error(libc::EPERM)));
        }
        // 0711 exactly: writable by others it would be anybody's, and
        // without the search bit (0700, as the id leases make
        // /run/nucleus when they come first) the mapped ids could not
        // reach their run directory.
        if meta.permissions().mode() & 0o7777 != 0o711 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).map_err(err)?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_directory_is_reachable_whoever_made_its_parent() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = nucleus_test_support::TempDir::new("runtime-dir");
        let base = tmp.path().join("nucleus");
        // The id leases make it private when they come first.
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
        let uid = nucleus_idmap::Caller::current().uid;
        let dir = runtime_dir_in(&base, uid).unwrap();
        for d in [&base, &dir] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o711, "{}", d.display());
        }
        // Writable by others is closed too.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        runtime_dir_in(&base, uid).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o711);
    }

    #[test]
    fn lexical_and_canonical_paths() {
        assert_eq!(lexical(Path::new("/a/./b/../c//d")), Path::new("/a/c/d"));
        let missing = Path::new("/proc/self/../nonexistent-nucleus/x");
        assert_eq!(canonical(missing), Path::new("/proc/nonexistent-nucleus/x"));
    }

    #[test]
    fn a_bind_holding_the_cache_hides_it_and_one_inside_is_refused() {
        let top = std::env::temp_dir().join(format!("nucleus-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        let cache = top.join("cache/nucleus/wasm");
        let mut env = Envelope::default();
        let mut settings = crate::WasmSettings::new("/m.wasm");
        settings.cache = nucleus_wasm::CacheMode::Dir(cache.clone());
        env.wasm = Some(settings);
        std::fs::create_dir_all(top.join("cache")).unwrap();
        let mut rootfs = RootfsPolicy::default();
        let spec = format!("{}:/c", top.join("cache").display());
        rootfs.mounts.push(spec.parse().unwrap());
        // Made by the runner, not left for the sandbox to make.
        let hidden = hidden_dirs(&env, &rootfs).unwrap();
        assert!(cache.is_dir());
        assert_eq!(hidden, vec![PathBuf::from("/c/nucleus/wasm")]);
        rootfs.hidden_dirs = hidden;
        let pins = rootfs.pins().unwrap();
        assert_eq!(pins.len(), 1, "{pins:?}");
        assert_eq!(pins[0].path, Path::new("/c/nucleus"));
        assert_eq!(pins[0].source, top.join("cache/nucleus"));
        rootfs.mounts = vec![format!("{}:/x", cache.join("sub").display())
            .parse()
            .unwrap()];
        std::fs::create_dir_all(cache.join("sub")).unwrap();
        assert!(matches!(
            hidden_dirs(&env, &rootfs),
            Err(RunError::BindInsideState { .. })
        ));
        std::fs::remove_dir_all(&top).unwrap();
    }
}
