//! Bad policies: refused with an error that says what is wrong.
#![allow(clippy::unwrap_used)] // tests: a failed set-up step is a failed test

mod common;

use std::path::PathBuf;

use common::{expect_errno, has_abi, in_child, skip, Scratch};
use nucleus_landlock_policy::{
    probe, sha256_hex, Compat, Enforcement, FsAccess, FsRule, LandlockError, Policy,
};

const POLICY: &str = "compat = \"strict\"\n[[fs]]\npath = \"/usr\"\naccess = [\"read\"]\n";

#[test]
fn unknown_right_names_are_refused() {
    let err = Policy::from_toml_str("[[fs]]\npath = \"/usr\"\naccess = [\"read\", \"exec\"]")
        .unwrap_err();
    assert!(matches!(err, LandlockError::ParseToml { .. }), "{err}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("unknown variant `exec`"), "{cause}");
}

#[test]
fn relative_paths_are_refused() {
    let err = Policy::from_toml_str("[[fs]]\npath = \"usr\"\naccess = [\"read\"]").unwrap_err();
    assert!(matches!(err, LandlockError::RelativePath { ref path } if path.as_os_str() == "usr"));
}

#[test]
fn a_pinned_hash_that_differs_is_refused() {
    let s = Scratch::new("pin");
    let file = s.root.join("policy.toml");
    std::fs::write(&file, POLICY).unwrap();
    let actual = sha256_hex(POLICY.as_bytes());

    let good = Policy::from_file(&file, Some(&actual.to_uppercase())).unwrap();
    assert_eq!(good.compat, Compat::Strict);
    assert_eq!(Policy::from_file(&file, None).unwrap(), good);

    let wrong = "0".repeat(64);
    match Policy::from_file(&file, Some(&wrong)).unwrap_err() {
        e @ LandlockError::HashMismatch { .. } => {
            let msg = e.to_string();
            assert!(msg.contains(&actual) && msg.contains(&wrong), "{msg}");
        }
        e => panic!("{e}"),
    }
    // One byte more (a trailing newline) is another file.
    std::fs::write(&file, format!("{POLICY}\n")).unwrap();
    assert!(matches!(
        Policy::from_file(&file, Some(&actual)),
        Err(LandlockError::HashMismatch { .. })
    ));
    assert!(matches!(
        Policy::from_file(&file, Some("sha256:abc")),
        Err(LandlockError::InvalidPin { .. })
    ));
    let missing = s.root.join("nope.toml");
    let err = Policy::from_file(&missing, None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn a_minimum_abi_above_the_kernels_is_refused() {
    let Some(kernel) = probe().abi else {
        return skip("a_minimum_abi_above_the_kernels_is_refused", "no landlock");
    };
    if kernel >= nucleus_landlock_policy::MAX_KNOWN_ABI {
        return skip(
            "a_minimum_abi_above_the_kernels_is_refused",
            "the kernel has the highest known abi",
        );
    }
    for compat in ["strict", "best-effort"] {
        let p = Policy::from_toml_str(&format!("compat = \"{compat}\"\nmin-abi = {}", kernel + 1))
            .unwrap();
        match p.compile().unwrap_err() {
            e @ LandlockError::AbiTooOld { .. } => assert_eq!(
                e.to_string(),
                format!(
                    "landlock policy needs abi {} but the kernel has abi {kernel}",
                    kernel + 1
                )
            ),
            e => panic!("{e}"),
        }
    }
    let p = Policy::from_toml_str(&format!("min-abi = {kernel}")).unwrap();
    assert!(p.compile().is_ok());
}

#[test]
fn a_right_the_kernel_lacks_fails_strict_and_is_dropped_in_best_effort() {
    let test = "a_right_the_kernel_lacks_fails_strict_and_is_dropped_in_best_effort";
    if !has_abi(1, test) {
        return;
    }
    let kernel = probe().abi.unwrap_or(0);
    if kernel >= 9 {
        return skip(test, "the kernel has resolve-unix (abi 9)");
    }
    let mut p = Policy::default();
    p.compat = Compat::Strict;
    p.fs.push(FsRule::new("/usr", [FsAccess::Read, FsAccess::ResolveUnix]));
    match p.compile().unwrap_err() {
        LandlockError::Unsupported {
            kernel_abi,
            dropped,
        } => {
            assert_eq!(kernel_abi, kernel);
            assert_eq!(dropped, vec!["resolve-unix"]);
        }
        e => panic!("{e}"),
    }
    p.compat = Compat::BestEffort;
    let compiled = p.compile().unwrap();
    in_child(|| {
        let report = compiled.restrict_self().map_err(|e| e.to_string())?;
        if report.status != Enforcement::PartiallyEnforced || report.dropped != ["resolve-unix"] {
            return Err(format!("unexpected report {report:?}"));
        }
        std::fs::read_dir("/usr").map_err(|e| e.to_string())?;
        expect_errno("read /etc", std::fs::read_dir("/etc"), libc::EACCES)
    });
}

#[test]
fn a_missing_path_fails_strict_naming_it() {
    if !has_abi(1, "a_missing_path_fails_strict_naming_it") {
        return;
    }
    let s = Scratch::new("missing-strict");
    let missing = s.root.join("data");
    let mut p = Policy::default();
    p.compat = Compat::Strict;
    p.fs.push(FsRule::new(&missing, [FsAccess::Read]));
    let compiled = p.compile().unwrap();
    in_child(|| match compiled.restrict_self() {
        Err(e @ LandlockError::MissingPath { .. }) => {
            let want = format!("landlock rule path {} does not exist", missing.display());
            if e.to_string() != want || e.raw_os_error() != Some(libc::ENOENT) {
                return Err(format!("got {e} ({:?})", e.raw_os_error()));
            }
            // Nothing was enforced: the process is as free as before.
            std::fs::read("/etc/hostname")
                .map(drop)
                .map_err(|e| e.to_string())
        }
        other => Err(format!("expected MissingPath, got {other:?}")),
    });
}

#[test]
fn a_missing_path_is_skipped_in_best_effort_and_when_optional() {
    if !has_abi(
        1,
        "a_missing_path_is_skipped_in_best_effort_and_when_optional",
    ) {
        return;
    }
    let s = Scratch::new("missing-skip");
    let tree = s.tree("t");
    let (missing, missing_optional) = (s.root.join("data"), s.root.join("lib32"));
    for (compat, rules) in [
        (
            Compat::BestEffort,
            vec![FsRule::new(&missing, [FsAccess::Read])],
        ),
        (
            Compat::Strict,
            vec![FsRule::new(&missing_optional, [FsAccess::Read]).optional()],
        ),
    ] {
        let mut p = Policy::default();
        p.compat = compat;
        p.fs = rules;
        p.fs.push(FsRule::new(&tree, [FsAccess::Read]));
        let expected: Vec<PathBuf> = vec![p.fs[0].path.clone()];
        let compiled = p.compile().unwrap();
        in_child(|| {
            let report = compiled.restrict_self().map_err(|e| e.to_string())?;
            if report.skipped_paths != expected || report.status != Enforcement::FullyEnforced {
                return Err(format!("unexpected report {report:?}"));
            }
            std::fs::read(tree.join("file")).map_err(|e| e.to_string())?;
            expect_errno(
                "read /etc/hostname",
                std::fs::read("/etc/hostname"),
                libc::EACCES,
            )
        });
    }
}
