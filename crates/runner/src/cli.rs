//! The command line: a thin mapping from flags to an [`Envelope`].
//!
//! Longer than the other files on purpose: the flags are a table (a doc
//! line and an attribute each), read best in one place, and each maps to
//! its Envelope field in a few lines below.

use clap::{Args, Parser, Subcommand};
use nucleus_idmap::{IdMapping, UsernsMode};
use nucleus_ns::NamespaceSet;
use nucleus_rootfs::{Base, MountSpec};
use nucleus_runner::{parse_duration, Envelope, NetworkMode, RunError, UserSpec};
use std::path::PathBuf;

/// The examples `--help` ends with.
const EXAMPLES: &str = "\
Examples:
  An agent's command, its project writable, nothing else of yours visible (gVisor when installed):
    nucleus-run --bind ~/project:/work -w /work --timeout 60s --json -- python3 -m pytest -q

  A service with pinned policies and limits, natively (trusted code):
    nucleus-run --trust-level trusted --seccomp-profile svc.json --seccomp-profile-sha256 HEX \\
      --landlock-policy svc.toml --landlock-policy-sha256 HEX -m 512M --cpus 1 --pids 64 -- ./server

  A WebAssembly module with one read-only and one writable directory:
    nucleus-run --wasm tool.wasm --dir ./in:/in:ro --dir ./out:/out -- /in/data.txt

  Many short commands through a warm launcher (same flags, same result):
    nucleus-run serve --socket $XDG_RUNTIME_DIR/nucleus.sock &
    nucleus-run --server $XDG_RUNTIME_DIR/nucleus.sock -- python3 -c 'print(1)'

  What works on this machine, and how to fix what does not:
    nucleus-run doctor

Docker and bubblewrap equivalents: -e K=V, -w DIR, -u UID[:GID], -m SIZE as in docker run;
--ro-bind SRC:DST is bwrap's --ro-bind SRC DST; a sandbox is always removed at its end (--rm).";

/// Run a command inside a nucleus sandbox.
#[derive(Debug, Parser)]
#[command(name = "nucleus-run", version, args_conflicts_with_subcommands = true)]
#[command(
    override_usage = "nucleus-run [OPTIONS] -- CMD [ARGS...]\n       nucleus-run [OPTIONS] --wasm MODULE [-- ARGS...]\n       nucleus-run doctor [--json] [--verbose] [--runsc PATH] [--bind PATH]...\n       nucleus-run seccomp record -o PROFILE.json [OPTIONS] -- CMD [ARGS...]\n       nucleus-run serve --socket PATH\n       nucleus-run session create|exec|ls|rm ...\n       nucleus-run completions bash|zsh|fish",
    after_help = EXAMPLES
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) sub: Option<Sub>,
    // First: the order of the help's headings is the order of their flags.
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Log the runner's steps to stderr at LEVEL (error, warn, info, debug,
    /// trace; default: NUCLEUS_LOG, else nothing).
    #[arg(long, global = true, value_name = "LEVEL", help_heading = "Output")]
    pub(crate) log_level: Option<tracing_subscriber::filter::LevelFilter>,
    /// The log's format: text, or json (one object per line).
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        help_heading = "Output",
        value_enum,
        default_value_t
    )]
    pub(crate) log_format: crate::logging::LogFormat,
}

