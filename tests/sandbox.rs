//! End to end: the isolation of a default sandbox, proven from inside, as
//! root (root-remapped) and as nobody (rootless).

#![allow(clippy::unwrap_used)]

mod common;
use common::*;

const WHO: [As; 2] = [As::Caller, As::Nobody];

#[test]
fn pid1_is_the_init_and_no_host_process_is_visible() {
    for who in WHO {
        if !can_run_as("pid1_is_the_init", who) {
            continue;
        }
        let out = run(
            who,
            &[
                "--",
                "/bin/sh",
                "-c",
                "echo $$; cat /proc/1/comm; ls -d /proc/[0-9]*",
            ],
        );
        assert_code(&out, 0);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2", "the workload is the init's child: {text}");
        assert_eq!(lines[1], "nucleus-run", "pid 1 is the nucleus init: {text}");
        // The shell expands the glob before it forks ls: only the init and
        // the shell exist.
        assert_eq!(&lines[2..], ["/proc/1", "/proc/2"], "{text}");
    }
}

#[test]
fn hostname_is_private() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for who in WHO {
        if !can_run_as("hostname_is_private", who) {
            continue;
        }
        let out = run(
            who,
            &[
                "--hostname",
                "box-1",
                "--",
                "/bin/cat",
                "/proc/sys/kernel/hostname",
            ],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "box-1\n");
        let out = run(who, &["--", "/bin/cat", "/proc/sys/kernel/hostname"]);
        assert_eq!(stdout(&out), "nucleus\n");
        // The workload cannot change it either (CAP_SYS_ADMIN is gone).
        let out = run(who, &["--", "/usr/bin/python3", "-c", "import socket\ntry:\n socket.sethostname('changed')\nexcept OSError as e:\n print(e.errno)"]);
        assert_code(&out, 0);
        assert_eq!(stdout(&out).trim(), libc::EPERM.to_string());
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

#[test]
fn only_loopback_exists_and_it_is_up() {
    for who in WHO {
        if !can_run_as("only_loopback", who) {
            continue;
        }
        let out = run(who, &["--", "/bin/cat", "/proc/net/dev"]);
        assert_code(&out, 0);
        let ifaces: Vec<String> = stdout(&out)
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next().map(|s| s.trim().to_owned()))
            .collect();
        assert_eq!(ifaces, ["lo"]);
        // A TCP round trip over 127.0.0.1 works only when lo is up.
        let script = "import socket\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nc=socket.create_connection(s.getsockname())\nprint('up')";
        let out = run(who, &["--", "/usr/bin/python3", "-c", script]);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "up\n");
        // And nothing else is reachable.
        let out = run(who, &["--", "/usr/bin/python3", "-c", "import socket\ntry:\n socket.create_connection(('10.0.0.1',80),timeout=2)\nexcept OSError as e:\n print(e.errno)"]);
        assert_eq!(stdout(&out).trim(), libc::ENETUNREACH.to_string());
    }
}

#[test]
fn mounts_made_inside_never_reach_the_host() {
    let scratch = TempDir::new("mounts");
    let before = host_mounts();
    for who in WHO {
        if !can_run_as("mounts_never_reach_host", who) {
            continue;
        }
        let dst = format!("{}:/data", scratch.arg());
        let mut child = command(
            who,
            &[
                "--bind",
                &dst,
                "--tmpfs",
                "/scratch",
                "--",
                "/bin/sleep",
                "0.5",
            ],
        )
        .spawn()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let during = host_mounts();
        assert!(child.wait().unwrap().success());
        assert_eq!(during, before, "the sandbox's mounts showed up on the host");
    }
    assert_eq!(host_mounts(), before);
}

#[test]
fn read_only_bind_gives_erofs_and_bind_writes_through() {
    let dir = TempDir::new("robind");
    std::fs::write(dir.path().join("f"), "data").unwrap();
    set_mode(dir.path(), 0o777);
    for who in WHO {
        if !can_run_as("read_only_bind", who) {
            continue;
        }
        let ro = format!("{}:/data", dir.arg());
        let out = run(
            who,
            &[
                "--ro-bind",
                &ro,
                "--",
                "/bin/sh",
                "-c",
                "cat /data/f; echo x > /data/new",
            ],
        );
        assert_code(&out, 2);
        assert_eq!(stdout(&out), "data");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            stderr(&out)
        );
        let out = run(
            who,
            &["--bind", &ro, "--", "/bin/sh", "-c", "echo x > /data/new"],
        );
        assert_code(&out, 0);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new")).unwrap(),
            "x\n"
        );
        std::fs::remove_file(dir.path().join("new")).unwrap();
        // The root itself and the host directories are read-only too.
        let out = run(
            who,
            &["--", "/bin/sh", "-c", "echo x > /usr/f || echo x > /f"],
        );
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn tmp_is_private_and_empty() {
    let marker = std::env::temp_dir().join(format!("nucleus-e2e-marker-{}", std::process::id()));
    std::fs::write(&marker, "host").unwrap();
    for who in WHO {
        if !can_run_as("tmp_is_private", who) {
            continue;
        }
        let out = run(
            who,
            &[
                "--",
                "/bin/sh",
                "-c",
                "ls -A /tmp | wc -l; echo hi > /tmp/inside && cat /tmp/inside",
            ],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "0\nhi\n");
    }
    assert!(!std::env::temp_dir().join("inside").exists());
    std::fs::remove_file(marker).unwrap();
}

