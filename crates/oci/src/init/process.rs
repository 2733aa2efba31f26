//! The process's own settings, last before `execve`: working directory,
//! rlimits, OOM score, umask, groups and ids, capability sets,
//! `no_new_privs` and the seccomp filter.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nucleus_caps::CapsPolicy;
use nucleus_seccomp::{OciContext, Profile};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process, Spec};

use super::agent::Agent;
use crate::error::OciError;

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn sys(what: impl Into<String>, rc: libc::c_int) -> Result<(), OciError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(OciError::io(what, io::Error::last_os_error()))
    }
}

/// The spec's capability sets as a `nucleus-caps` policy (every set given
/// explicitly; an absent set is empty).
pub fn caps_policy(caps: Option<&LinuxCapabilities>) -> Result<CapsPolicy, OciError> {
    let value = serde_json::to_value(caps).map_err(|e| OciError::Layer(e.to_string()))?;
    let set = |name: &str| value.get(name).cloned().unwrap_or(serde_json::json!([]));
    // The kernel raises an ambient capability only when it is permitted and
    // inheritable; runc drops the others from the ambient set (`runc spec`
    // asks for ambient capabilities without inheritable ones), so does this.
    let has = |set_name: &str, cap: &serde_json::Value| {
        set(set_name).as_array().is_some_and(|a| a.contains(cap))
    };
    let ambient: Vec<serde_json::Value> = set("ambient")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| has("inheritable", c) && has("permitted", c))
        .collect();
    let policy = serde_json::json!({
        "allow_namespace_caps": true,
        "bounding": set("bounding"),
        "effective": set("effective"),
        "permitted": set("permitted"),
        "inheritable": set("inheritable"),
        "ambient": ambient,
    });
    serde_json::from_value(policy).map_err(|e| OciError::Invalid {
        field: "process.capabilities".to_owned(),
        reason: e.to_string(),
    })
}

/// The spec's seccomp profile, compiled, or `None` without one.
pub fn seccomp(
    spec: &Spec,
    caps: &CapsPolicy,
) -> Result<Option<nucleus_seccomp::CompiledFilter>, OciError> {
    let Some(sec) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    // The listener's socket is the runtime's business (`crate::listener`),
    // not the filter's.
    let mut sec = sec.clone();
    sec.set_listener_path(None);
    sec.set_listener_metadata(None);
    let json = serde_json::to_string(&sec).map_err(|e| OciError::Layer(e.to_string()))?;
    let names = caps
        .bounding
        .iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned))
        .collect();
    let profile = Profile::from_oci_json(&json, &OciContext::native(names))
        .map_err(|e| OciError::layer(&e))?;
    profile.compile().map(Some).map_err(|e| OciError::layer(&e))
}

/// Everything the process's settings need, compiled and checked before
/// the container reports itself created (so that `create` fails on a bad
/// program, capability, seccomp profile or Landlock path): applied by
/// [`Ready::apply`] once `start` came.
pub struct Ready {
    exec: Exec,
    process: Process,
    caps: nucleus_caps::CompiledCaps,
    filter: Option<nucleus_seccomp::CompiledFilter>,
    /// The seccomp agent that gets the filter's listener.
    agent: Option<Agent>,
    landlock: Option<nucleus_landlock_policy::CompiledPolicy>,
    setgroups_allowed: bool,
}

/// Compiles and checks the process's settings; enters its working
/// directory. With `agent`, the filter is applied with a listener that goes
/// to it.
pub fn prepare(
    process: &Process,
    spec: &Spec,
    setgroups_allowed: bool,
    landlock: Option<&nucleus_landlock_policy::Policy>,
    agent: Option<Agent>,
) -> Result<Ready, OciError> {
    let exec = Exec::prepare(process)?;
    let caps = caps_policy(process.capabilities().as_ref())?;
    let compiled_caps = caps.compile().map_err(|e| OciError::layer(&e))?;
    let filter = seccomp(spec, &caps)?;
    if let (Some(agent), Some(filter)) = (&agent, &filter) {
        agent.check(filter)?;
    }
    let landlock = landlock.map(crate::landlock::compile).transpose()?;
    enter_cwd(process.cwd())?;
    Ok(Ready {
        exec,
        process: process.clone(),
        caps: compiled_caps,
        agent: agent.filter(|_| filter.is_some()),
        filter,
        landlock,
        setgroups_allowed,
    })
}

