//! The judge: a pure function from a gathered report (its JSON) to the
//! verdicts, one [`Check`] per capability and a [`Summary`]. Nothing here
//! probes or prints.

use super::facts::Facts;
use super::{checks, runtimes, setup};
use serde::Serialize;

/// How well a capability is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Fully there.
    Ok,
    /// There, with something less than what nucleus can use.
    Limited,
    /// Not there.
    Missing,
}

impl Status {
    /// `ok`, `limited`, `missing`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Limited => "limited",
            Status::Missing => "missing",
        }
    }
}

/// One capability and its verdict.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// What is checked (`user namespaces`, `Landlock`, ...).
    pub(crate) item: String,
    /// The verdict.
    pub(crate) status: Status,
    /// What was found, in one line.
    pub(crate) detail: String,
    /// What it means for sandboxes, when not `ok`.
    pub(crate) consequence: Option<String>,
    /// What to do about it (a package, a sysctl, a command), when not `ok`.
    pub(crate) fix: Option<String>,
    /// The facts behind it, for `--verbose`.
    pub(crate) more: Vec<String>,
}

impl Check {
    /// An `ok` check.
    pub(crate) fn ok(item: &str, detail: impl Into<String>) -> Check {
        Check {
            item: item.to_owned(),
            status: Status::Ok,
            detail: detail.into(),
            consequence: None,
            fix: None,
            more: Vec::new(),
        }
    }

    /// A `limited` or `missing` check, with its consequence and fix.
    pub(crate) fn bad(
        item: &str,
        status: Status,
        detail: impl Into<String>,
        consequence: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            item: item.to_owned(),
            status,
            detail: detail.into(),
            consequence: Some(consequence.into()),
            fix: Some(fix.into()),
            more: Vec::new(),
        }
    }

    /// The same check with `more` facts for `--verbose`.
    pub(crate) fn more(mut self, more: Vec<String>) -> Check {
        self.more = more;
        self
    }
}

/// Whether a trust level / runtime works here.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuntimeVerdict {
    /// `untrusted (gVisor)`, `untrusted (degraded)`, `trusted (native)`, `wasm`.
    pub(crate) name: String,
    /// The verdict.
    pub(crate) status: Status,
    /// Why, in one line.
    pub(crate) detail: String,
}

/// Whether a launch with no flags runs here (the exit status says it too).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DefaultLaunch {
    /// It runs.
    pub(crate) runs: bool,
    /// What it does, or why it cannot and what to do.
    pub(crate) detail: String,
}

/// What works on this machine.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// Each trust level and runtime.
    pub(crate) runtimes: Vec<RuntimeVerdict>,
    /// The default launch.
    pub(crate) default_launch: DefaultLaunch,
}

/// Every verdict on one report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    /// The report's kernel release, architecture and user, for the heading.
    #[serde(skip)]
    pub(crate) heading: String,
    /// One per capability, in a fixed order.
    pub(crate) checks: Vec<Check>,
    /// The trust levels and runtimes that work.
    pub(crate) summary: Summary,
}

/// Judges a report (the doctor's JSON: the probes, the lockdown state and
/// the launch tries; extra fields are ignored, missing ones count as
/// absent).
pub(crate) fn judge(report: &serde_json::Value) -> Result<Verdict, serde_json::Error> {
    let facts: Facts = serde_json::from_value(report.clone())?;
    Ok(judge_facts(&facts))
}

/// [`judge`] on parsed facts.
pub(crate) fn judge_facts(f: &Facts) -> Verdict {
    let mut checks = vec![
        checks::userns(f),
        checks::namespaces(f),
        checks::idmap(f),
        checks::landlock(f),
        checks::seccomp(f),
        checks::seccomp_notify(f),
        setup::cgroups(f),
        setup::idmapped_mounts(f),
    ];
    checks.extend(f.binds.iter().map(|b| setup::bind(&b.path, &b.idmap)));
    checks.push(runtimes::gvisor(f));
    checks.extend(runtimes::platforms(f));
    checks.push(runtimes::wasm_jit(f));
    checks.push(setup::lockdown(f));
    let summary = runtimes::summary(f, &checks);
    let user = f.idmap.caller.label();
    Verdict {
        heading: format!(
            "Linux {} {}, as {user} (uid {})",
            f.kernel, f.wasm.arch, f.idmap.caller.uid
        ),
        checks,
        summary,
    }
}
