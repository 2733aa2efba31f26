//! Reading a bundle: `config.json` parsed (the `oci-spec` crate), checked,
//! and every field this runtime does not enforce refused by name.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::OciError;

/// The OCI runtime-spec versions accepted: 1.0.0 up to this one.
pub const OCI_VERSION_MAX: &str = "1.3.0";

/// A bundle, read and checked.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// The root filesystem, absolute and resolved.
    pub rootfs: PathBuf,
    /// The spec.
    pub spec: Spec,
}

/// Reads `dir/config.json` and checks it (see [`check`]).
pub fn load(dir: &Path) -> Result<Bundle, OciError> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| OciError::io(format!("bundle {}", dir.display()), e))?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| OciError::Config {
        path: path.clone(),
        reason: format!("cannot read: {e}"),
    })?;
    let spec: Spec = serde_json::from_slice(&text).map_err(|e| OciError::Config {
        path: path.clone(),
        reason: format!("not a valid runtime spec: {e}"),
    })?;
    let rootfs = rootfs(&dir, &spec)?;
    check(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Parses and checks `config.json`'s bytes (no bundle directory needed).
pub fn parse(bytes: &[u8]) -> Result<Spec, OciError> {
    let spec: Spec = serde_json::from_slice(bytes).map_err(|e| OciError::Config {
        path: PathBuf::from("config.json"),
        reason: format!("not a valid runtime spec: {e}"),
    })?;
    check(&spec)?;
    Ok(spec)
}

/// The root filesystem: `root.path` relative to the bundle (it must stay
/// inside it once symlinks are resolved) or absolute; a directory.
fn rootfs(dir: &Path, spec: &Spec) -> Result<PathBuf, OciError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let given = root.path();
    let joined = dir.join(given);
    let real = std::fs::canonicalize(&joined)
        .map_err(|e| OciError::io(format!("root.path {}", joined.display()), e))?;
    if given.is_relative() && !real.starts_with(dir) {
        return Err(invalid(
            "root.path",
            &format!(
                "{} leads out of the bundle to {}",
                given.display(),
                real.display()
            ),
        ));
    }
    if !real.is_dir() {
        return Err(invalid(
            "root.path",
            &format!("{} is not a directory", real.display()),
        ));
    }
    Ok(real)
}

fn invalid(field: &str, reason: &str) -> OciError {
    OciError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn unsupported(field: &str, reason: &str) -> OciError {
    OciError::Unsupported {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Refuses a field that is set (`Some`, and not empty where emptiness
/// means unset).
fn refuse<T>(field: &str, value: &Option<T>, reason: &str) -> Result<(), OciError> {
    match value {
        Some(_) => Err(unsupported(field, reason)),
        None => Ok(()),
    }
}

fn refuse_text(field: &str, value: &Option<String>) -> Result<(), OciError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Err(unsupported(field, "not supported by nucleus-oci")),
        _ => Ok(()),
    }
}

/// Checks the version and refuses what is not enforced.
pub fn check(spec: &Spec) -> Result<(), OciError> {
    check_version(spec.version())?;
    let none = "not supported by nucleus-oci";
    refuse("solaris", spec.solaris(), "not a Linux spec")?;
    refuse("windows", spec.windows(), "not a Linux spec")?;
    refuse(
        "vm",
        spec.vm(),
        "virtual-machine containers are not supported",
    )?;
    refuse("zos", spec.zos(), "not a Linux spec")?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    check_process(process)?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    // Without a mount namespace the container's root could not be made
    // its own: the process would see the host's (runc's validator refuses
    // it too).
    let mount_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount);
    if !mount_ns {
        return Err(invalid(
            "linux.namespaces",
            "a container needs a mount namespace (new, or joined by path): \
             without one it would see the host's filesystem",
        ));
    }
    refuse("linux.intelRdt", linux.intel_rdt(), none)?;
    refuse("linux.memoryPolicy", linux.memory_policy(), none)?;
    refuse("linux.timeOffsets", linux.time_offsets(), none)?;
    refuse("linux.netDevices", linux.net_devices(), none)?;
    refuse_text("linux.mountLabel", linux.mount_label())?;
    if let Some(p) = linux.personality() {
        if format!("{:?}", p.domain()) != "PerLinux" {
            return Err(unsupported("linux.personality", "only LINUX is supported"));
        }
    }
    for ns in linux.namespaces().iter().flatten() {
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(unsupported("linux.namespaces", "time namespaces"));
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        crate::listener::check(seccomp)?;
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(unsupported(
                &format!("mounts[{i}].uidMappings"),
                "idmapped mounts",
            ));
        }
        if !m.destination().is_absolute() {
            return Err(invalid(
                &format!("mounts[{i}].destination"),
                &format!("{} is not absolute", m.destination().display()),
            ));
        }
    }
    if let Some(r) = linux.resources() {
        crate::resources::check(r)?;
    }
    Ok(())
}

fn check_process(p: &oci_spec::runtime::Process) -> Result<(), OciError> {
    let none = "not supported by nucleus-oci";
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "empty: nothing to run"));
    }
    if !p.cwd().is_absolute() {
        return Err(invalid("process.cwd", "must be absolute"));
    }
    refuse_text("process.apparmorProfile", p.apparmor_profile())?;
    refuse_text("process.selinuxLabel", p.selinux_label())?;
    refuse("process.ioPriority", p.io_priority(), none)?;
    refuse("process.scheduler", p.scheduler(), none)?;
    refuse("process.execCPUAffinity", p.exec_cpu_affinity(), none)?;
    refuse_text("process.commandLine", p.command_line())?;
    Ok(())
}

/// `1.x.y` (with an optional `-suffix`) up to [`OCI_VERSION_MAX`].
pub fn check_version(version: &str) -> Result<(), OciError> {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    let ok = match parts.as_slice() {
        [Some(1), Some(minor), Some(_)] => *minor <= 3,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(unsupported(
        "ociVersion",
        &format!("{version:?} (supported: 1.0.0 to {OCI_VERSION_MAX})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.2.0+x", "1.3.0"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1", "1.4.0", "2.0.0", "0.9.0", "one"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
