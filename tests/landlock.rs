//! End to end: the Landlock layer of `nucleus-run`. Each forbidden access is
//! attempted inside a real sandbox and must fail with the exact errno; the
//! allowed variant (a rule, a flag, or `--landlock off`) must succeed, which
//! proves that Landlock, not the mount or the DAC bits, is what refused.
//!
//! Probes are `python3` snippets: `t(what, f, *args)` prints `what ok` or
//! `what <errno>`, so the assertions are on numbers.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use libc::{EACCES, EPERM, ESRCH, EXDEV};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const WHO: [As; 2] = [As::Caller, As::Nobody];

const PRELUDE: &str = "\
import os, socket, subprocess, shutil, time
def t(what, f, *args):
    try:
        f(*args)
        print(what, 'ok', flush=True)
    except OSError as e:
        print(what, e.errno, flush=True)
";

/// The rules a `python3` workload needs to start, and nothing else (no
/// `/etc`, no `/tmp`).
const SYSTEM_RULES: &str = r#"
  { path = "/", access = ["read-dir"] },
  { path = "/usr", access = ["read", "execute"] },
  { path = "/bin", access = ["read", "execute"], optional = true },
  { path = "/lib", access = ["read", "execute"], optional = true },
  { path = "/lib64", access = ["read", "execute"], optional = true },
  { path = "/dev/null", access = ["read", "write-file"], optional = true },
"#;

const SHARED_NET: [&str; 3] = ["--network", "host", "--allow-host-network"];

/// The kernel's Landlock ABI (0: none).
fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attr, size 0 and the VERSION flag the syscall only
    // returns the ABI number; it touches no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    abi.max(0)
}

/// The status of a best-effort run of a policy of every right and scope:
/// all of it from ABI 6 (the scopes), part of it on an older kernel.
fn full_status() -> &'static str {
    if landlock_abi() >= 6 {
        "fully_enforced"
    } else {
        "partially_enforced"
    }
}

/// Runs `case` as each user of [`WHO`] usable here, when the kernel has
/// Landlock ABI `abi`; prints the skip lines otherwise.
fn for_each_who(test: &str, abi: i64, mut case: impl FnMut(As)) {
    let have = landlock_abi();
    if have < abi {
        return skip(
            test,
            &format!("needs landlock abi {abi}, the kernel has {have}"),
        );
    }
    for who in WHO {
        if can_run_as(test, who) {
            case(who);
        }
    }
}

/// Runs the probe `body` with `python3` in a sandbox made with `flags`.
fn python(who: As, flags: &[&str], body: &str) -> Output {
    let script = format!("{PRELUDE}{body}");
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["--", "/usr/bin/python3", "-c", &script]);
    run(who, &args)
}

/// Asserts that the probe ran and printed `want`: its `what errno|ok`
/// lines joined with ", " (the `--json` line left out).
fn expect(out: &Output, want: &str) {
    assert_code(out, 0);
    let text = stdout(out);
    let got: Vec<&str> = text.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(got.join(", "), want, "stderr: {}", stderr(out));
}

/// `enforced.landlock` of the `--json` result (the last line of stdout).
fn landlock_of(out: &Output) -> Value {
    let text = stdout(out);
    let line = text.lines().last().unwrap_or_default();
    parse_result(line)["enforced"]["landlock"].clone()
}

/// A policy file's text: `head` (top-level keys), the scopes, the system
/// rules and the `extra` rules (inline tables, each ending with a comma).
fn policy_text(head: &str, extra: &str) -> String {
    let scopes = r#"scopes = ["abstract-unix-socket", "signal"]"#;
    format!("{head}{scopes}\nfs = [{SYSTEM_RULES}{extra}]\n")
}

/// Writes `text` as the policy file `dir/name` that everyone can read.
fn policy_file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    set_mode(&path, 0o644);
    path
}

/// A host directory the sandbox may write to (as root-remapped or nobody),
/// holding the files `f` and `old` and an empty directory `sub`.
fn writable_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    set_mode(dir.path(), 0o777);
    std::fs::write(dir.path().join("f"), "data").unwrap();
    set_mode(&dir.path().join("f"), 0o666);
    std::fs::write(dir.path().join("old"), "old").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    set_mode(&dir.path().join("sub"), 0o777);
    dir
}

