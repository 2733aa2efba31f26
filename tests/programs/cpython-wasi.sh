#!/usr/bin/env bash
# Build CPython for WASI preview 1 (a wasm32-wasi core module) with Debian bookworm's
# clang-16 / lld-16 / wasi-libc, from Debian's pool copy of the upstream tarball.
#
#   usage: build.sh OUTDIR
#
# Leaves:
#   OUTDIR/python.wasm          the interpreter (WASI preview 1 command module)
#   OUTDIR/lib/python3.13/      the pure-Python standard library (+ _sysconfigdata)
#
# The guest looks for its stdlib at /usr/local/lib/python3.13 (prefix /usr/local), so run e.g.
#   wasmtime run --dir OUTDIR/lib::/usr/local/lib OUTDIR/python.wasm -c 'print(1)'
# (or map OUTDIR/lib anywhere and set PYTHONHOME=/that/parent/dir).
#
# Idempotent: does nothing when OUTDIR/python.wasm exists.
# Env: CPYTHON_WASI_WORK=DIR  work dir (default: a temp dir, removed on success)
#      CPYTHON_WASI_JOBS=N    make -j (default 2)
set -euo pipefail

OUT=${1:?usage: build.sh OUTDIR}
OUT=$(realpath -m "$OUT")
if [ -f "$OUT/python.wasm" ]; then
    echo "cpython-wasi: $OUT/python.wasm exists; nothing to do"
    exit 0
fi

PYVER=3.13.5
PYMM=3.13
URL="http://deb.debian.org/debian/pool/main/p/python${PYMM}/python${PYMM}_${PYVER}.orig.tar.xz"
SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
# zlib (for the zlib module: gzip, zipfile, ...), Debian bookworm's source, built for wasm32-wasi
ZLIB_VER=1.2.13
ZLIB_URL="http://deb.debian.org/debian/pool/main/z/zlib/zlib_${ZLIB_VER}.dfsg.orig.tar.bz2"
ZLIB_SHA256=71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1
LLVM=16
JOBS=${CPYTHON_WASI_JOBS:-2}
# Debian packages this build needs (bookworm).
PKGS="clang-$LLVM lld-$LLVM llvm-$LLVM libclang-rt-$LLVM-dev-wasm32 wasi-libc build-essential curl xz-utils bzip2 ca-certificates"

log() { echo "cpython-wasi: $*"; }
die() { echo "cpython-wasi: ERROR: $*" >&2; exit 1; }
# run LOGFILE CMD...: quiet, but show the log's tail when it fails
run() {
    local logf=$1; shift
    if ! "$@" >"$logf" 2>&1; then
        echo "cpython-wasi: command failed: $*  (log: $logf)" >&2
        tail -n 40 "$logf" >&2
        exit 1
    fi
}

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        log "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        run "${TMPDIR:-/tmp}/cpython-wasi-apt.log" apt-get update -q
        # shellcheck disable=SC2086
        run "${TMPDIR:-/tmp}/cpython-wasi-apt.log" apt-get install -y -q --no-install-recommends $missing
    else
        die "missing Debian packages:$missing (apt-get install them)"
    fi
fi

START=$(date +%s)
if [ -n "${CPYTHON_WASI_WORK:-}" ]; then
    WORK=$(realpath -m "$CPYTHON_WASI_WORK"); mkdir -p "$WORK"; KEEP=1
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpython-wasi.XXXXXX"); KEEP=0
fi
log "work dir $WORK"

# fetch URL SHA256 FILE: download unless FILE already has that sha256
fetch() {
    if ! echo "$2  $3" | sha256sum -c --status 2>/dev/null; then
        log "downloading $1"
        curl -fsSL --retry 3 -o "$3.part" "$1"
        echo "$2  $3.part" | sha256sum -c --status || die "sha256 mismatch for $1"
        mv "$3.part" "$3"
    fi
}

# 1. sources
TARBALL="$WORK/python${PYMM}_${PYVER}.orig.tar.xz"
fetch "$URL" "$SHA256" "$TARBALL"
SRC="$WORK/Python-$PYVER"
if [ ! -f "$SRC/configure" ]; then
    rm -rf "$SRC"
    tar -C "$WORK" -xJf "$TARBALL"
fi
ZLIB_TARBALL="$WORK/zlib_${ZLIB_VER}.dfsg.orig.tar.bz2"
fetch "$ZLIB_URL" "$ZLIB_SHA256" "$ZLIB_TARBALL"

# 2. a sysroot holding only the WASI headers/libs, so clang doesn't also search the host's
#    /usr/include (Debian's clang adds it for --target=wasm32-wasi with the default sysroot).
SYSROOT="$WORK/sysroot"
mkdir -p "$SYSROOT/include" "$SYSROOT/lib"
ln -sfn /usr/include/wasm32-wasi "$SYSROOT/include/wasm32-wasi"
ln -sfn /usr/lib/wasm32-wasi "$SYSROOT/lib/wasm32-wasi"

