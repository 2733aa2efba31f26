//! The workload's environment: nothing from the host unless passed, but the
//! few variables every program expects, as container runtimes set them.

use crate::Envelope;
use nucleus_ns::Namespace;
use nucleus_rootfs::Located;
use std::io::IsTerminal;
use std::path::Path;

/// `PATH` inside the sandbox unless the Envelope sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The hostname of a sandbox with its own UTS namespace, unless one is given.
pub const DEFAULT_HOSTNAME: &str = "nucleus";

impl Envelope {
    /// The workload's environment for a workload running as `uid` inside,
    /// in the order it is given to `execve`: with
    /// [`default_env`](Envelope::default_env), `PATH`, `HOME` (the user's
    /// home directory from the view's `/etc/passwd` when the view shows it,
    /// else `/`), `HOSTNAME`, and `TERM` when stdin is a terminal; then the
    /// host variables of `env_keep`; then `env`. A later entry replaces an
    /// earlier one of the same name.
    ///
    /// ```
    /// let env = nucleus_runner::Envelope::builder(["env"]).env("PATH", "/bin").build().unwrap();
    /// let vars = env.environment(0);
    /// assert!(vars.contains(&("PATH".to_owned(), "/bin".to_owned())));
    /// assert!(vars.iter().any(|(k, _)| k == "HOME"));
    /// ```
    pub fn environment(&self, uid: u32) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = Vec::new();
        if self.default_env {
            vars.push(("PATH".into(), DEFAULT_PATH.into()));
            vars.push(("HOME".into(), self.home_of(uid)));
            vars.push(("HOSTNAME".into(), self.effective_hostname()));
            if std::io::stdin().is_terminal() {
                let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
                vars.push(("TERM".into(), term));
            }
        }
        for name in &self.env_keep {
            if let Ok(value) = std::env::var(name) {
                vars.push((name.clone(), value));
            }
        }
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // Last one wins, first position kept.
        let mut out: Vec<(String, String)> = Vec::with_capacity(vars.len());
        for (k, v) in vars {
            match out.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        out
    }

    /// The same Envelope with the default variables written into `env`
    /// (and `default_env` off), as `--print-config` shows it: what the
    /// workload gets, replayable.
    pub fn with_default_env_resolved(&self) -> Envelope {
        let mut out = self.clone();
        if !self.default_env {
            return out;
        }
        out.default_env = false;
        let mut explicit = self.clone();
        explicit.env.clear();
        explicit.env_keep.clear();
        let uid = self.user.map_or(0, |u| u.uid);
        for (k, v) in explicit.environment(uid) {
            out.env.entry(k).or_insert(v);
        }
        out
    }

    /// The hostname the workload sees.
    pub(crate) fn effective_hostname(&self) -> String {
        match &self.hostname {
            Some(name) => name.clone(),
            None if self.effective_namespaces().contains(Namespace::Uts) => {
                DEFAULT_HOSTNAME.to_owned()
            }
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
        }
    }

    /// The home directory of `uid` when the view shows it, else `/`.
    fn home_of(&self, uid: u32) -> String {
        let Located::Host(passwd) = self.rootfs.locate(Path::new("/etc/passwd")) else {
            return "/".into();
        };
        let Ok(text) = std::fs::read_to_string(passwd) else {
            return "/".into();
        };
        let home = text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_owned())
        });
        match home {
            Some(home) if self.shows_dir(Path::new(&home)) => home,
            _ => "/".into(),
        }
    }

    /// Whether the view shows `dir` as a directory from the host.
    fn shows_dir(&self, dir: &Path) -> bool {
        match self.rootfs.locate(dir) {
            Located::Host(host) => host.is_dir(),
            Located::Nothing | Located::RunTime => dir == Path::new("/"),
        }
    }
}

/// The explicit environment only (`env_keep` from the host, then `env`),
/// for a WASI module: no `PATH` or `HOME` of a host it cannot see.
pub(crate) fn explicit_environment(env: &Envelope) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for name in &env.env_keep {
        if let Ok(value) = std::env::var(name) {
            vars.push((name.clone(), value));
        }
    }
    vars.extend(env.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

#[cfg(test)]
mod tests {
    use crate::Envelope;

    #[test]
    fn defaults_then_overrides_in_order() {
        let env = Envelope::builder(["x"])
            .env("HOME", "/work")
            .env("A", "1")
            .build()
            .unwrap();
        let vars = env.environment(0);
        let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&names[..3], ["PATH", "HOME", "HOSTNAME"]);
        assert!(vars.contains(&("HOME".into(), "/work".into())));
        assert!(vars.contains(&("HOSTNAME".into(), "nucleus".into())));
        assert_eq!(names.last(), Some(&"A"));
    }

    #[test]
    fn no_defaults_when_switched_off() {
        let mut env = Envelope::builder(["x"]).build().unwrap();
        env.default_env = false;
        assert!(env.environment(0).is_empty());
    }

    #[test]
    fn home_is_root_when_hidden() {
        // /root is not part of the default view.
        let env = Envelope::builder(["x"]).build().unwrap();
        let vars = env.environment(0);
        assert!(vars.contains(&("HOME".into(), "/".into())), "{vars:?}");
    }
}
