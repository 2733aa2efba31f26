//! Finding `runsc`, proving it is runsc, and learning what it supports.
//!
//! Everything is learned from `runsc --version`, `runsc help platforms` and
//! `runsc flags`; nothing here starts a sandbox, and in particular nothing
//! tries the `kvm` platform (on some machines it hangs instead of failing).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::error::GvisorError;
use crate::parse;
use crate::platform::{names, Platform};
use crate::wait::{output_with_timeout, HelperOutput};

/// How long a `runsc` helper command (`--version`, `flags`) may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// The KVM device `kvm` needs.
const DEV_KVM: &str = "/dev/kvm";

/// Optional `runsc` features this crate uses, learned from `runsc flags`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Features {
    /// `--oci-seccomp`: enforce the bundle's `linux.seccomp` inside the sandbox.
    /// Without it runsc silently ignores `linux.seccomp`.
    pub oci_seccomp: bool,
    /// `--overlay2 root:memory`: keep writes to the root in memory.
    pub overlay2: bool,
    /// `--ignore-cgroups`: do not configure cgroups at all.
    pub ignore_cgroups: bool,
}

/// An installed `runsc`, identified and probed.
///
/// ```no_run
/// use nucleus_gvisor::Runsc;
/// let runsc = Runsc::discover(None)?;
/// let platform = runsc.choose_platform(None)?;
/// println!("runsc {} at {}, platform {platform}", runsc.version, runsc.path.display());
/// # Ok::<(), nucleus_gvisor::GvisorError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Runsc {
    /// The binary.
    pub path: PathBuf,
    /// Its version, as `runsc --version` prints it (e.g. `0.0~20221219.0`,
    /// `release-20240513.0`).
    pub version: String,
    /// The platforms it knows, in the order it lists them.
    pub platforms: Vec<Platform>,
    /// The platform it uses when none is given, if it said.
    pub default_platform: Option<Platform>,
    /// Optional features.
    pub features: Features,
}

impl Runsc {
    /// Finds `runsc` (the `explicit` path, else `runsc` on `PATH`), checks
    /// that it answers `--version` like runsc, and learns its platforms and
    /// features. Runs in the parent, before anything is created.
    ///
    /// A path to something that is not runsc (say `/bin/true`) fails with
    /// [`GvisorError::NotRunsc`]; no other command is run on it.
    pub fn discover(explicit: Option<&Path>) -> Result<Runsc, GvisorError> {
        let path = match explicit {
            Some(p) => {
                check_executable(p)?;
                p.to_owned()
            }
            None => find_on_path()?,
        };
        Runsc::from_path(path)
    }