#[test]
fn capabilities_are_all_dropped_and_no_new_privs_is_set() {
    for who in WHO {
        if !can_run_as("capabilities_dropped", who) {
            continue;
        }
        let out = run(
            who,
            &[
                "--",
                "/bin/grep",
                "-E",
                "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)",
                "/proc/self/status",
            ],
        );
        assert_code(&out, 0);
        let text = stdout(&out);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert!(
                text.contains(&format!("{set}:\t0000000000000000")),
                "{set} not empty:\n{text}"
            );
        }
        assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    }
}

#[test]
fn ids_inside_follow_the_map() {
    // Root on the host is remapped (to a range of its own: see
    // root_sandboxes_get_disjoint_ranges_of_their_own), here explicitly;
    // nobody is rootless; keep-id keeps the uid.
    let explicit: &[&str] = &["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"];
    let cases: [(As, &[&str], &str, &str); 3] = [
        (As::Caller, explicit, "0 0", "300000"),
        (As::Nobody, &[], "0 0", "65534"),
        (As::Nobody, &["--userns", "keep-id"], "65534 65534", "65534"),
    ];
    for (who, extra, ids, host_base) in cases {
        if !can_run_as("ids_inside_follow_the_map", who) || (who == As::Caller && !is_root()) {
            continue;
        }
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([
            "--",
            "/bin/sh",
            "-c",
            "echo $(id -u) $(id -g); cat /proc/self/uid_map",
        ]);
        let out = run(who, &args);
        assert_code(&out, 0);
        let text = stdout(&out);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(ids), "{text}");
        let map: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(map.get(1), Some(&host_base), "{text}");
    }
}

