//! A small classic-BPF assembler (forward labels, long jumps relaxed through `ja`) and an
//! interpreter for the subset seccomp filters use, to test programs without a kernel and to
//! predict which syscalls the kernel's action cache will allow without running the filter.

use serde::{Deserialize, Serialize};

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// A forward jump target.
pub(crate) type Label = usize;

/// Where a conditional jump goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The next instruction.
    Next,
    /// A label bound later.
    To(Label),
}

/// A conditional jump's test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Eq,
    Gt,
    Ge,
    #[allow(dead_code)]
    Set,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Ld(u32),
    And(u32),
    Jmp(Cond, u32, Target, Target),
    Ja(Label),
    Ret(u32),
    Bind(Label),
}

/// Builds a program with symbolic forward labels.
#[derive(Debug, Default)]
pub(crate) struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    pub(crate) fn bind(&mut self, l: Label) {
        self.ops.push(Op::Bind(l));
    }
    /// `A = data[offset]` (32-bit word of `struct seccomp_data`).
    pub(crate) fn ld(&mut self, offset: u32) {
        self.ops.push(Op::Ld(offset));
    }
    pub(crate) fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }
    pub(crate) fn jmp(&mut self, cond: Cond, k: u32, jt: Target, jf: Target) {
        self.ops.push(Op::Jmp(cond, k, jt, jf));
    }
    pub(crate) fn ret(&mut self, k: u32) {
        self.ops.push(Op::Ret(k));
    }

    /// Positions: for each op, the instruction index it has (labels take none); for each
    /// label, the index of the instruction after it.
    fn layout(&self) -> (Vec<usize>, Vec<usize>) {
        let mut at = Vec::with_capacity(self.ops.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for op in &self.ops {
            at.push(pc);
            match op {
                Op::Bind(l) => labels[*l] = pc,
                _ => pc += 1,
            }
        }
        (at, labels)
    }

    /// Give every conditional jump farther than 255 instructions a `ja` trampoline, until
    /// none is left (each insertion only lengthens other jumps, so this ends).
    fn relax(&mut self) {
        loop {
            let (at, labels) = self.layout();
            let far = |from: usize, t: Target| match t {
                Target::To(l) => labels[l] - from - 1 > 255,
                Target::Next => false,
            };
            let found = self.ops.iter().enumerate().find_map(|(i, op)| match *op {
                Op::Jmp(c, k, jt, jf) if far(at[i], jt) || far(at[i], jf) => {
                    Some((i, c, k, jt, jf))
                }
                _ => None,
            });
            let Some((i, cond, k, jt, jf)) = found else {
                return;
            };
            let after = self.label();
            let mut inserted = Vec::new();
            let mut retarget = |t: Target, far_: bool, asm: &mut Asm| match t {
                Target::To(l) if far_ => {
                    let tramp = asm.label();
                    inserted.extend([Op::Bind(tramp), Op::Ja(l)]);
                    Target::To(tramp)
                }
                Target::Next => Target::To(after),
                t => t,
            };
            let new_jt = retarget(jt, far(at[i], jt), self);
            let new_jf = retarget(jf, far(at[i], jf), self);
            inserted.push(Op::Bind(after));
            self.ops[i] = Op::Jmp(cond, k, new_jt, new_jf);
            self.ops.splice(i + 1..i + 1, inserted);
        }
    }

    /// The finished program.
    pub(crate) fn finish(mut self) -> Vec<BpfInsn> {
        self.relax();
        let (at, labels) = self.layout();
        let off = |from: usize, t: Target| match t {
            Target::Next => 0,
            Target::To(l) => (labels[l] - from - 1) as u8,
        };
        let mut out = Vec::with_capacity(self.ops.len());
        for (i, op) in self.ops.iter().enumerate() {
            let insn = |code, jt, jf, k| BpfInsn { code, jt, jf, k };
            out.push(match *op {
                Op::Bind(_) => continue,
                Op::Ld(k) => insn(BPF_LD_W_ABS, 0, 0, k),
                Op::And(k) => insn(BPF_ALU_AND_K, 0, 0, k),
                Op::Ret(k) => insn(BPF_RET_K, 0, 0, k),
                Op::Ja(l) => insn(BPF_JMP_JA, 0, 0, (labels[l] - at[i] - 1) as u32),
                Op::Jmp(c, k, jt, jf) => {
                    let code = match c {
                        Cond::Eq => BPF_JMP_JEQ_K,
                        Cond::Gt => BPF_JMP_JGT_K,
                        Cond::Ge => BPF_JMP_JGE_K,
                        Cond::Set => BPF_JMP_JSET_K,
                    };
                    insn(code, off(at[i], jt), off(at[i], jf), k)
                }
            });
        }
        out
    }
}