impl Ready {
    /// Applies the settings, last before `execve`: rlimits, OOM score,
    /// umask, Landlock and seccomp, ids and groups, capabilities,
    /// `no_new_privs`. Returns what `execve` needs.
    pub fn apply(mut self) -> Result<Exec, OciError> {
        let mut agent = self.agent.take();
        let process = &self.process;
        let nnp = process.no_new_privileges().unwrap_or(false);
        for r in process.rlimits().iter().flatten() {
            let lim = libc::rlimit {
                rlim_cur: r.soft(),
                rlim_max: r.hard(),
            };
            // SAFETY: setrlimit reads a live struct.
            sys(format!("setrlimit {:?}", r.typ()), unsafe {
                libc::setrlimit(rlimit_resource(r.typ()), &lim)
            })?;
        }
        if let Some(adj) = process.oom_score_adj() {
            fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| OciError::io("write /proc/self/oom_score_adj", e))?;
        }
        if let Some(mask) = process.user().umask() {
            // SAFETY: umask cannot fail.
            unsafe { libc::umask(mask as libc::mode_t) };
        }
        // Landlock, then seccomp. Without no_new_privs both need
        // CAP_SYS_ADMIN: then they come while the process still has it (the
        // seccomp profile must allow what follows); with it, last.
        if !nnp {
            self.lock(agent.take())?;
        }
        switch_user(process, self.setgroups_allowed)?;
        self.caps
            .apply(process.user().uid() == 0)
            .map_err(|e| OciError::layer(&e))?;
        if nnp {
            nucleus_caps::set_no_new_privs().map_err(|e| OciError::layer(&e))?;
            self.lock(agent.take())?;
        }
        Ok(self.exec)
    }

    fn lock(&self, agent: Option<Agent>) -> Result<(), OciError> {
        if let Some(policy) = &self.landlock {
            crate::landlock::restrict(policy)?;
        }
        match (&self.filter, agent) {
            (Some(f), Some(agent)) => agent.apply(f)?,
            (Some(f), None) => f.apply().map_err(|e| OciError::layer(&e))?,
            (None, _) => {}
        }
        Ok(())
    }
}

fn enter_cwd(cwd: &Path) -> Result<(), OciError> {
    if std::env::set_current_dir(cwd).is_ok() {
        return Ok(());
    }
    fs::create_dir_all(cwd)
        .map_err(|e| OciError::io(format!("create cwd {}", cwd.display()), e))?;
    std::env::set_current_dir(cwd).map_err(|e| OciError::io(format!("chdir {}", cwd.display()), e))
}

fn switch_user(process: &Process, setgroups_allowed: bool) -> Result<(), OciError> {
    let user = process.user();
    let (uid, gid) = (user.uid(), user.gid());
    if uid != 0 {
        nucleus_caps::set_keepcaps(true).map_err(|e| OciError::layer(&e))?;
    }
    if setgroups_allowed {
        let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        // SAFETY: setgroups reads `groups.len()` gids from a live vector.
        sys("setgroups", unsafe {
            libc::setgroups(groups.len(), groups.as_ptr())
        })?;
    } else if user
        .additional_gids()
        .as_ref()
        .is_some_and(|g| !g.is_empty())
    {
        return Err(OciError::Invalid {
            field: "process.user.additionalGids".to_owned(),
            reason: "setgroups is denied in this user namespace".to_owned(),
        });
    }
    // SAFETY: plain id switches.
    sys(format!("setresgid {gid}"), unsafe {
        libc::setresgid(gid, gid, gid)
    })?;
    // SAFETY: as above.
    sys(format!("setresuid {uid}"), unsafe {
        libc::setresuid(uid, uid, uid)
    })
}

/// The program, argv and envp, resolved before privileges are dropped.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Exec {
    fn prepare(process: &Process) -> Result<Exec, OciError> {
        let args = process.args().clone().unwrap_or_default();
        let env = process.env().clone().unwrap_or_default();
        let c = |s: &str| {
            CString::new(s).map_err(|_| OciError::Invalid {
                field: "process".to_owned(),
                reason: format!("{s:?} holds a NUL byte"),
            })
        };
        let argv = args.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        let envp = env.iter().map(|e| c(e)).collect::<Result<Vec<_>, _>>()?;
        let first = args.first().ok_or_else(|| OciError::Invalid {
            field: "process.args".to_owned(),
            reason: "empty".to_owned(),
        })?;
        let path_var = env.iter().find_map(|e| e.strip_prefix("PATH="));
        let found = resolve(first, path_var, process.cwd());
        check_executable(first, &found)?;
        Ok(Exec {
            path: CString::new(found.as_os_str().as_bytes())
                .map_err(|_| OciError::Layer("bad path".into()))?,
            argv,
            envp,
        })
    }

    /// `execve`; returns only on failure.
    pub fn exec(self) -> OciError {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: NULL-terminated arrays of live C strings.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = io::Error::last_os_error();
        OciError::io(format!("exec {:?}", self.path), e)
    }
}

/// Fails as runc does when the program is missing or not executable, so
/// that `create` reports it (engines map it to 127 and 126).
fn check_executable(name: &str, found: &Path) -> Result<(), OciError> {
    let c = CString::new(found.as_os_str().as_bytes())
        .map_err(|_| OciError::Layer("bad path".into()))?;
    // SAFETY: access on a live NUL-terminated path.
    let executable = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
    if found.is_absolute() && executable && found.is_file() {
        return Ok(());
    }
    let why = if !found.is_absolute() || !found.exists() {
        if name.contains('/') {
            "no such file or directory"
        } else {
            "executable file not found in $PATH"
        }
    } else {
        "permission denied"
    };
    Err(OciError::Init(format!("exec: {name:?}: {why}")))
}

/// `name` as execvp finds it on `path` (the container's PATH, or the
/// default), or as given when it holds a `/`.
fn resolve(name: &str, path: Option<&str>, cwd: &Path) -> PathBuf {
    if name.contains('/') {
        let p = Path::new(name);
        return if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
    }
    let dirs = path.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in dirs.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(OsStr::new(name));
        if fs::metadata(&candidate).is_ok_and(|m| m.is_file()) {
            return candidate;
        }
    }
    PathBuf::from(name)
}