// Parsed once per process; boxing the flags would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Sub {
    /// Check this machine: ok, limited or missing for each capability sandboxes use, with the fix.
    Doctor {
        /// Print the full report and the verdicts as JSON.
        #[arg(long)]
        json: bool,
        /// The long form: the facts behind each verdict.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Also try an idmapped bind of PATH (repeatable): can its filesystem be idmapped?
        #[arg(long, value_name = "PATH")]
        bind: Vec<std::path::PathBuf>,
        /// The runsc binary to check and try (default: found on PATH).
        #[arg(long, value_name = "PATH")]
        runsc: Option<PathBuf>,
        /// Judge a saved `doctor --json` report instead of probing (for tests).
        #[arg(long, value_name = "FILE", hide = true, conflicts_with_all = ["bind", "runsc"])]
        from_json: Option<PathBuf>,
    },
    /// Record the minimal seccomp profile of a command, or print the default one.
    Seccomp {
        #[command(subcommand)]
        cmd: SeccompCmd,
    },
    /// Print a shell completion script: `source <(nucleus-run completions bash)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `nucleus-run man | man -l -`.
    Man,
    /// Stay up and run each request of a unix socket in a new sandbox (`--server PATH` sends them).
    Serve {
        /// The socket to listen on (made with mode 0600; only your uid and root may connect).
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        /// The most sandboxes run at once; more requests get a "busy" reply.
        #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
        max_sandboxes: u16,
        /// How many network namespaces a root server makes ahead, while idle (0: none).
        #[arg(long, value_name = "N", default_value_t = 8)]
        netns_pool: usize,
        /// Build N sandboxes ahead for each recent kind of run request, each used by one request (default 0: none; at most 16).
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=16))]
        spares: u8,
        /// How long a client may take to send its request (default 10s).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        request_timeout: Option<std::time::Duration>,
    },
    /// Keep a sandbox for several commands, in the `nucleus-run serve` of --server PATH (or $NUCLEUS_SERVER).
    Session {
        #[command(subcommand)]
        cmd: SessionCmd,
    },
}

