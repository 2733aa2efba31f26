//! What the nucleus-oci suites share: a bundle (a busybox root and a
//! `config.json` as `runc spec` makes it), the runtime binary run with its
//! own state root, and checks that nothing is left behind.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nucleus_test_support::{TempDir, NOBODY};
use serde_json::{json, Value};

/// The runtime under test, copied where nobody can run it (the build
/// directory may not be reachable); copies of older builds go after an hour.
pub fn oci_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        nucleus_test_support::reachable_copy(Path::new(env!("CARGO_BIN_EXE_nucleus-oci")))
    })
}

/// A static busybox (package busybox-static).
pub fn busybox() -> Option<PathBuf> {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            Command::new("file")
                .arg("-L")
                .arg(p)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"))
        })
}

/// Fills `root` with busybox and its applets, /etc/passwd and /etc/group.
pub fn busybox_rootfs(root: &Path) {
    let bb = busybox().expect("a static busybox (apt-get install busybox-static)");
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "run",
        "var/tmp",
    ] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    fs::copy(&bb, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("group");
    fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod");
}

/// Whether the suites can run here; says why not (and fails under NUCLEUS_TEST_STRICT).
pub fn ready(test: &str) -> bool {
    if busybox().is_none() {
        nucleus_test_support::skip(test, "no static busybox (apt-get install busybox-static)");
        return false;
    }
    if !nucleus_test_support::is_root() {
        nucleus_test_support::skip(
            test,
            "the OCI suites run as root (and start nobody's runs themselves)",
        );
        return false;
    }
    true
}

/// Whether runsc is installed (else skip, failing under NUCLEUS_TEST_STRICT).
pub fn has_runsc(test: &str) -> bool {
    if nucleus_test_support::which("runsc").is_none() {
        nucleus_test_support::skip(test, "runsc is not installed (apt-get install runsc)");
        return false;
    }
    true
}

/// A bundle in a temporary directory, with its own runtime state root.
pub struct Bundle {
    pub dir: TempDir,
    pub config: Value,
}

/// A test that failed half-way leaves no container running (a gVisor
/// sandbox would hold its id's control socket for every later run):
/// `delete --force` of whatever state is left, as the user who made it.
impl Drop for Bundle {
    fn drop(&mut self) {
        for id in self.containers() {
            for who in [Who::Root, Who::Nobody] {
                let _ = self.command(who, &["delete", "--force", &id]).output();
            }
        }
    }
}

/// `runc spec`'s default, for a rootful container.
pub fn default_config(args: &[&str], cgroup: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "nucleus-oci-test",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "cgroupsPath": cgroup,
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// The rootless variant (`runc spec --rootless`): a user namespace mapping
/// root inside to `uid` outside, no cgroup, /sys bound from the host.
pub fn rootless_config(args: &[&str], uid: u32) -> Value {
    let mut c = default_config(args, "");
    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "network"}]);
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    c["linux"]["resources"] = json!({});
    let mounts: Vec<Value> = c["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter(|m| !["/sys/fs/cgroup", "/dev/mqueue"].contains(&m["destination"].as_str().unwrap_or("")))
        .map(|m| {
            if m["destination"] == "/sys" {
                json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            } else if m["destination"] == "/dev/pts" {
                json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]})
            } else {
                m.clone()
            }
        })
        .collect();
    c["mounts"] = Value::Array(mounts);
    c
}

/// Who runs the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Root,
    Nobody,
}

impl Bundle {
    /// A bundle running `args` as `who` would write it.
    pub fn new(who: Who, args: &[&str]) -> Bundle {
        let dir = TempDir::new("oci-bundle");
        busybox_rootfs(&dir.path().join("rootfs"));
        let name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let config = match who {
            Who::Root => default_config(args, &format!("/{name}/ctr")),
            Who::Nobody => rootless_config(args, NOBODY),
        };
        if who == Who::Nobody {
            chown_tree(dir.path(), NOBODY);
        }
        Bundle { dir, config }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The runtime's state root for this bundle's containers.
    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes config.json.
    pub fn write(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config.json");
    }

    /// `nucleus-oci --root STATE ARGS...` as `who`, config.json written first.
    pub fn oci(&self, who: Who, args: &[&str]) -> Output {
        self.write();
        self.command(who, args).output().expect("run nucleus-oci")
    }

    /// Like [`oci`](Self::oci) for commands that leave a process running
    /// (`create`, `run -d`, `exec -d`): that process keeps the runtime's
    /// stdio, so they go to files here, not to pipes. Stdout is empty.
    pub fn oci_detached(&self, who: Who, args: &[&str]) -> Output {
        self.write();
        let path = self.path().join(format!(
            "detached-{}.err",
            nucleus_test_support::unique_name("o")
        ));
        let file = fs::File::create(&path).expect("stderr file");
        let status = self
            .command(who, args)
            .stdout(Stdio::null())
            .stderr(file)
            .status()
            .expect("run nucleus-oci");
        let stderr = fs::read(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        Output {
            status,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// The command, not started.
    pub fn command(&self, who: Who, args: &[&str]) -> Command {
        let mut cmd = match who {
            Who::Root => Command::new(oci_bin()),
            Who::Nobody => {
                let mut c = nucleus_test_support::as_user(NOBODY, oci_bin());
                c.env("XDG_RUNTIME_DIR", self.path());
                c
            }
        };
        if nest_cgroups() {
            cmd.env("NUCLEUS_OCI_NEST_CGROUPS", "1");
        }
        cmd.arg("--root")
            .arg(self.state_root())
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null());
        cmd
    }

    /// The ids of the containers whose state is still here.
    fn containers(&self) -> Vec<String> {
        fs::read_dir(self.state_root())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The cgroup name of a rootful bundle.
    pub fn cgroup(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_owned()
    }

    /// The runtime left nothing: no state, no cgroup directory in any hierarchy.
    pub fn assert_clean(&self) {
        let left = self.containers();
        assert!(left.is_empty(), "state left: {left:?}");
        let name = self.cgroup();
        if name.is_empty() {
            return;
        }
        // The container's cgroup and the parent made for it.
        let parent = name.split('/').next().unwrap_or_default().to_owned();
        for dir in cgroup_dirs(&name).into_iter().chain(cgroup_dirs(&parent)) {
            assert!(!dir.exists(), "cgroup left: {}", dir.display());
        }
    }
}

/// Whether this process is below the root of some cgroup hierarchy: then
/// the runtime is told to put even absolute `cgroupsPath`s below it (the
/// tests make cgroups only there), which at the root is the same place.
pub fn nest_cgroups() -> bool {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .any(|l| l.rsplit(':').next().is_some_and(|p| p != "/"))
}

/// Where a cgroup named `name` (below this process's own) lives in each hierarchy.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for entry in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        let hier = entry.file_name().to_string_lossy().into_owned();
        let path = own.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            let hit = if hier == "unified" {
                ctrls.is_empty()
            } else {
                ctrls.split(',').any(|c| c == hier)
            };
            hit.then(|| path.to_owned())
        });
        if let Some(p) = path {
            out.push(entry.path().join(p.trim_start_matches('/')).join(name));
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let p = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("/");
        out.push(
            Path::new("/sys/fs/cgroup")
                .join(p.trim_start_matches('/'))
                .join(name),
        );
    }
    out
}

fn chown_tree(root: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(root)
        .status()
        .expect("chown");
    assert!(status.success());
}

/// stdout as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
