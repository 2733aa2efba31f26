//! What to run and under which WASI controls: plain data, checked in the parent.

use crate::error::WasmError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A WASI module to run and the controls it runs under.
///
/// Everything the guest can reach is listed here: no host environment variable, directory or
/// socket is inherited. stdin, stdout and stderr are the host's (the sandbox's).
///
/// ```
/// use nucleus_wasm::{CacheMode, Preopen, WasmPolicy};
/// use std::time::Duration;
///
/// let mut policy = WasmPolicy::new("tool.wasm");
/// policy.args = vec!["--input".into(), "/data/in.txt".into()];
/// policy.env = vec![("LANG".into(), "C".into())];
/// policy.preopens = vec!["/srv/data:/data:ro".parse()?];
/// policy.deadline = Some(Duration::from_secs(5));
/// policy.max_memory = Some(64 << 20);
/// policy.cache = CacheMode::Off;
/// policy.validate()?;
/// # Ok::<(), nucleus_wasm::WasmError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmPolicy {
    /// The module: a `.wasm` core module or component, or `.wat` text. Read by the parent.
    pub module: PathBuf,
    /// The guest's `argv[0]`; the module's file name when `None`.
    #[serde(default)]
    pub argv0: Option<String>,
    /// The arguments after `argv[0]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// The guest's whole environment, in order (nothing is inherited).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Host directories the guest may reach, by guest path.
    #[serde(default)]
    pub preopens: Vec<Preopen>,
    /// Fuel: roughly the number of wasm instructions the guest may execute.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Cap on the guest's linear memories, in bytes (all memories together). Tables are capped
    /// at `max_memory / 8` elements in all, a table element taking at least 8 bytes of host
    /// memory.
    #[serde(default)]
    pub max_memory: Option<u64>,
    /// Wall-clock deadline from the start of [`crate::PreparedWasm::run`]: wasm code is
    /// interrupted by epoch interruption, a host call waiting (stdin, sleep) is cancelled.
    #[serde(default, with = "opt_millis")]
    pub deadline: Option<Duration>,
    /// Where compiled modules are cached.
    #[serde(default)]
    pub cache: CacheMode,
}

/// Where compiled modules are cached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheMode {
    /// `$XDG_CACHE_HOME/nucleus/wasm`, else `$HOME/.cache/nucleus/wasm`; skipped (with a note
    /// in the report) when neither is set or the directory is not safely ours.
    #[default]
    Default,
    /// This directory (created `0700` if missing); an error when it is not safely ours.
    Dir(PathBuf),
    /// No cache: compile every time.
    Off,
}

/// A host directory made visible to the guest: `HOST[:GUEST][:ro]` on the command line.
///
/// ```
/// use nucleus_wasm::Preopen;
///
/// let p: Preopen = "/srv/in:/in:ro".parse()?;
/// assert_eq!(p.host, std::path::PathBuf::from("/srv/in"));
/// assert_eq!(p.guest, "/in");
/// assert!(p.read_only);
/// let q: Preopen = "/tmp/out".parse()?;
/// assert_eq!(q.guest, "/tmp/out");
/// assert!(!q.read_only);
/// # Ok::<(), nucleus_wasm::WasmError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preopen {
    /// The directory on the host (as seen by the sandboxed process: the runner must make it
    /// visible there, at this path).
    pub host: PathBuf,
    /// The name the guest opens it by (`/data`, `.`).
    pub guest: String,
    /// Only reads: files open read-only, no create, write, rename, unlink or mkdir.
    #[serde(default)]
    pub read_only: bool,
}

impl FromStr for Preopen {
    type Err = WasmError;

    /// `HOST`, `HOST:GUEST`, `HOST:ro`, `HOST:GUEST:ro` (and `:rw`, the default). A host path
    /// with a `:` cannot be given this way; a guest path named `ro` or `rw` needs the mode too
    /// (`HOST:ro:rw`).
    fn from_str(spec: &str) -> Result<Preopen, WasmError> {
        let invalid = |reason| WasmError::InvalidPreopen {
            spec: spec.to_owned(),
            reason,
        };
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mut read_only = false;
        if parts.len() > 1 {
            if let Some(&mode @ ("ro" | "rw")) = parts.last() {
                read_only = mode == "ro";
                parts.pop();
            }
        }
        let (host, guest) = match parts.as_slice() {
            [host] => (*host, *host),
            [host, guest] => (*host, *guest),
            _ => return Err(invalid("expected HOST[:GUEST][:ro]")),
        };
        if host.is_empty() {
            return Err(invalid("the host path is empty"));
        }
        if guest.is_empty() {
            return Err(invalid("the guest path is empty"));
        }
        Ok(Preopen {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            read_only,
        })
    }
}

