//! Filesystem rules, enforced in a forked child: the forbidden call fails with the exact
//! errno, the allowed one succeeds.
#![allow(clippy::unwrap_used)] // tests: a failed set-up step is a failed test

mod common;

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::{
    expect_errno, expect_ok, fork_lock, fs_policy, has_abi, in_child, system_rules, Scratch,
};
use libc::{EACCES, EXDEV};
use nucleus_landlock_policy::{CompiledPolicy, Enforcement, FsAccess, FsRule};

use FsAccess::{Create, Execute, Read, Refer, Remove, Write, WriteFile};

fn restrict(compiled: &CompiledPolicy) -> Result<(), String> {
    let report = compiled
        .restrict_self()
        .map_err(|e| format!("restrict_self: {e}"))?;
    if report.status != Enforcement::FullyEnforced {
        return Err(format!("not fully enforced: {report:?}"));
    }
    Ok(())
}

#[test]
fn reading_outside_the_rules_is_eacces() {
    if !has_abi(1, "reading_outside_the_rules_is_eacces") {
        return;
    }
    let s = Scratch::new("read");
    let (ro, other) = (s.tree("ro"), s.tree("other"));
    let compiled = fs_policy(vec![FsRule::new(&ro, [Read])]).compile().unwrap();
    in_child(|| {
        restrict(&compiled)?;
        expect_ok("read ro/file", fs::read(ro.join("file")))?;
        expect_ok("list ro", fs::read_dir(&ro))?;
        expect_errno("read other/file", fs::read(other.join("file")), EACCES)?;
        expect_errno("list other", fs::read_dir(&other), EACCES)?;
        expect_errno("read /etc/passwd", fs::read("/etc/passwd"), EACCES)
    });
}

#[test]
fn writing_into_a_read_only_tree_is_eacces() {
    if !has_abi(3, "writing_into_a_read_only_tree_is_eacces") {
        return;
    }
    let s = Scratch::new("write");
    let (ro, rw) = (s.tree("ro"), s.tree("rw"));
    let compiled = fs_policy(vec![
        FsRule::new(&ro, [Read]),
        FsRule::new(&rw, [Read, Write]),
    ])
    .compile()
    .unwrap();
    in_child(|| {
        restrict(&compiled)?;
        let open_w = |p: &Path| OpenOptions::new().write(true).open(p);
        expect_errno("open ro/file for writing", open_w(&ro.join("file")), EACCES)?;
        expect_errno("fs::write ro/file", fs::write(ro.join("file"), "x"), EACCES)?;
        expect_ok("fs::write rw/file", fs::write(rw.join("file"), "x"))?;
        expect_ok("open rw/file for writing", open_w(&rw.join("file"))).map(drop)
    });
}

#[test]
fn create_remove_rename_need_their_rights() {
    if !has_abi(1, "create_remove_rename_need_their_rights") {
        return;
    }
    let s = Scratch::new("create");
    let (ro, rw) = (s.tree("ro"), s.tree("rw"));
    fs::create_dir(ro.join("sub")).unwrap();
    let compiled = fs_policy(vec![
        FsRule::new(&ro, [Read, Write]),
        FsRule::new(&rw, [Read, Write, Create, Remove]),
    ])
    .compile()
    .unwrap();
    in_child(|| {
        restrict(&compiled)?;
        for (dir, denied) in [(&ro, true), (&rw, false)] {
            let steps: [(&str, std::io::Result<()>); 6] = [
                ("create file", File::create(dir.join("new")).map(drop)),
                ("mkdir", fs::create_dir(dir.join("newdir"))),
                ("symlink", symlink("file", dir.join("link"))),
                ("rename", fs::rename(dir.join("file"), dir.join("renamed"))),
                (
                    "unlink",
                    fs::remove_file(dir.join(if denied { "file" } else { "new" })),
                ),
                (
                    "rmdir",
                    fs::remove_dir(dir.join(if denied { "sub" } else { "newdir" })),
                ),
            ];
            for (what, r) in steps {
                let what = format!("{what} in {}", dir.display());
                if denied {
                    expect_errno(&what, r, EACCES)?;
                } else {
                    expect_ok(&what, r)?;
                }
            }
        }
        Ok(())
    });
}