/// The session subcommands; each talks to a server.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCmd {
    /// Make session NAME: the sandbox of the flags (no command), kept until `session rm`, its idle timeout or the server's stop.
    Create {
        /// The session's name: 1-64 of A-Z a-z 0-9 . _ - (not starting with . or -).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Remove the session after this long with no command running (default 10m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        idle_timeout: Option<std::time::Duration>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run CMD in session NAME (its files, directory state and limits are the session's); exits with CMD's code.
    Exec {
        /// The session.
        name: String,
        /// The server (default: $NUCLEUS_SERVER).
        #[arg(long, value_name = "PATH")]
        server: Option<PathBuf>,
        /// Kill CMD (and its process group) after DURATION (default: the session's --timeout).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Set an environment variable for CMD (repeatable).
        #[arg(long, short = 'e', value_name = "K=V", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Start CMD in DIR inside the sandbox (default: the session's workdir).
        #[arg(long, short = 'w', value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Print CMD's result as one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Keep CMD's stdout and stderr in the JSON result (at most --capture-limit each, default 1M).
        #[arg(long)]
        capture: bool,
        /// With --capture: keep at most SIZE of each stream.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        capture_limit: Option<u64>,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List the server's sessions.
    Ls {
        /// The server (default: $NUCLEUS_SERVER).
        #[arg(long, value_name = "PATH")]
        server: Option<PathBuf>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End session NAME: its processes are killed and what it made is removed.
    Rm {
        /// The session.
        name: String,
        /// The server (default: $NUCLEUS_SERVER).
        #[arg(long, value_name = "PATH")]
        server: Option<PathBuf>,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum SeccompCmd {
    /// Run CMD in the envelope with every syscall allowed but recorded, and
    /// write the minimal allowlist profile (OCI JSON) that lets it run again.
    Record {
        /// Where to write the profile.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the default agent profile as OCI JSON.
    Default,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Use this host directory as the (read-only) root.
    #[arg(long, value_name = "DIR", help_heading = "Filesystem")]
    rootfs: Option<PathBuf>,
    /// Bind a host path writable, noexec: SRC[:DST] (repeatable; see --bind-exec).
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    bind: Vec<MountSpec>,
    /// Bind a host path read-only: SRC[:DST] (repeatable).
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    ro_bind: Vec<MountSpec>,
    /// Bind a host path writable and executable: SRC[:DST] (not noexec; Landlock allows exec there).
    #[arg(long, value_name = "SRC[:DST]", help_heading = "Filesystem")]
    bind_exec: Vec<MountSpec>,
    /// Mount an empty tmpfs at DST (repeatable).
    #[arg(long, value_name = "DST", help_heading = "Filesystem")]
    tmpfs: Vec<PathBuf>,
    /// How a root caller's binds show ids: idmap (default: your files are the sandbox root's, its files land as yours) or plain.
    #[arg(long, value_name = "MODE", help_heading = "Filesystem")]
    bind_mode: Option<nucleus_rootfs::BindMode>,
    /// Follow symbolic links in bind sources (by default a source that is or passes through one is refused).
    #[arg(long, help_heading = "Filesystem")]
    bind_follow_symlinks: bool,
    /// Show a masked credential path again (repeatable; see --print-config for the list).
    #[arg(long, value_name = "PATH", help_heading = "Filesystem")]
    unmask: Vec<PathBuf>,
    /// Working directory inside.
    #[arg(long, value_name = "DIR", short = 'w', help_heading = "Filesystem")]
    workdir: Option<PathBuf>,
    /// The uid[:gid] of the workload inside.
    #[arg(long, value_name = "UID[:GID]", short = 'u', help_heading = "Identity")]
    user: Option<UserSpec>,
    /// User namespace mode: auto, rootless, keep-id, root-remapped, explicit, host.
    #[arg(long, value_name = "MODE", help_heading = "Identity")]
    userns: Option<UsernsMode>,
    /// Shorthand for --userns rootless.
    #[arg(long, conflicts_with = "userns", help_heading = "Identity")]
    rootless: bool,
    /// A uid map line CONTAINER:HOST:SIZE (repeatable; implies --userns explicit).
    #[arg(long, value_name = "C:H:S", help_heading = "Identity")]
    uidmap: Vec<IdMapping>,
    /// A gid map line CONTAINER:HOST:SIZE (repeatable).
    #[arg(long, value_name = "C:H:S", help_heading = "Identity")]
    gidmap: Vec<IdMapping>,
    /// Hostname inside.
    #[arg(long, value_name = "NAME", help_heading = "Identity")]
    hostname: Option<String>,
    /// Set an environment variable (overrides the defaults PATH, HOME, HOSTNAME, TERM).
    #[arg(long, value_name = "K=V", value_parser = parse_env, short = 'e', help_heading = "Identity")]
    env: Vec<(String, String)>,
    /// Pass a host environment variable through (repeatable).
    #[arg(long, value_name = "NAME", help_heading = "Identity")]
    env_keep: Vec<String>,
    /// Network: none (own namespace, only lo) or host (needs --allow-host-network).
    #[arg(long, value_name = "MODE", value_enum, help_heading = "Network")]
    network: Option<NetworkMode>,
    /// Consent to --network host.
    #[arg(long, help_heading = "Network")]
    allow_host_network: bool,
    /// Allow TCP connect to PORT when the network is shared (repeatable).
    #[arg(long, value_name = "PORT", help_heading = "Network")]
    allow_tcp_connect: Vec<u16>,
    /// Allow TCP bind on PORT when the network is shared (repeatable).
    #[arg(long, value_name = "PORT", help_heading = "Network")]
    allow_tcp_bind: Vec<u16>,
    /// Allow UDP when the network is shared: Landlock cannot limit it to
    /// ports, so while TCP is limited it is denied (EPERM) unless this is given.
    #[arg(long, help_heading = "Network")]
    allow_udp: bool,
    /// Namespaces: a preset (default, all, none) or a list, `-name` removes (default,-ipc).
    #[arg(long = "ns", value_name = "LIST", help_heading = "Policies")]
    namespaces: Option<NamespaceSet>,
    /// Keep a capability (repeatable; default: drop all).
    #[arg(long, value_name = "CAP", help_heading = "Policies")]
    cap_keep: Vec<nucleus_caps::Capability>,
    /// A TOML capability policy file.
    #[arg(long, value_name = "FILE", help_heading = "Policies")]
    caps_policy: Option<PathBuf>,
    /// Landlock: default (the container policy) or off.
    #[arg(long, value_name = "MODE", value_enum, help_heading = "Policies")]
    landlock: Option<nucleus_runner::LandlockMode>,
    /// A TOML Landlock policy file used instead of the default policy.
    #[arg(long, value_name = "FILE", help_heading = "Policies")]
    landlock_policy: Option<PathBuf>,
    /// The SHA-256 the --landlock-policy file must have.
    #[arg(long, value_name = "HEX", help_heading = "Policies")]
    landlock_policy_sha256: Option<String>,
    /// Landlock compatibility for the default policy: strict or best-effort.
    #[arg(long, value_name = "MODE", value_enum, help_heading = "Policies")]
    landlock_compat: Option<CompatArg>,
    /// seccomp: default (the agent profile) or off.
    #[arg(long, value_name = "MODE", value_enum, help_heading = "Policies")]
    seccomp: Option<nucleus_runner::SeccompMode>,
    /// An OCI seccomp profile (JSON) used instead of the default profile.
    #[arg(long, value_name = "FILE", help_heading = "Policies")]
    seccomp_profile: Option<PathBuf>,
    /// The SHA-256 the --seccomp-profile file must have.
    #[arg(long, value_name = "HEX", help_heading = "Policies")]
    seccomp_profile_sha256: Option<String>,
    /// Have the kernel log every denied syscall (still denied).
    #[arg(long, help_heading = "Policies")]
    seccomp_log_denied: bool,
    /// Wall-clock limit (30s, 500ms, 2m); the whole sandbox is killed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    timeout: Option<std::time::Duration>,
    /// Memory limit of the whole sandbox (512M, 2G); the kernel kills on excess.
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse_size, short = 'm', help_heading = "Limits")]
    memory: Option<u64>,
    /// Memory plus swap limit (at least --memory; equal means no swap).
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE", value_parser = parse_size, help_heading = "Limits")]
    memory_swap: Option<u64>,
    /// CPU limit in cores (0.5, 1.5), at most the machine's online cores.
    #[arg(long, allow_hyphen_values = true, value_name = "N", value_parser = parse_cpus, help_heading = "Limits")]
    cpus: Option<f64>,
    /// Maximum number of processes and threads in the sandbox.
    #[arg(long, allow_hyphen_values = true, value_name = "N", value_parser = parse_pids, help_heading = "Limits")]
    pids: Option<u64>,
    /// An io.max line "MAJ:MIN rbps=1M,wiops=100" (repeatable).
    #[arg(long, value_name = "SPEC", help_heading = "Limits")]
    io_max: Vec<nucleus_cgroup::IoMax>,
    /// CPU time limit of each process (RLIMIT_CPU), e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    cpu_time: Option<std::time::Duration>,
    /// An rlimit NAME=SOFT[:HARD] (core, nofile, nproc, as, ...; repeatable).
    #[arg(long, value_name = "NAME=SOFT[:HARD]", help_heading = "Limits")]
    rlimit: Vec<nucleus_cgroup::rlimit::Rlimit>,
    /// A limit of the sandbox's user namespace, /proc/sys/user/NAME=N (repeatable; defaults: max_inotify_instances=16, max_inotify_watches=8192).
    #[arg(long, value_name = "NAME=N", value_parser = parse_ulimit_ns, help_heading = "Limits")]
    ulimit_ns: Vec<(String, u64)>,
    /// Run even when some limit cannot be set; the result lists what was not applied.
    #[arg(long, help_heading = "Limits")]
    best_effort_limits: bool,
    /// The cgroup to make the sandbox's cgroup in (relative to the hierarchy's
    /// root): one delegated to you that holds no process (default: your own).
    #[arg(long, value_name = "PATH", help_heading = "Limits")]
    cgroup_parent: Option<PathBuf>,
    /// Trust level: untrusted (default: gVisor when runsc exists, never host network) or trusted.
    #[arg(long, value_name = "LEVEL", value_enum, help_heading = "Runtime")]
    trust_level: Option<nucleus_runner::guard::TrustLevel>,
    /// Runtime: auto (by trust level), native or gvisor.
    #[arg(long, value_name = "RUNTIME", value_enum, help_heading = "Runtime")]
    runtime: Option<nucleus_runner::guard::Runtime>,
    /// Run an untrusted workload natively when gVisor cannot be used (the result says degraded).
    #[arg(long, help_heading = "Runtime")]
    allow_degraded_security: bool,
    /// Refuse to start unless kernel lockdown is at least integrity or confidentiality.
    #[arg(long, value_name = "MODE", help_heading = "Runtime")]
    require_kernel_lockdown: Option<nucleus_runner::guard::Lockdown>,
    /// The runsc binary (default: found on PATH).
    #[arg(long, value_name = "PATH", help_heading = "Runtime")]
    runsc: Option<PathBuf>,
    /// The gVisor platform (default: one the installed runsc supports, ptrace first).
    #[arg(long, value_name = "NAME", help_heading = "Runtime")]
    gvisor_platform: Option<String>,
    /// Write runsc's debug logs into DIR (for bug reports; the mapped root id must be able to write there).
    #[arg(long, value_name = "DIR", help_heading = "Runtime")]
    gvisor_debug_log: Option<PathBuf>,
    /// Run this WASI module (.wasm or .wat) in the sandbox instead of a program; the words after -- are its arguments.
    #[arg(long, value_name = "MODULE", help_heading = "WebAssembly")]
    wasm: Option<PathBuf>,
    /// A directory for the module: HOST[:GUEST][:ro] (repeatable; read-only really is).
    #[arg(
        long = "dir",
        value_name = "HOST[:GUEST][:ro]",
        help_heading = "WebAssembly"
    )]
    dirs: Vec<nucleus_wasm::Preopen>,
    /// Fuel for the module: roughly how many wasm instructions it may run.
    #[arg(long, value_name = "N", help_heading = "WebAssembly")]
    wasm_fuel: Option<u64>,
    /// Cap on the module's linear memory (and tables in proportion), e.g. 64M.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "WebAssembly")]
    wasm_max_memory: Option<u64>,
    /// Compiled-module cache: a directory, or off (default: the user's cache directory).
    #[arg(long, value_name = "DIR|off", help_heading = "WebAssembly")]
    wasm_cache: Option<String>,
    /// Print the result as one JSON object on stdout after the workload ends.
    #[arg(long, help_heading = "Output")]
    pub(crate) json: bool,
    /// Keep the workload's stdout and stderr in the JSON result, which is then all that stdout carries.
    #[arg(long, help_heading = "Output")]
    pub(crate) capture: bool,
    /// With --capture: keep at most SIZE of each stream (default 1M); the result says when it cut.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Output")]
    capture_limit: Option<u64>,
    /// Write the JSON result to this file descriptor instead.
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub(crate) result_fd: Option<i32>,
    /// Read the Envelope from a TOML or JSON file; flags given too override it.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub(crate) config: Option<PathBuf>,
    /// Send the run to the `nucleus-run serve` listening on PATH (default: $NUCLEUS_SERVER); runs directly, with a warning, when none listens.
    #[arg(long, value_name = "PATH", help_heading = "Runtime")]
    pub(crate) server: Option<PathBuf>,
    /// Print the effective Envelope as TOML and exit.
    #[arg(long, help_heading = "Output")]
    pub(crate) print_config: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// `--landlock-compat`: the command line's names for
/// [`nucleus_landlock_policy::Compat`] (a layer crate does not depend on clap).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompatArg {
    /// Fail unless everything asked for is enforced.
    Strict,
    /// Enforce what the kernel supports; the result says what was dropped.
    BestEffort,
}

impl From<CompatArg> for nucleus_landlock_policy::Compat {
    fn from(arg: CompatArg) -> Self {
        match arg {
            CompatArg::Strict => Self::Strict,
            CompatArg::BestEffort => Self::BestEffort,
        }
    }
}

/// What `--capture` keeps of each stream without `--capture-limit` (1 MiB).
pub(crate) const DEFAULT_CAPTURE_LIMIT: u64 = 1 << 20;

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    nucleus_cgroup::parse_size(s).map_err(|e| e.to_string())
}

