//! What a default launch on this machine would use, for `nucleus-run doctor`.

use crate::prepare::MemfdNoexec;
use crate::Envelope;
use nucleus_idmap::{Caller, SubIdPaths};
use serde::Serialize;

/// How the default Envelope would be enforced here, by this caller.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EnvelopeProbe {
    /// The user-namespace map (`inside:outside:count`), or the error that
    /// stops it.
    pub uid_map: Result<Vec<String>, String>,
    /// How fileless execution is closed natively: `sysctl` (as root, on a
    /// kernel with `vm.memfd_noexec`) or `seccomp`.
    pub memfd_noexec: MemfdNoexec,
    /// The masked credential paths that exist on this host.
    pub masked_paths: Result<Vec<std::path::PathBuf>, String>,
    /// Under gVisor: runsc, its gofer and its sandbox run in that user
    /// namespace, in a PID namespace of their own, in the runner's cgroup
    /// (`--ignore-cgroups`); `--rootless` is passed when the map holds a
    /// single id (no `nobody` for runsc's sandbox).
    pub gvisor_rootless_flag: bool,
    /// The rights and scopes of the default Landlock policy this kernel
    /// cannot enforce: the native envelope drops them (best effort, the
    /// default, and says so in each result); `--landlock-compat strict`
    /// refuses to start. Empty on a kernel of the vetted ABI.
    pub landlock_dropped: Result<Vec<String>, String>,
}

/// Probes what the default Envelope would use.
///
/// ```
/// let probe = nucleus_runner::probe_envelope();
/// println!("memfd: {:?}", probe.memfd_noexec);
/// ```
pub fn probe_envelope() -> EnvelopeProbe {
    let env = Envelope::default();
    let caller = Caller::current();
    // A real lease, released at once: it shows the pool works here (each
    // sandbox gets a range of its own).
    let maps = env
        .userns
        .resolve_leased(&caller, &SubIdPaths::default(), &Default::default());
    let single = |m: &nucleus_idmap::ResolvedMaps| !m.maps_uid(65534) || !m.maps_gid(65534);
    let memfd =
        caller.uid == 0 && std::path::Path::new(crate::prepare::MEMFD_NOEXEC_SYSCTL).exists();
    EnvelopeProbe {
        gvisor_rootless_flag: maps
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .is_some_and(single),
        uid_map: maps
            .map(|m| {
                m.map(|m| m.uid.iter().map(ToString::to_string).collect())
                    .unwrap_or_default()
            })
            .map_err(|e| e.to_string()),
        memfd_noexec: if memfd {
            MemfdNoexec::Sysctl
        } else {
            MemfdNoexec::Seccomp
        },
        masked_paths: env
            .rootfs
            .masks()
            .map(|m| m.into_iter().map(|m| m.path).collect())
            .map_err(|e| e.to_string()),
        landlock_dropped: default_landlock_dropped(&env),
    }
}

/// What the default policy loses on this kernel (see
/// [`EnvelopeProbe::landlock_dropped`]).
fn default_landlock_dropped(env: &Envelope) -> Result<Vec<String>, String> {
    let policy = env
        .landlock
        .policy(&env.rootfs, false)
        .map_err(|e| e.to_string())?
        .ok_or("Landlock is off")?;
    let prepared = crate::landlock::PreparedLandlock::new(&policy).map_err(|e| e.to_string())?;
    Ok(prepared.compiled.dropped().to_vec())
}

/// Whether writable binds of `path` can be idmapped here (`nucleus-run
/// doctor --bind PATH`): a real launch of the native envelope with `path`
/// bound writable (running `/bin/true`, which writes nothing).
/// `Ok(true)`: idmapped; `Ok(false)`: not needed (a rootless caller's own
/// id is the sandbox's root); `Err`: why not (a read-only bind there
/// would be a plain one).
///
/// ```no_run
/// let verdict = nucleus_runner::probe_idmap(std::path::Path::new("/srv/data"));
/// println!("{verdict:?}");
/// ```
pub fn probe_idmap(path: &std::path::Path) -> Result<bool, String> {
    let root = Caller::current().uid == 0;
    let env = Envelope::builder(["/bin/true"])
        .bind(path, "/nucleus-idmap-probe")
        .trust_level(crate::guard::TrustLevel::Trusted)
        .build()
        .map_err(|e| e.to_string())?;
    match crate::launch(&env) {
        Ok(outcome) if outcome.exit_code == 0 => Ok(root),
        Ok(outcome) => Err(outcome
            .error
            .unwrap_or_else(|| format!("exit {}", outcome.exit_code))),
        Err(e) => Err(e.chain()),
    }
}
