//! Device access rules: the v1 `devices` controller's lines, and on cgroup
//! v2 (which has no such controller) an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` compiled from the same rules and attached to
//! the cgroup, the way runc and crun do it.
//!
//! Semantics are v1's: the last rule that matches an access decides; no
//! match denies. An allow rule matches when it grants every access asked
//! (`rw` is not covered by `r`); a deny rule when it names any of them (a
//! deny of `w` refuses an `rw` open), so a partial rule never lets more
//! through than v1 would.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::CgroupError;
use crate::Cgroup;

/// Which nodes a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Every kind (`a`).
    All,
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
}

/// `mknod`, read and write, as v1's `m`, `r`, `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceAccess {
    /// `mknod` of the node.
    pub mknod: bool,
    /// Opening it for reading.
    pub read: bool,
    /// Opening it for writing.
    pub write: bool,
}

impl DeviceAccess {
    /// `mknod` only (`m`).
    pub const MKNOD: DeviceAccess = DeviceAccess {
        mknod: true,
        read: false,
        write: false,
    };
    /// Everything (`rwm`).
    pub const ALL: DeviceAccess = DeviceAccess {
        mknod: true,
        read: true,
        write: true,
    };

    /// From v1's letters (`"rwm"`, `"r"`, ...); anything else is an error.
    ///
    /// ```
    /// use nucleus_cgroup::DeviceAccess;
    /// assert!(DeviceAccess::parse("rw").unwrap().write);
    /// assert!(DeviceAccess::parse("rx").is_err());
    /// ```
    pub fn parse(letters: &str) -> Result<Self, CgroupError> {
        let mut access = DeviceAccess::default();
        for c in letters.chars() {
            match c {
                'r' => access.read = true,
                'w' => access.write = true,
                'm' => access.mknod = true,
                _ => {
                    return Err(CgroupError::InvalidDeviceRule {
                        rule: letters.to_owned(),
                        reason: "access is a combination of r, w and m",
                    })
                }
            }
        }
        Ok(access)
    }

    /// The kernel's `BPF_DEVCG_ACC_*` bits.
    fn bits(self) -> i32 {
        i32::from(self.mknod) | i32::from(self.read) << 1 | i32::from(self.write) << 2
    }
}

/// One rule: allow or deny `access` to nodes of `kind` with this major and
/// minor number (`None`: any).
///
/// ```
/// use nucleus_cgroup::{DeviceAccess, DeviceKind, DeviceRule};
/// let null = DeviceRule {
///     allow: true,
///     kind: DeviceKind::Char,
///     major: Some(1),
///     minor: Some(3),
///     access: DeviceAccess::parse("rwm")?,
/// };
/// assert_eq!(null.to_string(), "c 1:3 rwm");
/// # Ok::<(), nucleus_cgroup::CgroupError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (else deny).
    pub allow: bool,
    /// The kind of node.
    pub kind: DeviceKind,
    /// The major number, or any.
    pub major: Option<u32>,
    /// The minor number, or any.
    pub minor: Option<u32>,
    /// The access it allows or denies.
    pub access: DeviceAccess,
}

/// The line v1's `devices.allow` / `devices.deny` take: `c 1:3 rwm`.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or("*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (on, c) in [
            (self.access.read, 'r'),
            (self.access.write, 'w'),
            (self.access.mknod, 'm'),
        ] {
            if on {
                access.push(c);
            }
        }
        write!(f, "{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

// The eBPF instructions used, as the kernel's uapi names them.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// One instruction, `struct bpf_insn` as the kernel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | src << 4,
        off,
        imm,
    }
}

/// The program for `rules`: registers r2..r5 hold the node's kind, the
/// access asked, major and minor; the rules are tried last first, the first
/// match returns its verdict, and nothing matched returns deny.
///
/// ```
/// use nucleus_cgroup::{compile_device_program, DeviceAccess, DeviceKind, DeviceRule};
/// let rules = [DeviceRule {
///     allow: true,
///     kind: DeviceKind::Char,
///     major: Some(1),
///     minor: Some(3),
///     access: DeviceAccess::parse("rw")?,
/// }];
/// assert_eq!(compile_device_program(&rules).len(), 6 + 8 + 2);
/// # Ok::<(), nucleus_cgroup::CgroupError>(())
/// ```
pub fn compile_device_program(rules: &[DeviceRule]) -> Vec<Insn> {
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
    // access_type = access << 16 | kind.
    let mut prog = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        prog.extend(rule_block(rule));
    }
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// One rule's tests, each jumping past the block when it fails, then the
/// verdict.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    let mut block = Vec::new();
    let mut jumps = Vec::new();
    let mut test = |block: &mut Vec<Insn>, reg: u8, code: u8, imm: i32| {
        jumps.push(block.len());
        block.push(insn(code, reg, 0, 0, imm));
    };
    match rule.kind {
        DeviceKind::All => {}
        DeviceKind::Char => test(&mut block, 2, JMP_JNE_K, BPF_DEVCG_DEV_CHAR),
        DeviceKind::Block => test(&mut block, 2, JMP_JNE_K, BPF_DEVCG_DEV_BLOCK),
    }
    let bits = rule.access.bits();
    block.push(insn(ALU32_MOV_X, 6, 3, 0, 0));
    if rule.allow {
        // Every access asked is granted: asked & !granted == 0.
        block.push(insn(ALU32_AND_K, 6, 0, 0, !bits & 7));
        test(&mut block, 6, JMP_JNE_K, 0);
    } else {
        // Any access asked is denied: asked & denied != 0.
        block.push(insn(ALU32_AND_K, 6, 0, 0, bits));
        test(&mut block, 6, JMP_JEQ_K, 0);
    }
    if let Some(major) = rule.major {
        test(&mut block, 4, JMP_JNE_K, major as i32);
    }
    if let Some(minor) = rule.minor {
        test(&mut block, 5, JMP_JNE_K, minor as i32);
    }
    block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let end = block.len();
    for at in jumps {
        block[at].off = (end - at - 1) as i16;
    }
    block
}

