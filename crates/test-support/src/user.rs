//! Running a program as another user, through `setpriv(1)` (root only).

use std::ffi::OsStr;
use std::process::Command;

/// The uid and gid of `nobody`.
pub const NOBODY: u32 = 65534;

/// The `setpriv` options that switch to `uid` (and the same gid) with no supplementary group;
/// the caller adds `--` and the program.
///
/// ```
/// let args = nucleus_test_support::setpriv_args(nucleus_test_support::NOBODY);
/// assert_eq!(args, ["--reuid=65534", "--regid=65534", "--clear-groups"]);
/// ```
pub fn setpriv_args(uid: u32) -> [String; 3] {
    [
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_owned(),
    ]
}

/// `setpriv --reuid=UID --regid=UID --clear-groups -- PROGRAM`: a command that runs `program`
/// as `uid`; add its arguments to the command. Needs root to switch.
///
/// ```no_run
/// use nucleus_test_support::{as_user, NOBODY};
///
/// let out = as_user(NOBODY, "/usr/bin/id").arg("-u").output()?;
/// assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn as_user(uid: u32, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(setpriv_args(uid)).arg("--").arg(program);
    cmd
}
