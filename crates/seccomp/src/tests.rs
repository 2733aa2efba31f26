//! Pure tests of compiling: the programs are run in the interpreter.
// libc's constants change type across targets (`Ioctl`, `c_ulong`): casts stay portable.
#![allow(clippy::unnecessary_cast)]

use crate::action::{Action, ENOSYS, EPERM};
use crate::arch::Arch;
use crate::bpf::{run_counted, BpfInsn, SeccompData};
use crate::error::SeccompError;
use crate::filter::CompiledFilter;
use crate::profile::{ArgCond, CmpOp, Profile, Rule, UnknownSyscalls};
use crate::syscalls::{name_of, number_of};

fn nr(arch: Arch, name: &str) -> u32 {
    number_of(arch, name).unwrap_or_else(|| panic!("no {name} on {arch}"))
}

fn eval(f: &CompiledFilter, name: &str, args: [u64; 6]) -> Action {
    f.evaluate(nr(f.arch(), name), args).unwrap()
}

fn args(a0: u64, a1: u64, a2: u64) -> [u64; 6] {
    [a0, a1, a2, 0, 0, 0]
}

const DENY: Action = Action::Errno(EPERM);

#[test]
fn agent_allows_common_syscalls_through_the_kernel_cache() {
    let f = Profile::default_agent().compile_for(Arch::X86_64).unwrap();
    for name in [
        "read",
        "write",
        "close",
        "openat",
        "getppid",
        "mmap",
        "futex",
        "newfstatat",
        "execve",
    ] {
        assert_eq!(eval(&f, name, [0; 6]), Action::Allow, "{name}");
        assert!(
            f.cached_allow(nr(Arch::X86_64, name)),
            "{name} must be const-allow"
        );
    }
    for name in ["ioctl", "socket", "clone", "unshare", "personality"] {
        assert!(
            !f.cached_allow(nr(Arch::X86_64, name)),
            "{name} reads arguments"
        );
    }
}

#[test]
fn agent_denies_dangerous_syscalls() {
    let f = Profile::default_agent().compile_for(Arch::X86_64).unwrap();
    for name in [
        "bpf",
        "ptrace",
        "mount",
        "setns",
        "io_uring_setup",
        "keyctl",
        "kexec_load",
        "reboot",
        "userfaultfd",
        "perf_event_open",
        "open_by_handle_at",
        "pivot_root",
        "acct",
        "settimeofday",
    ] {
        assert_eq!(eval(&f, name, [0; 6]), DENY, "{name}");
    }
    assert_eq!(eval(&f, "clone3", [0; 6]), Action::Errno(ENOSYS));
}

#[test]
fn agent_filters_namespace_flags() {
    let f = Profile::default_agent().compile_for(Arch::X86_64).unwrap();
    let sigchld = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD) as u64;
    assert_eq!(eval(&f, "clone", args(sigchld, 0, 0)), Action::Allow);
    assert_eq!(eval(&f, "clone", args(thread, 0, 0)), Action::Allow);
    for flag in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
    ] {
        assert_eq!(eval(&f, "clone", args(sigchld | flag as u64, 0, 0)), DENY);
        assert_eq!(eval(&f, "unshare", args(flag as u64, 0, 0)), DENY);
    }
    assert_eq!(eval(&f, "unshare", args(0x80, 0, 0)), DENY, "CLONE_NEWTIME");
    assert_eq!(
        eval(&f, "unshare", args(libc::CLONE_FS as u64, 0, 0)),
        Action::Allow
    );
}

