//! End to end: bad input gets a clear message and code 125 (126/127 for the
//! command), and leaves no mount, temp dir or process behind.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;

fn assert_clean_failure(args: &[&str], code: i32, message: &str) {
    let mounts = host_mounts();
    let child = command(As::Caller, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Whatever the runner creates carries its pid (cgroups, runsc workspaces).
    let pid = child.id().to_string();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, code);
    let err = stderr(&out);
    assert!(
        err.contains(message),
        "expected {message:?} in stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(host_mounts(), mounts, "a mount was left behind");
    // An entry of this runner carries its pid as a whole `-`-separated
    // part (a substring could be another process's pid).
    let left: Vec<String> = tmp_entries()
        .into_iter()
        .filter(|n| n.split('-').any(|part| part == pid))
        .collect();
    assert!(left.is_empty(), "temp entries left behind: {left:?}");
}

fn tmp_entries() -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nucleus"))
        .collect()
}

#[test]
fn unknown_flag() {
    assert_clean_failure(
        &["--frobnicate", "--", "/bin/true"],
        125,
        "unexpected argument '--frobnicate'",
    );
}

#[test]
fn missing_bind_source() {
    assert_clean_failure(
        &["--bind", "/nonexistent/nucleus:/data", "--", "/bin/true"],
        125,
        "/nonexistent/nucleus: no such file or directory",
    );
}

#[test]
fn relative_or_dotdot_destination() {
    assert_clean_failure(
        &["--bind", "/tmp:data", "--", "/bin/true"],
        125,
        "invalid mount destination data",
    );
    assert_clean_failure(
        &["--bind", "/tmp:/a/../../etc", "--", "/bin/true"],
        125,
        "invalid mount destination /a/../../etc",
    );
}

#[test]
fn invalid_maps() {
    assert_clean_failure(
        &[
            "--uidmap",
            "0:1000:0",
            "--gidmap",
            "0:1000:1",
            "--",
            "/bin/true",
        ],
        125,
        "0:1000:0",
    );
    assert_clean_failure(&["--uidmap", "0:x:1", "--", "/bin/true"], 125, "0:x:1");
    assert_clean_failure(
        &[
            "--uidmap",
            "0:4294967295:2",
            "--gidmap",
            "0:1000:1",
            "--",
            "/bin/true",
        ],
        125,
        "0:4294967295:2 runs past the largest id",
    );
}

#[test]
fn command_not_found_is_127() {
    assert_clean_failure(
        &["--", "no-such-command-nucleus"],
        127,
        "exec: no-such-command-nucleus: command not found",
    );
}

#[test]
fn command_not_executable_is_126() {
    let dir = TempDir::new("noexec");
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    set_mode(&script, 0o644);
    let bind = format!("{}:/work", dir.arg());
    assert_clean_failure(
        &["--ro-bind", &bind, "--", "/work/script.sh"],
        126,
        "exec: /work/script.sh: permission denied",
    );
}

#[test]
fn broken_config_file() {
    let dir = TempDir::new("config");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "command = [\"/bin/true\"]\nnetwork = \"sideways\"\n").unwrap();
    assert_clean_failure(
        &["--config", &path.display().to_string()],
        125,
        "invalid config file",
    );
    let missing = dir.path().join("missing.toml");
    assert_clean_failure(
        &["--config", &missing.display().to_string()],
        125,
        "cannot read config file",
    );
}

#[test]
fn host_network_needs_consent() {
    assert_clean_failure(
        &["--network", "host", "--", "/bin/true"],
        125,
        "--allow-host-network",
    );
}

#[test]
fn mount_failure_inside_names_the_step() {
    // A destination under a read-only host bind cannot be created.
    let dir = TempDir::new("mntfail");
    let bind = format!("{}:/usr/nucleus-not-here/x", dir.arg());
    assert_clean_failure(
        &["--bind", &bind, "--", "/bin/true"],
        125,
        "mount: /usr/nucleus-not-here: read-only file system",
    );
}

#[test]
fn workdir_that_does_not_exist() {
    assert_clean_failure(
        &["--workdir", "/nonexistent", "--", "/bin/true"],
        125,
        "workdir: /nonexistent: no such file or directory",
    );
}

#[test]
fn config_file_round_trips_through_print_config() {
    let out = run(
        As::Caller,
        &[
            "--print-config",
            "--ro-bind",
            "/usr:/opt/usr",
            "--timeout",
            "5s",
            "--",
            "/bin/echo",
            "hi",
        ],
    );
    assert_code(&out, 0);
    let dir = TempDir::new("printcfg");
    let path = dir.path().join("env.toml");
    std::fs::write(&path, stdout(&out)).unwrap();
    let out = run(As::Caller, &["--config", &path.display().to_string()]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "hi\n");
}

