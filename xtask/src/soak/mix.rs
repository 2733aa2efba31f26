//! The soak's workloads: what each runs, how it must end, and how late a
//! kill of its runner may land.

/// One workload of the mix.
pub(crate) struct Kind {
    pub name: &'static str,
    pub nobody: bool,
    pub args: &'static [&'static str],
    /// The exit codes and `killed_by` an unkilled run may end with.
    pub expect: &'static [(i32, Option<&'static str>)],
    /// Kills land up to this many ms after the start.
    pub kill_within_ms: u64,
}

pub(crate) const SH: &str = "/bin/sh";
pub(crate) const MARK: &str = "@MARK@";
pub(crate) const WASM: &str = "@WASM@";
pub(crate) const CACHE: &str = "@CACHE@";

/// The mix, one slot per launch in turn (20 slots: gVisor every 10th).
pub(crate) const MIX: &[(usize, Kind)] = &[
    (
        4,
        Kind {
            name: "true",
            nobody: false,
            args: &["--trust-level", "trusted", "--", "/bin/true"],
            expect: &[(0, None)],
            kill_within_ms: 25,
        },
    ),
    (
        3,
        Kind {
            name: "pipeline",
            nobody: false,
            args: &[
                "--trust-level",
                "trusted",
                "--",
                SH,
                "-c",
                "seq 1000 | sort -r | head -1",
                MARK,
            ],
            expect: &[(0, None)],
            kill_within_ms: 30,
        },
    ),
    (
        2,
        Kind {
            name: "true/nobody",
            nobody: true,
            args: &["--trust-level", "trusted", "--", "/bin/true"],
            expect: &[(0, None)],
            kill_within_ms: 25,
        },
    ),
    (
        1,
        Kind {
            name: "pipeline/nobody",
            nobody: true,
            args: &[
                "--trust-level",
                "trusted",
                "--",
                SH,
                "-c",
                "seq 1000 | sort -r | head -1",
                MARK,
            ],
            expect: &[(0, None)],
            kill_within_ms: 30,
        },
    ),
    (
        2,
        Kind {
            name: "memory-hog",
            nobody: false,
            args: &[
                "--trust-level",
                "trusted",
                "--memory",
                "32M",
                "--",
                SH,
                "-c",
                "x=$(head -c 100000000 /dev/zero | tr '\\0' a)",
                MARK,
            ],
            expect: &[(137, Some("memory"))],
            kill_within_ms: 170,
        },
    ),
    (
        1,
        Kind {
            name: "fork-bomb",
            nobody: false,
            args: &[
                "--trust-level",
                "trusted",
                "--pids",
                "16",
                "--timeout",
                "300ms",
                "--",
                SH,
                "-c",
                // Ends at the timeout, or earlier when the shell itself
                // cannot fork any more (exit 2; the result says `pids`
                // when the runner saw the limit hit).
                "f(){ f|f& }; f 2>/dev/null; exec sleep 5",
                MARK,
            ],
            expect: &[(124, Some("timeout")), (2, None), (2, Some("pids"))],
            kill_within_ms: 320,
        },
    ),
    (
        2,
        Kind {
            name: "timeout",
            nobody: false,
            args: &[
                "--trust-level",
                "trusted",
                "--timeout",
                "200ms",
                "--",
                SH,
                "-c",
                "sleep 5",
                MARK,
            ],
            expect: &[(124, Some("timeout"))],
            kill_within_ms: 220,
        },
    ),
    (
        2,
        Kind {
            name: "wasm",
            nobody: false,
            args: &[
                "--trust-level",
                "trusted",
                "--wasm-cache",
                CACHE,
                "--wasm",
                WASM,
            ],
            expect: &[(0, None)],
            kill_within_ms: 30,
        },
    ),
    (
        1,
        Kind {
            name: "wasm-compile",
            nobody: false,
            args: &[
                "--trust-level",
                "trusted",
                "--memory",
                "64M",
                "--wasm-cache",
                "off",
                "--wasm",
                WASM,
            ],
            expect: &[(0, None)],
            kill_within_ms: 60,
        },
    ),
    (
        2,
        Kind {
            name: "gvisor",
            nobody: false,
            args: &["--trust-level", "untrusted", "--", "/bin/true"],
            expect: &[(0, None)],
            kill_within_ms: 200,
        },
    ),
];

/// The run before each count: gVisor with a limit sweeps both stale run
/// directories and stale cgroups.
pub(crate) const SWEEP: &[&str] = &[
    "--trust-level",
    "untrusted",
    "--memory",
    "64M",
    "--",
    "/bin/true",
];

pub(crate) fn kind_of(index: usize) -> &'static Kind {
    let slots: usize = MIX.iter().map(|(n, _)| n).sum();
    let mut slot = index % slots;
    for (n, kind) in MIX {
        if slot < *n {
            return kind;
        }
        slot -= n;
    }
    &MIX[0].1
}