#[test]
fn agent_filters_ioctl_socket_personality() {
    let f = Profile::default_agent().compile_for(Arch::X86_64).unwrap();
    let tiocsti = libc::TIOCSTI as u64;
    assert_eq!(eval(&f, "ioctl", args(0, tiocsti, 0)), DENY);
    assert_eq!(
        eval(&f, "ioctl", args(0, tiocsti | 1 << 32, 0)),
        DENY,
        "upper bits ignored"
    );
    assert_eq!(eval(&f, "ioctl", args(0, libc::TIOCLINUX as u64, 0)), DENY);
    assert_eq!(
        eval(&f, "ioctl", args(0, libc::TCGETS as u64, 0)),
        Action::Allow
    );
    let nonblock = libc::SOCK_NONBLOCK as u64 | libc::SOCK_CLOEXEC as u64;
    let (inet, inet6, unix) = (
        libc::AF_INET as u64,
        libc::AF_INET6 as u64,
        libc::AF_UNIX as u64,
    );
    let (stream, dgram, raw) = (
        libc::SOCK_STREAM as u64,
        libc::SOCK_DGRAM as u64,
        libc::SOCK_RAW as u64,
    );
    assert_eq!(
        eval(&f, "socket", args(inet, stream | nonblock, 0)),
        Action::Allow
    );
    assert_eq!(eval(&f, "socket", args(inet6, dgram, 0)), Action::Allow);
    assert_eq!(
        eval(&f, "socket", args(unix, libc::SOCK_SEQPACKET as u64, 0)),
        Action::Allow
    );
    assert_eq!(eval(&f, "socket", args(inet, raw, 1)), DENY);
    assert_eq!(
        eval(&f, "socket", args(libc::AF_PACKET as u64, raw, 0)),
        DENY
    );
    assert_eq!(
        eval(&f, "socket", args(libc::AF_NETLINK as u64, raw, 0)),
        Action::Allow
    );
    assert_eq!(
        eval(&f, "socket", args(libc::AF_NETLINK as u64, raw, 9)),
        DENY
    );
    assert_eq!(eval(&f, "socket", args(libc::AF_ALG as u64, 5, 0)), DENY);
    assert_eq!(
        eval(&f, "personality", args(0xffff_ffff, 0, 0)),
        Action::Allow
    );
    assert_eq!(
        eval(&f, "personality", args(0x0040000, 0, 0)),
        DENY,
        "ADDR_NO_RANDOMIZE"
    );
}

#[test]
fn foreign_abis_are_killed() {
    let f = Profile::default_agent().compile_for(Arch::X86_64).unwrap();
    let i386 = SeccompData {
        nr: 20,
        arch: 0x4000_0003,
        ..Default::default()
    };
    assert_eq!(f.evaluate_data(&i386), Some(Action::KillProcess));
    assert_eq!(
        f.evaluate(0x4000_0000 | 39, [0; 6]),
        Some(Action::KillProcess),
        "x32 getpid"
    );
    assert_eq!(
        f.evaluate(u32::MAX, [0; 6]),
        Some(DENY),
        "nr -1 gets the default"
    );
    assert_eq!(f.evaluate(5000, [0; 6]), Some(DENY));
    let a = Profile::default_agent().compile_for(Arch::Aarch64).unwrap();
    assert_eq!(
        a.evaluate(173, [0; 6]),
        Some(Action::Allow),
        "aarch64 getppid"
    );
    assert_eq!(a.evaluate(0x4000_0000, [0; 6]), Some(DENY));
    let x86 = SeccompData {
        nr: 173,
        arch: 0xc000_003e,
        ..Default::default()
    };
    assert_eq!(a.evaluate_data(&x86), Some(Action::KillProcess));
}

#[test]
fn dispatch_is_a_short_tree() {
    let f = Profile::default_agent().compile_for(Arch::X86_64).unwrap();
    assert!(f.instructions() < 400, "{} instructions", f.instructions());
    let worst = (0..600)
        .filter(|n| {
            // Syscalls with argument rules take their own branch.
            ![
                "ioctl",
                "socket",
                "clone",
                "unshare",
                "personality",
                "mknod",
                "mknodat",
            ]
            .contains(&name_of(Arch::X86_64, *n).unwrap_or(""))
        })
        .map(|n| {
            let data = SeccompData {
                nr: n,
                arch: 0xc000_003e,
                ..Default::default()
            };
            run_counted(f.program(), &data, false).unwrap().1
        })
        .max()
        .unwrap();
    assert!(worst <= 16, "worst path {worst} instructions");
}

#[test]
fn restrictive_rules_win_whatever_their_order() {
    let p = Profile {
        default_action: Action::Allow,
        architectures: vec![],
        rules: vec![
            Rule::new(["ioctl"], Action::Allow),
            Rule::new(["ioctl"], Action::Errno(13)).with_arg(ArgCond::new(1, CmpOp::Eq, 7)),
            Rule::new(["ioctl"], Action::KillProcess).with_arg(ArgCond::new(1, CmpOp::Eq, 8)),
        ],
        unknown_syscalls: UnknownSyscalls::Error,
        log_denied: true,
    };
    let f = p.compile_for(Arch::X86_64).unwrap();
    assert_eq!(eval(&f, "ioctl", args(0, 7, 0)), Action::Errno(13));
    assert_eq!(eval(&f, "ioctl", args(0, 8, 0)), Action::KillProcess);
    assert_eq!(eval(&f, "ioctl", args(0, 9, 0)), Action::Allow);
    assert_eq!(f.flags(), libc::SECCOMP_FILTER_FLAG_LOG);
    let f = Profile::default_agent()
        .deny_exec()
        .compile_for(Arch::X86_64)
        .unwrap();
    assert_eq!(eval(&f, "execve", [0; 6]), DENY);
    assert_eq!(eval(&f, "execveat", [0; 6]), DENY);
}

