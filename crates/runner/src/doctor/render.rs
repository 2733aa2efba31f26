//! The doctor's text: one line per check (status, item, what was found),
//! two indented lines (consequence, fix) under each one that is not `ok`,
//! then the trust levels and runtimes that work and the default launch's
//! verdict. `--verbose` adds the facts behind each line.

use super::judge::{Check, Status, Verdict};
use std::fmt::Write;

/// The width of the status column.
const STATUS: usize = 9;
/// The width of the item column.
const ITEM: usize = 21;

/// The text of a verdict, ending in a newline.
pub(crate) fn text(v: &Verdict, verbose: bool) -> String {
    let mut out = format!("nucleus-run doctor: {}\n\n", v.heading);
    for check in &v.checks {
        check_lines(&mut out, check, verbose);
    }
    out.push_str("\ntrust levels and runtimes:\n");
    for r in &v.summary.runtimes {
        line(&mut out, r.status, &r.name, &r.detail);
    }
    let _ = writeln!(out, "\n{}", v.summary.default_launch.detail);
    if !verbose {
        out.push_str("(--verbose: the facts behind each line; --json: all the data)\n");
    }
    out
}

fn check_lines(out: &mut String, check: &Check, verbose: bool) {
    line(out, check.status, &check.item, &check.detail);
    let indent = " ".repeat(STATUS);
    if let Some(consequence) = &check.consequence {
        let _ = writeln!(out, "{indent}-> {consequence}");
    }
    if let Some(fix) = &check.fix {
        let _ = writeln!(out, "{indent}fix: {fix}");
    }
    if verbose {
        for fact in &check.more {
            let _ = writeln!(out, "{indent}- {fact}");
        }
    }
}

fn line(out: &mut String, status: Status, item: &str, detail: &str) {
    let _ = writeln!(
        out,
        "{:<STATUS$}{:<ITEM$}{detail}",
        status.as_str(),
        format!("{item} ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::judge::{DefaultLaunch, Summary};

    #[test]
    fn lines_are_aligned_and_fixes_indented() {
        let v = Verdict {
            heading: "Linux 6.1 x86_64, as root (uid 0)".into(),
            checks: vec![
                Check::ok("seccomp", "filters"),
                Check::bad(
                    "gVisor",
                    Status::Missing,
                    "not found",
                    "refused",
                    "install it",
                )
                .more(vec!["searched /usr/bin".into()]),
            ],
            summary: Summary {
                runtimes: Vec::new(),
                default_launch: DefaultLaunch {
                    runs: false,
                    detail: "no".into(),
                },
            },
        };
        let short = text(&v, false);
        assert!(
            short.contains(
                "ok       seccomp              filters\n\
                 missing  gVisor               not found\n         \
                 -> refused\n         fix: install it\n"
            ),
            "{short}"
        );
        assert!(!short.contains("searched"));
        assert!(text(&v, true).contains("         - searched /usr/bin\n"));
    }
}
