//! A root directory given by the user is not trusted: a symbolic link in it
//! must never lead a mount of the plan out of it. Each case builds an image,
//! compiles the plan, plants the link, and applies the plan in a forked
//! child in new mount (and, not as root, user) namespaces; the child sends
//! back the failed step and errno.

#![allow(clippy::unwrap_used)]

use nucleus_rootfs::{ApplyError, Base, MountPlan, MountSpec, RootfsPolicy};
use std::ffi::CString;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Prints `SKIPPED <test>: <why>`, or fails under `NUCLEUS_TEST_STRICT=1`.
fn skip(test: &str, why: &str) {
    if std::env::var_os("NUCLEUS_TEST_STRICT").is_some_and(|v| v == "1") {
        panic!("{test}: {why} (NUCLEUS_TEST_STRICT=1)");
    }
    println!("SKIPPED {test}: {why}");
}

/// A scratch directory holding `img` (the root directory: `usr`, `proc`,
/// `dev`, `tmp`, `etc/shadow`, `data/`) and `outside/` (with `shadow`).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let base = std::env::temp_dir().join(format!("nucleus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for dir in [
            "img/usr", "img/proc", "img/dev", "img/tmp", "img/etc", "img/data",
        ] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        std::fs::write(base.join("img/etc/shadow"), "image secret").unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/shadow"), "host secret").unwrap();
        Scratch(base)
    }

    fn img(&self) -> PathBuf {
        self.0.join("img")
    }

    /// Replaces `img/<name>` (a directory) with a symbolic link to `target`.
    fn plant(&self, name: &str, target: &str) {
        let path = self.img().join(name);
        std::fs::remove_dir_all(&path).unwrap();
        symlink(target, &path).unwrap();
    }

    fn policy(&self) -> RootfsPolicy {
        RootfsPolicy {
            base: Base::Directory(self.img()),
            // A fresh /proc needs a PID namespace of our own; the host's
            // (read-only) serves as well here.
            fresh_proc: false,
            ..RootfsPolicy::default()
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What applying a plan in a child gave: `Ok` or the failed step.
type Applied = Result<(), ApplyError>;

/// Applies `plan` in a forked child in new namespaces; `None` when this
/// machine cannot make them (the test is then skipped).
fn apply_in_child(test: &str, plan: &MountPlan) -> Option<Applied> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    // Prepared before the fork: the child only makes system calls.
    let maps = [
        (c"/proc/self/setgroups", CString::new("deny").unwrap()),
        (
            c"/proc/self/uid_map",
            CString::new(format!("0 {uid} 1")).unwrap(),
        ),
        (
            c"/proc/self/gid_map",
            CString::new(format!("0 {gid} 1")).unwrap(),
        ),
    ];
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child makes system calls on prepared data only and leaves
    // with `_exit`; the parent waits for it below.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child(plan, uid == 0, &maps, fds[1]);
    }
    // SAFETY: our copy of the write end, not used again.
    unsafe { libc::close(fds[1]) };
    let mut words = [0i32; 3];
    // SAFETY: `words` is a live buffer of the size given.
    let n = unsafe { libc::read(fds[0], words.as_mut_ptr().cast(), 12) };
    // SAFETY: the read end, not used again.
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a valid int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(n, 12, "the child sent nothing (status {status:#x})");
    match words {
        [0, _, _] => Some(Ok(())),
        [1, errno, _] => {
            skip(
                test,
                &format!("cannot make namespaces here (errno {errno})"),
            );
            None
        }
        [_, step, errno] => Some(Err(ApplyError {
            step: step as u32,
            errno,
        })),
    }
}

/// Sends three words to the parent and leaves the child.
fn send(fd: i32, words: [i32; 3]) -> ! {
    // SAFETY: `words` is a live buffer of the size given; then the child
    // leaves without unwinding into the test harness.
    unsafe {
        libc::write(fd, words.as_ptr().cast(), 12);
        libc::_exit(0)
    }
}

