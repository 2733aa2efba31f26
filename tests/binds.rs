//! End to end: the user's own files through binds and preopens, as root
//! and as `nobody`, under both runtimes. As root, sources are opened by the
//! runner with root's rights and idmapped: root's files are the sandbox
//! root's and what it writes lands as root's; nothing privileged lands.
//! Rootless, the caller's own id is the sandbox's root.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A directory private to `who` (0700) with `in/f` ("hi") below it,
/// owned by `who`, and a file `in/other` of another host user (uid 4242,
/// mode 0644).
fn private_tree(tag: &str, who: As) -> TempDir {
    let dir = TempDir::new(tag);
    let inner = dir.path().join("in");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(inner.join("f"), "hi").unwrap();
    std::fs::write(inner.join("other"), "theirs").unwrap();
    let owner = owner_id(who);
    for p in [dir.path(), &inner, &inner.join("f")] {
        std::os::unix::fs::chown(p, Some(owner), Some(owner)).unwrap();
    }
    std::os::unix::fs::chown(inner.join("other"), Some(4242), Some(4242)).unwrap();
    set_mode(&inner.join("other"), 0o644);
    set_mode(dir.path(), 0o700);
    dir
}

fn owner_id(who: As) -> u32 {
    match who {
        As::Caller => caller_uid(),
        As::Nobody => 65534,
    }
}

fn inner(dir: &TempDir) -> PathBuf {
    dir.path().join("in")
}

#[test]
fn binds_below_a_private_directory_with_the_invokers_owners() {
    let test = "binds_private";
    if !is_root() {
        return skip(test, "making trees for root and nobody needs root");
    }
    for (runtime, who) in combinations(test, &[As::Caller, As::Nobody]) {
        let dir = private_tree(&format!("binds-{runtime:?}-{who:?}"), who);
        let src = inner(&dir).display().to_string();
        let ro = format!("{src}:/data");
        let out = run_on(
            runtime,
            who,
            &["--ro-bind", &ro, "--", "/bin/cat", "/data/f"],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "hi", "{runtime:?} {who:?}");
        // Writing: a new file, the invoker's existing file, another user's.
        let script = "echo new > /data/g && echo more >> /data/f && \
                      (echo x >> /data/other 2>/dev/null && echo OTHER-WRITTEN || echo other-refused); \
                      chown 0:0 /data/g; stat -c %u:%g /data/g 2>/dev/null || echo stat-unavailable";
        let rw = format!("{src}:/data");
        let out = run_on(
            runtime,
            who,
            &["--bind", &rw, "--", "/bin/sh", "-c", script],
        );
        assert_code(&out, 0);
        let text = stdout(&out);
        // Every capability is dropped inside: another user's file is not
        // writable (for a root invoker the sandbox is stricter than root).
        assert!(
            text.contains("other-refused"),
            "{runtime:?} {who:?}: {text}"
        );
        let owner = owner_id(who);
        for name in ["g", "f"] {
            let meta = std::fs::metadata(inner(&dir).join(name)).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (owner, owner),
                "{runtime:?} {who:?}: {name} landed with the wrong owner"
            );
        }
        assert_eq!(
            std::fs::read_to_string(inner(&dir).join("f")).unwrap(),
            "himore\n"
        );
        let other = std::fs::read_to_string(inner(&dir).join("other")).unwrap();
        assert_eq!(other, "theirs", "{runtime:?} {who:?}");
    }
}

#[test]
fn a_source_the_invoker_cannot_reach_is_named() {
    let test = "binds_unreachable";
    if !is_root() {
        return skip(test, "needs a directory private to root");
    }
    let dir = private_tree("binds-unreachable", As::Caller);
    let bind = format!("{}:/data", inner(&dir).display());
    for (runtime, who) in combinations(test, &[As::Nobody]) {
        let out = run_on(runtime, who, &["--ro-bind", &bind, "--", "/bin/true"]);
        assert_code(&out, 125);
        let err = stderr(&out);
        assert!(err.contains(&inner(&dir).display().to_string()), "{err}");
        assert!(err.to_lowercase().contains("permission denied"), "{err}");
    }
}

