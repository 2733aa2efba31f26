//! `cargo xtask vm [OPTIONS] -- COMMAND...`: runs COMMAND as root in a
//! throwaway VM with Debian 12's kernel (6.1: cgroup v2 unified, Landlock
//! ABI 2), which this machine's kernel (a cgroup v1 hybrid, Landlock ABI 7)
//! cannot show.
//!
//! - The VM sees this machine's whole filesystem read-only over 9p, under a
//!   tmpfs overlay: the binaries and tests built here are where they are
//!   here; writes stay in the VM. `/run` is a fresh tmpfs inside; `TMPDIR`
//!   is `/vmtmp`, a fresh ext4 (which, unlike 6.1's tmpfs and the overlay,
//!   can be idmapped).
//! - cgroup v2 is mounted at `/sys/fs/cgroup` with `cpu io memory pids`
//!   enabled for the root's children; `/sys/fs/cgroup/delegated` is a
//!   subtree handed to `nobody` (owned by it, the same controllers enabled),
//!   as systemd's `Delegate=yes` hands one to a user.
//! - KVM is present on this machine kind but a nested guest hangs right
//!   after the kernel is decompressed: the VM runs under TCG (software
//!   emulation; boots in seconds, code runs several times slower).
//! - The console is streamed; the exit status is COMMAND's (124 when the VM
//!   timed out). Nothing is left behind but the cached initramfs in
//!   `target/vm`.
//!
//! Needs `qemu-system-x86`, `linux-image-amd64` and `busybox-static`:
//! installed with apt when run as root, else named in the error.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the VM is started.
pub(crate) struct VmOptions {
    /// Memory, in MiB.
    pub(crate) mem_mib: u32,
    /// Virtual CPUs.
    pub(crate) cpus: u32,
    /// Extra kernel command line arguments.
    pub(crate) append: String,
    /// The whole run is killed after this long.
    pub(crate) timeout: Duration,
    /// Variables of this process passed to COMMAND (`NAME`, when set here).
    pub(crate) pass_env: Vec<String>,
}

impl Default for VmOptions {
    fn default() -> Self {
        Self {
            mem_mib: 3072,
            cpus: 2,
            append: String::new(),
            timeout: Duration::from_secs(1200),
            pass_env: [
                "PATH",
                "HOME",
                "RUSTUP_HOME",
                "CARGO_HOME",
                "RUST_BACKTRACE",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

const USAGE: &str = "usage: cargo xtask vm [--mem MIB] [--cpus N] [--append KERNEL-ARGS] \
                     [--timeout SECS] [--env NAME]... -- COMMAND...";

/// `cargo xtask vm`: parses the options, runs COMMAND, exits with its status.
pub(crate) fn main(args: &[String]) -> Result<i32, String> {
    let mut opts = VmOptions::default();
    let mut rest = args;
    loop {
        match rest {
            [flag, value, tail @ ..] if flag.starts_with("--") && flag != "--" => {
                let num = || {
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("bad {flag} {value}"))
                };
                match flag.as_str() {
                    "--mem" => opts.mem_mib = num()?,
                    "--cpus" => opts.cpus = num()?,
                    "--timeout" => opts.timeout = Duration::from_secs(num()?.into()),
                    "--append" => opts.append.clone_from(value),
                    "--env" => opts.pass_env.push(value.clone()),
                    _ => return Err(USAGE.to_owned()),
                }
                rest = tail;
            }
            [dash, command @ ..] if dash == "--" && !command.is_empty() => {
                return run_shell(&opts, &shell_line(command));
            }
            _ => return Err(USAGE.to_owned()),
        }
    }
}

/// COMMAND as one shell line, each word quoted.
fn shell_line(command: &[String]) -> String {
    command
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the shell text `script` as root in the VM, from the current
/// directory; streams its output and returns its exit status.
pub(crate) fn run_shell(opts: &VmOptions, script: &str) -> Result<i32, String> {
    let kernel = ensure_tools()?;
    let dir = crate::bench::workspace_root().join("target/vm");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let initrd = initramfs(&dir, &kernel)?;
    // The command file lives in the checkout, which the VM sees where it is.
    let cmd = dir.join(format!("cmd-{}.sh", std::process::id()));
    let stage2 = dir.join("stage2.sh");
    write(&stage2, STAGE2)?;
    write(&cmd, &command_file(opts, script)?)?;
    let _removed = RemoveOnDrop(cmd.clone());
    boot(opts, &kernel, &initrd, &stage2, &cmd)
}

/// A file that is removed when this is dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The script the VM runs: the passed variables, the current directory,
/// then `script`.
fn command_file(opts: &VmOptions, script: &str) -> Result<String, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let mut text = String::from("set -e\n");
    for name in &opts.pass_env {
        if let Ok(value) = std::env::var(name) {
            text.push_str(&format!(
                "export {name}='{}'\n",
                value.replace('\'', r"'\''")
            ));
        }
    }
    text.push_str(&format!("cd '{}'\nset +e\n{script}\n", cwd.display()));
    Ok(text)
}

/// The kernel the VM boots: Debian 12's (6.1) from `/boot`. Installs what
/// is missing when root, else says what to install.
fn ensure_tools() -> Result<PathBuf, String> {
    let mut need = Vec::new();
    if crate::bench::which("qemu-system-x86_64").is_none() {
        need.push("qemu-system-x86");
    }
    if guest_kernel().is_none() {
        need.push("linux-image-amd64");
    }
    if !Path::new("/bin/busybox").exists() {
        need.push("busybox-static");
    }
    if !need.is_empty() {
        // SAFETY: getuid cannot fail.
        if unsafe { libc::getuid() } != 0 {
            return Err(format!(
                "the VM needs {}: run as root (they are installed then) or apt-get install them",
                need.join(", ")
            ));
        }
        eprintln!("xtask vm: apt-get install {}", need.join(" "));
        let status = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&need)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get install {} failed", need.join(" ")));
        }
    }
    guest_kernel().ok_or_else(|| "no Debian 6.1 kernel in /boot after installing".to_owned())
}

/// The newest `/boot/vmlinuz-6.1.*`.
fn guest_kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-6.1."))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The modules the first stage loads, in dependency order: the 9p share
/// over virtio, and the overlay on top of it.
const MODULES: [&str; 11] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "9pnet",
    "9pnet_virtio",
    "netfs",
    "fscache",
    "9p",
    "overlay",
];