fn parse_cpus(s: &str) -> Result<f64, String> {
    nucleus_cgroup::parse_cpus(s, nucleus_cgroup::online_cpus()).map_err(|e| e.to_string())
}

fn parse_pids(s: &str) -> Result<u64, String> {
    nucleus_cgroup::parse_count(s, nucleus_cgroup::PIDS_MAX).map_err(|e| e.to_string())
}

fn parse_ulimit_ns(s: &str) -> Result<(String, u64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=N, got {s:?}"))?;
    let value = value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not a whole number"))?;
    Ok((name.to_owned(), value))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected K=V, got {s:?}"))
}

impl RunArgs {
    /// The Envelope: the config file's (or the default), with flags applied.
    /// Whether a command was given (`-- CMD`).
    pub(crate) fn has_command(&self) -> bool {
        !self.command.is_empty()
    }

    pub(crate) fn envelope(self) -> Result<Envelope, RunError> {
        let mut env = match &self.config {
            Some(path) => Envelope::from_file(path)?,
            None => Envelope::default(),
        };
        self.apply_userns(&mut env);
        self.apply_landlock(&mut env);
        self.apply_seccomp(&mut env);
        self.apply_limits(&mut env);
        self.apply_guards(&mut env);
        self.apply_wasm(&mut env)?;
        if !self.command.is_empty() {
            env.command = self.command;
        }
        if let Some(ns) = self.namespaces {
            env.namespaces = ns;
        }
        if let Some(network) = self.network {
            env.network = network;
        }
        env.allow_host_network |= self.allow_host_network;
        if let Some(user) = self.user {
            env.user = Some(user);
        }
        if let Some(dir) = self.rootfs {
            env.rootfs.base = Base::Directory(dir);
        }
        env.rootfs.mounts.extend(self.bind);
        for spec in self.bind_exec {
            env.landlock.exec_binds.push(spec.destination.clone());
            env.rootfs.mounts.push(spec.executable());
        }
        env.rootfs
            .mounts
            .extend(self.ro_bind.into_iter().map(MountSpec::read_only));
        env.rootfs
            .mounts
            .extend(self.tmpfs.into_iter().map(MountSpec::tmpfs));
        env.rootfs.bind_follow_symlinks |= self.bind_follow_symlinks;
        if let Some(mode) = self.bind_mode {
            env.rootfs.bind_mode = mode;
        }
        for path in &self.unmask {
            env.rootfs.unmask(path)?;
        }
        if let Some(dir) = self.workdir {
            env.workdir = dir;
        }
        if let Some(name) = self.hostname {
            env.hostname = Some(name);
        }
        env.env.extend(self.env);
        env.env_keep.extend(self.env_keep);
        if let Some(t) = self.timeout {
            env.timeout = Some(t);
        }
        if let Some(path) = &self.caps_policy {
            env.caps = nucleus_caps::CapsPolicy::from_file(path)?;
        }
        env.caps.keep.extend(self.cap_keep);
        Ok(env)
    }

