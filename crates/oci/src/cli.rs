//! The command line: runc's commands and global flags, as podman (through
//! conmon) and containerd's runc shim call them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `nucleus-oci`: a runc-compatible OCI runtime.
#[derive(Debug, Parser)]
#[command(name = "nucleus-oci", version, about, disable_help_subcommand = true)]
pub struct Cli {
    /// Where container state is kept (default /run/nucleus/oci, or
    /// $XDG_RUNTIME_DIR/nucleus/oci when not root).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Also write errors to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The log file's format.
    #[arg(long, global = true, value_name = "text|json", default_value = "text")]
    pub log_format: String,
    /// Use systemd for cgroups (not supported: refused).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility; no effect.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility (`true`, `false`, `auto`); no effect.
    #[arg(long, global = true, value_name = "VALUE")]
    pub rootless: Option<String>,
    /// Accepted for compatibility; checkpointing is not supported.
    #[arg(long, global = true, value_name = "PATH", hide = true)]
    pub criu: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The runtime's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start(IdArg),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container's init (or, with --all, every process).
    Kill(KillArgs),
    /// Delete a container and everything it holds.
    Delete(DeleteArgs),
    /// Create and start a container, wait for it and delete it.
    Run(RunArgs),
    /// Run another process in a running container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps(PsArgs),
    /// Freeze every process of a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a container's resource limits.
    Update(UpdateArgs),
    /// Print what this runtime supports, as JSON.
    Features,
    /// Print a container's resource usage.
    Events(EventsArgs),
    /// List containers.
    List(ListArgs),
    /// The container's init (internal).
    #[command(hide = true)]
    Init,
}

/// A container id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The container's id.
    pub id: String,
}

/// `create`.
#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// The bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid here.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Move the root with MS_MOVE and chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for compatibility: no session keyring is made.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many fds after stdio (3..3+N) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's id.
    pub id: String,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// As for `create`.
    #[command(flatten)]
    pub create: CreateArgs,
    /// Do not wait: leave the container running.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

/// `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// The container's id.
    pub id: String,
    /// The signal (name or number; default SIGTERM).
    pub signal: Option<String>,
}

/// `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The container's id.
    pub id: String,
}

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The process as OCI JSON (a spec's `process` object).
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid here.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// The working directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=VALUE).
    #[arg(long, short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The user, UID[:GID].
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(long, short = 'g', value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the process's sets.
    #[arg(long, short = 'c', value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass this many fds after stdio to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for compatibility (AppArmor is not supported: refused when set).
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Accepted for compatibility (SELinux is not supported: refused when set).
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// The container's id.
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// `table` or `json` (a list of pids).
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// The container's id.
    pub id: String,
    /// Options for ps(1) (accepted; the table lists pids and commands).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The new resources as OCI JSON (`linux.resources`), `-` for stdin.
    #[arg(long, short = 'r', value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long, short = 'm', value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory plus swap in bytes (-1: unlimited).
    #[arg(long, value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// CPU CFS quota in microseconds.
    #[arg(long, value_name = "US")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU shares.
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks.
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// The container's id.
    pub id: String,
}

/// `events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Between two stats events.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// The container's id.
    pub id: String,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// `table` or `json`.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// Print ids only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}
