//! End to end: the help a new user reads (flags grouped under headings,
//! the short aliases container users expect, examples), the shell
//! completions and the manual page, all generated from one flag table.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::process::{Command, Stdio};

fn nucleus_out(args: &[&str]) -> String {
    let out = Command::new(nucleus())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 0);
    stdout(&out)
}

/// Where the help's line of `flag` starts (`  -m, --memory <SIZE>`, `      --json`).
fn flag_line(help: &str, flag: &str) -> Option<usize> {
    let mut at = 0;
    for line in help.split_inclusive('\n') {
        let words: Vec<&str> = line.split_whitespace().take(2).collect();
        if words.first() == Some(&flag) || words.get(1) == Some(&flag) {
            return Some(at);
        }
        at += line.len();
    }
    None
}

#[test]
fn help_groups_the_flags_under_headings_and_ends_with_examples() {
    let help = nucleus_out(&["--help"]);
    let headings = [
        "Filesystem:",
        "Identity:",
        "Network:",
        "Policies:",
        "Limits:",
        "Runtime:",
        "WebAssembly:",
        "Output:",
        "Examples:",
    ];
    let at: Vec<usize> = headings
        .iter()
        .map(|h| {
            help.find(&format!("\n{h}\n"))
                .unwrap_or_else(|| panic!("{h} missing: {help}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "order: {headings:?}");
    // Each flag under its heading: a few that users look for.
    for (flag, heading) in [
        ("--ro-bind", "Filesystem:"),
        ("--user", "Identity:"),
        ("--allow-tcp-connect", "Network:"),
        ("--seccomp-profile", "Policies:"),
        ("--memory", "Limits:"),
        ("--runsc", "Runtime:"),
        ("--wasm-fuel", "WebAssembly:"),
        ("--json", "Output:"),
    ] {
        let pos = flag_line(&help, flag).unwrap_or_else(|| panic!("{flag} missing"));
        let i = headings.iter().position(|h| *h == heading).unwrap();
        assert!(at[i] < pos && pos < at[i + 1], "{flag} not under {heading}");
    }
    for short in ["-e, --env", "-w, --workdir", "-u, --user", "-m, --memory"] {
        assert!(help.contains(short), "{short} missing");
    }
    for example in [
        "--bind ~/project:/work",
        "--seccomp-profile-sha256",
        "--wasm tool.wasm",
    ] {
        assert!(help.contains(example), "example {example} missing");
    }
}

#[test]
fn short_aliases_set_what_the_long_flags_set() {
    let long = nucleus_out(&[
        "--env",
        "A=1",
        "--workdir",
        "/tmp",
        "--user",
        "7:8",
        "--memory",
        "64M",
        "--print-config",
        "--",
        "true",
    ]);
    let short = nucleus_out(&[
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "7:8",
        "-m",
        "64M",
        "--print-config",
        "--",
        "true",
    ]);
    assert_eq!(short, long);
    for set in ["A = \"1\"", "workdir = \"/tmp\"", "memory = 67108864"] {
        assert!(short.contains(set), "{set} not in {short}");
    }
}

#[test]
fn completions_for_three_shells_and_bash_accepts_its_script() {
    for shell in ["bash", "zsh", "fish"] {
        let script = nucleus_out(&["completions", shell]);
        for word in ["ro-bind", "wasm-fuel", "doctor"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    let dir = TempDir::new("completions");
    let path = dir.path().join("nucleus-run.bash");
    std::fs::write(&path, nucleus_out(&["completions", "bash"])).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert_code(&checked, 0);
    let out = Command::new(nucleus())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_code(&out, nucleus_runner::exit::SETUP_FAILED);
    assert!(
        stderr(&out).contains("possible values: bash"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_manual_page_is_roff_with_every_flag() {
    let page = nucleus_out(&["man"]);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH nucleus-run"),
        "{page}"
    );
    assert!(page.contains(".TH nucleus-run 1"), "no title line");
    for flag in ["ro\\-bind", "wasm\\-fuel", "trust\\-level", "Examples:"] {
        assert!(page.contains(flag), "{flag} missing from the page");
    }
}

#[test]
fn the_readmes_python_example_runs_and_prints_what_it_says() {
    if !runsc_present("readme_python_example") {
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let (_, rest) = readme
        .split_once("<!-- tested: tests/help.rs runs this block -->\n```python\n")
        .expect("the marked python block");
    let (code, after) = rest.split_once("```\n").unwrap();
    let path = format!(
        "{}:{}",
        nucleus().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("python3")
        .args(["-c", code])
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "0 42 gvisor\n124 timeout\n");
    assert!(after
        .trim_start()
        .starts_with("prints `0 42 gvisor` and `124 timeout`"));
}