/// Each root-run sandbox leases a host id range of its own, under both
/// runtimes: two running at once get disjoint ranges from the pool, none
/// overlapping an `/etc/subuid` or `/etc/subgid` entry, reported in the
/// result; when they end, their leases are free again.
#[test]
fn root_sandboxes_get_disjoint_ranges_of_their_own() {
    let test = "root_sandboxes_disjoint_ranges";
    if !is_root() {
        return skip(test, "root-remapped ranges are root's");
    }
    let pool = 0x7000_0000u64..0x7FFE_0000u64;
    let entries: Vec<(u64, u64)> = ["/etc/subuid", "/etc/subgid"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.trim().split(':').collect();
                    Some((f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (runtime, who) in combinations(test, &[As::Caller]) {
        let args = ["--json", "--", "/bin/sleep", "1"];
        let runs: Vec<_> = (0..2)
            .map(|_| {
                command_on(runtime, who, &args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut starts = Vec::new();
        for child in runs {
            let out = child.wait_with_output().unwrap();
            assert_code(&out, 0);
            let json = result(&out);
            let enforced = &json["enforced"];
            for map in ["uid_map", "gid_map"] {
                let line = enforced[map][0].as_str().unwrap_or_default().to_owned();
                let f: Vec<u64> = line.split(':').filter_map(|x| x.parse().ok()).collect();
                assert_eq!(f.len(), 3, "{runtime:?}: {map} {line:?}");
                assert_eq!((f[0], f[2]), (0, 65536), "{runtime:?}: {map} {line}");
                assert!(
                    pool.contains(&f[1]),
                    "{runtime:?}: {map} {line} not in the pool"
                );
                for (start, count) in &entries {
                    assert!(
                        f[1] + 65536 <= *start || start + count <= f[1],
                        "{runtime:?}: {line} overlaps a subordinate id entry"
                    );
                }
            }
            starts.push(enforced["uid_map"][0].as_str().unwrap().to_owned());
        }
        assert_ne!(
            starts[0], starts[1],
            "{runtime:?}: two live sandboxes share a range"
        );
        for line in &starts {
            let start = line.split(':').nth(1).unwrap();
            let lock = std::fs::File::open(format!("/run/nucleus/ids/{start}")).unwrap();
            // SAFETY: plain flock on a file this test opened.
            let rc = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&lock),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            };
            assert_eq!(
                rc, 0,
                "{runtime:?}: the lease of {line} outlived its sandbox"
            );
        }
    }
}

#[test]
fn root_inside_is_not_host_root() {
    if !is_root() {
        return skip(
            "root_inside_is_not_host_root",
            "needs root to create a root-owned file",
        );
    }
    let dir = TempDir::new("secret");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "top secret").unwrap();
    set_mode(&secret, 0o600);
    let bind = format!("{}:/secret", secret.display());
    // Without idmapping, root's own file is out of the mapped root's reach.
    let out = run(
        As::Caller,
        &[
            "--bind-mode",
            "plain",
            "--ro-bind",
            &bind,
            "--",
            "/bin/cat",
            "/secret",
        ],
    );
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("secret"));
    // Idmapped (the default), root shares it with the sandbox's root.
    let out = run(
        As::Caller,
        &["--ro-bind", &bind, "--", "/bin/cat", "/secret"],
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "top secret");
    // Anything else of root's stays out of reach: no host privilege.
    let out = run(
        As::Caller,
        &["--unmask", "/etc/shadow", "--", "/bin/cat", "/etc/shadow"],
    );
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn environment_holds_only_what_was_passed() {
    for who in WHO {
        if !can_run_as("environment", who) {
            continue;
        }
        let out = command(
            who,
            &[
                "--env",
                "A=1",
                "--env-keep",
                "KEEP_ME",
                "--",
                "/usr/bin/env",
            ],
        )
        .env("KEEP_ME", "yes")
        .env("SECRET_TOKEN", "leak")
        .output()
        .unwrap();
        assert_code(&out, 0);
        let mut vars: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
        vars.sort();
        // The documented defaults, then only what was passed.
        assert_eq!(
            vars,
            [
                "A=1",
                "HOME=/",
                "HOSTNAME=nucleus",
                "KEEP_ME=yes",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
    }
}

#[test]
fn a_directory_can_be_the_read_only_root() {
    let root = TempDir::new("rootfs");
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, root.path().join(link)).unwrap();
    }
    for dir in ["usr", "proc", "dev", "tmp"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
    }
    std::fs::write(root.path().join("hello"), "from the image\n").unwrap();
    for who in WHO {
        if !can_run_as("a_directory_can_be_the_read_only_root", who) {
            continue;
        }
        let args = [
            "--rootfs",
            &root.arg(),
            "--ro-bind",
            "/usr:/usr",
            "--",
            "/bin/sh",
            "-c",
            "cat /hello; touch /new",
        ];
        let out = run(who, &args);
        assert_code(&out, 1);
        assert_eq!(stdout(&out), "from the image\n");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!root.path().join("new").exists());
}

#[test]
fn doctor_reports_every_layer() {
    let out = run(As::Caller, &["doctor", "--json"]);
    let json = doctor_report(&out);
    for layer in [
        "kernel",
        "namespaces",
        "idmap",
        "capabilities",
        "rootfs",
        "landlock",
        "seccomp",
        "cgroup",
        "gvisor",
        "wasm",
    ] {
        assert!(json.get(layer).is_some(), "doctor lacks {layer}: {json}");
    }
    assert_eq!(json["wasm"]["jit"], true, "{json}");
}

#[test]
fn explicit_maps_and_user_are_applied() {
    if !is_root() {
        return skip(
            "explicit_maps_and_user_are_applied",
            "writing a range map needs root",
        );
    }
    let args = [
        "--uidmap",
        "0:200000:1000",
        "--gidmap",
        "0:200000:1000",
        "--user",
        "42:43",
        "--",
        "/bin/sh",
        "-c",
        "echo $(id -u) $(id -g); cat /proc/self/uid_map /proc/self/gid_map",
    ];
    let out = run(As::Caller, &args);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["42", "43"], "{text}");
    assert_eq!(lines[1], ["0", "200000", "1000"], "{text}");
    assert_eq!(lines[2], ["0", "200000", "1000"], "{text}");
    // An id outside the map is refused before anything starts.
    let out = run(
        As::Caller,
        &[
            "--uidmap",
            "0:200000:10",
            "--gidmap",
            "0:200000:10",
            "--user",
            "42",
            "--",
            "/bin/true",
        ],
    );
    assert_code(&out, 125);
    assert!(stderr(&out).contains("not mapped"), "{}", stderr(&out));
}