    /// Like [`Runsc::discover`], but what was learned about a binary is kept
    /// in `cache_dir` (a directory only the caller writes), keyed by the
    /// binary's device, inode, size and modification time: a later call
    /// for the same, unchanged binary runs no `runsc` helper at all (each
    /// is a Go program start, tens of milliseconds). A missing, corrupt or
    /// stale entry is learned again and rewritten (atomically).
    pub fn discover_cached(
        explicit: Option<&Path>,
        cache_dir: &Path,
    ) -> Result<Runsc, GvisorError> {
        let path = match explicit {
            Some(p) => {
                check_executable(p)?;
                p.to_owned()
            }
            None => find_on_path()?,
        };
        let Some(key) = identity(&path) else {
            return Runsc::from_path(path);
        };
        let entry = cache_dir.join(format!("runsc-{key}.json"));
        if let Some(found) = std::fs::read(&entry)
            .ok()
            .and_then(|b| serde_json::from_slice::<Runsc>(&b).ok())
            .filter(|r| r.path == path)
        {
            return Ok(found);
        }
        let learned = Runsc::from_path(path)?;
        if let Ok(json) = serde_json::to_vec(&learned) {
            // Created new, never through a link planted in the directory.
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let tmp = cache_dir.join(format!(".runsc-{key}.{}", std::process::id()));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&json))
                .and_then(|()| std::fs::rename(&tmp, &entry));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
        Ok(learned)
    }

    fn from_path(path: PathBuf) -> Result<Runsc, GvisorError> {
        // `--version` first and alone: until it answers like runsc, the
        // binary may be anything, and must not be handed other arguments.
        let out = helper(&path, &["--version"])?;
        let version = parse::version(&out.stdout).ok_or_else(|| GvisorError::NotRunsc {
            path: path.clone(),
            output: parse::excerpt(&out.stdout, &out.stderr),
        })?;
        // The other two questions in parallel: each is a Go program start.
        let (flags_out, listed) = std::thread::scope(|s| {
            let listed = s.spawn(|| helper(&path, &["help", "platforms"]));
            let flags_out = helper(&path, &["flags"]);
            (flags_out, listed.join())
        });
        let flags_out = flags_out?;
        // runsc prints `flags` to stderr; accept either.
        let flags_text = format!("{}{}", flags_out.stdout, flags_out.stderr);
        let flags = parse::flag_names(&flags_text);
        let (flag_platforms, default_platform) = parse::platform_flag(&flags_text);
        // Older or newer releases may lack `help platforms`; the flag text
        // is the fallback.
        let listed = match listed {
            Ok(Ok(out)) => parse::platform_list(&out.stdout),
            _ => Vec::new(),
        };
        let platforms = if listed.is_empty() {
            flag_platforms
        } else {
            listed
        };
        let has = |name: &str| flags.iter().any(|f| f == name);
        Ok(Runsc {
            version,
            platforms,
            default_platform,
            features: Features {
                oci_seccomp: has("oci-seccomp"),
                overlay2: has("overlay2"),
                ignore_cgroups: has("ignore-cgroups"),
            },
            path,
        })
    }

    /// Picks the platform to run with: the asked one if this `runsc` knows
    /// it (and, for `kvm`, `/dev/kvm` exists), else `ptrace`, else `systrap`.
    /// `kvm` is never picked unless asked. Never returns a platform this
    /// `runsc` does not list.
    pub fn choose_platform(&self, asked: Option<Platform>) -> Result<Platform, GvisorError> {
        self.choose_platform_with(asked, Path::new(DEV_KVM))
    }

    /// [`Runsc::choose_platform`] with the KVM device path as a parameter.
    pub fn choose_platform_with(
        &self,
        asked: Option<Platform>,
        dev_kvm: &Path,
    ) -> Result<Platform, GvisorError> {
        let Some(platform) = asked else {
            return [Platform::Ptrace, Platform::Systrap]
                .into_iter()
                .find(|p| self.platforms.contains(p))
                .ok_or_else(|| GvisorError::NoDefaultPlatform {
                    version: self.version.clone(),
                    known: names(&self.platforms),
                });
        };
        if !self.platforms.contains(&platform) {
            return Err(GvisorError::PlatformUnsupported {
                platform,
                version: self.version.clone(),
                known: names(&self.platforms),
            });
        }
        if platform == Platform::Kvm {
            check_kvm_device(dev_kvm)?;
        }
        Ok(platform)
    }
}

/// Whether `dev` is a character device (without opening it).
fn check_kvm_device(dev: &Path) -> Result<(), GvisorError> {
    let unavailable = |source| GvisorError::KvmUnavailable {
        device: dev.to_owned(),
        source,
    };
    let meta = std::fs::metadata(dev).map_err(unavailable)?;
    if !meta.file_type().is_char_device() {
        return Err(unavailable(io::Error::other("not a character device")));
    }
    Ok(())
}

fn check_executable(path: &Path) -> Result<(), GvisorError> {
    let not_exec = |source| GvisorError::NotExecutable {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(not_exec)?;
    if !meta.is_file() {
        return Err(not_exec(io::Error::other("not a regular file")));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(not_exec(io::Error::from(io::ErrorKind::PermissionDenied)));
    }
    Ok(())
}

fn find_on_path() -> Result<PathBuf, GvisorError> {
    let searched = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&searched)
        .map(|dir| dir.join("runsc"))
        .find(|p| check_executable(p).is_ok())
        .ok_or(GvisorError::NotFound { searched })
}

fn helper(path: &Path, args: &[&str]) -> Result<HelperOutput, GvisorError> {
    let mut cmd = Command::new(path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = args.join(" ");
    match output_with_timeout(cmd, HELPER_TIMEOUT) {
        Ok(Some(out)) => Ok(out),
        Ok(None) => Err(GvisorError::HelperTimeout {
            path: path.to_owned(),
            command,
            seconds: HELPER_TIMEOUT.as_secs(),
        }),
        Err(source) => Err(GvisorError::Spawn {
            path: path.to_owned(),
            command,
            source,
        }),
    }
}

/// What `nucleus-run doctor` shows about gVisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GvisorProbe {
    /// Whether a working `runsc` was found (on `PATH`, or at the path
    /// given to [`probe_with`]).
    pub found: bool,
    /// Where.
    pub path: Option<PathBuf>,
    /// Its version.
    pub version: Option<String>,
    /// The platforms it knows.
    pub platforms: Vec<Platform>,
    /// The platform [`Runsc::choose_platform`] picks when none is asked.
    pub chosen_platform: Option<Platform>,
    /// Optional features.
    pub features: Features,
    /// Whether `/dev/kvm` exists (needed by `kvm`; never tried here).
    pub kvm_device: bool,
    /// Why `runsc` is not usable, when it is not.
    pub error: Option<String>,
}