fn bind(dir: &Path, dst: &str) -> String {
    format!("{}:{dst}", dir.display())
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn json_reports_full_enforcement_at_the_kernels_abi() {
    for_each_who("json_reports_full_enforcement", 6, |who| {
        for compat in ["best-effort", "strict"] {
            let flags = ["--json", "--landlock-compat", compat, "--", "/bin/true"];
            let out = run(who, &flags);
            assert_code(&out, 0);
            let ll = landlock_of(&out);
            assert_eq!(ll["abi"], landlock_abi(), "{ll}");
            assert_eq!(ll["status"], "fully_enforced", "{compat}: {ll}");
            assert_eq!(ll["dropped"], Value::Array(Vec::new()), "{ll}");
        }
    });
}

/// A root directory of our own: `/usr` is bound in, and `/secret` sits
/// directly under `/`, where the default policy grants only `read-dir`.
/// `None` when the host's `/bin`, `/lib`... are not links into `/usr`.
fn root_with_secret() -> Option<TempDir> {
    let root = TempDir::new("llroot");
    for dir in ["usr", "etc", "proc", "dev", "tmp"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
        set_mode(&root.path().join(dir), 0o755);
    }
    for link in ["bin", "sbin", "lib", "lib64"] {
        let dest = std::fs::read_link(Path::new("/").join(link)).ok()?;
        std::os::unix::fs::symlink(dest, root.path().join(link)).unwrap();
    }
    std::fs::write(root.path().join("secret"), "top secret").unwrap();
    set_mode(&root.path().join("secret"), 0o644);
    Some(root)
}

#[test]
fn reading_outside_the_rules_is_eacces_and_landlock_off_allows_it() {
    let test = "reading_outside_the_rules";
    let Some(root) = root_with_secret() else {
        return skip(
            test,
            "the root built here needs /bin, /lib... linked into /usr",
        );
    };
    let probe = "\
t('read /secret', lambda: open('/secret').read())
t('list /', os.listdir, '/')
t('read /usr', lambda: open('/usr/bin/python3', 'rb').read(4))
";
    // The default policy reads all of a --rootfs image; a policy file that
    // lists only the system directories leaves /secret outside the rules.
    let policy_dir = TempDir::new("llpolicy-outside");
    let policy = policy_file(&policy_dir, "outside.toml", &policy_text("", ""));
    let policy = policy.display().to_string();
    for_each_who(test, 1, |who| {
        let base = ["--rootfs", &root.arg(), "--ro-bind", "/usr:/usr", "--json"];
        let out = python(
            who,
            &[&base[..], &["--landlock-policy", &policy]].concat(),
            probe,
        );
        expect(
            &out,
            &format!("read /secret {EACCES}, list / ok, read /usr ok"),
        );
        assert_eq!(landlock_of(&out)["status"], full_status());

        let out = python(who, &base, probe);
        expect(&out, "read /secret ok, list / ok, read /usr ok");
        assert_eq!(landlock_of(&out)["status"], full_status());

        let out = python(who, &[&base[..], &["--landlock", "off"]].concat(), probe);
        expect(&out, "read /secret ok, list / ok, read /usr ok");
        let ll = landlock_of(&out);
        assert_eq!(ll["status"], "off", "{ll}");
        assert_eq!(ll["abi"], 0, "{ll}");
    });
}

#[test]
fn writing_into_a_read_only_tree_is_eacces() {
    // The default policy: /proc is a writable mount that Landlock makes
    // read-only (the DAC bits let the owner rename itself).
    let comm = "t('write /proc/self/comm', lambda: open('/proc/self/comm', 'w').write('x'))\n";
    // A policy file: /data is a writable bind that the policy only reads.
    let policy_dir = TempDir::new("llpolicy-ro");
    let text = policy_text("", r#"{ path = "/data", access = ["read"] },"#);
    let policy = policy_file(&policy_dir, "ro.toml", &text);
    let data = "\
t('read', lambda: open('/data/f').read())
t('append', lambda: open('/data/f', 'a').write('x'))
t('open rw', lambda: open('/data/f', 'r+'))
";
    for_each_who("writing_into_a_read_only_tree", 1, |who| {
        let out = python(who, &[], comm);
        expect(&out, &format!("write /proc/self/comm {EACCES}"));
        let off = python(who, &["--landlock", "off"], comm);
        expect(&off, "write /proc/self/comm ok");

        let dir = writable_dir("llro");
        let b = bind(dir.path(), "/data");
        let flags = ["--bind", &b, "--landlock-policy", policy.to_str().unwrap()];
        let out = python(who, &flags, data);
        expect(&out, &format!("read ok, append {EACCES}, open rw {EACCES}"));
        assert_eq!(read(dir.path().join("f")), "data");
        // The default policy lets the same bind be written.
        let out = python(who, &["--bind", &b], data);
        expect(&out, "read ok, append ok, open rw ok");
        assert_eq!(read(dir.path().join("f")), "datax");
    });
}

/// Every operation that needs its own right beyond `write-file`, in an order
/// where each one succeeds when everything is allowed.
const CHANGES: &str = "\
t('append', lambda: open('/data/f', 'a').write('x'))
t('create', lambda: open('/data/new', 'x'))
t('mkdir', os.mkdir, '/data/dir')
t('symlink', os.symlink, 'f', '/data/link')
t('mkfifo', os.mkfifo, '/data/fifo')
t('truncate', os.truncate, '/data/f', 1)
t('open O_TRUNC', lambda: open('/data/f', 'w'))
t('ftruncate', lambda: open('/data/f', 'r+').truncate(0))
t('rename', os.rename, '/data/f', '/data/g')
t('unlink', os.unlink, '/data/old')
t('rmdir', os.rmdir, '/data/sub')
";

/// What [`CHANGES`] prints: every step `ok`, or every step but the append
/// refused with EACCES.
fn changes_result(denied: bool) -> String {
    let names = CHANGES.lines().filter_map(|l| l.split('\'').nth(1));
    let lines: Vec<String> = names
        .map(|n| match n {
            "append" => "append ok".to_owned(),
            _ if denied => format!("{n} {EACCES}"),
            _ => format!("{n} ok"),
        })
        .collect();
    lines.join(", ")
}

fn host_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn create_remove_rename_truncate_need_their_rights() {
    let policy_dir = TempDir::new("llpolicy-w");
    let rule = r#"{ path = "/data", access = ["read", "write-file"] },"#;
    let policy = policy_file(&policy_dir, "w.toml", &policy_text("", rule));
    for_each_who("create_remove_rename_truncate", 3, |who| {
        // write-file alone: only the append goes through.
        let dir = writable_dir("llrw");
        let b = bind(dir.path(), "/data");
        let flags = ["--bind", &b, "--landlock-policy", policy.to_str().unwrap()];
        expect(&python(who, &flags, CHANGES), &changes_result(true));
        assert_eq!(host_entries(dir.path()), ["f", "old", "sub"]);
        assert_eq!(read(dir.path().join("f")), "datax");

        // The default policy gives a writable bind every one of these rights.
        let dir = writable_dir("llrw-ok");
        let b = bind(dir.path(), "/data");
        let out = python(who, &["--bind", &b], CHANGES);
        expect(&out, &changes_result(false));
        let entries = host_entries(dir.path());
        assert_eq!(entries, ["dir", "fifo", "g", "link", "new"]);
    });
}

#[test]
fn a_dropped_binary_cannot_be_executed() {
    // /scratch (a tmpfs) and /data (a bind) are noexec mounts and Landlock
    // grants no execute there: two layers between a dropped binary and execve.
    let probe = "\
for d in ['/tmp', '/scratch', '/data']:
    shutil.copy('/bin/true', d + '/t')
    os.chmod(d + '/t', 0o755)
    t('exec ' + d, subprocess.run, [d + '/t'])
";
    let e = EACCES;
    for_each_who("a_dropped_binary_cannot_be_executed", 1, |who| {
        // The shell form: sh reports it and exits 126.
        let out = run(
            who,
            &["--", "/bin/sh", "-c", "cp /bin/true /tmp/t && /tmp/t"],
        );
        assert_code(&out, 126);
        let err = stderr(&out);
        assert!(err.contains("/tmp/t: Permission denied"), "{err}");

        let dir = writable_dir("llexec");
        let b = bind(dir.path(), "/data");
        let out = python(who, &["--tmpfs", "/scratch", "--bind", &b], probe);
        expect(
            &out,
            &format!("exec /tmp {e}, exec /scratch {e}, exec /data {e}"),
        );
        // --bind-exec allows exactly that bind.
        let out = python(who, &["--tmpfs", "/scratch", "--bind-exec", &b], probe);
        expect(
            &out,
            &format!("exec /tmp {e}, exec /scratch {e}, exec /data ok"),
        );
        // Without Landlock the noexec mounts still refuse (writable mounts
        // run nothing unless --bind-exec), and the --bind-exec bind runs it.
        // (Landlock's own refusal on an exec mount is tested by the
        // landlock-policy crate's default_policy test.)
        let off = ["--tmpfs", "/scratch", "--bind", &b, "--landlock", "off"];
        let out = python(who, &off, probe);
        expect(
            &out,
            &format!("exec /tmp {e}, exec /scratch {e}, exec /data {e}"),
        );
        let off = [
            "--tmpfs",
            "/scratch",
            "--bind-exec",
            &b,
            "--landlock",
            "off",
        ];
        let out = python(who, &off, probe);
        expect(
            &out,
            &format!("exec /tmp {e}, exec /scratch {e}, exec /data ok"),
        );
    });
}

/// `/data/a` and `/data/b` (writable by anyone), `f`, `m`, `n` in `a`.
fn two_trees() -> TempDir {
    let dir = TempDir::new("llrefer");
    set_mode(dir.path(), 0o777);
    for tree in ["a", "b"] {
        std::fs::create_dir(dir.path().join(tree)).unwrap();
        set_mode(&dir.path().join(tree), 0o777);
    }
    for file in ["f", "m", "n"] {
        let path = dir.path().join("a").join(file);
        std::fs::write(&path, file).unwrap();
        // fs.protected_hardlinks: linking a file one does not own needs
        // read and write access to it.
        set_mode(&path, 0o666);
    }
    dir
}

#[test]
fn linking_across_trees_needs_refer() {
    // Two trees of the same mount, each writable, neither with `refer`.
    let policy_dir = TempDir::new("llpolicy-refer");
    let rules = r#"
  { path = "/data/a", access = ["read", "write", "create", "remove"] },
  { path = "/data/b", access = ["read", "write", "create", "remove"] },"#;
    let policy = policy_file(&policy_dir, "refer.toml", &policy_text("", rules));
    let probe = "\
t('link a->b', os.link, '/data/a/f', '/data/b/f')
t('rename a->b', os.rename, '/data/a/m', '/data/b/m')
t('rename within a', os.rename, '/data/a/n', '/data/a/n2')
";
    for_each_who("linking_across_trees_needs_refer", 2, |who| {
        // The policy without `refer`, then the default policy (which gives
        // a writable bind `refer`).
        let policy_flags = ["--landlock-policy", policy.to_str().unwrap()];
        for (extra, across) in [(&policy_flags[..], EXDEV.to_string()), (&[], "ok".into())] {
            let dir = two_trees();
            let b = bind(dir.path(), "/data");
            let flags = [&["--bind", &b][..], extra].concat();
            let want = format!("link a->b {across}, rename a->b {across}, rename within a ok");
            expect(&python(who, &flags, probe), &want);
        }
    });
}

#[test]
fn tcp_connect_and_bind_need_an_allowed_port_on_a_shared_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for_each_who("tcp_needs_an_allowed_port", 4, |who| {
        // A port nothing listens on (the kernel's next ephemeral one).
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bind_port = free.local_addr().unwrap().port().to_string();
        drop(free);
        let probe = format!(
            "t('connect', socket.create_connection, ('127.0.0.1', {port}), 5)\n\
             t('bind', socket.socket().bind, ('127.0.0.1', {bind_port}))\n"
        );
        let out = python(who, &SHARED_NET, &probe);
        expect(&out, &format!("connect {EACCES}, bind {EACCES}"));
        let refused = listener.accept().map(drop).map_err(|e| e.kind());
        assert_eq!(refused, Err(std::io::ErrorKind::WouldBlock));

        let mut allowed = SHARED_NET.to_vec();
        allowed.extend(["--allow-tcp-connect", &port]);
        allowed.extend(["--allow-tcp-bind", &bind_port, "--json"]);
        let out = python(who, &allowed, &probe);
        expect(&out, "connect ok, bind ok");
        assert_eq!(landlock_of(&out)["status"], "fully_enforced");
        // The connection really reached the host's listener.
        listener.accept().unwrap();
    });
}

/// Landlock limits TCP to ports but cannot limit UDP: while TCP is limited
/// on a shared network, UDP sockets are denied (EPERM, by seccomp) and
/// nothing reaches the host's UDP socket; `--allow-udp` allows all of it.
#[test]
fn udp_is_denied_while_tcp_is_limited_unless_allowed() {
    let host = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    for_each_who("udp_denied_while_tcp_limited", 4, |who| {
        let probe = format!(
            "def send(family, addr):\n    \
                 s = socket.socket(family, socket.SOCK_DGRAM)\n    \
                 s.sendto(b'udp', (addr, {port}))\n\
             t('udp4', send, socket.AF_INET, '127.0.0.1')\n\
             t('udp6', socket.socket, socket.AF_INET6, socket.SOCK_DGRAM)\n\
             t('unix', socket.socket, socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        );
        let mut limited = SHARED_NET.to_vec();
        limited.extend(["--allow-tcp-connect", "80"]);
        let out = python(who, &limited, &probe);
        expect(&out, &format!("udp4 {EPERM}, udp6 {EPERM}, unix ok"));
        let mut buf = [0u8; 16];
        assert!(host.recv_from(&mut buf).is_err(), "a datagram got out");

        limited.push("--allow-udp");
        let out = python(who, &limited, &probe);
        expect(&out, "udp4 ok, udp6 ok, unix ok");
        host.set_nonblocking(false).unwrap();
        host.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let (n, _) = host.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"udp");
        host.set_nonblocking(true).unwrap();
    });
}

#[test]
fn connecting_to_an_abstract_socket_outside_is_eperm() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let name = format!("nucleus-e2e-abstract-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _outside = UnixListener::bind_addr(&addr).unwrap();
    // A NUL byte cannot travel in argv: python's '\0' escape makes it.
    let probe = format!(
        "inner = socket.socket(socket.AF_UNIX)\n\
         inner.bind('\\0{name}-inner')\n\
         inner.listen()\n\
         t('connect outside', socket.socket(socket.AF_UNIX).connect, '\\0{name}')\n\
         t('connect inside', socket.socket(socket.AF_UNIX).connect, '\\0{name}-inner')\n"
    );
    for_each_who("abstract_socket_outside", 6, |who| {
        let out = python(who, &SHARED_NET, &probe);
        expect(&out, &format!("connect outside {EPERM}, connect inside ok"));
        let off = [&SHARED_NET[..], &["--landlock", "off"]].concat();
        let out = python(who, &off, &probe);
        expect(&out, "connect outside ok, connect inside ok");
    });
}

/// The host uid of the sandbox's root, as `who` starts it.
fn host_uid_of_root(who: As, flags: &[&str]) -> u32 {
    let args = [flags, &["--", "/bin/cat", "/proc/self/uid_map"]].concat();
    let out = run(who, &args);
    assert_code(&out, 0);
    let text = stdout(&out);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"0"), "{text}");
    fields[1].parse().unwrap()
}

