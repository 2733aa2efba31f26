//! The child-to-parent channel: fixed-size records over a close-on-exec pipe.
//!
//! Records are 16 bytes, below `PIPE_BUF`, so each write is atomic and the
//! child never allocates to report. End of file means every writer is gone:
//! the init exited and the workload executed (close-on-exec) or exited.

use crate::outcome::LandlockStatus;
use crate::stage::Stage;
use std::os::fd::{AsRawFd, OwnedFd};

const RECORD: usize = 16;
/// The parent reads at most this many records; a sandbox that sends more is
/// misbehaving and the rest is ignored.
const MAX_RECORDS: usize = 256;

/// A message from the sandbox to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    /// A setup stage failed with `errno`; `detail` names what failed.
    Failed {
        stage: Stage,
        errno: i32,
        detail: Detail,
    },
    /// The init reports the workload's wait status.
    Exited { status: i32 },
    /// Landlock was applied: the enforcement status and how many optional
    /// rule paths were skipped.
    Landlock {
        status: LandlockStatus,
        skipped: u32,
    },
    /// A stage ended at `at_ns` (`CLOCK_MONOTONIC`); sent only when the
    /// parent asked for step times (`Prepared::step_times`).
    Step { stage: Stage, at_ns: u64 },
    /// Record mode: the number of the seccomp listener fd in the init.
    Listener { fd: i32 },
    /// A session's init finished its setup and holds the sandbox (it
    /// starts no workload; the session's commands join it); a spare's
    /// waits for its command.
    Ready,
    /// A spare's init reaped its workload and no other process is left in
    /// the sandbox: the workload's own usage (`wait4`), each saturated at
    /// `u32::MAX`; sent just before `Exited`.
    Usage {
        user_us: u32,
        sys_us: u32,
        maxrss_kb: u32,
    },
    /// A wasm workload ended: its trap kind code (0: none), whether a memory
    /// or table grow was refused by the cap, and the fuel it consumed
    /// (`u64::MAX`: not metered).
    Wasm {
        trap: u32,
        memory_limit_hit: bool,
        fuel: u64,
    },
}

/// What a failed stage names beside its errno. On the wire it is one
/// number whose meaning its stage gives (`Detail::decode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Nothing more.
    None,
    /// The index of the mount plan's failed step (stage `mount`).
    MountStep(u32),
    /// The index of the Landlock rule whose path failed (stage `landlock`).
    LandlockRule(u32),
    /// The index of the WASI preopen that failed (stage `wasm`).
    Preopen(u32),
}

impl Detail {
    fn encode(self) -> u32 {
        match self {
            Self::None => 0,
            Self::MountStep(i) => i,
            Self::LandlockRule(i) | Self::Preopen(i) => i.saturating_add(1),
        }
    }

    fn decode(stage: Stage, word: u32) -> Self {
        match stage {
            Stage::Mount => Self::MountStep(word),
            Stage::Landlock if word > 0 => Self::LandlockRule(word - 1),
            Stage::Wasm if word > 0 => Self::Preopen(word - 1),
            _ => Self::None,
        }
    }
}

impl Message {
    fn encode(self) -> [u8; RECORD] {
        let (kind, a, b, c): (u32, u32, i32, u32) = match self {
            Self::Failed {
                stage,
                errno,
                detail,
            } => (1, stage as u32, errno, detail.encode()),
            Self::Exited { status } => (2, 0, status, 0),
            Self::Landlock { status, skipped } => (3, status as u32, 0, skipped),
            Self::Listener { fd } => (4, 0, fd, 0),
            Self::Ready => (7, 0, 0, 0),
            Self::Usage {
                user_us,
                sys_us,
                maxrss_kb,
            } => (8, user_us, sys_us as i32, maxrss_kb),
            Self::Wasm {
                trap,
                memory_limit_hit,
                fuel,
            } => (
                5,
                trap | (u32::from(memory_limit_hit) << 31),
                fuel as u32 as i32,
                (fuel >> 32) as u32,
            ),
            Self::Step { stage, at_ns } => {
                (6, stage as u32, at_ns as u32 as i32, (at_ns >> 32) as u32)
            }
        };
        let mut out = [0u8; RECORD];
        out[0..4].copy_from_slice(&kind.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..12].copy_from_slice(&b.to_ne_bytes());
        out[12..16].copy_from_slice(&c.to_ne_bytes());
        out
    }