impl Cgroup {
    /// Allows the devices `rules` allow and nothing else, for every process
    /// in the cgroup and below, by the v2 device program (on a hybrid
    /// machine too, in its unified hierarchy). The program stays attached
    /// until the cgroup is removed. Needs `CAP_BPF` or `CAP_SYS_ADMIN`.
    ///
    /// ```no_run
    /// use nucleus_cgroup::{Cgroup, CgroupConfig, DeviceAccess, DeviceKind, DeviceRule, Limits};
    /// let cg = Cgroup::create(&Limits::default(), &CgroupConfig::default())?;
    /// cg.restrict_devices(&[DeviceRule {
    ///     allow: true,
    ///     kind: DeviceKind::Char,
    ///     major: Some(1),
    ///     minor: Some(3),
    ///     access: DeviceAccess::parse("rw")?,
    /// }])?;
    /// # Ok::<(), nucleus_cgroup::CgroupError>(())
    /// ```
    pub fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        let dir = self.clone_into_fd().ok_or(CgroupError::NoDeviceCgroup)?;
        attach(dir, rules)
    }
}

/// Loads the program for `rules` and attaches it to the v2 cgroup `dir`
/// (with `BPF_F_ALLOW_MULTI`, so programs of the parents still run). The
/// program lives as long as the cgroup. Needs `CAP_BPF` or `CAP_SYS_ADMIN`.
fn attach(dir: BorrowedFd<'_>, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let prog = compile_device_program(rules);
    let fd = load(&prog).map_err(|source| CgroupError::DeviceProgram { op: "load", source })?;
    prog_attach(dir, fd.as_raw_fd()).map_err(|source| CgroupError::DeviceProgram {
        op: "attach",
        source,
    })
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// `bpf(2)` with `attr`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: attr is a live, initialised value of the layout the kernel
    // expects for cmd, and its size is passed with it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn load(prog: &[Insn]) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..LoadAttr::default()
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn prog_attach(dir: BorrowedFd<'_>, prog: i32) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        a: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: DeviceAccess::parse(a).unwrap(),
        }
    }

    /// Runs the program in a tiny interpreter of the instructions it uses.
    fn eval(prog: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16 | kind) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JEQ_K if r[dst] == i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JEQ_K | JMP_JNE_K => {}
                JMP_EXIT => return r[0],
                other => panic!("unknown instruction {other:#x}"),
            }
        }
    }

    const R: i32 = 2;
    const W: i32 = 4;
    const M: i32 = 1;
    const C: i32 = BPF_DEVCG_DEV_CHAR;
    const B: i32 = BPF_DEVCG_DEV_BLOCK;

    #[test]
    fn no_rule_denies() {
        let p = compile_device_program(&[]);
        assert_eq!(eval(&p, C, R, 1, 3), 0);
    }

    #[test]
    fn last_match_wins() {
        let p = compile_device_program(&[
            rule(false, DeviceKind::All, None, None, "rwm"),
            rule(true, DeviceKind::Char, Some(1), Some(3), "rwm"),
            rule(false, DeviceKind::Char, Some(1), None, "w"),
        ]);
        assert_eq!(eval(&p, C, R, 1, 3), 1, "read of 1:3 allowed");
        assert_eq!(
            eval(&p, C, R | W, 1, 3),
            0,
            "rw of 1:3: the deny of w matches"
        );
        assert_eq!(eval(&p, C, R, 1, 5), 0, "1:5 never allowed");
        assert_eq!(eval(&p, B, R, 1, 3), 0, "a block 1:3 is not the char one");
    }

    #[test]
    fn allow_needs_every_access() {
        let p = compile_device_program(&[rule(true, DeviceKind::Char, Some(1), Some(3), "r")]);
        assert_eq!(eval(&p, C, R, 1, 3), 1);
        assert_eq!(eval(&p, C, R | W, 1, 3), 0);
        assert_eq!(eval(&p, C, M, 1, 3), 0);
    }

    #[test]
    fn wildcards() {
        let p = compile_device_program(&[
            rule(true, DeviceKind::Char, None, None, "m"),
            rule(true, DeviceKind::Char, Some(136), None, "rwm"),
            rule(true, DeviceKind::All, None, Some(7), "r"),
        ]);
        assert_eq!(eval(&p, C, M, 8, 0), 1, "mknod of any char node");
        assert_eq!(eval(&p, B, M, 8, 0), 0, "not of a block node");
        assert_eq!(eval(&p, C, R | W, 136, 4), 1, "any pty slave");
        assert_eq!(eval(&p, B, R, 9, 7), 1, "minor 7 of any kind, read");
        assert_eq!(eval(&p, B, W, 9, 7), 0);
    }

    #[test]
    fn allow_all_then_deny() {
        let p = compile_device_program(&[
            rule(true, DeviceKind::All, None, None, "rwm"),
            rule(false, DeviceKind::Block, Some(8), None, "rwm"),
        ]);
        assert_eq!(eval(&p, C, R | W | M, 4, 1), 1);
        assert_eq!(eval(&p, B, R, 8, 0), 0);
        assert_eq!(eval(&p, B, R, 7, 0), 1);
    }

    #[test]
    fn lines() {
        assert_eq!(
            rule(false, DeviceKind::All, None, None, "rwm").to_string(),
            "a *:* rwm"
        );
        assert_eq!(
            rule(true, DeviceKind::Block, Some(8), None, "mr").to_string(),
            "b 8:* rm"
        );
    }
}
