//! End to end: one table of containment probes. Each probe is a small
//! Python script run inside the sandbox that prints one verdict line; it
//! runs under both runtimes (native, gVisor), as both root and nobody, and
//! directly, through a `nucleus-run serve` of the same user (`--server`,
//! a new sandbox, then again in a spare that server built ahead for the
//! same shape of request; spares are native only, so under gVisor that
//! run is a new sandbox again) and as a command of a session of that
//! server (`session exec`); every combination must give the probe's
//! verdict.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;

/// What a probe must print.
enum Verdict {
    /// Exactly this line under every combination.
    Exact(&'static str),
    /// One of these: the runtimes deny through different layers.
    Alike(&'static [&'static str]),
    /// A known difference between the runtimes, recorded as it is:
    /// (native, gVisor).
    ByRuntime(&'static str, &'static str),
}

impl Verdict {
    fn accepts(&self, got: &str, runtime: Runtime) -> bool {
        match self {
            Verdict::Exact(want) => got == *want,
            Verdict::Alike(set) => set.contains(&got),
            Verdict::ByRuntime(native, _) if runtime == Runtime::Native => got == *native,
            Verdict::ByRuntime(_, gvisor) => got == *gvisor,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Exact(want) => write!(f, "{want}"),
            Verdict::Alike(set) => write!(f, "one of {set:?}"),
            Verdict::ByRuntime(native, gvisor) => {
                write!(f, "{native} natively, {gvisor} under gVisor")
            }
        }
    }
}

/// Helpers every probe can use; a probe body defines `probe()`, which
/// returns the verdict or raises OSError (whose errno name is the verdict).
const PRELUDE: &str = r#"
import ctypes, errno, os, shutil, socket, stat, threading
def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))
def fork_exec(path):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.execv(path, [path])
        except OSError as e:
            os.write(w, name(e).encode())
        os._exit(127)
    os.close(w)
    failed = os.read(r, 64).decode()
    os.waitpid(pid, 0)
    return failed or 'RAN'
def copy_exec(path):
    shutil.copy('/bin/true', path)
    os.chmod(path, 0o755)
    return fork_exec(path)
def libc_call(fn, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, fn)(*args) != 0:
        n = ctypes.get_errno()
        return errno.errorcode.get(n, str(n))
    return 'OK'
def read_masked(path):
    return 'EMPTY' if open(path, 'rb').read() == b'' else 'CONTENT'
"#;

const EPILOGUE: &str = r#"
try:
    verdict = probe()
except OSError as e:
    verdict = name(e)
print(verdict)
"#;

struct Probe {
    name: &'static str,
    body: &'static str,
    verdict: Verdict,
}