    fn decode(buf: &[u8; RECORD]) -> Option<Message> {
        let word = |i: usize| [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        let kind = u32::from_ne_bytes(word(0));
        let a = u32::from_ne_bytes(word(4));
        let b = i32::from_ne_bytes(word(8));
        let c = u32::from_ne_bytes(word(12));
        match kind {
            1 => {
                let stage = Stage::from_u32(a)?;
                Some(Self::Failed {
                    stage,
                    errno: b,
                    detail: Detail::decode(stage, c),
                })
            }
            2 => Some(Self::Exited { status: b }),
            3 => Some(Self::Landlock {
                status: LandlockStatus::from_u32(a)?,
                skipped: c,
            }),
            4 => Some(Self::Listener { fd: b }),
            5 => Some(Self::Wasm {
                trap: a & !(1 << 31),
                memory_limit_hit: a >> 31 == 1,
                fuel: u64::from(b as u32) | (u64::from(c) << 32),
            }),
            6 => Some(Self::Step {
                stage: Stage::from_u32(a)?,
                at_ns: u64::from(b as u32) | (u64::from(c) << 32),
            }),
            7 => Some(Self::Ready),
            8 => Some(Self::Usage {
                user_us: a,
                sys_us: b as u32,
                maxrss_kb: c,
            }),
            _ => None,
        }
    }
}

/// Decodes one record and encodes its message again (`None`: no message); the
/// fuzzer's entry (`crate::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) fn reencode(record: &[u8; RECORD]) -> Option<[u8; RECORD]> {
    Message::decode(record).map(Message::encode)
}

/// Sends one message; used in the child, so it only calls `write(2)`.
/// A failed send is ignored: the parent then sees the exit status alone.
pub(crate) fn send(fd: libc::c_int, msg: Message) {
    let buf = msg.encode();
    // SAFETY: `buf` is a live 16-byte array; `fd` is the channel's write end.
    unsafe { libc::write(fd, buf.as_ptr().cast(), RECORD) };
}

/// Reads whatever messages are available without blocking; returns `true`
/// once the channel reached end of file.
pub(crate) fn drain(fd: &OwnedFd, out: &mut Vec<Message>) -> bool {
    let mut buf = [0u8; RECORD];
    loop {
        // SAFETY: `buf` is a live 16-byte array; the fd is non-blocking and ours.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), RECORD) };
        match n {
            0 => return true,
            n if n as usize == RECORD => {
                if out.len() < MAX_RECORDS {
                    out.extend(Message::decode(&buf));
                }
            }
            n if n < 0 => {
                let err = std::io::Error::last_os_error().raw_os_error();
                if err == Some(libc::EINTR) {
                    continue;
                }
                return err != Some(libc::EAGAIN);
            }
            _ => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for msg in [
            Message::Failed {
                stage: Stage::Mount,
                errno: libc::ENOENT,
                detail: Detail::MountStep(0),
            },
            Message::Failed {
                stage: Stage::Landlock,
                errno: libc::ENOENT,
                detail: Detail::LandlockRule(0),
            },
            Message::Failed {
                stage: Stage::Wasm,
                errno: libc::EACCES,
                detail: Detail::Preopen(3),
            },
            Message::Failed {
                stage: Stage::Exec,
                errno: libc::ENOENT,
                detail: Detail::None,
            },
            Message::Exited { status: 9 },
            Message::Usage {
                user_us: 1_500,
                sys_us: u32::MAX,
                maxrss_kb: 2_048,
            },
            Message::Landlock {
                status: LandlockStatus::PartiallyEnforced,
                skipped: 2,
            },
            Message::Wasm {
                trap: 3,
                memory_limit_hit: true,
                fuel: 0x1_2345_6789,
            },
            Message::Wasm {
                trap: 0,
                memory_limit_hit: false,
                fuel: u64::MAX,
            },
            Message::Step {
                stage: Stage::Seccomp,
                at_ns: 0x1234_5678_9abc_def0,
            },
        ] {
            assert_eq!(Message::decode(&msg.encode()), Some(msg));
        }
        assert_eq!(Message::decode(&[0xff; RECORD]), None);
    }
}
