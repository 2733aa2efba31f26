//! The OCI runtime's `config.json` (a bundle an engine hands `nucleus-oci`).

use crate::Target;

/// `nucleus_oci::spec::parse` (the spec read and every unsupported field refused), then
/// what `create` derives from it: the cgroup limits, the mount options, the capability
/// policy; a spec that parses prints back to JSON that parses to the same spec.
pub(crate) const OCI_CONFIG: Target = Target {
    name: "oci-config",
    entry: "nucleus_oci::spec::parse (config.json)",
    run: oci_config,
    seeds: oci_seeds,
};

fn oci_config(bytes: &[u8]) -> bool {
    let Ok(spec) = nucleus_oci::spec::parse(bytes) else {
        return false;
    };
    let printed = serde_json::to_vec(&spec).expect("a parsed spec prints as JSON");
    let again = nucleus_oci::spec::parse(&printed).expect("a printed spec parses");
    assert_eq!(again, spec, "the spec changed through JSON");
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        let _ = nucleus_oci::resources::limits(r);
        let rules = r.devices().clone().unwrap_or_default();
        if let Ok(rules) = nucleus_oci::resources::device_rules(&rules, &[]) {
            let prog = nucleus_cgroup::compile_device_program(&rules);
            assert!(prog.len() >= 8, "a program reads the context and exits");
        }
    }
    for m in spec.mounts().iter().flatten() {
        let _ =
            nucleus_oci::init::mounts::parse_options(m.options().as_deref().unwrap_or_default());
    }
    if let Some(p) = spec.process() {
        let _ = nucleus_oci::init::process::caps_policy(p.capabilities().as_ref());
    }
    true
}

fn oci_seeds() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../../oci/tests/fixtures/podman-config.json").to_vec(),
        br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}],"resources":{"memory":{"limit":67108864},"cpu":{"quota":50000,"period":100000},"pids":{"limit":64}}}}"#.to_vec(),
    ]
}
