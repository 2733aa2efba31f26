//! End to end: the default environment of a workload (PATH, HOME, HOSTNAME),
//! command lookup and its errors, and a toolchain that works inside, under
//! both runtimes, as root and as nobody.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;

const BOTH: [As; 2] = [As::Caller, As::Nobody];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The variables `env` printed, sorted.
fn vars(out: &std::process::Output) -> Vec<String> {
    let mut vars: Vec<String> = stdout(out).lines().map(str::to_owned).collect();
    vars.sort();
    vars
}

#[test]
fn the_default_environment_is_path_home_and_hostname() {
    for (runtime, who) in combinations("default_env", &BOTH) {
        // stdin is /dev/null, not a terminal: no TERM.
        let out = command_on(runtime, who, &["--", "/usr/bin/env"])
            .env("SECRET_TOKEN", "leak")
            .output()
            .unwrap();
        assert_code(&out, 0);
        let mut want = vec![
            format!("PATH={DEFAULT_PATH}"),
            "HOME=/".to_owned(),
            "HOSTNAME=nucleus".to_owned(),
        ];
        want.sort();
        assert_eq!(vars(&out), want, "runtime {runtime:?}, user {who:?}");
    }
}

#[test]
fn env_overrides_and_adds() {
    for (runtime, who) in combinations("env_overrides", &BOTH) {
        let out = run_on(
            runtime,
            who,
            &["--env", "PATH=/bin", "--env", "FOO=1", "--", "/usr/bin/env"],
        );
        assert_code(&out, 0);
        let vars = vars(&out);
        let paths: Vec<&String> = vars.iter().filter(|v| v.starts_with("PATH=")).collect();
        assert_eq!(
            paths,
            ["PATH=/bin"],
            "runtime {runtime:?}, user {who:?}: {vars:?}"
        );
        assert!(
            vars.contains(&"FOO=1".to_owned()),
            "runtime {runtime:?}, user {who:?}: {vars:?}"
        );
    }
}

#[test]
fn a_bare_command_name_is_found_on_path() {
    for (runtime, who) in combinations("bare_command", &BOTH) {
        let out = run_on(runtime, who, &["--", "true"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "runtime {runtime:?}, user {who:?}; stderr: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_missing_command_is_127_with_one_line() {
    for (runtime, who) in combinations("missing_command", &BOTH) {
        let out = run_on(runtime, who, &["--", "no-such-command-xyz"]);
        assert_eq!(
            (out.status.code(), stderr(&out)),
            (
                Some(127),
                "nucleus-run: exec: no-such-command-xyz: command not found\n".to_owned()
            ),
            "runtime {runtime:?}, user {who:?}"
        );
    }
}

#[test]
fn a_file_that_is_not_executable_is_126() {
    for (runtime, who) in combinations("not_executable", &BOTH) {
        let out = run_on(runtime, who, &["--", "/etc/passwd"]);
        assert_eq!(
            out.status.code(),
            Some(126),
            "runtime {runtime:?}, user {who:?}; stderr: {}",
            stderr(&out)
        );
    }
}

#[test]
fn gcc_compiles_and_links_inside() {
    let test = "gcc_inside";
    if !std::path::Path::new("/usr/bin/gcc").exists() {
        return skip(test, "gcc is not installed on the host");
    }
    for (runtime, who) in combinations(test, &BOTH) {
        let dir = world_writable("gcc");
        let src = dir.path().join("a.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { printf(\"built %d\\n\", 6 * 7); return 0; }\n",
        )
        .unwrap();
        set_mode(&src, 0o644);
        let bind = format!("{}:/w", dir.arg());
        let out = run_on(
            runtime,
            who,
            &["--bind", &bind, "--", "gcc", "-o", "/w/a", "/w/a.c"],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "runtime {runtime:?}, user {who:?}: gcc failed\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        // Writable binds are no-exec inside: the program runs on the host.
        let ran = std::process::Command::new(dir.path().join("a"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout),
            "built 42\n",
            "runtime {runtime:?}, user {who:?}"
        );
    }
}

#[test]
fn print_config_shows_the_resolved_environment_and_the_masks() {
    let mut runtimes = vec![Runtime::Native];
    if runsc_present("print_config") {
        runtimes.push(Runtime::Gvisor);
    }
    for runtime in runtimes {
        let out = run_on(runtime, As::Caller, &["--print-config", "--", "/bin/true"]);
        assert_code(&out, 0);
        let config: toml::Value =
            toml::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}\n{}", stdout(&out)));
        assert_eq!(
            config.get("default_env").and_then(toml::Value::as_bool),
            Some(false),
            "runtime {runtime:?}: {config}"
        );
        let env = config.get("env").and_then(toml::Value::as_table);
        let var = |k: &str| env.and_then(|t| t.get(k)).and_then(toml::Value::as_str);
        assert_eq!(var("PATH"), Some(DEFAULT_PATH), "runtime {runtime:?}");
        assert_eq!(var("HOME"), Some("/"), "runtime {runtime:?}");
        assert_eq!(var("HOSTNAME"), Some("nucleus"), "runtime {runtime:?}");
        let masked: Vec<&str> = config
            .get("rootfs")
            .and_then(|r| r.get("masked_paths"))
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            masked.contains(&"/etc/shadow"),
            "runtime {runtime:?}: masked_paths {masked:?}"
        );
    }
}
