//! `nucleus-run doctor`: what this kernel and machine support.

use serde::Serialize;

#[derive(Serialize)]
struct BindProbe {
    path: std::path::PathBuf,
    idmap: String,
}

#[derive(Serialize)]
struct Report {
    kernel: String,
    namespaces: nucleus_ns::NsProbe,
    idmap: nucleus_idmap::IdmapProbe,
    capabilities: nucleus_caps::CapsProbe,
    rootfs: nucleus_rootfs::RootfsProbe,
    landlock: nucleus_landlock_policy::LandlockProbe,
    seccomp: nucleus_seccomp::SeccompProbe,
    cgroup: nucleus_cgroup::CgroupProbe,
    gvisor: nucleus_gvisor::GvisorProbe,
    envelope: nucleus_runner::EnvelopeProbe,
    /// `--bind PATH`: whether a bind of it is idmapped (`idmapped`,
    /// `not needed` rootless) or why not.
    binds: Vec<BindProbe>,
    wasm: nucleus_wasm::WasmProbe,
}

/// Prints the report; returns the exit code.
pub(crate) fn run(json: bool, binds: &[std::path::PathBuf]) -> i32 {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let report = Report {
        kernel,
        namespaces: nucleus_ns::probe(),
        idmap: nucleus_idmap::probe(),
        capabilities: nucleus_caps::probe(),
        rootfs: nucleus_rootfs::probe(),
        landlock: nucleus_landlock_policy::probe(),
        seccomp: nucleus_seccomp::probe(),
        cgroup: nucleus_cgroup::probe(),
        gvisor: nucleus_gvisor::probe(),
        envelope: nucleus_runner::probe_envelope(),
        binds: binds
            .iter()
            .map(|path| BindProbe {
                path: path.clone(),
                idmap: match nucleus_runner::probe_idmap(path) {
                    Ok(true) => "idmapped".to_owned(),
                    Ok(false) => "not needed (your own id is the sandbox's root)".to_owned(),
                    Err(why) => why,
                },
            })
            .collect(),
        wasm: nucleus_wasm::probe(),
    };
    let text = if json {
        serde_json::to_string_pretty(&report)
    } else {
        serde_json::to_string_pretty(&report).map(|t| t.replace(['{', '}', '"', ','], ""))
    };
    match text {
        Ok(text) => {
            println!("{}", text.trim());
            0
        }
        Err(err) => {
            eprintln!("nucleus-run: doctor: {err}");
            nucleus_runner::exit::SETUP_FAILED
        }
    }
}