# zlib as a static wasm32-wasi library in $DEPS
DEPS="$WORK/deps"
if [ ! -f "$DEPS/lib/libz.a" ]; then
    log "building zlib $ZLIB_VER for wasm32-wasi"
    rm -rf "$WORK/zlib-$ZLIB_VER.dfsg"
    tar -C "$WORK" -xjf "$ZLIB_TARBALL"
    (cd "$WORK/zlib-$ZLIB_VER.dfsg" && run "$WORK/zlib.log" env \
        CC="clang-$LLVM --target=wasm32-wasi --sysroot=$SYSROOT" AR="llvm-ar-$LLVM" RANLIB="llvm-ranlib-$LLVM" \
        CFLAGS=-O2 CHOST=wasm32-wasi sh -c "./configure --static --prefix='$DEPS' && make -j$JOBS libz.a && make install")
fi

# 3. the build python (a cross build needs one of the very same X.Y; built from the same source)
NATIVE="$WORK/native"
if [ ! -x "$NATIVE/python" ]; then
    log "building the build python ($PYVER, native)"
    mkdir -p "$NATIVE"
    (cd "$NATIVE" && run "$WORK/native-configure.log" "$SRC/configure" --prefix="$NATIVE/inst")
    (cd "$NATIVE" && run "$WORK/native-make.log" make -j"$JOBS")
fi

# 4. the wasm32-wasi python
CONFIG_SITE_FILE="$WORK/config.site-debian-wasi"
cat >"$CONFIG_SITE_FILE" <<EOF
. "$SRC/Tools/wasm/config.site-wasm32-wasi"
# Debian bookworm's wasi-libc (git 2022-05-10) has no <pthread.h>, so configure does not find
# pthread_t and thread_pthread.h fails with "Unsupported SIZEOF_PTHREAD_T value". CPython then
# uses its own stubs (Include/cpython/pthread_stubs.h) where both types are 'unsigned'.
ac_cv_have_pthread_t=yes
ac_cv_sizeof_pthread_t=4
ac_cv_sizeof_pthread_key_t=4
ac_cv_pthread_key_t_is_arithmetic_type=yes
EOF
WASI="$WORK/wasi"
if [ ! -f "$WASI/python.wasm" ]; then
    log "configuring for wasm32-wasi"
    rm -rf "$WASI"; mkdir -p "$WASI"
    CCW="clang-$LLVM --target=wasm32-wasi --sysroot=$SYSROOT"
    (cd "$WASI" && run "$WORK/wasi-configure.log" env \
        CONFIG_SITE="$CONFIG_SITE_FILE" \
        CC="$CCW" CPP="$CCW -E" CXX="clang++-$LLVM --target=wasm32-wasi --sysroot=$SYSROOT" \
        AR="llvm-ar-$LLVM" RANLIB="llvm-ranlib-$LLVM" \
        PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$SYSROOT/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$SYSROOT" \
        ZLIB_CFLAGS="-I$DEPS/include" ZLIB_LIBS="-L$DEPS/lib -lz" \
        "$SRC/configure" --host=wasm32-unknown-wasi --build="$("$SRC/config.guess")" \
            --with-build-python="$NATIVE/python" --prefix=/usr/local)
    log "building python.wasm (make -j$JOBS)"
    (cd "$WASI" && run "$WORK/wasi-make.log" make -j"$JOBS")
fi

# 5. install into a staging root, then lay out OUT
log "installing"
STAGE="$WORK/stage"
rm -rf "$STAGE"
(cd "$WASI" && run "$WORK/wasi-install.log" make install DESTDIR="$STAGE" ENSUREPIP=no)
LIB="$STAGE/usr/local/lib/python$PYMM"
[ -f "$LIB/os.py" ] || die "stdlib not found in $LIB"
# Drop what a WASI guest can't use or doesn't need: tests, Tk/IDLE, pip wheels, C headers/config.
rm -rf "$LIB/test" "$LIB/idlelib" "$LIB/tkinter" "$LIB/turtledemo" "$LIB/ensurepip" \
       "$LIB/config-$PYMM"* "$LIB/lib-dynload"
# Only plain .pyc are used without -O/-OO.
find "$LIB" -name '*.opt-[12].pyc' -delete
# All extension modules are built in, but getpath warns "Could not find platform dependent
# libraries <exec_prefix>" on stderr unless lib-dynload exists.
mkdir -p "$LIB/lib-dynload"

mkdir -p "$OUT.tmp"
rm -rf "$OUT.tmp"/*
mkdir -p "$OUT.tmp/lib"
cp -a "$LIB" "$OUT.tmp/lib/python$PYMM"
# Keep the name section (readable traps), drop DWARF.
llvm-strip-$LLVM --strip-debug -o "$OUT.tmp/python.wasm" "$STAGE/usr/local/bin/python$PYMM.wasm"
mkdir -p "$OUT"
rm -rf "$OUT/lib"
mv "$OUT.tmp/lib" "$OUT/lib"
mv "$OUT.tmp/python.wasm" "$OUT/python.wasm"   # last: its presence means "done"
rmdir "$OUT.tmp"

[ "$KEEP" = 1 ] || rm -rf "$WORK"
log "done in $(( $(date +%s) - START ))s: $OUT/python.wasm ($(stat -c %s "$OUT/python.wasm") bytes), stdlib $OUT/lib/python$PYMM"
