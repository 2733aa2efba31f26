//! The default profile for agents.

use crate::action::{Action, ENOSYS, EPERM};
use crate::profile::{ArgCond, Profile, Rule, UnknownSyscalls};

/// Syscalls allowed whatever their arguments. Names absent on an architecture (e.g. `open` on
/// aarch64) are left out there.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // file I/O
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "lseek", "close", "close_range", "open", "openat", "openat2", "creat", "dup",
    "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
    "fadvise64", "fallocate", "ftruncate", "truncate", "readahead", "sendfile", "splice", "tee",
    "vmsplice", "copy_file_range", "pipe", "pipe2",
    // metadata and directories
    "stat", "fstat", "lstat", "newfstatat", "fstatfs", "statfs", "statx", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir",
    "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
    "fchmodat2", "chown", "fchown", "fchownat", "lchown", "umask", "utime", "utimes",
    "utimensat", "futimesat", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr",
    "listxattr", "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr",
    "removexattr", "lremovexattr", "fremovexattr", "getxattrat", "setxattrat", "listxattrat",
    "removexattrat", "file_getattr", "file_setattr", "inotify_init", "inotify_init1",
    "inotify_add_watch", "inotify_rm_watch", "statmount", "listmount", "cachestat",
    // memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "munlock", "mlockall", "munlockall", "remap_file_pages", "membarrier",
    "memfd_create", "pkey_alloc", "pkey_free", "pkey_mprotect", "mseal", "map_shadow_stack",
    // processes, credentials (without capabilities these can only drop), scheduling
    "exit", "exit_group", "fork", "vfork", "execve", "execveat", "wait4", "waitid", "kill",
    "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
    "getsid", "setsid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
    "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setgroups", "setfsuid", "setfsgid", "capget", "capset", "prctl", "arch_prctl",
    "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "get_thread_area",
    "set_thread_area", "getpriority", "setpriority", "getrlimit", "setrlimit", "prlimit64",
    "getrusage", "times", "sysinfo", "uname", "pidfd_open", "pidfd_send_signal", "seccomp",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    "restart_syscall", "sched_yield", "sched_getaffinity", "sched_setaffinity",
    "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_getattr", "sched_setattr", "getcpu", "ioprio_get", "ioprio_set",
    // signals and time
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "signalfd",
    "signalfd4", "pause", "alarm", "clock_gettime", "clock_getres", "clock_nanosleep",
    "nanosleep", "gettimeofday", "time", "getitimer", "setitimer", "timer_create",
    "timer_delete", "timer_gettime", "timer_settime", "timer_getoverrun", "timerfd_create",
    "timerfd_gettime", "timerfd_settime",
    // waiting
    "futex", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "poll", "ppoll",
    "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
    // sockets (creating one is filtered below)
    "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", "shutdown",
    // AIO and System V / POSIX IPC (scoped by the IPC namespace)
    "io_destroy", "io_submit", "io_cancel", "io_getevents", "shmget", "shmat",
    "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv",
    "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
    "mq_getsetattr",
    // misc
    "getrandom",
];

/// The namespace flags of `clone` (`CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET`).
/// `CLONE_NEWTIME` shares its bit with the exit signal in `clone`, so it is not here.
const CLONE_NS_FLAGS: u64 = 0x7e02_0000;
/// The namespace flags `unshare` takes: the above and `CLONE_NEWTIME`.
const UNSHARE_NS_FLAGS: u64 = CLONE_NS_FLAGS | 0x80;

const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;
/// Setting a terminal's line discipline: can make the kernel load a module
/// (`dev.tty.ldisc_autoload`), and leaves the caller's terminal changed.
const TIOCSETD: u32 = 0x5423;

const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
/// `SOCK_TYPE_MASK`: the type without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
const SOCK_TYPE_MASK: u64 = 0xf;
const NETLINK_ROUTE: u32 = 0;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