    fn apply_landlock(&self, env: &mut Envelope) {
        let ll = &mut env.landlock;
        if let Some(mode) = self.landlock {
            ll.mode = mode;
        }
        if let Some(path) = &self.landlock_policy {
            ll.policy_file = Some(path.clone());
        }
        if let Some(pin) = &self.landlock_policy_sha256 {
            ll.policy_sha256 = Some(pin.clone());
        }
        if let Some(compat) = self.landlock_compat {
            ll.compat = compat.into();
        }
        ll.allow_tcp_connect.extend(&self.allow_tcp_connect);
        ll.allow_tcp_bind.extend(&self.allow_tcp_bind);
        ll.allow_udp |= self.allow_udp;
    }

    fn apply_seccomp(&self, env: &mut Envelope) {
        let sc = &mut env.seccomp;
        if let Some(mode) = self.seccomp {
            sc.mode = mode;
        }
        if let Some(path) = &self.seccomp_profile {
            sc.profile_file = Some(path.clone());
        }
        if let Some(pin) = &self.seccomp_profile_sha256 {
            sc.profile_sha256 = Some(pin.clone());
        }
        sc.log_denied |= self.seccomp_log_denied;
    }

    fn apply_limits(&self, env: &mut Envelope) {
        let l = &mut env.limits;
        l.memory = self.memory.or(l.memory);
        l.memory_swap = self.memory_swap.or(l.memory_swap);
        l.cpus = self.cpus.or(l.cpus);
        l.pids = self.pids.or(l.pids);
        l.io_max.extend(self.io_max.iter().cloned());
        if self.best_effort_limits {
            env.limit_mode = nucleus_cgroup::LimitMode::BestEffort;
        }
        if let Some(parent) = &self.cgroup_parent {
            env.cgroup_parent = Some(parent.clone());
        }
        for r in &self.rlimit {
            env.rlimits.set(*r);
        }
        env.userns_limits.extend(self.ulimit_ns.iter().cloned());
        if self.capture || self.capture_limit.is_some() {
            env.capture = Some(
                self.capture_limit
                    .or(env.capture)
                    .unwrap_or(DEFAULT_CAPTURE_LIMIT),
            );
        }
        if let Some(t) = self.cpu_time {
            env.rlimits.set(nucleus_cgroup::rlimit::cpu_time(
                t.as_secs_f64().ceil() as u64
            ));
        }
    }