#[test]
fn unknown_names_are_skipped_and_reported_when_asked() {
    let mut p = Profile::default_agent();
    p.rules
        .push(Rule::new(["frobnicate", "read"], Action::Allow));
    assert!(
        matches!(p.compile(), Err(SeccompError::UnknownSyscalls { ref names }) if names == &["frobnicate"])
    );
    p.unknown_syscalls = UnknownSyscalls::Skip;
    let f = p.compile().unwrap();
    assert_eq!(f.skipped(), ["frobnicate"]);
    assert_eq!(f.report().skipped_syscalls, ["frobnicate"]);
}

#[test]
fn architectures_must_include_the_target() {
    let mut p = Profile::default_agent();
    p.architectures = vec![Arch::Aarch64];
    assert!(matches!(
        p.compile_for(Arch::X86_64),
        Err(SeccompError::ArchNotInProfile { .. })
    ));
    assert!(matches!(
        p.compile_for(Arch::S390x),
        Err(SeccompError::UnsupportedArch { .. })
    ));
}

/// A small deterministic generator (no `rand` dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11 ^ self.0 << 23
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const EDGES: &[u64] = &[
    0,
    1,
    7,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_0000_0007,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
];

/// The semantics the compiled program must have, written plainly.
fn reference(p: &Profile, nr: u32, args: &[u64; 6]) -> Action {
    let name = name_of(Arch::X86_64, nr).unwrap_or("");
    p.rules
        .iter()
        .filter(|r| r.names.iter().any(|n| n == name))
        .filter(|r| {
            r.args
                .iter()
                .all(|c| c.op.holds(args[c.index as usize], c.value, c.value_two))
        })
        .map(|r| r.action)
        .min_by_key(|a| a.precedence())
        .unwrap_or(p.default_action)
}

#[test]
fn random_profiles_match_the_reference_semantics() {
    let mut rng = Lcg(0x5eed);
    let names = ["read", "write", "ioctl", "socket", "getppid"];
    let ops = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::MaskedEq,
    ];
    let actions = [
        Action::Allow,
        Action::Errno(1),
        Action::Errno(22),
        Action::KillProcess,
        Action::Trap,
        Action::Log,
    ];
    for round in 0..300 {
        let rules = (0..1 + rng.next() % 40)
            .map(|_| {
                let mut r = Rule::new([rng.pick(&names)], rng.pick(&actions));
                for _ in 0..rng.next() % 3 {
                    let op = rng.pick(&ops);
                    let (v, v2) = (rng.pick(EDGES), rng.pick(EDGES));
                    r = r.with_arg(ArgCond {
                        index: (rng.next() % 2) as u8,
                        op,
                        value: v,
                        value_two: v2,
                    });
                }
                r
            })
            .collect();
        let p = Profile {
            default_action: rng.pick(&actions),
            architectures: vec![],
            rules,
            unknown_syscalls: UnknownSyscalls::Error,
            log_denied: false,
        };
        let f = p.compile_for(Arch::X86_64).unwrap();
        for _ in 0..200 {
            let n = nr(Arch::X86_64, rng.pick(&names));
            let a = [rng.pick(EDGES), rng.pick(EDGES), 0, 0, 0, 0];
            assert_eq!(
                f.evaluate(n, a),
                Some(reference(&p, n, &a)),
                "round {round}: {p:?} nr {n} args {a:?}"
            );
        }
    }
}

#[test]
fn long_chains_compile_with_trampolines() {
    let rules = (0..200u64)
        .map(|i| {
            Rule::new(["ioctl"], Action::Errno(100)).with_arg(ArgCond::new(
                1,
                CmpOp::Eq,
                i << 33 | i,
            ))
        })
        .chain([Rule::new(["read", "close", "write"], Action::Allow)])
        .collect();
    let p = Profile {
        default_action: Action::Errno(EPERM),
        architectures: vec![],
        rules,
        unknown_syscalls: UnknownSyscalls::Error,
        log_denied: false,
    };
    let f = p.compile_for(Arch::X86_64).unwrap();
    assert!(f.instructions() > 800);
    assert_eq!(
        eval(&f, "ioctl", args(0, 150 << 33 | 150, 0)),
        Action::Errno(100)
    );
    assert_eq!(eval(&f, "ioctl", args(0, 150, 0)), DENY);
    assert_eq!(eval(&f, "write", [0; 6]), Action::Allow);
    assert!(f.cached_allow(nr(Arch::X86_64, "close")));
}