const PROBES: &[Probe] = &[
    // Credentials are masked by an empty read-only file.
    Probe {
        name: "shadow",
        body: "def probe():\n    return read_masked('/etc/shadow')",
        verdict: Verdict::Exact("EMPTY"),
    },
    Probe {
        name: "gshadow",
        body: "def probe():\n    return read_masked('/etc/gshadow')",
        verdict: Verdict::Exact("EMPTY"),
    },
    // Native: the read-only mount is checked first (EROFS); gVisor: the
    // permission is checked first (EACCES).
    Probe {
        name: "masked_write",
        body: "def probe():\n    open('/etc/shadow', 'w')\n    return 'OK'",
        verdict: Verdict::Alike(&["EROFS", "EACCES"]),
    },
    Probe {
        name: "exec_tmp",
        body: "def probe():\n    return copy_exec('/tmp/t')",
        verdict: Verdict::Exact("EACCES"),
    },
    // The dynamic loader maps a program itself (`ld.so /tmp/t`): a mapping
    // with PROT_EXEC of a file on a noexec mount. The host kernel refuses
    // it (EPERM); gVisor 20221219's sentry checks noexec at execve only, so
    // under it the loader runs what the workload wrote — code the workload
    // could run inside the sentry's kernel anyway (gVisor's boundary is the
    // sentry, not the mount flag).
    Probe {
        name: "exec_map_tmp",
        body: r#"def probe():
    import mmap
    shutil.copy('/bin/true', '/tmp/t')
    with open('/tmp/t', 'rb') as f:
        mmap.mmap(f.fileno(), 4096, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_EXEC)
    return 'OK'"#,
        verdict: Verdict::ByRuntime("EPERM", "OK"),
    },
    // /dev/shm exists under both runtimes (checked when this was written).
    Probe {
        name: "exec_shm",
        body: "def probe():\n    return copy_exec('/dev/shm/t')",
        verdict: Verdict::Exact("EACCES"),
    },
    // Natively as root the PID namespace's vm.memfd_noexec=2 makes the exec
    // fail with EACCES; rootless natively seccomp answers memfd_create with
    // ENOSYS; under gVisor seccomp answers EPERM. All of these are DENIED.
    Probe {
        name: "memfd_exec",
        body: r#"def probe():
    try:
        fd = os.memfd_create('x', 0)
    except OSError as e:
        if e.errno in (errno.ENOSYS, errno.EPERM):
            return 'DENIED'
        raise
    os.write(fd, open('/bin/true', 'rb').read())
    got = fork_exec('/proc/self/fd/%d' % fd)
    return 'DENIED' if got == 'EACCES' else got"#,
        verdict: Verdict::Exact("DENIED"),
    },
    // Natively /dev/fuse is absent (ENOENT); under gVisor an empty
    // read-only file covers it (EACCES).
    Probe {
        name: "dev_fuse",
        body: "def probe():\n    os.open('/dev/fuse', os.O_RDWR)\n    return 'OK'",
        verdict: Verdict::Alike(&["ENOENT", "EACCES"]),
    },
    Probe {
        name: "mknod_chr",
        body: "def probe():\n    os.mknod('/tmp/n', stat.S_IFCHR | 0o600, os.makedev(1, 3))\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        name: "mknod_blk",
        body: "def probe():\n    os.mknod('/tmp/n', stat.S_IFBLK | 0o600, os.makedev(8, 0))\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    // Ordinary things still work.
    Probe {
        name: "mknod_fifo",
        body: "def probe():\n    os.mkfifo('/tmp/fifo')\n    return 'OK'",
        verdict: Verdict::Exact("OK"),
    },
    Probe {
        name: "bind_privileged",
        body: "def probe():\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM).bind(('127.0.0.1', 80))\n    return 'OK'",
        verdict: Verdict::Exact("EACCES"),
    },
    Probe {
        name: "bind_high",
        body: "def probe():\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM).bind(('127.0.0.1', 8080))\n    return 'OK'",
        verdict: Verdict::Exact("OK"),
    },
    Probe {
        name: "raw_socket",
        body: "def probe():\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        name: "packet_socket",
        body: "def probe():\n    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    // Native: the read-only mount is checked first (EROFS); gVisor: the
    // permission is checked first (EACCES).
    Probe {
        name: "write_usr",
        body: "def probe():\n    open('/usr/x', 'w')\n    return 'OK'",
        verdict: Verdict::Alike(&["EROFS", "EACCES"]),
    },
    // Same two layers as write_usr.
    Probe {
        name: "write_proc_sys",
        body: "def probe():\n    with open('/proc/sys/kernel/hostname', 'w') as f:\n        f.write('x')\n    return 'OK'",
        verdict: Verdict::Alike(&["EROFS", "EACCES"]),
    },
    Probe {
        name: "sethostname",
        body: "def probe():\n    socket.sethostname('x')\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        // A line discipline can autoload a kernel module and changes a
        // terminal the caller may share.
        name: "tiocsetd",
        body: "def probe():\n    import fcntl, struct, termios\n    m, s = os.openpty()\n    fcntl.ioctl(s, 0x5423, struct.pack('i', 0))\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        // AIO contexts are a host-wide pool. Natively io_setup answers
        // ENOSYS (libaio falls back); gVisor's seccomp answers every errno
        // rule with EPERM.
        name: "io_setup",
        body: "def probe():\n    import ctypes\n    libc = ctypes.CDLL(None, use_errno=True)\n    ctx = ctypes.c_ulong(0)\n    if libc.syscall(206, 1, ctypes.byref(ctx)) == 0:\n        return 'OK'\n    raise OSError(ctypes.get_errno(), 'io_setup')",
        verdict: Verdict::Alike(&["ENOSYS", "EPERM"]),
    },
    Probe {
        // MPTCP slips past Landlock's TCP port rules; UDP-Lite is rare
        // kernel code. Only plain TCP and UDP sockets are made.
        name: "mptcp_socket",
        body: "def probe():\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        name: "udplite_socket",
        body: "def probe():\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136)\n    return 'OK'",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        name: "tcp_and_udp_sockets",
        body: "def probe():\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM, 6).close()\n    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, 0).close()\n    return 'OK'",
        verdict: Verdict::Exact("OK"),
    },
    Probe {
        name: "host_root_hidden",
        body: "def probe():\n    os.listdir('/root')\n    return 'LISTED'",
        verdict: Verdict::Exact("ENOENT"),
    },
    Probe {
        name: "mount",
        body: "def probe():\n    return libc_call('mount', b'none', b'/tmp', b'tmpfs', 0, None)",
        verdict: Verdict::Exact("EPERM"),
    },
    Probe {
        name: "unshare_user",
        body: r#"def probe():
    if hasattr(os, 'unshare'):
        os.unshare(os.CLONE_NEWUSER)
        return 'OK'
    return libc_call('unshare', 0x10000000)"#,
        verdict: Verdict::Exact("EPERM"),
    },
    // kill_host_init is left out: pid 1 inside is the sandbox's own init,
    // so os.kill(1, 0) says nothing about the host's.
    Probe {
        name: "thread",
        body: "def probe():\n    t = threading.Thread(target=lambda: None)\n    t.start()\n    t.join()\n    return 'OK'",
        verdict: Verdict::Exact("OK"),
    },
];

/// Runs the probe `name` under every runtime and user; panics naming each
/// combination whose verdict is not the expected one.
fn check(name: &str) {
    let probe = PROBES.iter().find(|p| p.name == name).unwrap();
    let script = format!("{PRELUDE}\n{}\n{EPILOGUE}", probe.body);
    let mut failures = Vec::new();
    for (runtime, who) in combinations(name, &[As::Caller, As::Nobody]) {
        let server = Server::start(who, &["--spares", "1"]);
        server.create_session_on(runtime, who, "probes", &[]);
        for via in ["direct", "server", "spare", "session"] {
            let args = ["--", "/usr/bin/python3", "-c", &script];
            let out = match via {
                "direct" => run_on(runtime, who, &args),
                // The second of the shape: the spare the first left.
                "server" | "spare" => run_via(&server, runtime, who, &args),
                _ => server.exec(who, "probes", &args[1..]),
            };
            if let Some(failure) = judge(probe, runtime, who, via, &out) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The failure line of one run of `probe`, if its verdict is wrong.
fn judge(
    probe: &Probe,
    runtime: Runtime,
    who: As,
    via: &str,
    out: &std::process::Output,
) -> Option<String> {
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    let ok = out.status.code() == Some(0)
        && lines.len() == 1
        && probe.verdict.accepts(lines[0], runtime);
    (!ok).then(|| {
        format!(
            "probe {}, runtime {runtime:?}, user {who:?}, {via}: expected {}, got {:?} \
             (exit {:?}; stderr: {})",
            probe.name,
            probe.verdict,
            text.trim_end(),
            out.status.code(),
            stderr(out).trim_end()
        )
    })
}

macro_rules! probes {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)); })*

        #[test]
        fn every_probe_of_the_table_has_a_test() {
            let tested = [$(stringify!($name)),*];
            for probe in PROBES {
                assert!(tested.contains(&probe.name), "no test for {}", probe.name);
            }
        }
    };
}

