//! The ordered steps of a launch, named so messages and code agree.

/// One step of the launch sequence; a failure names its stage. The wire
/// numbers only grow (a new stage takes the next one); the order in which
/// the child reaches them is `child::run`'s, listed in
/// `docs/ARCHITECTURE.md` (a test keeps the two in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Stage {
    /// The child waits until the parent wrote its id maps.
    Sync = 1,
    /// The filesystem view is built and entered.
    Mount,
    /// The working directory is entered.
    Workdir,
    /// The hostname is set.
    Hostname,
    /// The loopback interface is brought up.
    Loopback,
    /// Resource limits (rlimits) are set.
    Rlimits,
    /// Stray file descriptors are closed and a new session started.
    Session,
    /// The workload's uid and gid are taken.
    User,
    /// Capabilities are dropped and verified.
    Capabilities,
    /// `no_new_privs` is set.
    NoNewPrivs,
    /// The Landlock domain is entered.
    Landlock,
    /// The seccomp filter is installed.
    Seccomp,
    /// The init forks the workload.
    Fork,
    /// The workload program is executed.
    Exec,
    /// The wasm host sets up the module's WASI context (its preopens).
    Wasm,
    /// The PID namespace's `vm.memfd_noexec` is set.
    MemfdNoexec,
    /// The user namespace's limits (`/proc/sys/user`) are set.
    UsernsLimits,
    /// A spare's init takes its command and stdio.
    Spare,
}

impl Stage {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Mount => "mount",
            Self::Workdir => "workdir",
            Self::Hostname => "hostname",
            Self::Loopback => "loopback",
            Self::Rlimits => "rlimits",
            Self::Session => "session",
            Self::User => "user",
            Self::Capabilities => "capabilities",
            Self::NoNewPrivs => "no_new_privs",
            Self::Landlock => "landlock",
            Self::Seccomp => "seccomp",
            Self::Fork => "fork",
            Self::Exec => "exec",
            Self::Wasm => "wasm",
            Self::MemfdNoexec => "memfd_noexec",
            Self::UsernsLimits => "userns_limits",
            Self::Spare => "spare",
        }
    }

    /// Every stage, in wire-number order.
    pub(crate) const ALL: [Stage; 18] = [
        Stage::Sync,
        Stage::Mount,
        Stage::Workdir,
        Stage::Hostname,
        Stage::Loopback,
        Stage::Rlimits,
        Stage::Session,
        Stage::User,
        Stage::Capabilities,
        Stage::NoNewPrivs,
        Stage::Landlock,
        Stage::Seccomp,
        Stage::Fork,
        Stage::Exec,
        Stage::Wasm,
        Stage::MemfdNoexec,
        Stage::UsernsLimits,
        Stage::Spare,
    ];

    /// The stage with this wire number.
    pub(crate) fn from_u32(n: u32) -> Option<Stage> {
        Self::ALL.into_iter().find(|s| *s as u32 == n)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Stage;
    use std::path::Path;

    fn read(rel: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The stages in the order `child.rs` first names them, the body of
    /// `fn restrict` read where `setup` calls it; `wasm` (the wasm
    /// workload's, in wasm.rs) right after `exec`, its alternative.
    fn code_order() -> Vec<&'static str> {
        let text = read("crates/runner/src/child.rs");
        let start = text
            .find("\nfn restrict(")
            .expect("child.rs has fn restrict");
        let len = text[start + 1..]
            .find("\n}\n")
            .expect("the end of fn restrict")
            + 3;
        let body = &text[start..start + 1 + len];
        let without = text.replacen(body, "\n", 1);
        let call = without
            .find("restrict(p, &p.stdio_dups")
            .expect("setup calls restrict");
        let child = format!("{}{body}{}", &without[..call], &without[call..]);
        let mut order: Vec<&'static str> = Vec::new();
        for (at, _) in child.match_indices("Stage::") {
            let rest = &child[at + "Stage::".len()..];
            let ident: String = rest
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            let found = Stage::ALL.into_iter().find(|s| format!("{s:?}") == ident);
            if let Some(stage) = found.filter(|s| !order.contains(&s.name())) {
                order.push(stage.name());
            }
        }
        if !order.contains(&"wasm") {
            let at = order
                .iter()
                .position(|n| *n == "exec")
                .map_or(order.len(), |i| i + 1);
            order.insert(at, "wasm");
        }
        order
    }

    /// The text of docs/ARCHITECTURE.md between `<!-- NAME: begin -->` and
    /// `<!-- NAME: end -->`.
    fn doc_block(name: &str) -> String {
        let doc = read("docs/ARCHITECTURE.md");
        let begin = format!("<!-- {name}: begin -->");
        let end = format!("<!-- {name}: end -->");
        doc.split(begin.as_str())
            .nth(1)
            .and_then(|rest| rest.split(end.as_str()).next())
            .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no {name} block"))
            .to_owned()
    }

    #[test]
    fn the_documented_child_sequence_is_the_codes() {
        let block = doc_block("stages");
        let documented: Vec<&str> = block
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- `")?.split('`').next())
            .collect();
        let code = code_order();
        assert_eq!(documented, code, "docs/ARCHITECTURE.md vs child.rs");
        let mut all: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        let mut listed = code.clone();
        all.sort_unstable();
        listed.sort_unstable();
        assert_eq!(listed, all, "every stage, once");
    }

    /// The parent's steps in the order `launch.rs` then `sandbox.rs` name
    /// their spans (the root span `launch` left out).
    fn parent_order() -> Vec<String> {
        let mut order = Vec::new();
        for file in [
            "crates/runner/src/launch.rs",
            "crates/runner/src/sandbox.rs",
        ] {
            let code = read(file);
            for (at, _) in code.match_indices("debug_span!(\"") {
                let rest = &code[at + "debug_span!(\"".len()..];
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                if name != "launch" && !order.contains(&name) {
                    order.push(name);
                }
            }
        }
        order
    }

    #[test]
    fn the_documented_parent_sequence_is_the_codes() {
        let block = doc_block("parent steps");
        let documented: Vec<String> = block
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|w| w.trim_matches('`'))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        assert_eq!(
            documented,
            parent_order(),
            "docs/ARCHITECTURE.md vs launch.rs and sandbox.rs"
        );
    }

    #[test]
    fn wire_numbers_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_u32(stage as u32), Some(stage));
        }
        assert_eq!(Stage::from_u32(0), None);
    }
}
