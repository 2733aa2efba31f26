//! The guards that run before anything is created: trust level, runtime
//! choice, host network, and the kernel lockdown requirement.

pub use crate::trust::{Decision, Lockdown, Runtime, TrustLevel};
use crate::RunError;
use std::path::Path;

impl std::str::FromStr for Lockdown {
    type Err = RunError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "integrity" => Ok(Self::Integrity),
            "confidentiality" => Ok(Self::Confidentiality),
            _ => Err(RunError::LockdownFormat { text: s.to_owned() }),
        }
    }
}

/// The inputs of [`decide`].
#[derive(Debug, Clone, Copy)]
pub struct GuardInput {
    /// The trust level.
    pub trust: TrustLevel,
    /// The runtime asked for.
    pub runtime: Runtime,
    /// Whether `runsc` was found.
    pub runsc_present: bool,
    /// Whether the host network is asked for.
    pub host_network: bool,
    /// `--allow-host-network`.
    pub allow_host_network: bool,
    /// `--allow-degraded-security` (a flag; never an environment variable).
    pub allow_degraded: bool,
}

/// Decides the runtime, or refuses. The table:
///
/// - host network needs `--allow-host-network` at any trust level, and is
///   never given to an untrusted workload;
/// - trusted: `auto`/`native` run natively, `gvisor` needs `runsc`;
/// - untrusted: gVisor when `runsc` exists (asking `native` explicitly, or
///   lacking `runsc`, needs `--allow-degraded-security` and runs degraded).
///
/// ```
/// use nucleus_runner::guard::{decide, Decision, GuardInput, Runtime, TrustLevel};
/// let input = GuardInput {
///     trust: TrustLevel::Untrusted, runtime: Runtime::Auto, runsc_present: false,
///     host_network: false, allow_host_network: false, allow_degraded: true,
/// };
/// assert_eq!(decide(&input).unwrap(), Decision::NativeDegraded);
/// ```
pub fn decide(i: &GuardInput) -> Result<Decision, RunError> {
    if i.host_network && !i.allow_host_network {
        return Err(RunError::HostNetworkRefused);
    }
    if i.host_network && i.trust == TrustLevel::Untrusted {
        return Err(RunError::UntrustedHostNetwork);
    }
    match (i.trust, i.runtime) {
        (TrustLevel::Trusted, Runtime::Auto | Runtime::Native) => Ok(Decision::Native),
        (_, Runtime::Gvisor) if i.runsc_present => Ok(Decision::Gvisor),
        (_, Runtime::Gvisor) => Err(RunError::RunscMissing),
        (TrustLevel::Untrusted, Runtime::Auto) if i.runsc_present => Ok(Decision::Gvisor),
        (TrustLevel::Untrusted, _) if i.allow_degraded => Ok(Decision::NativeDegraded),
        (TrustLevel::Untrusted, Runtime::Native) => Err(RunError::DegradedRefused {
            reason: "--runtime native was asked",
        }),
        (TrustLevel::Untrusted, Runtime::Auto) => Err(RunError::DegradedRefused {
            reason: "runsc (gVisor) is not installed",
        }),
    }
}

/// The warning to show when the environment tries to lower security (an
/// environment variable is too easy to inherit by accident), if it does;
/// the library prints nothing itself.
///
/// ```
/// if let Some(warning) = nucleus_runner::guard::ignored_env_warning() {
///     eprintln!("warning: {warning}");
/// }
/// ```
pub fn ignored_env_warning() -> Option<&'static str> {
    std::env::var_os("NUCLEUS_ALLOW_DEGRADED_SECURITY")
        .map(|_| "NUCLEUS_ALLOW_DEGRADED_SECURITY is ignored; use --allow-degraded-security")
}

/// The active lockdown mode from the text of `/sys/kernel/security/lockdown`
/// (`none [integrity] confidentiality`: the bracketed word is active).
///
/// ```
/// use nucleus_runner::guard::{parse_lockdown, Lockdown};
/// assert_eq!(parse_lockdown("none [integrity] confidentiality\n").unwrap(), Lockdown::Integrity);
/// assert!(parse_lockdown("garbage").is_err());
/// ```
pub fn parse_lockdown(text: &str) -> Result<Lockdown, RunError> {
    let bad = || RunError::LockdownFormat {
        text: text.trim().to_owned(),
    };
    let mut active = None;
    for word in text.split_whitespace() {
        let (name, bracketed) = match word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
            Some(inner) => (inner, true),
            None => (word, false),
        };
        let mode: Lockdown = name.parse().map_err(|_| bad())?;
        if bracketed {
            if active.is_some() {
                return Err(bad());
            }
            active = Some(mode);
        }
    }
    active.ok_or_else(bad)
}

/// Refuses to start when the kernel's lockdown is weaker than `required`.
/// Reads `file` (default `/sys/kernel/security/lockdown`); when securityfs
/// is not mounted, reads it from a private mount of securityfs in a forked
/// child's own mount namespace, so the host's mount table is never touched.
pub fn require_lockdown(required: Lockdown, file: &Path) -> Result<Lockdown, RunError> {
    let read_error = |source| RunError::LockdownRead {
        path: file.to_owned(),
        source,
    };
    let text = if file.exists() {
        std::fs::read_to_string(file).map_err(read_error)?
    } else {
        read_with_private_securityfs(file).map_err(read_error)?
    };
    let active = parse_lockdown(&text)?;
    if active < required {
        return Err(RunError::LockdownTooWeak { required, active });
    }
    Ok(active)
}