/// The forked child: new namespaces, the plan, one message, `_exit`.
fn child(plan: &MountPlan, root: bool, maps: &[(&std::ffi::CStr, CString); 3], fd: i32) -> ! {
    let flags = if root {
        libc::CLONE_NEWNS
    } else {
        libc::CLONE_NEWNS | libc::CLONE_NEWUSER
    };
    // SAFETY: plain system call, no memory passed.
    if unsafe { libc::unshare(flags) } != 0 {
        send(
            fd,
            [
                1,
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                0,
            ],
        );
    }
    if !root {
        for (path, value) in maps {
            // SAFETY: NUL-terminated strings that outlive the calls; the fd is closed.
            unsafe {
                let f = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                libc::write(f, value.as_ptr().cast(), value.as_bytes().len());
                libc::close(f);
            }
        }
    }
    match plan.apply() {
        Ok(()) => send(fd, [0, 0, 0]),
        Err(e) => send(fd, [2, e.step as i32, e.errno]),
    }
}

/// Compiles `policy`, then plants (what the image holds when the child
/// comes to it), then applies: the outcome, and the failure as
/// `MountPlan::describe` says it.
fn run_case(test: &str, policy: &RootfsPolicy, plant: impl FnOnce()) -> Option<(Applied, String)> {
    let plan = policy.compile().unwrap();
    plant();
    let applied = apply_in_child(test, &plan)?;
    let described = match &applied {
        Ok(()) => String::new(),
        Err(e) => plan.describe(e),
    };
    Some((applied, described))
}

#[test]
fn an_untouched_image_applies() {
    let test = "an_untouched_image_applies";
    let scratch = Scratch::new("root-ok");
    let mut policy = scratch.policy();
    policy.mounts.push(MountSpec::tmpfs("/data"));
    if let Some((applied, described)) = run_case(test, &policy, || {}) {
        assert_eq!(applied, Ok(()), "{described}");
    }
}

/// A mount point of the plan (a user mount's destination) that is a link
/// out of the image when the child comes to it: refused, no link followed.
#[test]
fn a_link_out_of_the_image_at_a_mount_point_is_refused() {
    let test = "a_link_out_of_the_image_at_a_mount_point_is_refused";
    let scratch = Scratch::new("root-mountpoint");
    let mut policy = scratch.policy();
    policy.mounts.push(MountSpec::tmpfs("/data"));
    let outside = scratch.0.join("outside").display().to_string();
    if let Some((applied, described)) = run_case(test, &policy, || scratch.plant("data", &outside))
    {
        assert_eq!(applied.unwrap_err().errno, libc::ELOOP);
        assert_eq!(described, "mount: /data: too many levels of symbolic links");
    }
}

/// A directory on the way to a user mount's destination that is a link
/// (`opt -> ../..`): refused at that directory.
#[test]
fn a_link_on_the_way_to_a_mount_point_is_refused() {
    let test = "a_link_on_the_way_to_a_mount_point_is_refused";
    let scratch = Scratch::new("root-parent");
    let mut policy = scratch.policy();
    policy.mounts.push(MountSpec::tmpfs("/data/inner"));
    if let Some((applied, described)) = run_case(test, &policy, || scratch.plant("data", "../..")) {
        assert_eq!(applied.unwrap_err().errno, libc::ELOOP);
        assert_eq!(described, "mount: /data: too many levels of symbolic links");
    }
}

/// A masked file reached through a directory that became a link out of
/// the image (`etc -> ../outside`) after the parent checked it: the mask's
/// bind is resolved beneath the image and fails with `EXDEV`, where a bind
/// by path would have followed the link (or silently found nothing).
#[test]
fn a_mask_through_a_link_out_of_the_image_fails_with_exdev() {
    let test = "a_mask_through_a_link_out_of_the_image_fails_with_exdev";
    let scratch = Scratch::new("root-mask");
    let policy = scratch.policy();
    assert!(policy
        .masks()
        .unwrap()
        .iter()
        .any(|m| m.path == Path::new("/etc/shadow")));
    if let Some((applied, described)) =
        run_case(test, &policy, || scratch.plant("etc", "../outside"))
    {
        assert_eq!(applied.unwrap_err().errno, libc::EXDEV);
        assert_eq!(
            described,
            "mount: /masked-file on /etc/shadow: invalid cross-device link"
        );
    }
}
