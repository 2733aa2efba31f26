#!/bin/bash
# Helpers for the engine tests (crates/oci/tests/engines.rs): podman and containerd, each
# with private state, driving an OCI runtime. engines.rs runs every session in its own
# mount and PID namespaces (unshare -m -p -f), so whatever the engines start ends with it.
#
# podman and containerd hardcode paths under /run: private_run puts a tmpfs over it in the
# session's mount namespace, so all commands of one session share it.

# Hide host /run (and optionally the cgroup2 "unified" mount, needed for crun on this hybrid host).
# Call once, first thing inside `unshare -m --propagation private`.
private_run() {
    mount --make-rprivate / || return 1
    mount -t tmpfs -o mode=755 tmpfs /run || return 1
    # podman (c/image) writes /var/lib/containers/cache/blob-info-cache-v1.boltdb regardless of --root:
    # hide /var/lib behind a tmpfs in this namespace (nothing in these tools needs host /var/lib).
    mount -t tmpfs -o mode=755 tmpfs /var/lib || return 1
    mount -t tmpfs -o mode=1777 tmpfs /var/tmp || return 1
    if [ "${HIDE_UNIFIED:-0}" = 1 ] && mountpoint -q /sys/fs/cgroup/unified; then
        mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup/unified || return 1
    fi
}

# close_extra_fds : close every fd > 2 of the current shell (CI/tool harnesses leak fds that
# podman/conmon/containerd pass straight through to the OCI runtime and the container).
close_extra_fds() {
    local f n
    for f in /proc/$$/fd/*; do
        n=${f##*/}
        case $n in 0|1|2|255) ;; *) eval "exec $n>&-" 2>/dev/null ;; esac
    done
}

# build_busybox_rootfs DIR : minimal rootfs with static busybox + applet symlinks, passwd/group.
build_busybox_rootfs() {
    local d=$1 bb
    [ -n "$d" ] || { echo "usage: build_busybox_rootfs DIR" >&2; return 2; }
    bb=$(command -v busybox) || { echo "busybox not found" >&2; return 1; }
    file -L "$bb" | grep -q 'statically linked' || { echo "$bb is not static (apt-get install -y busybox-static)" >&2; return 1; }
    mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home/user,var,run}
    chmod 1777 "$d/tmp"
    cp "$bb" "$d/bin/busybox"
    local a
    for a in $("$bb" --list); do
        [ "$a" = busybox ] && continue
        ln -sf busybox "$d/bin/$a"
    done
    cat > "$d/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
    cat > "$d/etc/group" <<'G'
root:x:0:
user:x:1000:
nogroup:x:65534:
G
    chown 1000:1000 "$d/home/user"
    : > "$d/etc/hosts"; : > "$d/etc/resolv.conf"; echo bbtest > "$d/etc/hostname"
}

