//! `linux.resources`: what maps onto `nucleus_cgroup::Limits`, the device
//! rules (cgroup v1 `devices`, or v2's device program), and the refusal of
//! everything else by name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nucleus_cgroup::{Cgroup, CgroupConfig, DeviceAccess, DeviceKind, DeviceRule, IoMax, Limits};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::error::OciError;

fn unsupported(field: &str) -> OciError {
    OciError::Unsupported {
        field: format!("linux.resources.{field}"),
        reason: "not supported by nucleus-oci".to_owned(),
    }
}

fn set<T>(v: Option<T>) -> bool {
    v.is_some()
}

/// Refuses every resource field that [`limits`] and the device rules do not
/// enforce.
pub fn check(r: &LinuxResources) -> Result<(), OciError> {
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("hugepageLimits"));
    }
    if r.network().is_some() {
        return Err(unsupported("network"));
    }
    if r.rdma().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("rdma"));
    }
    if r.unified().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(unsupported("unified"));
    }
    if let Some(m) = r.memory() {
        let named = [
            ("memory.reservation", set(m.reservation())),
            ("memory.kernel", set(m.kernel())),
            ("memory.kernelTCP", set(m.kernel_tcp())),
            (
                "memory.disableOOMKiller",
                m.disable_oom_killer() == Some(true),
            ),
            (
                "memory.checkBeforeUpdate",
                m.check_before_update() == Some(true),
            ),
        ];
        if let Some((field, _)) = named.iter().find(|(_, on)| *on) {
            return Err(unsupported(field));
        }
        if m.swappiness().is_some_and(|s| s <= 100) && m.swappiness() != Some(60) {
            // Engines leave it unset; a value other than the kernel's default is not applied.
            return Err(unsupported("memory.swappiness"));
        }
    }
    if let Some(c) = r.cpu() {
        let named = [
            ("cpu.realtimeRuntime", set(c.realtime_runtime())),
            ("cpu.realtimePeriod", set(c.realtime_period())),
            ("cpu.idle", c.idle().is_some_and(|i| i != 0)),
            ("cpu.burst", c.burst().is_some_and(|b| b != 0)),
            ("cpu.cpus", c.cpus().as_ref().is_some_and(|s| !s.is_empty())),
            ("cpu.mems", c.mems().as_ref().is_some_and(|s| !s.is_empty())),
        ];
        if let Some((field, _)) = named.iter().find(|(_, on)| *on) {
            return Err(unsupported(field));
        }
    }
    if let Some(b) = r.block_io() {
        let named = [
            ("blockIO.weight", set(b.weight())),
            ("blockIO.leafWeight", set(b.leaf_weight())),
            (
                "blockIO.weightDevice",
                b.weight_device().as_ref().is_some_and(|v| !v.is_empty()),
            ),
        ];
        if let Some((field, _)) = named.iter().find(|(_, on)| *on) {
            return Err(unsupported(field));
        }
    }
    limits(r).map(|_| ())
}

/// The limits of `r` (memory, swap, CPU quota and shares, pids, I/O throttles).
pub fn limits(r: &LinuxResources) -> Result<Limits, OciError> {
    let mut l = Limits::default();
    let positive = |v: Option<i64>| v.filter(|v| *v > 0).map(|v| v as u64);
    if let Some(m) = r.memory() {
        l.memory = positive(m.limit());
        l.memory_swap = positive(m.swap()).filter(|_| l.memory.is_some());
    }
    if let Some(c) = r.cpu() {
        if let Some(quota) = positive(c.quota()) {
            let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
            l.cpus = Some(quota as f64 / period as f64);
        }
        // cgroup v1 shares (2..262144) to v2 weight (1..10000), as runc converts.
        l.cpu_weight = c
            .shares()
            .filter(|s| *s > 0)
            .map(|s| 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142);
    }
    if let Some(p) = r.pids() {
        l.pids = u64::try_from(p.limit()).ok().filter(|n| *n > 0);
    }
    if let Some(b) = r.block_io() {
        l.io_max = io_max(b);
    }
    Ok(l)
}

