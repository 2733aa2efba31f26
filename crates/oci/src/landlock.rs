//! `org.nucleus.landlock`: a Landlock policy on the container's process
//! and every process `exec` adds, beyond what runc does. The value is
//! `default` (nucleus's default container policy: the system read-only,
//! `/tmp`, `/dev/shm` and the spec's writable binds writable), a host path
//! to a TOML policy file, or the TOML itself; `org.nucleus.landlock.sha256`
//! pins the file's (or the text's) SHA-256. Paths in the policy are the
//! container's; the init compiles it after the root switch. A kernel
//! without Landlock fails the launch.

use nucleus_landlock_policy::{sha256_hex, CompiledPolicy, DefaultOptions, Exec, Policy};
use oci_spec::runtime::Spec;

use crate::error::OciError;

/// The policy annotation.
pub const ANNOTATION: &str = "org.nucleus.landlock";
/// The pin annotation.
pub const PIN_ANNOTATION: &str = "org.nucleus.landlock.sha256";

fn invalid(reason: String) -> OciError {
    OciError::Invalid {
        field: format!("annotations.{ANNOTATION}"),
        reason,
    }
}

/// The policy the spec's annotations ask for, read and checked (the pin
/// included); `None` without the annotation.
pub fn policy(spec: &Spec) -> Result<Option<Policy>, OciError> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let Some(value) = annotations.get(ANNOTATION) else {
        return Ok(None);
    };
    let pin = annotations.get(PIN_ANNOTATION).map(String::as_str);
    let value = value.trim();
    if value == "default" {
        if pin.is_some() {
            return Err(invalid(format!(
                "{PIN_ANNOTATION} pins a file or a text, not \"default\""
            )));
        }
        return Ok(Some(Policy::default_container(&default_options(spec))));
    }
    let file = value.starts_with('/') && !value.contains('\n') && !value.contains('=');
    let policy = if file {
        Policy::from_file(std::path::Path::new(value), pin)
    } else {
        if let Some(pin) = pin {
            let want = pin
                .trim()
                .trim_start_matches("sha256:")
                .to_ascii_lowercase();
            let actual = sha256_hex(value.as_bytes());
            if want != actual {
                return Err(invalid(format!(
                    "the inline policy's SHA-256 is {actual}, the pin says {want}"
                )));
            }
        }
        Policy::from_toml_str(value)
    };
    policy
        .map(Some)
        .map_err(|e| invalid(crate::error::chain(&e)))
}

/// The default policy's view of this container: its writable binds, and
/// whether it shares the host's network.
fn default_options(spec: &Spec) -> DefaultOptions {
    let mut opts = DefaultOptions::default();
    for m in spec.mounts().iter().flatten() {
        let options = m.options().clone().unwrap_or_default();
        let bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if bind && !options.iter().any(|o| o == "ro") {
            let exec = if options.iter().any(|o| o == "noexec") {
                Exec::NoExec
            } else {
                Exec::Exec
            };
            opts.writable_binds.push((m.destination().clone(), exec));
        }
    }
    opts.shared_network = !spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network);
    opts
}

/// In the init, after the root switch: `policy` compiled for this kernel
/// (its paths opened in the container's view).
pub fn compile(policy: &Policy) -> Result<CompiledPolicy, OciError> {
    policy.compile().map_err(|e| OciError::layer(&e))
}

/// Restricts this process (and all it will exec). Not enforced at all is
/// an error.
pub fn restrict(compiled: &CompiledPolicy) -> Result<(), OciError> {
    let report = compiled.restrict_self().map_err(|e| OciError::layer(&e))?;
    if report.status == nucleus_landlock_policy::Enforcement::NotEnforced {
        return Err(OciError::Unsupported {
            field: format!("annotations.{ANNOTATION}"),
            reason: "this kernel enforces no Landlock".to_owned(),
        });
    }
    Ok(())
}