/// The input of a seccomp filter (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// Syscall number.
    pub nr: u32,
    /// `AUDIT_ARCH_*` of the calling convention.
    pub arch: u32,
    /// Instruction pointer.
    pub instruction_pointer: u64,
    /// The six arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at `offset`, as a little-endian kernel lays it out; `None` when the
    /// offset is outside the struct.
    fn word(&self, offset: u32) -> Option<u32> {
        let lo_hi = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        match offset {
            0 => Some(self.nr),
            4 => Some(self.arch),
            8 | 12 => Some(lo_hi(self.instruction_pointer, offset == 12)),
            16..=60 if offset % 4 == 0 => {
                let i = ((offset - 16) / 8) as usize;
                Some(lo_hi(self.args[i], (offset - 16) % 8 == 4))
            }
            _ => None,
        }
    }
}

/// Run `prog` on `data`. With `const_only`, give up (`None`) on any load other than `nr` and
/// `arch`, as the kernel's action-cache emulator does (`seccomp_is_const_allow`).
pub(crate) fn run(prog: &[BpfInsn], data: &SeccompData, const_only: bool) -> Option<u32> {
    run_counted(prog, data, const_only).map(|(ret, _)| ret)
}

/// [`run`], also counting the instructions executed.
pub(crate) fn run_counted(
    prog: &[BpfInsn],
    data: &SeccompData,
    const_only: bool,
) -> Option<(u32, usize)> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    while let Some(insn) = prog.get(pc) {
        steps += 1;
        let k = insn.k;
        let taken = match insn.code {
            BPF_LD_W_ABS => {
                if const_only && k != 0 && k != 4 {
                    return None;
                }
                a = data.word(k)?;
                None
            }
            BPF_ALU_AND_K => {
                a &= k;
                None
            }
            BPF_RET_K => return Some((k, steps)),
            BPF_JMP_JA => {
                pc += k as usize;
                None
            }
            BPF_JMP_JEQ_K => Some(a == k),
            BPF_JMP_JGT_K => Some(a > k),
            BPF_JMP_JGE_K => Some(a >= k),
            BPF_JMP_JSET_K => Some(a & k != 0),
            _ => return None,
        };
        pc += 1;
        if let Some(t) = taken {
            pc += usize::from(if t { insn.jt } else { insn.jf });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_jumps_get_trampolines() {
        let mut asm = Asm::default();
        let far = asm.label();
        asm.ld(0);
        asm.jmp(Cond::Eq, 7, Target::To(far), Target::Next);
        for _ in 0..300 {
            asm.ret(1);
        }
        asm.bind(far);
        asm.ret(2);
        let prog = asm.finish();
        assert_eq!(prog.len(), 304);
        let hit = SeccompData {
            nr: 7,
            ..Default::default()
        };
        assert_eq!(run(&prog, &hit, true), Some(2));
        assert_eq!(run(&prog, &SeccompData::default(), true), Some(1));
    }

    #[test]
    fn const_only_refuses_argument_loads() {
        let mut asm = Asm::default();
        asm.ld(16);
        asm.ret(0);
        let prog = asm.finish();
        assert_eq!(run(&prog, &SeccompData::default(), false), Some(0));
        assert_eq!(run(&prog, &SeccompData::default(), true), None);
    }
}
