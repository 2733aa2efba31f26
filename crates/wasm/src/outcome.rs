//! How a run ended: the exit code, and the trap if there was one.

use serde::{Deserialize, Serialize};
use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

/// The exit code of a run that trapped (any [`TrapKind`] but [`TrapKind::Deadline`]).
///
/// 134 is `128 + SIGABRT`, what the wasmtime CLI and a shell show for an aborted program, so
/// users read it as "crashed". It stays clear of the runner's own codes (124 timeout, 125
/// setup failure, 126, 127). A guest can `proc_exit(134)` itself, and a host abort also ends
/// with 134: [`WasmOutcome::trap`] (and the runner's `signal`) tell these apart.
pub const TRAP_EXIT_CODE: i32 = 134;

/// The exit code of a run stopped by its deadline: 124, as `timeout(1)` and the runner's own
/// wall-clock timeout.
pub const DEADLINE_EXIT_CODE: i32 = 124;

/// Why the guest was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TrapKind {
    /// An `unreachable` instruction (Rust's `panic!` in wasm ends here).
    Unreachable,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A misaligned atomic access.
    HeapMisaligned,
    /// A table access out of bounds.
    TableOutOfBounds,
    /// An indirect call through a null table entry.
    IndirectCallToNull,
    /// An indirect call with the wrong signature.
    BadSignature,
    /// Integer overflow (`i32.div_s` of `MIN / -1`).
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// A float-to-integer conversion out of range.
    BadConversionToInteger,
    /// The wasm call stack was exhausted.
    StackOverflow,
    /// The deadline passed (epoch interruption, or a host call cancelled).
    Deadline,
    /// The fuel ran out.
    OutOfFuel,
    /// The module's initial memory or tables exceed the cap, so it could not be instantiated.
    MemoryLimit,
    /// A host (WASI) function failed in a way that ends the guest.
    Host,
    /// Another wasm trap (GC, component model, ...); the message says which.
    Other,
}

/// Every kind, in the order of [`TrapKind::code`] (1-based).
const KINDS: [TrapKind; 15] = [
    TrapKind::Unreachable,
    TrapKind::MemoryOutOfBounds,
    TrapKind::HeapMisaligned,
    TrapKind::TableOutOfBounds,
    TrapKind::IndirectCallToNull,
    TrapKind::BadSignature,
    TrapKind::IntegerOverflow,
    TrapKind::IntegerDivisionByZero,
    TrapKind::BadConversionToInteger,
    TrapKind::StackOverflow,
    TrapKind::Deadline,
    TrapKind::OutOfFuel,
    TrapKind::MemoryLimit,
    TrapKind::Host,
    TrapKind::Other,
];

impl TrapKind {
    /// A stable number for the kind (1 to 15; 0 is free for "no trap"), for fixed-size
    /// messages such as the runner's child-to-parent channel.
    pub fn code(self) -> u32 {
        KINDS
            .iter()
            .position(|k| *k == self)
            .map_or(0, |i| i as u32 + 1)
    }

    /// The kind of a [`TrapKind::code`]; `None` for 0 or an unknown number.
    pub fn from_code(code: u32) -> Option<TrapKind> {
        KINDS.get((code as usize).checked_sub(1)?).copied()
    }

    fn from_trap(trap: Trap) -> TrapKind {
        match trap {
            Trap::UnreachableCodeReached => TrapKind::Unreachable,
            Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
            Trap::HeapMisaligned => TrapKind::HeapMisaligned,
            Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
            Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
            Trap::BadSignature => TrapKind::BadSignature,
            Trap::IntegerOverflow => TrapKind::IntegerOverflow,
            Trap::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
            Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
            Trap::StackOverflow => TrapKind::StackOverflow,
            // The only interrupt this host asks for is the deadline's epoch.
            Trap::Interrupt => TrapKind::Deadline,
            Trap::OutOfFuel => TrapKind::OutOfFuel,
            _ => TrapKind::Other,
        }
    }
}