# podman_env [DIR] : create (or reuse) a throwaway podman storage dir and define PODMAN_FLAGS
# and the `pm` function. $RUNTIME (default /usr/sbin/runc) is the OCI runtime path.
podman_env() {
    PODMAN_DIR=${1:-${PODMAN_DIR:-$(mktemp -d /tmp/pm.XXXXXX)}}
    RUNTIME=${RUNTIME:-/usr/sbin/runc}
    PODMAN_DRIVER=${PODMAN_DRIVER:-overlay}
    mkdir -p "$PODMAN_DIR"/{root,runroot,tmp,volumes,netconf}
    # containers.conf override: no host config influence on network/cgroups/events (env var, not /etc)
    # [containers] netns="none": never let a stray `podman run` without --network none reach netavark,
    # which creates a podman0 bridge, nftables ip nat/filter NETAVARK-* chains and sets ip_forward=1
    # in the HOST network namespace (a private mount namespace does not isolate that).
    cat > "$PODMAN_DIR/containers.conf" <<C
[containers]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
image_copy_tmp_dir = "$PODMAN_DIR/tmp"
[network]
network_config_dir = "$PODMAN_DIR/netconf"
C
    export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
    export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
    # own storage.conf: ignore /etc/containers/storage.conf (empty file is rejected: "runroot must be set")
    printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' \
        "$PODMAN_DRIVER" "$PODMAN_DIR/root" "$PODMAN_DIR/runroot" > "$CONTAINERS_STORAGE_CONF"
    export CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf
    : > "$CONTAINERS_REGISTRIES_CONF"
    PODMAN_FLAGS=(--root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/runroot" --tmpdir "$PODMAN_DIR/tmp"
        --storage-driver "$PODMAN_DRIVER" --cgroup-manager cgroupfs --events-backend file
        --volumepath "$PODMAN_DIR/volumes" --network-config-dir "$PODMAN_DIR/netconf"
        --runtime "$RUNTIME")
    # run-flags every `run`/`create` needs on this VM (no CAP_SYS_RESOURCE in bounding set):
    PODMAN_RUN_FLAGS=(--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
}
pm() { podman "${PODMAN_FLAGS[@]}" "$@"; }
pmrun() { pm run "${PODMAN_RUN_FLAGS[@]}" "$@"; }

# podman_import_image ROOTFS_DIR [NAME] : tar the rootfs and `podman import` it (no registry).
podman_import_image() {
    local d=$1 name=${2:-localhost/bb:latest}
    tar -C "$d" --numeric-owner -cf "$PODMAN_DIR/rootfs.tar" . || return 1
    pm import -q --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
        "$PODMAN_DIR/rootfs.tar" "$name" >/dev/null || return 1
    rm -f "$PODMAN_DIR/rootfs.tar"
}

# podman_cleanup : remove all containers/images of the private storage and the dir itself.
podman_cleanup() {
    [ -n "$PODMAN_DIR" ] || return 0
    pm rm -af -t 0 >/dev/null 2>&1
    pm rmi -af >/dev/null 2>&1
    # overlay driver may leave its own mounts (e.g. root/overlay) in this namespace
    local m
    for m in $(awk -v p="$PODMAN_DIR" 'index($5,p)==1{print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
    rm -rf "$PODMAN_DIR"
    unset PODMAN_DIR
    cgroup_cleanup libpod_parent
}

# build_oci_archive ROOTFS_DIR OUT.tar [NAME] : hand-build an OCI image-layout tarball (no podman).
build_oci_archive() {
    local d=$1 out=$2 name=${3:-localhost/bb:latest} w
    w=$(mktemp -d /tmp/ociimg.XXXXXX) || return 1
    mkdir -p "$w/blobs/sha256"
    tar -C "$d" --numeric-owner -cf "$w/layer.tar" . || return 1
    local ld ls cd cs md ms
    ld=$(sha256sum "$w/layer.tar" | cut -d' ' -f1); ls=$(stat -c %s "$w/layer.tar")
    mv "$w/layer.tar" "$w/blobs/sha256/$ld"
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"build_oci_archive"}]}' "$ld" > "$w/cfg"
    cd=$(sha256sum "$w/cfg" | cut -d' ' -f1); cs=$(stat -c %s "$w/cfg"); mv "$w/cfg" "$w/blobs/sha256/$cd"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cd" "$cs" "$ld" "$ls" > "$w/man"
    md=$(sha256sum "$w/man" | cut -d' ' -f1); ms=$(stat -c %s "$w/man"); mv "$w/man" "$w/blobs/sha256/$md"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$name" "${name##*:}" > "$w/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$w/oci-layout"
    tar -C "$w" -cf "$out" oci-layout index.json blobs || return 1
    rm -rf "$w"
}