fn io_max(b: &oci_spec::runtime::LinuxBlockIo) -> Vec<IoMax> {
    let mut out: Vec<IoMax> = Vec::new();
    let lists = [
        (b.throttle_read_bps_device(), 0),
        (b.throttle_write_bps_device(), 1),
        (b.throttle_read_iops_device(), 2),
        (b.throttle_write_iops_device(), 3),
    ];
    for (list, which) in lists {
        for t in list.iter().flatten() {
            let (major, minor) = (t.major() as u32, t.minor() as u32);
            let pos = match out
                .iter()
                .position(|e| e.major == major && e.minor == minor)
            {
                Some(p) => p,
                None => {
                    out.push(IoMax {
                        major,
                        minor,
                        ..IoMax::default()
                    });
                    out.len() - 1
                }
            };
            let e = &mut out[pos];
            let slot = match which {
                0 => &mut e.rbps,
                1 => &mut e.wbps,
                2 => &mut e.riops,
                _ => &mut e.wiops,
            };
            *slot = Some(t.rate());
        }
    }
    out
}

/// The container's cgroup v1 `devices` directory, made by `create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceCgroup {
    /// The directory.
    pub path: PathBuf,
    /// Parents made for it, innermost first.
    pub parents: Vec<PathBuf>,
}

/// The cgroup's name: `cgroupsPath`, or `nucleus-oci/ID`. systemd's
/// `slice:prefix:name` form needs `--systemd-cgroup`, which is refused.
pub fn cgroup_name(path: Option<&Path>, id: &str) -> Result<PathBuf, OciError> {
    match path {
        Some(p) if p.to_string_lossy().contains(':') => Err(OciError::Unsupported {
            field: "linux.cgroupsPath".to_owned(),
            reason: format!(
                "{} is a systemd unit path; nucleus-oci manages cgroupfs paths only",
                p.display()
            ),
        }),
        Some(p) if !p.as_os_str().is_empty() => Ok(p.to_path_buf()),
        _ => Ok(PathBuf::from(format!("nucleus-oci/{id}"))),
    }
}

/// Set (to anything but `0`) in the runtime's environment: an absolute
/// `cgroupsPath` goes below the runtime's own cgroup too, for a runtime
/// given a delegated subtree rather than the whole hierarchy.
pub const NEST_ENV: &str = "NUCLEUS_OCI_NEST_CGROUPS";

/// Where the container's cgroup goes: its name ([`cgroup_name`]) and the
/// config whose root it is made below. An absolute `cgroupsPath` is taken
/// from each hierarchy's root, as the spec says (a kubelet's
/// `/kubepods/...` pod cgroup is where its containers must be); a relative
/// one, the default `nucleus-oci/ID`, an unprivileged runtime's, and any
/// with [`NEST_ENV`] set go below this process's own cgroup.
pub fn placement(path: Option<&Path>, id: &str) -> Result<(PathBuf, CgroupConfig), OciError> {
    let name = cgroup_name(path, id)?;
    let nest = std::env::var_os(NEST_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    let from_root = name.is_absolute() && crate::proc::euid() == 0 && !nest;
    let cfg = CgroupConfig {
        root: from_root.then(|| PathBuf::from("/")),
        ..CgroupConfig::default()
    };
    Ok((name, cfg))
}

/// One rule of the spec as `nucleus-cgroup` takes it; `None` for a fifo
/// rule (`p`), which governs nothing: the kernel's device cgroup checks
/// only character and block nodes.
pub fn device_rule(rule: &LinuxDeviceCgroup) -> Result<Option<DeviceRule>, OciError> {
    let kind = match rule.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DeviceKind::Char,
        Some(LinuxDeviceType::B) => DeviceKind::Block,
        Some(LinuxDeviceType::P) => return Ok(None),
        Some(LinuxDeviceType::A) | None => DeviceKind::All,
    };
    let bad = |reason: String| OciError::Unsupported {
        field: "linux.resources.devices".to_owned(),
        reason,
    };
    // Absent or negative: any (runc's -1); too large: no such device, and
    // never a wildcard.
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => u32::try_from(n)
            .map(Some)
            .map_err(|_| bad(format!("device number {n} is out of range"))),
        _ => Ok(None),
    };
    let access = DeviceAccess::parse(rule.access().as_deref().unwrap_or("rwm"))
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(DeviceRule {
        allow: rule.allow(),
        kind,
        major: num(rule.major())?,
        minor: num(rule.minor())?,
        access,
    }))
}