/// How a run ended. Serialized into the runner's `--json` result.
///
/// ```
/// use nucleus_wasm::{TrapKind, WasmOutcome};
///
/// let o = WasmOutcome::exited(3);
/// assert_eq!(o.exit_code, 3);
/// assert_eq!(serde_json::to_value(&o)?["trap"], serde_json::Value::Null);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WasmOutcome {
    /// What the process should exit with: the guest's `proc_exit` code (0 when `_start`
    /// returns, 1 when a component's `run` returns an error), [`TRAP_EXIT_CODE`] for a trap,
    /// [`DEADLINE_EXIT_CODE`] for the deadline. WASI preview 1 allows exit codes 0 to 125: a
    /// `proc_exit(126)` or more fails in the host and counts as a [`TrapKind::Host`] trap.
    pub exit_code: i32,
    /// The trap, when the guest was stopped by one.
    pub trap: Option<TrapKind>,
    /// Wasmtime's description of the trap, with the wasm backtrace when known.
    pub trap_message: Option<String>,
    /// Fuel consumed, when fuel was metered.
    pub fuel_consumed: Option<u64>,
    /// Whether the guest asked for more memory or table than the cap allowed (a refused
    /// `memory.grow` returns -1 to the guest and does not trap).
    pub memory_limit_hit: bool,
}

impl WasmOutcome {
    /// A guest that exited with `code`.
    pub fn exited(code: i32) -> WasmOutcome {
        WasmOutcome {
            exit_code: code,
            trap: None,
            trap_message: None,
            fuel_consumed: None,
            memory_limit_hit: false,
        }
    }

    /// A guest stopped by `kind`.
    pub fn trapped(kind: TrapKind, message: String) -> WasmOutcome {
        let exit_code = match kind {
            TrapKind::Deadline => DEADLINE_EXIT_CODE,
            _ => TRAP_EXIT_CODE,
        };
        WasmOutcome {
            exit_code,
            trap: Some(kind),
            trap_message: Some(message),
            fuel_consumed: None,
            memory_limit_hit: false,
        }
    }

    /// The outcome of a call that returned `error`: `proc_exit`, a trap, or a host failure.
    pub(crate) fn from_error(error: &wasmtime::Error) -> WasmOutcome {
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return WasmOutcome::exited(exit.0);
        }
        let kind = match error.downcast_ref::<Trap>() {
            Some(trap) => TrapKind::from_trap(*trap),
            None => TrapKind::Host,
        };
        WasmOutcome::trapped(kind, describe(error))
    }
}

/// Frames of the wasm backtrace kept in a trap message (a stack overflow has thousands).
const MAX_FRAMES: usize = 8;

/// The error and its causes on one line, then the first frames of the wasm backtrace when
/// wasmtime recorded one.
fn describe(error: &wasmtime::Error) -> String {
    use std::fmt::Write;
    let causes: Vec<String> = error
        .chain()
        .map(|e| e.to_string())
        // The backtrace's own Display: its frames are listed below, capped.
        .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
        .collect();
    let mut text = causes.join(": ");
    if let Some(bt) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        for (i, frame) in bt.frames().iter().take(MAX_FRAMES).enumerate() {
            let _ = match frame.func_name() {
                Some(name) => write!(text, "\n  {i}: {name}"),
                None => write!(text, "\n  {i}: <wasm function {}>", frame.func_index()),
            };
            if let Some(offset) = frame.module_offset() {
                let _ = write!(text, " at {offset:#x}");
            }
        }
        if bt.frames().len() > MAX_FRAMES {
            let _ = write!(
                text,
                "\n  ... {} more frames",
                bt.frames().len() - MAX_FRAMES
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            WasmOutcome::trapped(TrapKind::Unreachable, String::new()).exit_code,
            134
        );
        assert_eq!(
            WasmOutcome::trapped(TrapKind::Deadline, String::new()).exit_code,
            124
        );
        let e = wasmtime::Error::new(I32Exit(7));
        assert_eq!(WasmOutcome::from_error(&e), WasmOutcome::exited(7));
        let t = wasmtime::Error::new(Trap::OutOfFuel);
        assert_eq!(WasmOutcome::from_error(&t).trap, Some(TrapKind::OutOfFuel));
        let t = wasmtime::Error::new(Trap::Interrupt);
        assert_eq!(WasmOutcome::from_error(&t).exit_code, DEADLINE_EXIT_CODE);
    }

    #[test]
    fn codes_round_trip() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(k.code(), i as u32 + 1);
            assert_eq!(TrapKind::from_code(k.code()), Some(*k));
        }
        assert_eq!(TrapKind::from_code(0), None);
        assert_eq!(TrapKind::from_code(16), None);
    }

    #[test]
    fn serializes_kebab_case() {
        let o = WasmOutcome::trapped(TrapKind::MemoryOutOfBounds, "oob".into());
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["trap"], "memory-out-of-bounds");
        assert_eq!(v["exit_code"], 134);
    }
}