# containerd_start DIR : write config, start containerd in the background (in the current mount
# namespace; run private_run first), wait for the socket, print pid. Sets CTRD_DIR CTRD_SOCK CTRD_PID.
containerd_start() {
    local d=${1:?usage: containerd_start DIR}
    # must run in the caller's shell: it sets CTRD_* variables and owns the background job
    if [ "$BASH_SUBSHELL" -gt 0 ]; then echo "containerd_start: do not call inside \$(...) or a subshell" >&2; return 2; fi
    mkdir -p "$d"/{root,state,opt}
    CTRD_DIR=$d; CTRD_SOCK=$d/containerd.sock
    cat > "$d/config.toml" <<T
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true
T
    # own session: a group-wide signal to the test script (e.g. from `timeout`) must not kill
    # containerd before harness_cleanup_all had a chance to remove tasks through it.
    setsid containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 </dev/null &
    CTRD_PID=$!
    local i
    for i in $(seq 1 200); do
        [ -S "$CTRD_SOCK" ] && ctr -a "$CTRD_SOCK" version >/dev/null 2>&1 && break
        kill -0 $CTRD_PID 2>/dev/null || { echo "containerd died:" >&2; tail -20 "$d/containerd.log" >&2; return 1; }
        sleep 0.05
    done
    [ -S "$CTRD_SOCK" ] || { echo "containerd socket timeout" >&2; return 1; }
    echo $CTRD_PID
}
cctr() { ctr -a "$CTRD_SOCK" "$@"; }

# containerd_import_image ARCHIVE : import an OCI-layout/docker archive and unpack it to overlayfs.
# The image name comes from the archive (build_oci_archive sets io.containerd.image.name).
containerd_import_image() {
    local a=$1
    cctr images import --snapshotter overlayfs "$a"
}

# containerd_stop : stop all tasks/containers, stop containerd by pid, kill leftover shims of this
# containerd (by pid, matched on -address), unmount anything under CTRD_DIR, remove it.
containerd_stop() {
    [ -n "$CTRD_PID" ] || return 0
    local ns c p m
    for ns in $(cctr namespaces ls -q 2>/dev/null); do
        for c in $(ctr -a "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
            ctr -a "$CTRD_SOCK" -n "$ns" tasks kill -s SIGKILL "$c" >/dev/null 2>&1
            ctr -a "$CTRD_SOCK" -n "$ns" tasks delete -f "$c" >/dev/null 2>&1
        done
        for c in $(ctr -a "$CTRD_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
            ctr -a "$CTRD_SOCK" -n "$ns" containers rm "$c" >/dev/null 2>&1
        done
    done
    kill -TERM "$CTRD_PID" 2>/dev/null
    for p in $(seq 1 100); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$CTRD_PID" 2>/dev/null; wait "$CTRD_PID" 2>/dev/null
    # Leftover shims and containers end with the session's PID namespace.
    for m in $(awk -v p="$CTRD_DIR" 'index($5,p)==1{print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
    rm -rf "$CTRD_DIR"
    unset CTRD_PID CTRD_SOCK CTRD_DIR
    cgroup_cleanup default
}

# cgroup_cleanup NAME... : cgroupfs is global (not namespaced): engines leave their parent cgroups
# behind (podman cgroupfs: /libpod_parent and /libpod_parent/conmon; ctr: /<namespace> = /default).
# Remove them depth-first in every v1 controller and the v2 mount; rmdir only succeeds on empty
# cgroups, so cgroups still in use (e.g. by a parallel session) are left alone.
cgroup_cleanup() {
    local n c
    for n in "$@"; do
        for c in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
            [ -d "$c$n" ] || continue
            find "$c$n" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    done
    return 0
}

# harness_cleanup_all : cleanup of everything this session started. Install with harness_traps.
# harness_traps [EXTRA_CMD] : EXIT trap + TERM/INT/HUP converted to exit (bash does NOT run the EXIT
# trap when killed by an untrapped TERM -- e.g. from `timeout` -- leaving conmon/shims/containers).
harness_cleanup_all() {
    [ -n "${CTRD_PID:-}" ] && containerd_stop
    [ -n "${PODMAN_DIR:-}" ] && podman_cleanup
    return 0
}

harness_traps() {
    HARNESS_EXTRA_CLEANUP=${1:-}
    trap 'harness_cleanup_all; eval "$HARNESS_EXTRA_CLEANUP"' EXIT
    trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP
}

# now_ms / timeit LABEL CMD... : simple timing helpers
now_ms() { date +%s%3N; }
timeit() { local l=$1 t0 t1 rc; shift; t0=$(now_ms); "$@"; rc=$?; t1=$(now_ms); echo "TIME $l $((t1-t0))ms rc=$rc" >&2; return $rc; }
median() { sort -n | awk '{a[NR]=$1} END{ if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