/// Forks a child that mounts securityfs in a new mount namespace and sends
/// back the content of `file`.
fn read_with_private_securityfs(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let dir = file.parent().unwrap_or(Path::new("/"));
    let dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new fds that nobody else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the runner is single-threaded here; the child only makes
    // syscalls, reads one small file and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = securityfs_child(&dir, file, w.as_raw_fd());
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut text = String::new();
    let read = std::fs::File::from(r).take(4096).read_to_string(&mut text);
    let mut status = 0;
    // SAFETY: waits for the child we just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    read?;
    if text.is_empty() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
    }
    Ok(text)
}

fn securityfs_child(dir: &std::ffi::CStr, file: &Path, out: libc::c_int) -> i32 {
    // SAFETY: plain syscalls in the forked child, on NUL-terminated strings.
    let mounted = unsafe {
        libc::unshare(libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
            && libc::mount(
                c"securityfs".as_ptr(),
                dir.as_ptr(),
                c"securityfs".as_ptr(),
                0,
                std::ptr::null(),
            ) == 0
    };
    if !mounted {
        return 1;
    }
    let Ok(text) = std::fs::read(file) else {
        return 2;
    };
    // SAFETY: writes a live buffer to our pipe end.
    unsafe { libc::write(out, text.as_ptr().cast(), text.len()) };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(trust: TrustLevel, runtime: Runtime, runsc: bool) -> GuardInput {
        GuardInput {
            trust,
            runtime,
            runsc_present: runsc,
            host_network: false,
            allow_host_network: false,
            allow_degraded: false,
        }
    }

    #[test]
    fn every_combination_gives_the_documented_decision() {
        use Decision as D;
        use Runtime as R;
        use TrustLevel::*;
        let table: [(TrustLevel, Runtime, bool, bool, Option<Decision>); 12] = [
            (Trusted, R::Auto, false, false, Some(D::Native)),
            (Trusted, R::Native, true, false, Some(D::Native)),
            (Trusted, R::Gvisor, true, false, Some(D::Gvisor)),
            (Trusted, R::Gvisor, false, false, None),
            (Untrusted, R::Auto, true, false, Some(D::Gvisor)),
            (Untrusted, R::Auto, false, false, None),
            (Untrusted, R::Auto, false, true, Some(D::NativeDegraded)),
            (Untrusted, R::Native, true, false, None),
            (Untrusted, R::Native, true, true, Some(D::NativeDegraded)),
            (Untrusted, R::Gvisor, true, false, Some(D::Gvisor)),
            (Untrusted, R::Gvisor, false, true, None),
            (Trusted, R::Auto, true, true, Some(D::Native)),
        ];
        for (trust, runtime, runsc, degraded, want) in table {
            let mut i = input(trust, runtime, runsc);
            i.allow_degraded = degraded;
            assert_eq!(
                decide(&i).ok(),
                want,
                "{trust:?} {runtime:?} runsc={runsc} degraded={degraded}"
            );
        }
    }

    #[test]
    fn host_network_rules() {
        let mut i = input(TrustLevel::Trusted, Runtime::Auto, true);
        i.host_network = true;
        assert!(matches!(decide(&i), Err(RunError::HostNetworkRefused)));
        i.allow_host_network = true;
        assert_eq!(decide(&i).unwrap(), Decision::Native);
        i.trust = TrustLevel::Untrusted;
        assert!(matches!(decide(&i), Err(RunError::UntrustedHostNetwork)));
        i.allow_degraded = true;
        assert!(matches!(decide(&i), Err(RunError::UntrustedHostNetwork)));
    }

    #[test]
    fn lockdown_parsing() {
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality").unwrap(),
            Lockdown::None
        );
        assert_eq!(
            parse_lockdown("none integrity [confidentiality]").unwrap(),
            Lockdown::Confidentiality
        );
        assert!(parse_lockdown("none integrity confidentiality").is_err());
        assert!(parse_lockdown("[none] [integrity]").is_err());
        assert!(parse_lockdown("none [paranoid]").is_err());
    }

    #[test]
    fn lockdown_requirement_against_a_file() {
        let dir =
            std::env::temp_dir().join(format!("nucleus-lockdown-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lockdown");
        std::fs::write(&file, "[none] integrity confidentiality\n").unwrap();
        assert!(matches!(
            require_lockdown(Lockdown::Integrity, &file),
            Err(RunError::LockdownTooWeak { .. })
        ));
        std::fs::write(&file, "none integrity [confidentiality]\n").unwrap();
        assert_eq!(
            require_lockdown(Lockdown::Integrity, &file).unwrap(),
            Lockdown::Confidentiality
        );
        std::fs::write(&file, "what is this\n").unwrap();
        assert!(matches!(
            require_lockdown(Lockdown::Integrity, &file),
            Err(RunError::LockdownFormat { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