/// What every container may use whatever its rules say, as runc allows it:
/// `mknod` of any node, the default devices, `/dev/tty`, `/dev/ptmx` and
/// the pty slaves.
const ALWAYS_ALLOWED: &[(DeviceKind, Option<u32>, Option<u32>, DeviceAccess)] = &[
    (DeviceKind::Char, None, None, DeviceAccess::MKNOD),
    (DeviceKind::Block, None, None, DeviceAccess::MKNOD),
    (DeviceKind::Char, Some(1), Some(3), DeviceAccess::ALL),
    (DeviceKind::Char, Some(1), Some(5), DeviceAccess::ALL),
    (DeviceKind::Char, Some(1), Some(7), DeviceAccess::ALL),
    (DeviceKind::Char, Some(1), Some(8), DeviceAccess::ALL),
    (DeviceKind::Char, Some(1), Some(9), DeviceAccess::ALL),
    (DeviceKind::Char, Some(5), Some(0), DeviceAccess::ALL),
    (DeviceKind::Char, Some(5), Some(1), DeviceAccess::ALL),
    (DeviceKind::Char, Some(5), Some(2), DeviceAccess::ALL),
    (DeviceKind::Char, Some(136), None, DeviceAccess::ALL),
];

/// The rules in order, then the devices the runtime makes (the spec's
/// `linux.devices` and the defaults) allowed.
pub fn device_rules(
    rules: &[LinuxDeviceCgroup],
    devices: &[LinuxDevice],
) -> Result<Vec<DeviceRule>, OciError> {
    let mut out = Vec::new();
    for r in rules {
        out.extend(device_rule(r)?);
    }
    for &(kind, major, minor, access) in ALWAYS_ALLOWED {
        out.push(DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access,
        });
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => continue,
            _ => DeviceKind::Char,
        };
        out.push(DeviceRule {
            allow: true,
            kind,
            major: Some(device_number(d.major())?),
            minor: Some(device_number(d.minor())?),
            access: DeviceAccess::ALL,
        });
    }
    Ok(out)
}

/// A node's major or minor number of `linux.devices`.
fn device_number(n: i64) -> Result<u32, OciError> {
    u32::try_from(n).map_err(|_| OciError::Unsupported {
        field: "linux.devices".to_owned(),
        reason: format!("device number {n} is out of range"),
    })
}

/// This process's cgroup in the v1 `devices` hierarchy, from /proc/self/cgroup.
fn own_devices_cgroup() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls
            .split(',')
            .any(|c| c == "devices")
            .then(|| Path::new("/sys/fs/cgroup/devices").join(path.trim_start_matches('/')))
    })
}

