//! The default container policy, applied in a forked child that then runs a shell script
//! probing it (the host's view stands in for the sandbox's).
#![allow(clippy::unwrap_used)] // tests: a failed set-up step is a failed test

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use common::{has_abi, in_child, Scratch};
use nucleus_landlock_policy::{Compat, DefaultOptions, Enforcement, Exec, Policy};

const SCRIPT: &str = r#"
fail() { echo "default policy: $2" >&2; exit "$1"; }
echo x > /dev/null || fail 10 "cannot write /dev/null"
head -c 4 /dev/urandom > /dev/null || fail 11 "cannot read /dev/urandom"
touch /dev/nucleus-landlock-probe 2>/dev/null && fail 12 "created a file in /dev"
ls / > /dev/null || fail 13 "cannot list /"
cat /etc/passwd > /dev/null || fail 14 "cannot read /etc"
cat /proc/self/status > /dev/null || fail 15 "cannot read /proc"
echo hi > "$RW/f" && [ "$(cat "$RW/f")" = hi ] || fail 16 "cannot write a writable bind"
cp /bin/true "$RW/t" && chmod +x "$RW/t" || fail 17 "cannot copy into a writable bind"
"$RW/t" 2>/dev/null && fail 18 "executed from a writable bind"
cp /bin/true "$RWX/t" && "$RWX/t" || fail 19 "cannot execute from a --bind-exec bind"
cat "$RO/file" > /dev/null || fail 20 "cannot read a read-only bind"
echo x 2>/dev/null > "$RO/file" && fail 21 "wrote a read-only bind"
cat "$OTHER/file" 2>/dev/null && fail 22 "read outside the rules"
T=/tmp/nucleus-landlock-probe-$$
cp /bin/true "$T" || fail 23 "cannot write /tmp"
"$T" 2>/dev/null && fail 24 "executed from /tmp"
rm "$T" || fail 25 "cannot remove from /tmp"
exit 0
"#;

#[test]
fn default_container_policy_holds() {
    if !has_abi(6, "default_container_policy_holds") {
        return;
    }
    let s = Scratch::new("default");
    let (rw, rwx, ro, other) = (s.tree("rw"), s.tree("rwx"), s.tree("ro"), s.tree("other"));
    let mut opts = DefaultOptions::default();
    opts.compat = Compat::Strict;
    opts.writable_binds = vec![(rw.clone(), Exec::NoExec), (rwx.clone(), Exec::Exec)];
    opts.readonly_binds = vec![ro.clone()];
    let compiled = Policy::default_container(&opts).compile().unwrap();

    let c = |s: &str| CString::new(s).unwrap();
    let cp = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let argv_owned = [c("sh"), c("-c"), c(SCRIPT)];
    let env_owned = [
        CString::new([b"RW=".as_slice(), rw.as_os_str().as_bytes()].concat()).unwrap(),
        CString::new([b"RWX=".as_slice(), rwx.as_os_str().as_bytes()].concat()).unwrap(),
        CString::new([b"RO=".as_slice(), ro.as_os_str().as_bytes()].concat()).unwrap(),
        CString::new([b"OTHER=".as_slice(), other.as_os_str().as_bytes()].concat()).unwrap(),
        c("PATH=/usr/bin:/bin"),
    ];
    let sh = cp(std::path::Path::new("/bin/sh"));
    let argv: Vec<_> = argv_owned
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<_> = env_owned
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();

    in_child(|| {
        let report = compiled.restrict_self().map_err(|e| e.to_string())?;
        if report.status != Enforcement::FullyEnforced || !report.dropped.is_empty() {
            return Err(format!("unexpected report {report:?}"));
        }
        // SAFETY: every pointer is a valid C string or NULL, alive until exec.
        unsafe { libc::execve(sh.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Err(format!("exec /bin/sh: {}", std::io::Error::last_os_error()))
    });
    let _ = fs::remove_file("/dev/nucleus-landlock-probe");
}