/// `sleep` running as host `uid`, killed on drop.
struct Outsider(std::process::Child);

impl Outsider {
    fn start(uid: u32) -> Outsider {
        let outsider = Outsider(as_user(uid, "/bin/sleep").arg("60").spawn().unwrap());
        // Wait for the exec, so the signal is not refused by the DAC check
        // against setpriv still running as root.
        let comm = format!("/proc/{}/comm", outsider.0.id());
        for _ in 0..500 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c == "sleep\n") {
                return outsider;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("setpriv did not exec sleep");
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn signalling_outside_the_sandbox_is_eperm() {
    let test = "signalling_outside";
    if !is_root() {
        return skip(
            test,
            "needs root to start a process as the sandbox's host uid",
        );
    }
    for_each_who(test, 6, |who| {
        // Same host uid as the sandbox: without Landlock the DAC check lets
        // the signal through. (Root's sandboxes each lease a range of their
        // own: an explicit map makes it known beforehand.)
        let explicit = ["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"];
        let maps: &[&str] = match who {
            As::Caller => &explicit,
            As::Nobody => &[],
        };
        let outsider = Outsider::start(host_uid_of_root(who, maps));
        let pid = outsider.0.id();
        let probe = format!(
            "t('kill outside', os.kill, {pid}, 0)\n\
             child = os.fork()\n\
             if child == 0:\n    time.sleep(30)\n    os._exit(0)\n\
             t('kill inside', os.kill, child, 9)\n\
             os.waitpid(child, 0)\n"
        );
        // Without a pid namespace the host's pids are in sight.
        let no_pidns = [maps, &["--ns", "default,-pid"]].concat();
        let out = python(who, &no_pidns, &probe);
        expect(&out, &format!("kill outside {EPERM}, kill inside ok"));
        let off = [&no_pidns[..], &["--landlock", "off"]].concat();
        let out = python(who, &off, &probe);
        expect(&out, "kill outside ok, kill inside ok");
        // The default sandbox has its own pid namespace: the pid is unknown.
        let out = python(who, maps, &probe);
        expect(&out, &format!("kill outside {ESRCH}, kill inside ok"));
    });
}

#[test]
fn a_pinned_policy_file_runs_and_holds() {
    let dir = TempDir::new("llpin");
    let text = policy_text("", "");
    let path = policy_file(&dir, "pinned.toml", &text);
    let pin = nucleus_landlock_policy::sha256_hex(text.as_bytes());
    let probe = "\
t('read /usr', lambda: open('/usr/bin/python3', 'rb').read(4))
t('read /etc/hostname', lambda: open('/etc/hostname').read())
t('write /tmp', lambda: open('/tmp/x', 'w'))
";
    let e = EACCES;
    for_each_who("a_pinned_policy_file_runs", 6, |who| {
        // The pin is case-insensitive.
        for pin in [pin.clone(), pin.to_uppercase()] {
            let file = path.to_str().unwrap();
            let flags = [
                "--json",
                "--landlock-policy",
                file,
                "--landlock-policy-sha256",
                &pin,
            ];
            let out = python(who, &flags, probe);
            expect(
                &out,
                &format!("read /usr ok, read /etc/hostname {e}, write /tmp {e}"),
            );
            let ll = landlock_of(&out);
            assert_eq!(ll["status"], "fully_enforced", "{ll}");
            assert_eq!(ll["skipped_paths"], 0, "{ll}");
        }
    });
}

#[test]
fn a_pin_that_differs_is_refused_showing_both_hashes() {
    let dir = TempDir::new("llpin-bad");
    let text = policy_text("", "");
    let path = policy_file(&dir, "pinned.toml", &text);
    let file = path.to_str().unwrap();
    let actual = nucleus_landlock_policy::sha256_hex(text.as_bytes());
    let pinned = nucleus_landlock_policy::sha256_hex(b"another policy");
    // The check is in the parent, before any Landlock call: no ABI needed.
    for_each_who("a_pin_that_differs", 0, |who| {
        let pin = [
            "--landlock-policy",
            file,
            "--landlock-policy-sha256",
            &pinned,
        ];
        let out = run(who, &[&pin[..], &["--", "/bin/echo", "ran"]].concat());
        assert_code(&out, 125);
        assert_eq!(stdout(&out), "", "the workload ran");
        let err = stderr(&out);
        assert!(err.starts_with("nucleus-run: landlock"), "{err}");
        for needle in [&actual, &pinned, file] {
            assert!(err.contains(needle), "{needle} not in: {err}");
        }
        // A pin without the file it pins is refused too.
        let out = run(
            who,
            &["--landlock-policy-sha256", &actual, "--", "/bin/true"],
        );
        assert_code(&out, 125);
        let err = stderr(&out);
        assert!(err.contains("needs the policy file"), "{err}");
    });
}

/// The default policy on the kernel's ABI: best-effort runs and lists
/// exactly the rights the kernel lacks (none on ABI 7); strict refuses,
/// naming them, and runs when there are none. Checked on any Landlock
/// kernel (the VM of `cargo xtask ci` has ABI 2).
#[test]
fn the_default_policy_is_negotiated_down_or_refused() {
    // The default policy's rights and scopes above ABI 1 (no shared
    // network: no TCP), with the ABI that brought each.
    const NEWER: [(&str, i64); 5] = [
        ("refer", 2),
        ("truncate", 3),
        ("ioctl-dev", 5),
        ("abstract-unix-socket", 6),
        ("signal", 6),
    ];
    let abi = landlock_abi();
    let missing: Vec<&str> = NEWER
        .iter()
        .filter(|(_, since)| *since > abi)
        .map(|(name, _)| *name)
        .collect();
    for_each_who("default_policy_negotiated", 1, |who| {
        let out = run(who, &["--json", "--", "/bin/true"]);
        assert_code(&out, 0);
        let landlock = landlock_of(&out);
        assert_eq!(landlock["abi"], abi, "{landlock}");
        assert_eq!(
            landlock["dropped"],
            serde_json::json!(missing),
            "{landlock}"
        );
        let status = if missing.is_empty() {
            "fully_enforced"
        } else {
            "partially_enforced"
        };
        assert_eq!(landlock["status"], status, "{landlock}");

        // doctor says it before any run.
        let doctor = run(who, &["doctor", "--json"]);
        let report: Value = doctor_report(&doctor);
        let said = &report["envelope"]["landlock_dropped"]["Ok"];
        assert_eq!(
            said,
            &serde_json::json!(missing),
            "doctor: {}",
            report["envelope"]
        );

        let strict = ["--landlock-compat", "strict", "--", "/bin/echo", "ran"];
        let out = run(who, &strict);
        if missing.is_empty() {
            assert_code(&out, 0);
        } else {
            assert_code(&out, 125);
            assert!(!stdout(&out).contains("ran"), "the workload ran");
            let err = stderr(&out);
            for right in &missing {
                assert!(err.contains(right), "the refusal must name {right}: {err}");
            }
            assert!(err.contains(&format!("abi {abi}")), "{err}");
        }
    });
}

#[test]
fn a_strict_policy_naming_a_missing_path_fails_naming_it() {
    let missing = "/nucleus-e2e-no-such-dir";
    let dir = TempDir::new("llstrict");
    let rule = format!(r#"{{ path = "{missing}", access = ["read"] }},"#);
    let optional = format!(r#"{{ path = "{missing}", access = ["read"], optional = true }},"#);
    // Rights of ABI 1 only, no scope: strict holds on every Landlock
    // kernel, so what fails is the missing path.
    let abi1 = "handle-fs = [\"read\", \"execute\", \"write-file\"]\n";
    let strict = format!("compat = \"strict\"\n{abi1}");
    let text = |head: &str, extra: &str| format!("{head}fs = [{SYSTEM_RULES}{extra}]\n");
    let files = [
        policy_file(&dir, "strict.toml", &text(&strict, &rule)),
        policy_file(&dir, "best-effort.toml", &text(abi1, &rule)),
        policy_file(&dir, "optional.toml", &text(&strict, &optional)),
    ];
    for_each_who("a_strict_policy_naming_a_missing_path", 1, |who| {
        let go = |file: &Path| {
            let flags = ["--json", "--landlock-policy", file.to_str().unwrap()];
            run(who, &[&flags[..], &["--", "/bin/echo", "ran"]].concat())
        };
        let out = go(&files[0]);
        assert_code(&out, 125);
        assert!(!stdout(&out).contains("ran\n"), "the workload ran");
        let err = stderr(&out);
        let named = err.contains("landlock") && err.contains(missing);
        assert!(named, "the message must name {missing}: {err}");
        assert_eq!(landlock_of(&out)["status"], "not_applied");
        // Best effort, or an optional rule, skips the path and runs.
        for file in &files[1..] {
            let out = go(file);
            assert_code(&out, 0);
            assert!(stdout(&out).starts_with("ran\n"), "{}", stdout(&out));
            let ll = landlock_of(&out);
            assert_eq!(ll["status"], "fully_enforced", "{ll}");
            assert_eq!(ll["skipped_paths"], 1, "{ll}");
        }
    });
}