probes!(
    shadow,
    gshadow,
    masked_write,
    exec_tmp,
    exec_map_tmp,
    exec_shm,
    memfd_exec,
    dev_fuse,
    mknod_chr,
    mknod_blk,
    mknod_fifo,
    bind_privileged,
    bind_high,
    raw_socket,
    packet_socket,
    write_usr,
    write_proc_sys,
    sethostname,
    tiocsetd,
    io_setup,
    mptcp_socket,
    udplite_socket,
    tcp_and_udp_sockets,
    host_root_hidden,
    mount,
    unshare_user,
    thread,
);

#[test]
fn setuid_through_bind_never_lands_on_a_root_file() {
    let test = "setuid_through_bind";
    let mut failures = Vec::new();
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let dir = world_writable(&format!("setuid-{runtime:?}-{who:?}"));
        let bind = format!("{}:/x", dir.arg());
        let out = run_on(
            runtime,
            who,
            &[
                "--bind",
                &bind,
                "--",
                "/bin/sh",
                "-c",
                "cp /bin/true /x/e && chmod 6755 /x/e",
            ],
        );
        let file = dir.path().join("e");
        let Ok(meta) = std::fs::metadata(&file) else {
            failures.push(format!(
                "runtime {runtime:?}, user {who:?}: no file was written (exit {:?}; stderr: {})",
                out.status.code(),
                stderr(&out).trim_end()
            ));
            continue;
        };
        // As root, binds are idmapped: the file lands as root's (the
        // invoker's), so no set-id bit may land with it (the chmod fails
        // with EPERM); with --bind-mode plain it would land as the mapped
        // id. As nobody it lands as 65534, the caller's own.
        let expected_owner = match who {
            As::Caller if is_root() => 0,
            _ => 65534,
        };
        if meta.uid() != expected_owner {
            failures.push(format!(
                "runtime {runtime:?}, user {who:?}: {} is owned by host uid {} (expected {expected_owner})",
                file.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o6000 != 0 && meta.uid() == 0 {
            failures.push(format!(
                "runtime {runtime:?}, user {who:?}: a set-id bit landed on a root-owned file"
            ));
        }
        if expected_owner == 0 && !stderr(&out).contains("Operation not permitted") {
            failures.push(format!(
                "runtime {runtime:?}, user {who:?}: chmod 6755 did not fail with EPERM: {}",
                stderr(&out).trim_end()
            ));
        }
        eprintln!(
            "{test}: runtime {runtime:?}, user {who:?}: owner {}:{} mode {:o}, exit {:?}",
            meta.uid(),
            meta.gid(),
            meta.mode(),
            out.status.code()
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn credentials_unmask() {
    let test = "credentials_unmask";
    if !is_root() {
        return skip(
            test,
            "the mapped root exists only when the tests run as root",
        );
    }
    let script =
        format!("{PRELUDE}\ndef probe():\n    return read_masked('/etc/shadow')\n{EPILOGUE}");
    // The real file shows again, but the mapped root is not host root.
    let out = run_on(
        Runtime::Native,
        As::Caller,
        &[
            "--unmask",
            "/etc/shadow",
            "--",
            "/usr/bin/python3",
            "-c",
            &script,
        ],
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "EACCES\n", "{}", stderr(&out));
    for path in ["etc/shadow", "/etc/passwd"] {
        let out = run_on(
            Runtime::Native,
            As::Caller,
            &["--unmask", path, "--", "/bin/true"],
        );
        assert_code(&out, 125);
        assert!(stderr(&out).contains(path), "{path}: {}", stderr(&out));
    }
}

/// inotify instances are charged to the sandbox's creator host-wide (host
/// root for a root-run sandbox): the sandbox's user namespace holds at most
/// 16 (`--ulimit-ns max_inotify_instances=N` changes it). Native only: under
/// gVisor inotify is the sentry's own, no host kernel object.
#[test]
fn inotify_instances_are_capped_per_sandbox() {
    let test = "inotify_instances";
    let script = "import ctypes, errno\n\
                  libc = ctypes.CDLL(None, use_errno=True)\n\
                  n = 0\n\
                  while n < 64 and libc.inotify_init1(0) >= 0:\n    n += 1\n\
                  print(n, errno.errorcode.get(ctypes.get_errno(), 'none'))";
    for who in [As::Caller, As::Nobody] {
        if !can_run_as(test, who) {
            continue;
        }
        let out = run_on(
            Runtime::Native,
            who,
            &["--", "/usr/bin/python3", "-c", script],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out).trim(), "16 EMFILE", "{who:?}");
        let out = run_on(
            Runtime::Native,
            who,
            &[
                "--ulimit-ns",
                "max_inotify_instances=4",
                "--",
                "/usr/bin/python3",
                "-c",
                script,
            ],
        );
        assert_eq!(stdout(&out).trim(), "4 EMFILE", "{who:?}");
    }
    let out = run(
        As::Caller,
        &["--ulimit-ns", "max_bogus=1", "--", "/bin/true"],
    );
    assert_code(&out, 125);
    assert!(
        stderr(&out).contains("--ulimit-ns max_bogus"),
        "{}",
        stderr(&out)
    );
}