/// `PER_LINUX`, `PER_LINUX32`, `UNAME26`, `UNAME26|PER_LINUX32`, and the query.
const PERSONALITIES: &[u32] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

fn socket_rules() -> Vec<Rule> {
    let socket = || Rule::new(["socket"], Action::Allow);
    let mut rules = vec![socket().with_arg(ArgCond::eq32(0, AF_UNIX))];
    // Plain TCP and UDP only: MPTCP (a stream socket of protocol 262)
    // passes Landlock's TCP port rules, UDP-Lite and SCTP are rarely
    // needed kernel code.
    for family in [AF_INET, AF_INET6] {
        for (ty, protocol) in [
            (SOCK_STREAM, 0),
            (SOCK_STREAM, IPPROTO_TCP),
            (SOCK_DGRAM, 0),
            (SOCK_DGRAM, IPPROTO_UDP),
        ] {
            rules.push(
                socket()
                    .with_arg(ArgCond::eq32(0, family))
                    .with_arg(ArgCond::masked_eq(1, SOCK_TYPE_MASK, ty))
                    .with_arg(ArgCond::eq32(2, protocol)),
            );
        }
    }
    rules.push(
        socket()
            .with_arg(ArgCond::eq32(0, AF_NETLINK))
            .with_arg(ArgCond::eq32(2, NETLINK_ROUTE)),
    );
    rules
}

/// `mknod`/`mknodat` of a character or block device answer `EPERM`, as
/// the kernel answers a caller without `CAP_MKNOD` (a runtime whose kernel
/// does not check it, such as gVisor's, would otherwise create them).
/// Regular files, FIFOs and sockets stay allowed.
fn device_node_rules() -> Vec<Rule> {
    const S_IFMT: u64 = libc::S_IFMT as u64;
    let mut rules = Vec::new();
    for kind in [libc::S_IFCHR, libc::S_IFBLK] {
        for (name, index) in [("mknod", 1), ("mknodat", 2)] {
            rules.push(
                Rule::new([name], Action::Errno(EPERM)).with_arg(ArgCond::masked_eq(
                    index,
                    S_IFMT,
                    u64::from(kind),
                )),
            );
        }
    }
    rules
}

