//! Compiling a profile to a BPF program.
//!
//! Layout, for one architecture:
//! 1. `arch` check: another calling convention (i386 via `int 0x80`, arm32) is killed, since
//!    its syscall numbers are not the ones filtered.
//! 2. On x86_64, x32 syscalls (`nr & 0x40000000`) are killed too (`nr == -1`, which ptrace and
//!    `syscall(-1)` produce, gets the default action).
//! 3. A binary search on the syscall number over ranges of syscalls with the same outcome
//!    (the allowlist is mostly contiguous ranges): about eight comparisons for the default
//!    profile, instead of a chain of hundreds.
//! 4. At a leaf, a return, or for syscalls with argument conditions their rules, most
//!    restrictive first.
//!
//! The dispatch reads only `arch` and `nr`, so the kernel's action cache (Linux 5.11+) proves
//! every syscall allowed without conditions constant and skips the filter for it altogether:
//! `getppid`, `read`, `openat`, `close` cost nothing. Only syscalls with argument conditions or
//! that are denied run the program.

use std::collections::BTreeMap;

use crate::action::Action;
use crate::arch::Arch;
use crate::bpf::{Asm, BpfInsn, Cond, Label, Target};
use crate::error::SeccompError;
use crate::filter::CompiledFilter;
use crate::profile::{ArgCond, CmpOp, Profile, UnknownSyscalls};
use crate::syscalls::{self, Lookup};

/// The kernel's `BPF_MAXINSNS`.
const MAX_INSNS: usize = 4096;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

/// The rules of one syscall, most restrictive first, ending at the first unconditional one.
type Chain<'a> = Vec<(Action, &'a [ArgCond])>;

/// A rule of one syscall with its index in the profile.
type Indexed<'a> = (usize, Action, &'a [ArgCond]);

/// What one range of syscall numbers leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    Chain(usize),
}

impl Profile {
    /// Compile for the native architecture: validate, resolve names, build the BPF program.
    /// Runs in the parent, before clone, so a bad profile fails before anything is created and
    /// the child only has to [`CompiledFilter::apply`] it.
    ///
    /// ```
    /// use nucleus_seccomp::Profile;
    /// let filter = Profile::default_agent().with_log_denied().compile()?;
    /// assert!(filter.skipped().is_empty());
    /// # Ok::<(), nucleus_seccomp::SeccompError>(())
    /// ```
    pub fn compile(&self) -> Result<CompiledFilter, SeccompError> {
        let arch = Arch::native().ok_or_else(|| SeccompError::UnsupportedArch {
            arch: std::env::consts::ARCH.to_owned(),
        })?;
        self.compile_for(arch)
    }

    /// Compile for `arch` (x86_64 or aarch64).
    pub fn compile_for(&self, arch: Arch) -> Result<CompiledFilter, SeccompError> {
        self.validate()?;
        let audit_arch = arch
            .audit_arch()
            .filter(|_| syscalls::has_table(arch))
            .ok_or_else(|| SeccompError::UnsupportedArch {
                arch: arch.to_string(),
            })?;
        if !self.architectures.is_empty() && !self.architectures.contains(&arch) {
            return Err(SeccompError::ArchNotInProfile {
                arch: arch.to_string(),
            });
        }
        let (chains, skipped) = self.resolve(arch);
        let program = generate(arch, audit_arch, self.default_action, &chains);
        if program.len() > MAX_INSNS {
            return Err(SeccompError::ProgramTooLong { len: program.len() });
        }
        let mut flags = 0;
        if self.log_denied {
            flags |= libc::SECCOMP_FILTER_FLAG_LOG;
        }
        Ok(CompiledFilter::new(
            program, flags, arch, audit_arch, skipped, self,
        ))
    }

    /// Per syscall number, its rules sorted by precedence (stable, so profile order breaks
    /// ties) and cut after the first that always matches; and the unknown names skipped.
    fn resolve(&self, arch: Arch) -> (BTreeMap<u32, Chain<'_>>, Vec<String>) {
        let mut chains: BTreeMap<u32, Vec<Indexed<'_>>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for name in &rule.names {
                match syscalls::lookup(arch, name) {
                    Lookup::Number(nr) => {
                        let chain = chains.entry(nr).or_default();
                        if !chain.iter().any(|(j, _, _)| *j == i) {
                            chain.push((i, rule.action, &rule.args));
                        }
                    }
                    Lookup::OtherArch => {}
                    Lookup::Unknown => {
                        debug_assert_eq!(self.unknown_syscalls, UnknownSyscalls::Skip);
                        if !skipped.contains(name) {
                            skipped.push(name.clone());
                        }
                    }
                }
            }
        }
        let chains = chains
            .into_iter()
            .map(|(nr, mut rules)| {
                rules.sort_by_key(|(_, action, _)| action.precedence());
                if let Some(end) = rules.iter().position(|(_, _, args)| args.is_empty()) {
                    rules.truncate(end + 1);
                }
                (nr, rules.into_iter().map(|(_, a, c)| (a, c)).collect())
            })
            .collect();
        (chains, skipped)
    }
}

/// The outcome of each syscall number, as ranges `(first number, leaf)`, merged when
/// neighbours agree; the first range starts at 0 and the last runs to `u32::MAX`.
fn ranges<'c, 'a>(
    default: Action,
    chains: &'c BTreeMap<u32, Chain<'a>>,
) -> (Vec<(u32, Leaf)>, Vec<&'c Chain<'a>>) {
    let default_leaf = Leaf::Ret(default.to_ret());
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    let mut blocks = Vec::new();
    let push = |start: u32, leaf: Leaf, out: &mut Vec<(u32, Leaf)>| {
        if out.last().map(|(_, l)| *l) != Some(leaf) {
            out.push((start, leaf));
        }
    };
    let mut next = 0u32;
    for (&nr, chain) in chains {
        if nr > next {
            push(next, default_leaf, &mut out);
        }
        let leaf = match chain.as_slice() {
            [(action, [])] => Leaf::Ret(action.to_ret()),
            rules if rules.iter().all(|(a, _)| *a == default) => default_leaf,
            _ => {
                blocks.push(chain);
                Leaf::Chain(blocks.len() - 1)
            }
        };
        push(nr, leaf, &mut out);
        next = nr + 1;
    }
    push(next, default_leaf, &mut out);
    (out, blocks)
}