#[test]
fn truncate_needs_its_own_right() {
    if !has_abi(3, "truncate_needs_its_own_right") {
        return;
    }
    let s = Scratch::new("truncate");
    let (wo, rw) = (s.tree("write-file-only"), s.tree("write"));
    let compiled = fs_policy(vec![
        FsRule::new(&wo, [Read, WriteFile]),
        FsRule::new(&rw, [Read, Write]),
    ])
    .compile()
    .unwrap();
    in_child(|| {
        restrict(&compiled)?;
        let file = wo.join("file");
        let opened = expect_ok(
            "open for writing",
            OpenOptions::new().write(true).open(&file),
        )?;
        expect_errno("ftruncate", opened.set_len(0), EACCES)?;
        expect_errno("truncate(2)", truncate(&file), EACCES)?;
        expect_errno(
            "open O_TRUNC",
            OpenOptions::new().write(true).truncate(true).open(&file),
            EACCES,
        )?;
        expect_ok("truncate(2) with write", truncate(&rw.join("file")))?;
        expect_ok("fs::write with write", fs::write(rw.join("file"), "x"))
    });
}

fn truncate(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid C string for the duration of the call.
    if unsafe { libc::truncate(c.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn a_dropped_binary_cannot_be_executed() {
    if !has_abi(1, "a_dropped_binary_cannot_be_executed") {
        return;
    }
    let s = Scratch::new("exec");
    let (noexec, exec) = (s.tree("noexec"), s.tree("exec"));
    {
        // No child forked meanwhile may inherit a copy open for writing (ETXTBSY on exec).
        let _fork = fork_lock();
        for dir in [&noexec, &exec] {
            fs::copy("/bin/true", dir.join("true")).unwrap();
            fs::set_permissions(dir.join("true"), fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let mut rules = system_rules();
    rules.push(FsRule::new(&noexec, [Read, Write, Create, Remove]));
    rules.push(FsRule::new(&exec, [Read, Execute]));
    let compiled = fs_policy(rules).compile().unwrap();
    let (denied, allowed) = (cstr(&noexec.join("true")), cstr(&exec.join("true")));
    in_child(|| {
        restrict(&compiled)?;
        expect_errno("exec noexec/true", execv(&denied), EACCES)?;
        // Replaces the child: its exit code (true: 0) is the verdict.
        execv(&allowed).map_err(|e| format!("exec exec/true: {e}"))
    });
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn execv(path: &CString) -> std::io::Result<()> {
    let argv = [path.as_ptr(), std::ptr::null()];
    // SAFETY: `path` and `argv` are valid, NULL-terminated, and outlive the call.
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    Err(std::io::Error::last_os_error())
}

#[test]
fn linking_across_trees_needs_refer() {
    if !has_abi(2, "linking_across_trees_needs_refer") {
        return;
    }
    let s = Scratch::new("refer");
    let (a, b) = (s.tree("a"), s.tree("b"));
    let (c, d) = (s.tree("c"), s.tree("d"));
    let scratch = [Read, Write, Create, Remove];
    let compiled = fs_policy(vec![
        FsRule::new(&a, scratch),
        FsRule::new(&b, scratch),
        FsRule::new(&c, [Read, Write, Create, Remove, Refer]),
        FsRule::new(&d, [Read, Write, Create, Remove, Refer]),
    ])
    .compile()
    .unwrap();
    in_child(|| {
        restrict(&compiled)?;
        expect_errno(
            "link a -> b",
            fs::hard_link(a.join("file"), b.join("l")),
            EXDEV,
        )?;
        expect_errno(
            "rename a -> b",
            fs::rename(a.join("file"), b.join("r")),
            EXDEV,
        )?;
        expect_ok("link within a", fs::hard_link(a.join("file"), a.join("l")))?;
        expect_ok("link c -> d", fs::hard_link(c.join("file"), d.join("l")))?;
        expect_ok("rename c -> d", fs::rename(c.join("file"), d.join("r")))
    });
}

#[test]
fn rules_on_single_files_drop_directory_rights() {
    if !has_abi(1, "rules_on_single_files_drop_directory_rights") {
        return;
    }
    let s = Scratch::new("file-rule");
    let dir = s.tree("t");
    fs::write(dir.join("other"), "x").unwrap();
    // `read` includes read-dir, which the kernel refuses on a file: it is left out.
    let compiled = fs_policy(vec![FsRule::new(dir.join("file"), [Read, Write])])
        .compile()
        .unwrap();
    in_child(|| {
        restrict(&compiled)?;
        expect_ok("read the file", fs::read(dir.join("file")))?;
        expect_errno("read its sibling", fs::read(dir.join("other")), EACCES)
    });
}