#[test]
fn record_filter_notifies_all_but_the_report_write() {
    let f = Profile::record_filter(5).compile_for(Arch::X86_64).unwrap();
    assert_eq!(eval(&f, "write", args(5, 0, 0)), Action::Allow);
    assert_eq!(eval(&f, "write", args(1, 0, 0)), Action::UserNotify);
    assert_eq!(eval(&f, "getppid", [0; 6]), Action::UserNotify);
}

/// A random condition, in seccompiler's form and ours.
fn random_cond(rng: &mut Lcg) -> (seccompiler::SeccompCondition, ArgCond) {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};
    let (index, v, mask) = ((rng.next() % 3) as u8, rng.pick(EDGES), rng.pick(EDGES));
    let (op, ours, value) = match rng.next() % 7 {
        0 => (SeccompCmpOp::Eq, CmpOp::Eq, v),
        1 => (SeccompCmpOp::Ne, CmpOp::Ne, v),
        2 => (SeccompCmpOp::Lt, CmpOp::Lt, v),
        3 => (SeccompCmpOp::Le, CmpOp::Le, v),
        4 => (SeccompCmpOp::Gt, CmpOp::Gt, v),
        5 => (SeccompCmpOp::Ge, CmpOp::Ge, v),
        _ => {
            let theirs = SeccompCondition::new(
                index,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(mask),
                v & mask,
            );
            return (theirs.unwrap(), ArgCond::masked_eq(index, mask, v & mask));
        }
    };
    let theirs = SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).unwrap();
    (theirs, ArgCond::new(index, ours, value))
}

/// A random allow-if-any-rule-matches filter, compiled by seccompiler, and the same as a profile.
fn random_allowlist(rng: &mut Lcg, names: &[&str]) -> (Vec<BpfInsn>, Profile) {
    use seccompiler::{SeccompAction, SeccompFilter, SeccompRule, TargetArch};
    let mut theirs = std::collections::BTreeMap::new();
    let mut ours = Vec::new();
    for name in names {
        let mut rules = Vec::new();
        for _ in 0..rng.next() % 4 {
            let (conds, args): (Vec<_>, Vec<_>) =
                (0..1 + rng.next() % 2).map(|_| random_cond(rng)).unzip();
            rules.push(SeccompRule::new(conds).unwrap());
            ours.push(Rule {
                names: vec![(*name).to_owned()],
                action: Action::Allow,
                args,
            });
        }
        if !rules.is_empty() {
            theirs.insert(i64::from(nr(Arch::X86_64, name)), rules);
        }
    }
    let filter = SeccompFilter::new(
        theirs,
        SeccompAction::Errno(1),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .unwrap();
    let program: seccompiler::BpfProgram = filter.try_into().unwrap();
    let program = program
        .iter()
        .map(|i| BpfInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let profile = Profile {
        default_action: Action::Errno(1),
        architectures: vec![],
        rules: ours,
        unknown_syscalls: UnknownSyscalls::Error,
        log_denied: false,
    };
    (program, profile)
}

/// Firecracker's compiler, as an independent reference: its programs and ours must answer
/// alike (it has one match and one mismatch action per filter, so the profiles are
/// allow-if-any-rule-matches).
#[test]
fn programs_agree_with_seccompiler() {
    let mut rng = Lcg(0xf1c);
    let names = ["read", "ioctl", "socket", "mmap"];
    for round in 0..100 {
        let (theirs, p) = random_allowlist(&mut rng, &names);
        let f = p.compile_for(Arch::X86_64).unwrap();
        for _ in 0..200 {
            let n = nr(Arch::X86_64, rng.pick(&names));
            let args = [rng.pick(EDGES), rng.pick(EDGES), rng.pick(EDGES), 0, 0, 0];
            let data = SeccompData {
                nr: n,
                arch: 0xc000_003e,
                instruction_pointer: 0,
                args,
            };
            let want = crate::bpf::run(&theirs, &data, false).and_then(Action::from_ret);
            assert_eq!(
                f.evaluate_data(&data),
                want,
                "round {round}: {p:?} {data:?}"
            );
        }
    }
}
