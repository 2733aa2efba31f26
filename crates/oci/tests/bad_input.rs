//! Bad bundles and bad commands: each a clear error with runc's exit status
//! (1), and nothing left behind (no state, no cgroup, no process).

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::{err, ready, Bundle, Who};
use serde_json::json;

/// Runs `args` on `b` and checks exit 1, the message, and an empty state root.
fn refused(b: &Bundle, args: &[&str], message: &str) {
    let o = b.oci_detached(Who::Root, args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
    assert!(
        err(&o).contains(message),
        "{args:?}: wanted {message:?} in {:?}",
        err(&o)
    );
    b.assert_clean();
}

#[test]
fn bad_bundles_are_refused_by_name_and_leave_nothing() {
    if !ready("bad_bundles_are_refused") {
        return;
    }
    type Edit = fn(&mut serde_json::Value);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "unknown ociVersion",
            |c| c["ociVersion"] = json!("2.0.0"),
            "ociVersion: \"2.0.0\" (supported: 1.0.0 to",
        ),
        (
            "no args",
            |c| c["process"]["args"] = json!([]),
            "process.args: empty",
        ),
        (
            "no process",
            |c| c["process"] = json!(null),
            "invalid config.json: process: missing",
        ),
        (
            "relative cwd",
            |c| c["process"]["cwd"] = json!("tmp"),
            "process.cwd: must be absolute",
        ),
        (
            "intelRdt",
            |c| c["linux"]["intelRdt"] = json!({"closID": "x"}),
            "unsupported in config.json: linux.intelRdt",
        ),
        (
            "time namespace",
            |c| c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "time"}]),
            "linux.namespaces: time namespaces",
        ),
        (
            "no mount namespace",
            |c| c["linux"]["namespaces"] = json!([{"type": "pid"}]),
            "linux.namespaces: a container needs a mount namespace",
        ),
        (
            "apparmor",
            |c| c["process"]["apparmorProfile"] = json!("x"),
            "process.apparmorProfile",
        ),
        (
            "hugepages",
            |c| {
                c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 1}])
            },
            "linux.resources.hugepageLimits",
        ),
        (
            "cpuset",
            |c| c["linux"]["resources"]["cpu"] = json!({"cpus": "0"}),
            "linux.resources.cpu.cpus",
        ),
        (
            "seccomp notify without an agent",
            |c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
            },
            "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs the socket of a seccomp agent",
        ),
        (
            "seccomp listenerMetadata without listenerPath",
            |c| {
                c["linux"]["seccomp"] =
                    json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"})
            },
            "linux.seccomp.listenerMetadata: set without listenerPath",
        ),
        (
            "seccomp agent socket missing",
            |c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": "/nonexistent/agent.sock",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
            },
            "connect to linux.seccomp.listenerPath /nonexistent/agent.sock: No such file or directory",
        ),
        (
            "seccomp notify under gVisor",
            |c| {
                c["annotations"] = json!({"org.nucleus.trust-level": "untrusted"});
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": "/run/agent.sock",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
            },
            "linux.seccomp.listenerPath: gVisor's sentry enforces the profile itself",
        ),
        (
            "relative mount",
            |c| c["mounts"] = json!([{"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}]),
            "mounts[0].destination: tmp is not absolute",
        ),
        (
            "idmapped mount",
            |c| c["mounts"] = json!([{"destination": "/tmp", "type": "bind", "source": "/tmp", "options": ["bind"], "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]),
            "mounts[0].uidMappings",
        ),
        (
            "idmap option",
            |c| c["mounts"] = json!([{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}]),
            "\"idmap\" is not supported",
        ),
        (
            "systemd cgroup path",
            |c| c["linux"]["cgroupsPath"] = json!("system.slice:nucleus:x"),
            "linux.cgroupsPath",
        ),
        (
            "host root mapped",
            |c| {
                c["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "mount"}]);
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
                c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
            },
            "maps host id 0 (root)",
        ),
        (
            "missing program",
            |c| c["process"]["args"] = json!(["/nonexistent"]),
            "exec: \"/nonexistent\": no such file or directory",
        ),
        (
            "program not on PATH",
            |c| c["process"]["args"] = json!(["nonexistent"]),
            "executable file not found in $PATH",
        ),
    ];
    for (name, edit, message) in cases {
        let mut b = Bundle::new(Who::Root, &["true"]);
        edit(&mut b.config);
        let o = b.oci_detached(Who::Root, &["create", "c1"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", err(&o));
        assert!(
            err(&o).to_lowercase().contains(&message.to_lowercase()),
            "{name}: wanted {message:?} in {:?}",
            err(&o)
        );
        b.assert_clean();
    }
}

#[test]
fn a_seccomp_profile_that_would_hold_its_own_listener_is_refused() {
    if !ready("a_seccomp_profile_that_would_hold_its_own_listener") {
        return;
    }
    let mut b = Bundle::new(Who::Root, &["true"]);
    let path = b.path().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    // Every syscall notified, sendmsg too: the listener could never be sent.
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY",
        "listenerPath": path});
    refused(
        &b,
        &["create", "c1"],
        "the profile answers sendmsg with user-notify",
    );
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                     {"names": ["sendmsg"], "action": "SCMP_ACT_ERRNO"}]});
    refused(
        &b,
        &["create", "c1"],
        "the profile answers sendmsg with errno(1)",
    );
}

#[test]
fn bad_files_ids_and_commands_are_refused() {
    if !ready("bad_files_ids_and_commands") {
        return;
    }
    let b = Bundle::new(Who::Root, &["sleep", "30"]);
    for id in ["a/b", "..", "../x", "a b", ""] {
        refused(&b, &["create", id], "invalid container id");
    }
    refused(&b, &["state", "c9"], "container does not exist: c9");
    refused(&b, &["start", "c9"], "container does not exist");
    refused(&b, &["kill", "c9"], "container does not exist");
    refused(
        &b,
        &["--systemd-cgroup", "create", "c1"],
        "--systemd-cgroup is not supported",
    );
    refused(
        &b,
        &["--log-format", "xml", "state", "c1"],
        "unknown --log-format",
    );
    let o = b.oci(Who::Root, &["delete", "--force", "c9"]);
    assert!(
        o.status.success(),
        "delete --force of a container that is gone: {}",
        err(&o)
    );
    // A duplicate id.
    assert!(b
        .oci_detached(Who::Root, &["create", "c1"])
        .status
        .success());
    let o = b.oci_detached(Who::Root, &["create", "c1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("container with id \"c1\" already exists"),
        "{}",
        err(&o)
    );
    let o = b.oci(Who::Root, &["kill", "c1", "SIGNOPE"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("unknown signal \"SIGNOPE\""),
        "{}",
        err(&o)
    );
    assert!(
        b.oci(Who::Root, &["delete", "c1"]).status.success(),
        "a created container is deleted without --force"
    );
    b.assert_clean();
    // The log file gets runc's JSON lines.
    let log = b.path().join("log.json");
    let o = b.oci(
        Who::Root,
        &[
            "--log",
            log.to_str().expect("utf8"),
            "--log-format",
            "json",
            "state",
            "c9",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let line: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&log).expect("log").trim()).expect("one JSON line");
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container does not exist: c9");
    // No config.json, a malformed one, a root that leads out of the bundle.
    let b = Bundle::new(Who::Root, &["true"]);
    let o = b
        .command(Who::Root, &["create", "c1"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1), "no config.json: {}", err(&o));
    assert!(err(&o).contains("config.json: cannot read"), "{}", err(&o));
    fs::write(b.path().join("config.json"), "{ not json").expect("write");
    let o = b
        .command(Who::Root, &["create", "c1"])
        .output()
        .expect("run");
    assert!(err(&o).contains("not a valid runtime spec"), "{}", err(&o));
    b.assert_clean();
    let mut b = Bundle::new(Who::Root, &["true"]);
    symlink("/", b.path().join("escape")).expect("link");
    b.config["root"]["path"] = json!("escape");
    refused(
        &b,
        &["create", "c1"],
        "root.path: escape leads out of the bundle to /",
    );
}