#[test]
fn a_filesystem_that_cannot_be_idmapped_is_named_with_the_choices() {
    let test = "binds_no_idmap";
    if !is_root() {
        return skip(test, "idmapped binds are a root caller's");
    }
    // sysfs has no idmapped mounts: a writable bind is refused, a read-only
    // one is a plain bind (nothing can land through it).
    for (runtime, who) in combinations(test, &[As::Caller]) {
        let out = run_on(
            runtime,
            who,
            &["--bind", "/sys/kernel:/k", "--", "/bin/true"],
        );
        assert_code(&out, 125);
        let err = stderr(&out);
        assert!(err.contains("/sys/kernel"), "{err}");
        assert!(err.contains("cannot be idmapped"), "{err}");
        assert!(err.contains("--bind-mode plain"), "{err}");
        let out = run_on(
            runtime,
            who,
            &[
                "--bind-mode",
                "plain",
                "--ro-bind",
                "/sys/kernel:/k",
                "--",
                "/bin/true",
            ],
        );
        assert_code(&out, 0);
        let out = run_on(
            runtime,
            who,
            &["--ro-bind", "/sys/kernel:/k", "--", "/bin/true"],
        );
        assert_code(&out, 0);
    }
}

#[test]
fn idmapped_binds_set_no_privilege_on_host_files() {
    let test = "binds_no_privilege";
    if !is_root() {
        return skip(test, "idmapped binds are a root caller's");
    }
    for (runtime, who) in combinations(test, &[As::Caller]) {
        let dir = private_tree(&format!("binds-priv-{runtime:?}"), who);
        let bind = format!("{}:/data", inner(&dir).display());
        let script = "cp /bin/true /data/e; \
                      chmod 4755 /data/e 2>/dev/null && echo SUID || echo no-suid; \
                      chmod 2755 /data/e 2>/dev/null && echo SGID || echo no-sgid; \
                      python3 -c 'import os; os.setxattr(\"/data/e\", \"security.capability\", bytes(20))' \
                        2>/dev/null && echo CAPS || echo no-caps";
        let out = run_on(
            runtime,
            who,
            &["--bind", &bind, "--", "/bin/sh", "-c", script],
        );
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "no-suid\nno-sgid\nno-caps\n", "{runtime:?}");
        let meta = std::fs::metadata(inner(&dir).join("e")).unwrap();
        assert_eq!(meta.uid(), 0);
        assert_eq!(
            meta.mode() & 0o6000,
            0,
            "{runtime:?}: mode {:o}",
            meta.mode()
        );
    }
}

/// A WASI module writes through a preopen below a private directory: the
/// file lands as the invoker's.
#[test]
fn preopens_write_as_the_invoker() {
    let test = "binds_preopen";
    if !is_root() {
        return skip(test, "making trees for root and nobody needs root");
    }
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm/tests/fixtures/tool.wat");
    let public = TempDir::new("binds-preopen-module");
    let copy = public.path().join("tool.wat");
    std::fs::copy(&module, &copy).unwrap();
    set_mode(&copy, 0o644);
    for who in [As::Caller, As::Nobody] {
        if !can_run_as(test, who) {
            continue;
        }
        let dir = private_tree(&format!("binds-preopen-{who:?}"), who);
        let preopen = format!("{}:/w", inner(&dir).display());
        let module = copy.display().to_string();
        let mut child = command(
            who,
            &[
                "--wasm-cache",
                "off",
                "--wasm",
                &module,
                "--dir",
                &preopen,
                "--",
                "w",
                "out",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"written").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
        let file = inner(&dir).join("out");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "written");
        let owner = owner_id(who);
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), owner, "{who:?}");
    }
}