impl Profile {
    /// The default profile for agents: an allowlist in the spirit of Docker's and podman's default
    /// profiles, tightened for untrusted code.
    ///
    /// Left out (so `EPERM`), among others: `bpf`, `perf_event_open`, `userfaultfd`, the keyring
    /// (`keyctl`, `add_key`, `request_key`), `kexec_*`, module loading, the mount family (`mount`,
    /// `umount2`, `fsopen`, `fsmount`, `move_mount`, `open_tree`, `mount_setattr`, ...),
    /// `pivot_root`, `chroot`, `ptrace`, `process_vm_*`, `pidfd_getfd`, `kcmp`,
    /// `open_by_handle_at`, `name_to_handle_at`, `io_uring_*`, `reboot`, `swapon`/`swapoff`, clock
    /// setting (`settimeofday`, `clock_settime`, `clock_adjtime`, `adjtimex`), `acct`, `setns`,
    /// `sethostname`, `syslog`, `quotactl`, `modify_ldt`, `iopl`/`ioperm`, the NUMA policy calls,
    /// `fanotify_*`, `lookup_dcookie` and the obsolete `uselib`/`sysfs`/`ustat`.
    ///
    /// Allowed only with some arguments:
    /// - `mknod`, `mknodat`: not for character or block devices (`EPERM`).
    /// - `clone`: without namespace flags; `unshare`: without namespace flags. Creating namespaces
    ///   is the first step of most container-escape and kernel-exploit chains.
    /// - `io_setup` answers `ENOSYS`: AIO contexts are a host-wide pool
    ///   (`fs.aio-max-nr`) one sandbox could drain; libaio users fall back.
    /// - `clone3` answers `ENOSYS`: its flags live in memory that seccomp cannot read, and libc
    ///   then falls back to `clone`, whose flags it can.
    /// - `ioctl`: all but `TIOCSTI` (pushing input into a terminal the sandbox shares) and
    ///   `TIOCLINUX`, and `TIOCSETD` (a line discipline: module autoload).
    /// - `socket`: `AF_UNIX`; `AF_INET`/`AF_INET6` stream (TCP) and datagram (UDP), protocol 0
    ///   or that one (no MPTCP, UDP-Lite, SCTP or ICMP datagram sockets); `AF_NETLINK` with
    ///   `NETLINK_ROUTE` only (glibc's `getaddrinfo` reads interface addresses with it). No
    ///   `AF_PACKET`, no raw or `SOCK_PACKET` sockets, no SCTP, no `AF_ALG`, `AF_VSOCK`, ...
    /// - `personality`: the values podman allows (`PER_LINUX`, `PER_LINUX32`, `UNAME26`, and the
    ///   query `0xffffffff`).
    ///
    /// Integer parameters declared `int` are compared on their low 32 bits, as the kernel reads
    /// them: a 64-bit comparison could be dodged by setting the upper half.
    ///
    /// Default action `errno(EPERM)`, native architecture only.
    ///
    /// ```
    /// let profile = nucleus_seccomp::Profile::default_agent();
    /// let filter = profile.compile()?;
    /// assert!(filter.instructions() < 400);
    /// # Ok::<(), nucleus_seccomp::SeccompError>(())
    /// ```
    pub fn default_agent() -> Profile {
        let mut rules = device_node_rules();
        rules.extend([
            Rule::new(ALLOWED.iter().copied(), Action::Allow),
            Rule::new(["clone"], Action::Allow).with_arg(ArgCond::masked_eq(0, CLONE_NS_FLAGS, 0)),
            Rule::new(["unshare"], Action::Allow).with_arg(ArgCond::masked_eq(
                0,
                UNSHARE_NS_FLAGS,
                0,
            )),
            Rule::new(["clone3"], Action::Errno(ENOSYS)),
            // AIO contexts come from one host-wide pool (fs.aio-max-nr):
            // one sandbox could take every host user's.
            Rule::new(["io_setup"], Action::Errno(ENOSYS)),
            Rule::new(["ioctl"], Action::Errno(EPERM)).with_arg(ArgCond::eq32(1, TIOCSTI)),
            Rule::new(["ioctl"], Action::Errno(EPERM)).with_arg(ArgCond::eq32(1, TIOCLINUX)),
            Rule::new(["ioctl"], Action::Errno(EPERM)).with_arg(ArgCond::eq32(1, TIOCSETD)),
            Rule::new(["ioctl"], Action::Allow),
        ]);
        rules.extend(socket_rules());
        rules.extend(
            PERSONALITIES
                .iter()
                .map(|&p| Rule::new(["personality"], Action::Allow).with_arg(ArgCond::eq32(0, p))),
        );
        Profile {
            default_action: Action::Errno(EPERM),
            architectures: Vec::new(),
            rules,
            unknown_syscalls: UnknownSyscalls::Error,
            log_denied: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_agent_is_valid_and_lists_no_denied_syscall() {
        let p = Profile::default_agent();
        p.validate().unwrap();
        let mut seen = std::collections::HashSet::new();
        for name in ALLOWED {
            assert!(seen.insert(name), "{name} listed twice");
        }
        #[rustfmt::skip]
        let denied_list = [
            "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
            "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
            "mount", "umount2", "fsopen", "fsmount", "move_mount", "open_tree", "pivot_root",
            "ptrace", "process_vm_readv", "process_vm_writev", "open_by_handle_at",
            "io_uring_setup", "io_uring_enter", "io_uring_register", "reboot", "swapon",
            "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "acct", "setns",
            "chroot", "pidfd_getfd", "kcmp",
        ];
        for denied in denied_list {
            assert!(!ALLOWED.contains(&denied), "{denied} must not be allowed");
            assert!(crate::syscalls::is_known(denied), "{denied}");
        }
    }
}