/// Stage 1, in the initramfs: load the modules, mount the host's `/`
/// read-only with a tmpfs overlay, switch to it and run stage 2 there.
const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m.ko || echo "vm: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 host /host || echo "vm: 9p mount failed"
mount -t tmpfs -o size=2g up /tmp; mkdir -p /tmp/up /tmp/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/tmp/up,workdir=/tmp/work /newroot || echo "vm: overlay failed"
stage2=$(sed -n 's/.*vm.stage2=\([^ ]*\).*/\1/p' /proc/cmdline)
cmd=$(sed -n 's/.*vm.cmd=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh "$stage2" "$cmd"
"#;

/// Stage 2, on the host's filesystem: the system mounts, cgroup v2 with a
/// subtree delegated to `nobody`, then the command.
const STAGE2: &str = r#"mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts; ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs shm /dev/shm; mount -t tmpfs run /run
# TMPDIR on ext4, as /tmp is on the host: neither 6.1's tmpfs nor the
# overlay can be idmapped. (/tmp itself stays the host's, under the
# overlay: a checkout may live there.)
modprobe loop; modprobe ext4
mkdir -p /vmtmp
truncate -s 2G /run/tmp.img && mkfs.ext4 -q /run/tmp.img && mount -o loop /run/tmp.img /vmtmp
chmod 1777 /vmtmp
export TMPDIR=/vmtmp
ctl='+cpu +memory +pids +io'
echo "$ctl" > /sys/fs/cgroup/cgroup.subtree_control
# A subtree handed to nobody, as systemd's Delegate=yes hands one to a
# user: runners live in runners/, sandboxes go below sandboxes/.
d=/sys/fs/cgroup/delegated
mkdir $d $d/runners && echo "$ctl" > $d/cgroup.subtree_control
mkdir $d/sandboxes && echo "$ctl" > $d/sandboxes/cgroup.subtree_control
for g in $d $d/runners $d/sandboxes; do
    chown 65534:65534 $g $g/cgroup.procs $g/cgroup.subtree_control $g/cgroup.threads
done
hostname vm; cd /
echo VM-START
sh "$1"
echo VM-EXIT=$?
echo o > /proc/sysrq-trigger
"#;

/// The initramfs for `kernel` (cached in `dir`): busybox, the modules and
/// stage 1, as an uncompressed `newc` archive (the kernel takes it as is).
fn initramfs(dir: &Path, kernel: &Path) -> Result<PathBuf, String> {
    let version = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .ok_or("bad kernel name")?
        .to_owned();
    let path = dir.join(format!("initramfs-{version}.cpio"));
    let mut cpio = Cpio::default();
    for d in [
        "bin", "mods", "host", "newroot", "proc", "sys", "dev", "tmp",
    ] {
        cpio.dir(d);
    }
    cpio.file("bin/busybox", &read(Path::new("/bin/busybox"))?, 0o755);
    for applet in [
        "sh",
        "mount",
        "umount",
        "insmod",
        "mkdir",
        "switch_root",
        "cat",
        "sed",
    ] {
        cpio.symlink(&format!("bin/{applet}"), "busybox");
    }
    for module in MODULES {
        cpio.file(
            &format!("mods/{module}.ko"),
            &read(&module_path(&version, module)?)?,
            0o644,
        );
    }
    cpio.file("mods/order", MODULES.join(" ").as_bytes(), 0o644);
    cpio.file("init", INIT.as_bytes(), 0o755);
    let bytes = cpio.finish();
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        let tmp = dir.join(format!("initramfs.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The file of `module` for kernel `version`, as modprobe resolves it.
fn module_path(version: &str, module: &str) -> Result<PathBuf, String> {
    let out = Command::new("modprobe")
        .args(["-S", version, "--show-depends", module])
        .output()
        .map_err(|e| format!("modprobe: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let wanted = format!("/{module}.ko");
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .rfind(|p| p.contains(&wanted))
        .map(PathBuf::from)
        .ok_or_else(|| format!("module {module} of kernel {version} not found"))
}

/// A `newc` cpio archive, built in memory.
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, &[]);
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, 0o100_000 | perm, data);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, target.as_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }
}

/// Boots the VM, streams what the command prints, returns its status.
fn boot(
    opts: &VmOptions,
    kernel: &Path,
    initrd: &Path,
    stage2: &Path,
    cmd: &Path,
) -> Result<i32, String> {
    let append = format!(
        "console=ttyS0 loglevel=3 panic=-1 vm.stage2={} vm.cmd={} {}",
        stage2.display(),
        cmd.display(),
        opts.append
    );
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-nographic", "-no-reboot"])
        .args([
            "-m",
            &opts.mem_mib.to_string(),
            "-smp",
            &opts.cpus.to_string(),
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append])
        .args([
            "-virtfs",
            "local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
    let pid = child.id();
    let deadline = Instant::now() + opts.timeout;
    // The watchdog ends qemu at the deadline; the reader below then sees EOF.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            eprintln!("xtask vm: timed out; stopping the VM");
            // SAFETY: plain kill of our own child, not yet reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let stdout = child.stdout.take().ok_or("no qemu stdout")?;
    let status = stream(BufReader::new(stdout));
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let _ = child.wait();
    if status.is_none() {
        eprintln!("xtask vm: the VM ended without the command's exit status (124)");
    }
    Ok(status.unwrap_or(124))
}

/// Copies the console between the start and exit markers to stdout;
/// returns the exit status the marker gave.
fn stream(reader: impl BufRead) -> Option<i32> {
    let mut started = false;
    let mut out = std::io::stdout();
    for line in reader.split(b'\n').map_while(Result::ok) {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        if let Some(code) = text.strip_prefix("VM-EXIT=") {
            return code.trim().parse().ok();
        }
        if started && !is_printk(text) {
            let _ = writeln!(out, "{text}");
        } else if text.contains("VM-START") {
            started = true;
        } else if text.starts_with("vm: ") || text.contains("Kernel panic") {
            eprintln!("{text}");
        }
    }
    None
}

/// The end-to-end suites run in the VM: cgroups (v2, also as `nobody` in
/// a delegated subtree), Landlock negotiation (ABI 2) and the launch
/// sequence. TCG runs code several times slower: the suites are chosen,
/// not cut by a timeout. Sessions there: a command joins the session's
/// cgroup v2 (as `nobody` too, in the delegated subtree).
/// nucleus-oci's suites there: the probe table, the lifecycle, bad
/// bundles and both engines on cgroup v2 (nested named cgroups, the device
/// program, v2's limit files).
const VM_SUITES: [(&str, &[&str]); 2] = [
    (
        "nucleus-runner",
        &["limits", "lifecycle", "sandbox", "landlock", "sessions"],
    ),
    (
        "nucleus-oci",
        &["contain", "lifecycle", "bad_input", "engines"],
    ),
];

/// How long one suite may run in the VM (they take 10–60 s): a hang fails
/// the run with the VM's process list instead of waiting for the VM's own
/// timeout. One test at a time: the emulated CPUs are slow enough that
/// timing-bound tests should not also compete with each other.
const SUITE_TIMEOUT: u32 = 600;

/// Landlock tests of rights the VM's kernel (ABI 2) does not have: there
/// they would only say so (a skip, which strict mode fails). The ABI-2
/// behaviour itself is `the_default_policy_is_negotiated_down_or_refused`.
/// And a test whose runners join a cgroup of its own, which cgroup v2 alone
/// does not allow to hold their sandboxes too (it runs on the hybrid host).
const VM_SKIPPED: [&str; 8] = [
    "a_killed_runners_cgroups_are_removed_by_the_next_run",
    "create_remove_rename_truncate_need_their_rights",
    "tcp_connect_and_bind_need_an_allowed_port_on_a_shared_network",
    "udp_is_denied_while_tcp_is_limited_unless_allowed",
    "connecting_to_an_abstract_socket_outside_is_eperm",
    "signalling_outside_the_sandbox_is_eperm",
    "a_pinned_policy_file_runs_and_holds",
    "json_reports_full_enforcement_at_the_kernels_abi",
];

/// `cargo xtask ci`'s VM part: builds the suites here, runs them there,
/// strict, as root and (through the delegated subtree) as `nobody`.
pub(crate) fn ci() -> Result<(), String> {
    let mut script = String::from(
        "export NUCLEUS_TEST_STRICT=1 NUCLEUS_TEST_RUNTIMES=native \
         NUCLEUS_TEST_NOBODY_CGROUP=/sys/fs/cgroup/delegated\nfailed=0\n",
    );
    let mut skips: String = VM_SKIPPED.iter().map(|t| format!(" --skip {t}")).collect();
    skips.push_str(" --exact");
    for (package, suites) in VM_SUITES {
        for (suite, exe) in suites.iter().zip(build_suites(package, suites)?) {
            script.push_str(&format!(
                "echo \"vm: suite {package} {suite}\"\ntimeout -k 10 {SUITE_TIMEOUT} '{}' --test-threads=1 --color never{skips}\n\
                 rc=$?\n[ $rc = 0 ] || failed=$((failed+1))\n\
                 [ $rc = 124 ] && {{ echo \"vm: suite {suite} timed out\"; ps -eo pid,ppid,user,stat,etime,args; }}\n",
                exe.display()
            ));
        }
    }
    // Nothing of any run may remain, as root's or nobody's.
    script.push_str(
        "left=$(ls -d /sys/fs/cgroup/nucleus-* /sys/fs/cgroup/delegated/sandboxes/nucleus-* \
         2>/dev/null)\n[ -z \"$left\" ] || { echo \"vm: cgroups left behind: $left\"; \
         failed=$((failed+1)); }\nexit $failed\n",
    );
    let names: Vec<String> = VM_SUITES
        .iter()
        .flat_map(|(p, suites)| suites.iter().map(move |s| format!("{p} {s}")))
        .collect();
    eprintln!("xtask: the VM suites: {}", names.join(", "));
    let started = Instant::now();
    let options = VmOptions {
        timeout: Duration::from_secs(1800),
        ..VmOptions::default()
    };
    let code = run_shell(&options, &script)?;
    eprintln!(
        "xtask: the VM ran for {:.0} s",
        started.elapsed().as_secs_f64()
    );
    match code {
        0 => Ok(()),
        n => Err(format!(
            "{n} test suite(s) failed in the VM (cgroup v2, Landlock ABI 2)"
        )),
    }
}

/// Builds `package`'s `suites` here: their executables, in order.
fn build_suites(package: &str, suites: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut args = vec!["test", "-p", package, "--no-run", "--message-format=json"];
    for suite in suites {
        args.extend(["--test", suite]);
    }
    eprintln!("xtask: cargo {}", args.join(" "));
    let out = Command::new(env!("CARGO"))
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building {package}'s VM test suites failed"));
    }
    let executables = executables(&String::from_utf8_lossy(&out.stdout));
    suites
        .iter()
        .map(|suite| {
            executables
                .iter()
                .find(|e| {
                    e.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{suite}-")))
                })
                .cloned()
                .ok_or_else(|| format!("no test executable for {package} {suite}"))
        })
        .collect()
}

/// The test executables named in cargo's JSON messages.
fn executables(messages: &str) -> Vec<PathBuf> {
    messages
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("\"executable\":\"")?;
            let (path, _) = rest.split_once('"')?;
            Some(PathBuf::from(path))
        })
        .collect()
}

/// A kernel message on the console (`[   10.008792] sysrq: Power Off`).
fn is_printk(line: &str) -> bool {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .is_some_and(|(stamp, _)| {
            let stamp = stamp.trim();
            !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keeps_what_is_between_the_markers() {
        let console = b"boot noise\r\nVM-START\r\nhello\r\n[   10.0] sysrq\r\nVM-EXIT=3\r\nafter\n";
        assert_eq!(stream(&console[..]), Some(3));
        assert_eq!(stream(&b"no markers\n"[..]), None);
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        let line = shell_line(&["echo".into(), "it's".into()]);
        assert_eq!(line, r"'echo' 'it'\''s'");
    }

    #[test]
    fn cpio_entries_are_aligned() {
        let mut c = Cpio::default();
        c.file("a", b"xyz", 0o644);
        let bytes = c.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
    }
}