    fn apply_guards(&self, env: &mut Envelope) {
        if let Some(level) = self.trust_level {
            env.trust_level = level;
        }
        if let Some(runtime) = self.runtime {
            env.runtime = runtime;
        }
        env.allow_degraded_security |= self.allow_degraded_security;
        if self.require_kernel_lockdown.is_some() {
            env.require_kernel_lockdown = self.require_kernel_lockdown;
        }
        if let Some(path) = &self.runsc {
            env.gvisor.runsc = Some(path.clone());
        }
        if let Some(platform) = &self.gvisor_platform {
            env.gvisor.platform = Some(platform.clone());
        }
        if let Some(dir) = &self.gvisor_debug_log {
            env.gvisor.debug_log = Some(dir.clone());
        }
    }

    fn apply_wasm(&self, env: &mut Envelope) -> Result<(), RunError> {
        if let Some(module) = &self.wasm {
            env.wasm = Some(nucleus_runner::WasmSettings::new(module));
        }
        let Some(wasm) = env.wasm.as_mut() else {
            return match self.wasm_flag() {
                Some(flag) => Err(RunError::WasmFlagWithoutModule { flag }),
                None => Ok(()),
            };
        };
        // A relative host directory is the caller's, as with wasmtime's --dir.
        for dir in &self.dirs {
            let mut dir = dir.clone();
            if dir.host.is_relative() {
                dir.host =
                    std::path::absolute(&dir.host).map_err(|source| RunError::RelativePath {
                        path: dir.host.clone(),
                        source,
                    })?;
            }
            wasm.preopens.push(dir);
        }
        wasm.fuel = self.wasm_fuel.or(wasm.fuel);
        wasm.max_memory = self.wasm_max_memory.or(wasm.max_memory);
        match self.wasm_cache.as_deref() {
            Some("off") => wasm.cache = nucleus_wasm::CacheMode::Off,
            Some(dir) => wasm.cache = nucleus_wasm::CacheMode::Dir(dir.into()),
            None => {}
        }
        Ok(())
    }

    /// The first WASI flag given, if any.
    fn wasm_flag(&self) -> Option<&'static str> {
        [
            (!self.dirs.is_empty(), "--dir"),
            (self.wasm_fuel.is_some(), "--wasm-fuel"),
            (self.wasm_max_memory.is_some(), "--wasm-max-memory"),
            (self.wasm_cache.is_some(), "--wasm-cache"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    fn apply_userns(&self, env: &mut Envelope) {
        if let Some(mode) = self.userns {
            env.userns.mode = mode;
        }
        if self.rootless {
            env.userns.mode = UsernsMode::Rootless;
        }
        if !self.uidmap.is_empty() || !self.gidmap.is_empty() {
            env.userns.mode = UsernsMode::Explicit;
            env.userns.uid_map.clone_from(&self.uidmap);
            env.userns.gid_map.clone_from(&self.gidmap);
        }
    }
}