fn generate(
    arch: Arch,
    audit_arch: u32,
    default: Action,
    chains: &BTreeMap<u32, Chain<'_>>,
) -> Vec<BpfInsn> {
    let mut asm = Asm::default();
    let kill = Action::KillProcess.to_ret();
    let native = asm.label();
    asm.ld(OFFSET_ARCH);
    asm.jmp(Cond::Eq, audit_arch, Target::To(native), Target::Next);
    asm.ret(kill);
    asm.bind(native);
    asm.ld(OFFSET_NR);
    if arch == Arch::X86_64 {
        let dispatch = asm.label();
        let minus_one = asm.label();
        asm.jmp(
            Cond::Ge,
            X32_SYSCALL_BIT,
            Target::Next,
            Target::To(dispatch),
        );
        asm.jmp(Cond::Eq, u32::MAX, Target::To(minus_one), Target::Next);
        asm.ret(kill);
        asm.bind(minus_one);
        asm.ret(default.to_ret());
        asm.bind(dispatch);
    }
    let (ranges, blocks) = ranges(default, chains);
    tree(&mut asm, &ranges, &blocks, default);
    asm.finish()
}

/// A balanced binary search over `ranges` (at least one), on the number in A.
fn tree(asm: &mut Asm, ranges: &[(u32, Leaf)], blocks: &[&Chain<'_>], default: Action) {
    match ranges {
        [] => asm.ret(default.to_ret()),
        [(_, Leaf::Ret(k))] => asm.ret(*k),
        [(_, Leaf::Chain(b))] => chain(asm, blocks[*b], default),
        _ => {
            let mid = ranges.len() / 2;
            let right = asm.label();
            asm.jmp(Cond::Ge, ranges[mid].0, Target::To(right), Target::Next);
            tree(asm, &ranges[..mid], blocks, default);
            asm.bind(right);
            tree(asm, &ranges[mid..], blocks, default);
        }
    }
}

/// The rules of one syscall: each rule's conditions, falling to the next rule when one fails.
fn chain(asm: &mut Asm, rules: &Chain<'_>, default: Action) {
    for (action, args) in rules {
        if args.is_empty() {
            asm.ret(action.to_ret());
            return;
        }
        let next = asm.label();
        for cond in args.iter() {
            condition(asm, cond, next);
        }
        asm.ret(action.to_ret());
        asm.bind(next);
    }
    asm.ret(default.to_ret());
}

// Longer than most functions here: one arm per comparison, each a short word-by-word
// sequence, kept in one match so that the arms can be checked side by side.
/// Falls through when `cond` holds, jumps to `fail` when not. Arguments are 64-bit, compared
/// as high word then low word (little-endian `struct seccomp_data`: low word first).
fn condition(asm: &mut Asm, cond: &ArgCond, fail: Label) {
    let lo_off = 16 + 8 * u32::from(cond.index);
    let hi_off = lo_off + 4;
    let (v_hi, v_lo) = ((cond.value >> 32) as u32, cond.value as u32);
    let fail = Target::To(fail);
    let ok = asm.label();
    let pass = Target::To(ok);
    match cond.op {
        CmpOp::MaskedEq => {
            let (w_hi, w_lo) = ((cond.value_two >> 32) as u32, cond.value_two as u32);
            for (off, mask, want) in [(hi_off, v_hi, w_hi), (lo_off, v_lo, w_lo)] {
                if mask == 0 && want == 0 {
                    continue;
                }
                asm.ld(off);
                if mask != u32::MAX {
                    asm.and(mask);
                }
                asm.jmp(Cond::Eq, want, Target::Next, fail);
            }
        }
        CmpOp::Eq => {
            asm.ld(hi_off);
            asm.jmp(Cond::Eq, v_hi, Target::Next, fail);
            asm.ld(lo_off);
            asm.jmp(Cond::Eq, v_lo, Target::Next, fail);
        }
        CmpOp::Ne => {
            asm.ld(hi_off);
            asm.jmp(Cond::Eq, v_hi, Target::Next, pass);
            asm.ld(lo_off);
            asm.jmp(Cond::Eq, v_lo, fail, Target::Next);
        }
        CmpOp::Gt | CmpOp::Ge => {
            asm.ld(hi_off);
            asm.jmp(Cond::Gt, v_hi, pass, Target::Next);
            asm.jmp(Cond::Eq, v_hi, Target::Next, fail);
            asm.ld(lo_off);
            let c = if cond.op == CmpOp::Gt {
                Cond::Gt
            } else {
                Cond::Ge
            };
            asm.jmp(c, v_lo, Target::Next, fail);
        }
        CmpOp::Lt | CmpOp::Le => {
            // arg < v is !(arg >= v); arg <= v is !(arg > v).
            asm.ld(hi_off);
            asm.jmp(Cond::Gt, v_hi, fail, Target::Next);
            asm.jmp(Cond::Eq, v_hi, Target::Next, pass);
            asm.ld(lo_off);
            let c = if cond.op == CmpOp::Lt {
                Cond::Ge
            } else {
                Cond::Gt
            };
            asm.jmp(c, v_lo, fail, Target::Next);
        }
    }
    asm.bind(ok);
}