/// Looks for `runsc` on `PATH` and reports what it supports. Never starts a
/// sandbox.
///
/// ```no_run
/// let probe = nucleus_gvisor::probe();
/// println!("{}", serde_json::to_string_pretty(&probe)?);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn probe() -> GvisorProbe {
    probe_with(None)
}

/// Like [`probe`], for the `runsc` at `explicit` when given (as
/// `nucleus-run --runsc PATH` would use), else the one on `PATH`.
pub fn probe_with(explicit: Option<&Path>) -> GvisorProbe {
    let kvm_device = check_kvm_device(Path::new(DEV_KVM)).is_ok();
    match Runsc::discover(explicit) {
        Ok(r) => GvisorProbe {
            found: true,
            chosen_platform: r.choose_platform(None).ok(),
            path: Some(r.path),
            version: Some(r.version),
            platforms: r.platforms,
            features: r.features,
            kvm_device,
            error: None,
        },
        Err(e) => GvisorProbe {
            found: false,
            path: None,
            version: None,
            platforms: Vec::new(),
            chosen_platform: None,
            features: Features::default(),
            kvm_device,
            error: Some(crate::error_chain(&e)),
        },
    }
}

/// `<dev>-<ino>-<size>-<mtime ns>` of a binary: changes when it is replaced.
fn identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{:x}-{:x}-{:x}-{:x}.{:x}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runsc(platforms: &[Platform]) -> Runsc {
        Runsc {
            path: PathBuf::from("/usr/bin/runsc"),
            version: "0.0~20221219.0".into(),
            platforms: platforms.to_vec(),
            default_platform: Some(Platform::Ptrace),
            features: Features::default(),
        }
    }

    #[test]
    fn default_is_ptrace_then_systrap_never_kvm() {
        let old = runsc(&[Platform::Kvm, Platform::Ptrace]);
        assert_eq!(old.choose_platform(None).unwrap(), Platform::Ptrace);
        let new = runsc(&[Platform::Systrap, Platform::Kvm]);
        assert_eq!(new.choose_platform(None).unwrap(), Platform::Systrap);
        let kvm_only = runsc(&[Platform::Kvm]);
        let err = kvm_only.choose_platform(None).unwrap_err();
        assert!(
            matches!(err, GvisorError::NoDefaultPlatform { .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_platform_is_refused() {
        let old = runsc(&[Platform::Kvm, Platform::Ptrace]);
        let err = old.choose_platform(Some(Platform::Systrap)).unwrap_err();
        assert!(matches!(err, GvisorError::PlatformUnsupported { .. }));
        assert_eq!(
            err.to_string(),
            "runsc 0.0~20221219.0 does not support platform systrap (it knows: kvm, ptrace)"
        );
    }

    #[test]
    fn kvm_needs_the_device() {
        let r = runsc(&[Platform::Kvm, Platform::Ptrace]);
        let missing = Path::new("/nonexistent/kvm");
        let err = r
            .choose_platform_with(Some(Platform::Kvm), missing)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let not_char = r
            .choose_platform_with(Some(Platform::Kvm), Path::new("/"))
            .unwrap_err();
        assert!(matches!(not_char, GvisorError::KvmUnavailable { .. }));
        assert_eq!(
            r.choose_platform_with(Some(Platform::Kvm), Path::new("/dev/null"))
                .unwrap(),
            Platform::Kvm
        );
    }

    #[test]
    fn explicit_path_must_be_executable_file() {
        let err = Runsc::discover(Some(Path::new("/nonexistent/runsc"))).unwrap_err();
        assert!(matches!(err, GvisorError::NotExecutable { .. }), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let err = Runsc::discover(Some(Path::new("/"))).unwrap_err();
        assert!(matches!(err, GvisorError::NotExecutable { .. }), "{err}");
    }
}