#[test]
fn contradictory_landlock_flags_are_refused() {
    let dir = TempDir::new("llconflict");
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[[fs]]\npath = \"/usr\"\naccess = [\"read\"]\n").unwrap();
    let policy = policy.display().to_string();
    assert_clean_failure(
        &[
            "--landlock",
            "off",
            "--landlock-policy",
            &policy,
            "--",
            "/bin/true",
        ],
        125,
        "conflicting landlock settings",
    );
    assert_clean_failure(
        &["--allow-tcp-connect", "80", "--", "/bin/true"],
        125,
        "without a shared network",
    );
    // A cgroup parent may not climb out of the hierarchy, limits or not.
    assert_clean_failure(
        &["--cgroup-parent", "/a/../b", "--", "/bin/true"],
        125,
        "invalid cgroup parent /a/../b: must not contain '..'",
    );
    assert_clean_failure(
        &["--allow-udp", "--", "/bin/true"],
        125,
        "--allow-udp without a shared network",
    );
    // UDP cannot be denied without the filter: refused, not left open.
    assert_clean_failure(
        &[
            "--network",
            "host",
            "--allow-host-network",
            "--seccomp",
            "off",
            "--",
            "/bin/true",
        ],
        125,
        "UDP cannot be denied without seccomp",
    );
}

#[test]
fn a_symlink_at_a_mount_point_is_refused() {
    // An image (or a writable bind an earlier run wrote to) plants a link
    // pointing at the host root as seen while the view is built.
    let root = TempDir::new("symlink-image");
    std::os::unix::fs::symlink("/oldroot/etc", root.path().join("data")).unwrap();
    for dir in ["usr", "proc", "dev", "tmp"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
    }
    let marker = "/etc/nucleus-symlink-escape";
    let args = [
        "--rootfs",
        &root.arg(),
        "--ro-bind",
        "/usr:/usr",
        "--tmpfs",
        "/data/nucleus-symlink-escape",
        "--",
        "/bin/true",
    ];
    assert_clean_failure(
        &args,
        125,
        "mount: /data: too many levels of symbolic links",
    );
    assert!(
        !std::path::Path::new(marker).exists(),
        "a directory was created on the host"
    );
}

/// A bind source that passes through a symbolic link (as a sandbox could
/// plant one in a shared directory) is refused under both runtimes, naming
/// the link; `--bind-follow-symlinks` follows it; the resolved path binds.
#[test]
fn bind_source_through_a_symlink() {
    let dir = TempDir::new("bind-link");
    std::fs::create_dir_all(dir.path().join("real/sub")).unwrap();
    std::fs::write(dir.path().join("real/sub/f"), "data").unwrap();
    std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
    let through = format!("{}/link/sub:/data", dir.arg());
    let resolved = format!("{}/real/sub:/data", dir.arg());
    let link = format!("symbolic link {}/link (-> real)", dir.arg());
    let mut levels = vec!["trusted"];
    if runsc_present("bind_source_through_a_symlink (gVisor)") {
        levels.push("untrusted");
    }
    for level in levels {
        let trust = ["--trust-level", level];
        let args = [
            &trust[..],
            &["--ro-bind", &through, "--", "/bin/cat", "/data/f"],
        ]
        .concat();
        assert_clean_failure(&args, 125, &link);
        let args = [
            &trust[..],
            &[
                "--bind-follow-symlinks",
                "--ro-bind",
                &through,
                "--",
                "/bin/cat",
                "/data/f",
            ],
        ]
        .concat();
        let out = run(As::Caller, &args);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "data", "{level}");
        let args = [
            &trust[..],
            &["--ro-bind", &resolved, "--", "/bin/cat", "/data/f"],
        ]
        .concat();
        let out = run(As::Caller, &args);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "data", "{level}");
    }
}

/// A masked path that is a symbolic link in the view (here a `--rootfs`
/// directory whose `/etc/shadow` is a link) is refused with the path
/// named, under both runtimes.
#[test]
fn masked_path_that_is_a_symlink() {
    let root = TempDir::new("mask-link");
    for dir in ["etc", "usr"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", root.path().join("etc/shadow")).unwrap();
    let mut levels = vec!["trusted"];
    if runsc_present("masked_path_that_is_a_symlink (gVisor)") {
        levels.push("untrusted");
    }
    for level in levels {
        let base = ["--trust-level", level, "--rootfs", &root.arg()];
        assert_clean_failure(
            &[&base[..], &["--", "/bin/true"]].concat(),
            125,
            "masked path /etc/shadow is a symbolic link on the host",
        );
    }
}

#[test]
fn bad_bind_mode_and_userns_limit_values() {
    assert_clean_failure(
        &["--bind-mode", "sideways", "--", "/bin/true"],
        125,
        "unknown bind mode \"sideways\": expected idmap or plain",
    );
    assert_clean_failure(
        &[
            "--ulimit-ns",
            "max_inotify_instances=lots",
            "--",
            "/bin/true",
        ],
        125,
        "max_inotify_instances: \"lots\" is not a whole number",
    );
    assert_clean_failure(
        &["--ulimit-ns", "max_inotify_instances", "--", "/bin/true"],
        125,
        "expected NAME=N",
    );
}
