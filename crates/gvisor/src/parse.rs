//! Parsing what `runsc` prints (its version banner, its flag list, its
//! platform list and its log) and the names it takes.

use std::str::FromStr;

use crate::error::GvisorError;
use crate::platform::Platform;

impl FromStr for Platform {
    type Err = GvisorError;

    /// A platform by its `runsc --platform` name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| GvisorError::UnknownPlatform { name: s.to_owned() })
    }
}

/// The version from `runsc --version`'s first line, `runsc version X`.
pub(crate) fn version(stdout: &str) -> Option<String> {
    let first = stdout.lines().next()?.trim();
    let v = first.strip_prefix("runsc version ")?.trim();
    (!v.is_empty() && !v.contains(char::is_whitespace)).then(|| v.to_owned())
}

/// A short, printable excerpt of a helper's output for error messages.
pub(crate) fn excerpt(stdout: &str, stderr: &str) -> String {
    let text = if stdout.trim().is_empty() {
        stderr
    } else {
        stdout
    };
    text.trim().chars().take(120).collect()
}

/// Flag names from `runsc flags` (lines `  -name [type]`).
pub(crate) fn flag_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  -"))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Platforms and default from the `-platform` flag's description:
/// `specifies which platform to use: ptrace (default), kvm. (default "ptrace")`.
pub(crate) fn platform_flag(text: &str) -> (Vec<Platform>, Option<Platform>) {
    let mut lines = text.lines();
    let Some(desc) = lines
        .by_ref()
        .find(|l| l.split_whitespace().next() == Some("-platform"))
        .and_then(|_| lines.next())
    else {
        return (Vec::new(), None);
    };
    let default = desc
        .split("(default \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|name| name.parse().ok());
    let Some((_, list)) = desc.split_once(':') else {
        return (Vec::new(), default);
    };
    let list = list.split(". (default").next().unwrap_or(list);
    let platforms = list
        .split(',')
        .map(|item| {
            item.replace("(default)", "")
                .trim()
                .trim_end_matches('.')
                .to_owned()
        })
        .filter_map(|name| name.parse().ok())
        .collect();
    (platforms, default)
}

/// Platforms from `runsc help platforms` (one name a line); names this
/// crate does not know are skipped.
pub(crate) fn platform_list(stdout: &str) -> Vec<Platform> {
    let mut out = Vec::new();
    for p in stdout.lines().filter_map(|l| l.trim().parse().ok()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// runsc's own error from its `--log` file: the message of the last
/// error-level JSON line, else the last non-empty line.
pub(crate) fn runsc_log_error(log: &str) -> Option<String> {
    let json_error = log.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v.get("level")?.as_str()? == "error").then(|| v.get("msg")?.as_str().map(str::to_owned))?
    });
    json_error.or_else(|| {
        log.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS_20221219: &str = "  -oci-seccomp
    \tEnables loading OCI seccomp filters inside the sandbox.
  -overlay2 value
    \twrap mounts with overlayfs.
  -platform string
    \tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")
  -platform_device_path string
    \tpath to a platform-specific device file (e.g. /dev/kvm for KVM platform).
";

    #[test]
    fn parses_version_banners() {
        let old = "runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n";
        assert_eq!(version(old).as_deref(), Some("0.0~20221219.0"));
        let new = "runsc version release-20240513.0\nspec: 1.1.0-rc.1\n";
        assert_eq!(version(new).as_deref(), Some("release-20240513.0"));
        assert_eq!(version(""), None);
        assert_eq!(version("true (GNU coreutils) 9.1\n"), None);
        assert_eq!(version("runsc version \n"), None);
    }

    #[test]
    fn parses_flags_and_platform_description() {
        let names = flag_names(FLAGS_20221219);
        assert_eq!(
            names,
            [
                "oci-seccomp",
                "overlay2",
                "platform",
                "platform_device_path"
            ]
        );
        let (platforms, default) = platform_flag(FLAGS_20221219);
        assert_eq!(platforms, [Platform::Ptrace, Platform::Kvm]);
        assert_eq!(default, Some(Platform::Ptrace));
    }

    #[test]
    fn parses_newer_platform_description() {
        let text = "  -platform string\n    \tspecifies which platform to use: systrap (default), ptrace, kvm. (default \"systrap\")\n";
        let (platforms, default) = platform_flag(text);
        assert_eq!(
            platforms,
            [Platform::Systrap, Platform::Ptrace, Platform::Kvm]
        );
        assert_eq!(default, Some(Platform::Systrap));
        assert_eq!(platform_flag("  -debug\n"), (Vec::new(), None));
    }

    #[test]
    fn parses_platform_list_skipping_unknown() {
        let out = "kvm\nptrace\nxen-magic\n\nptrace\n";
        assert_eq!(platform_list(out), [Platform::Kvm, Platform::Ptrace]);
    }

    #[test]
    fn finds_runsc_error_in_log() {
        let log = concat!(
            "{\"msg\":\"starting\",\"level\":\"info\"}\n",
            "{\"msg\":\"running container: failed to load /nonexistent\",\"level\":\"error\"}\n"
        );
        assert_eq!(
            runsc_log_error(log).as_deref(),
            Some("running container: failed to load /nonexistent")
        );
        assert_eq!(
            runsc_log_error("W1122 text line\nE1122 bad thing\n\n").as_deref(),
            Some("E1122 bad thing")
        );
        assert_eq!(runsc_log_error(""), None);
    }

    #[test]
    fn excerpt_prefers_stdout_and_truncates() {
        assert_eq!(excerpt("", " oops \n"), "oops");
        assert_eq!(excerpt(&"x".repeat(500), "e").len(), 120);
    }
}