impl DeviceCgroup {
    /// Holds the container to `rules`: in the v1 `devices` hierarchy, a
    /// cgroup `name` below this process's own with the rules written in
    /// order (returned, to be removed with the container); without one
    /// (cgroup v2), a device program attached to the container's `cgroup`
    /// (removed with it). No rules: nothing is made.
    pub fn create(
        (name, cfg): (&Path, &CgroupConfig),
        rules: &[LinuxDeviceCgroup],
        devices: &[LinuxDevice],
        cgroup: Option<&Cgroup>,
    ) -> Result<Option<Self>, OciError> {
        if rules.is_empty() {
            return Ok(None);
        }
        let lines = device_rules(rules, devices)?;
        let base = match own_devices_cgroup() {
            Some(_) if cfg.root.is_some() => Some(PathBuf::from("/sys/fs/cgroup/devices")),
            own => own,
        };
        let Some(base) = base.filter(|p| p.exists()) else {
            let cg = cgroup.ok_or_else(|| OciError::Unsupported {
                field: "linux.resources.devices".to_owned(),
                reason: "device rules need a cgroup (v1 devices controller or v2)".to_owned(),
            })?;
            cg.restrict_devices(&lines)
                .map_err(|e| OciError::layer(&e))?;
            return Ok(None);
        };
        let rel = name.strip_prefix("/").unwrap_or(name);
        let leaf = base.join(rel);
        let mut made = DeviceCgroup::default();
        let mut dir = base.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            dir.push(part);
            match fs::create_dir(&dir) {
                Ok(()) => made.parents.insert(0, dir.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    made.remove();
                    return Err(OciError::io(format!("create {}", dir.display()), e));
                }
            }
        }
        if let Err(e) = fs::create_dir(&leaf) {
            made.remove();
            return Err(OciError::io(format!("create {}", leaf.display()), e));
        }
        made.path = leaf;
        if let Err(e) = made.write(&lines) {
            made.remove();
            return Err(e);
        }
        Ok(Some(made))
    }

    fn write(&self, rules: &[DeviceRule]) -> Result<(), OciError> {
        for rule in rules {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            let line = rule.to_string();
            fs::write(self.path.join(file), &line)
                .map_err(|e| OciError::io(format!("write {line:?} to {file}"), e))?;
        }
        Ok(())
    }

    /// Puts `pid` in it.
    pub fn attach(&self, pid: i32) -> Result<(), OciError> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .map_err(|e| OciError::io(format!("attach {pid} to {}", self.path.display()), e))
    }

    /// Removes it and the parents made for it (those still empty).
    pub fn remove(&self) {
        for dir in std::iter::once(&self.path).chain(&self.parents) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            for _ in 0..100 {
                match fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    _ => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_start_at_the_hierarchy_root_relative_ones_below_ours() {
        let nested = std::env::var_os(NEST_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        let root = crate::proc::euid() == 0 && !nested;
        let (name, cfg) = placement(Some(Path::new("/kubepods/pod1/c1")), "c1").expect("ok");
        assert_eq!(name, Path::new("/kubepods/pod1/c1"));
        assert_eq!(cfg.root, root.then(|| PathBuf::from("/")));
        let (name, cfg) = placement(Some(Path::new("engine/c1")), "c1").expect("ok");
        assert_eq!((name.as_path(), cfg.root), (Path::new("engine/c1"), None));
        let (name, cfg) = placement(None, "c1").expect("ok");
        assert_eq!(
            (name.as_path(), cfg.root),
            (Path::new("nucleus-oci/c1"), None)
        );
        assert!(placement(Some(Path::new("system.slice:cri:c1")), "c1").is_err());
    }

    #[test]
    fn rules_keep_their_order_then_the_defaults() {
        let deny: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"}))
                .expect("rule");
        let fifo: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": true, "type": "p"})).expect("rule");
        let rules = device_rules(&[deny, fifo], &[]).expect("rules");
        assert_eq!(rules[0].to_string(), "a *:* rwm");
        assert!(!rules[0].allow, "the deny first");
        assert_eq!(
            rules.len(),
            1 + ALWAYS_ALLOWED.len(),
            "a fifo rule governs nothing"
        );
        assert_eq!(rules[1].to_string(), "c *:* m");
        let bad: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": true, "access": "rx"}))
                .expect("rule");
        assert!(device_rules(&[bad], &[]).is_err());
        // Too large a number is refused, never read as "any".
        let huge: LinuxDeviceCgroup = serde_json::from_value(
            serde_json::json!({"allow": true, "type": "c", "major": 1_i64 << 40}),
        )
        .expect("rule");
        assert!(device_rules(&[huge], &[]).is_err());
        let any: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": true, "type": "c", "major": -1}))
                .expect("rule");
        assert_eq!(
            device_rules(&[any], &[]).expect("ok")[0].to_string(),
            "c *:* rwm"
        );
    }
}