#[test]
fn doctor_tells_which_filesystems_can_be_idmapped() {
    let test = "binds_doctor";
    if !is_root() {
        return skip(test, "idmapped binds are a root caller's");
    }
    let dir = TempDir::new("binds-doctor");
    let out = run(
        As::Caller,
        &[
            "doctor",
            "--json",
            "--bind",
            &dir.arg(),
            "--bind",
            "/sys/kernel",
        ],
    );
    let report = doctor_report(&out);
    let binds = report["binds"].as_array().unwrap();
    assert_eq!(binds[0]["idmap"], "idmapped", "{report}");
    let why = binds[1]["idmap"].as_str().unwrap();
    assert!(
        why.contains("sysfs") && why.contains("cannot be idmapped"),
        "{why}"
    );
}

/// What the sandbox can write it cannot run: writable binds and tmpfs
/// mounts are noexec, so neither `execve` nor the dynamic loader
/// (`ld.so /w/t`, which maps the file with PROT_EXEC) runs a program copied
/// there; `--bind-exec` is the way to allow it. The loader trick is a host
/// kernel check (natively); gVisor's sentry checks noexec at execve only
/// (see the `exec_map_tmp` probe of tests/containment.rs).
#[test]
fn writable_mounts_run_nothing_unless_bind_exec() {
    let loader = "/lib64/ld-linux-x86-64.so.2";
    if !Path::new(loader).exists() {
        return skip("writable_mounts_noexec", "no x86-64 dynamic loader here");
    }
    let mut failures = Vec::new();
    for (runtime, who) in combinations("writable_mounts_noexec", &[As::Caller, As::Nobody]) {
        let dir = world_writable(&format!("noexec-{runtime:?}-{who:?}"));
        let bind = format!("{}:/w", dir.arg());
        let script = format!(
            "cp /bin/true $D/t; {loader} $D/t 2>/dev/null; echo loader=$?; \
             $D/t 2>/dev/null; echo exec=$?"
        );
        let cases: [(&[&str], &str, &str, &str); 3] = [
            (&["--bind", &bind], "/w", "127", "126"),
            (&["--tmpfs", "/s"], "/s", "127", "126"),
            (&["--bind-exec", &bind], "/w", "0", "0"),
        ];
        for (flags, at, loader_code, exec_code) in cases {
            let mut args = flags.to_vec();
            let with_dir = format!("D={at}; {script}");
            args.extend(["--", "/bin/sh", "-c", &with_dir]);
            let out = run_on(runtime, who, &args);
            let loader_want = match runtime {
                Runtime::Native => loader_code,
                // The sentry lets the loader map it (see above).
                Runtime::Gvisor => "0",
            };
            let want = format!("loader={loader_want}\nexec={exec_code}\n");
            if out.status.code() != Some(0) || stdout(&out) != want {
                failures.push(format!(
                    "{runtime:?} {who:?} {flags:?}: expected {want:?}, got {:?} (exit {:?}; {})",
                    stdout(&out),
                    out.status.code(),
                    stderr(&out).trim_end()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A `--rootfs` image whose bind target is a symbolic link out of the
/// image: the native view resolves mount points inside the image with no
/// link followed, so the launch fails at that mount point (`ELOOP`) instead
/// of mounting over whatever the link names. (runsc resolves the target
/// inside its own root, so only the native envelope is asked.)
#[test]
fn a_bind_target_linking_out_of_a_rootfs_image_is_refused() {
    let image = TempDir::new("binds-image-link");
    for dir in ["usr", "proc", "dev", "tmp"] {
        std::fs::create_dir(image.path().join(dir)).unwrap();
    }
    std::os::unix::fs::symlink("/etc", image.path().join("data")).unwrap();
    let source = TempDir::new("binds-image-src");
    let bind = format!("{}:/data", source.arg());
    let args = [
        "--rootfs",
        &image.arg(),
        "--ro-bind",
        &bind,
        "--",
        "/bin/true",
    ];
    for who in [As::Caller, As::Nobody] {
        if !can_run_as(
            "a_bind_target_linking_out_of_a_rootfs_image_is_refused",
            who,
        ) {
            continue;
        }
        let out = run_on(Runtime::Native, who, &args);
        assert_code(&out, 125);
        let err = stderr(&out);
        assert!(
            err.contains("mount: /data: too many levels of symbolic links"),
            "{who:?}: {err}"
        );
    }
}