impl WasmPolicy {
    /// A policy that runs `module` with no arguments, no environment, no preopens, no limits
    /// and the default cache.
    pub fn new(module: impl Into<PathBuf>) -> WasmPolicy {
        WasmPolicy {
            module: module.into(),
            argv0: None,
            args: Vec::new(),
            env: Vec::new(),
            preopens: Vec::new(),
            fuel: None,
            max_memory: None,
            deadline: None,
            cache: CacheMode::Default,
        }
    }

    /// Checks the policy without touching the filesystem: strings without NUL, environment
    /// names without `=`, non-empty preopen paths, non-zero limits. Runs in the parent;
    /// [`WasmPolicy::prepare`] calls it.
    pub fn validate(&self) -> Result<(), WasmError> {
        if self.module.as_os_str().is_empty() {
            return Err(WasmError::EmptyModulePath);
        }
        let strings = self.argv0.iter().chain(&self.args);
        if let Some(arg) = strings.into_iter().find(|a| a.contains('\0')) {
            return Err(WasmError::NulInArgument { arg: arg.clone() });
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0')
            {
                return Err(WasmError::InvalidEnv { name: name.clone() });
            }
        }
        for p in &self.preopens {
            if p.host.as_os_str().is_empty() || p.guest.is_empty() || p.guest.contains('\0') {
                return Err(WasmError::InvalidPreopen {
                    spec: format!("{}:{}", p.host.display(), p.guest),
                    reason: "empty path or NUL byte",
                });
            }
        }
        if self.fuel == Some(0) {
            return Err(WasmError::ZeroLimit { limit: "fuel" });
        }
        if self.max_memory == Some(0) {
            return Err(WasmError::ZeroLimit {
                limit: "max-memory",
            });
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(WasmError::ZeroLimit { limit: "deadline" });
        }
        if let CacheMode::Dir(dir) = &self.cache {
            if dir.as_os_str().is_empty() {
                return Err(WasmError::EmptyCacheDir);
            }
        }
        Ok(())
    }

    /// The guest's `argv[0]`.
    pub(crate) fn program_name(&self) -> String {
        match &self.argv0 {
            Some(name) => name.clone(),
            None => self.module.file_name().map_or_else(
                || "main.wasm".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }
}

/// `Option<Duration>` as milliseconds, so config files say `deadline = 5000`.
mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preopen_forms() {
        let p = |s: &str| s.parse::<Preopen>().unwrap();
        assert_eq!(
            p("/a"),
            Preopen {
                host: "/a".into(),
                guest: "/a".into(),
                read_only: false
            }
        );
        assert_eq!(p("/a:/b").guest, "/b");
        assert!(p("/a:ro").read_only);
        assert_eq!(p("/a:ro").guest, "/a");
        assert!(p("/a:/b:ro").read_only);
        assert!(!p("/a:/b:rw").read_only);
        assert_eq!(p("/a:.").guest, ".");
        assert_eq!(p("/a:ro:rw").guest, "ro");
        for bad in ["", ":x", "/a:", "/a:/b:/c", "/a:/b:c:ro"] {
            assert!(bad.parse::<Preopen>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validate_rejects() {
        let base = WasmPolicy::new("m.wasm");
        assert!(base.validate().is_ok());
        let mut p = base.clone();
        p.env = vec![("A=B".into(), "x".into())];
        assert!(matches!(p.validate(), Err(WasmError::InvalidEnv { .. })));
        let mut p = base.clone();
        p.args = vec!["a\0b".into()];
        assert!(matches!(p.validate(), Err(WasmError::NulInArgument { .. })));
        let mut p = base.clone();
        p.fuel = Some(0);
        assert!(matches!(p.validate(), Err(WasmError::ZeroLimit { .. })));
        let mut p = base.clone();
        p.module = PathBuf::new();
        assert!(matches!(p.validate(), Err(WasmError::EmptyModulePath)));
    }

    #[test]
    fn serde_round_trip() {
        let mut p = WasmPolicy::new("m.wasm");
        p.deadline = Some(Duration::from_millis(1500));
        p.cache = CacheMode::Dir("/c".into());
        p.preopens = vec!["/x:/y:ro".parse().unwrap()];
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"deadline\":1500"), "{json}");
        assert!(json.contains("{\"dir\":\"/c\"}"), "{json}");
        let back: WasmPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let off: WasmPolicy =
            serde_json::from_str(r#"{"module":"m.wasm","args":["a"],"cache":"off"}"#).unwrap();
        assert_eq!(off.cache, CacheMode::Off);
        assert_eq!(off.args, ["a"]);
        assert!(serde_json::from_str::<WasmPolicy>(r#"{"module":"m","bogus":1}"#).is_err());
    }
}
