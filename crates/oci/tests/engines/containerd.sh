# The containerd session of engines.rs (the path a Kubernetes RuntimeClass takes:
# containerd's runc shim calling the runtime binary). Steps as in podman.sh.
. "$HARNESS"
close_extra_fds; harness_traps; private_run
build_busybox_rootfs "$WORK/rootfs" && build_oci_archive "$WORK/rootfs" "$WORK/bb.tar" localhost/bb:latest || exit 90
containerd_start "$WORK/ctrd" >/dev/null && containerd_import_image "$WORK/bb.tar" >/dev/null || exit 91
img=localhost/bb:latest
step() { local name=$1; shift; echo "== $name"; "$@" 2>&1; echo "== $name rc=$?"; }
step run-rm cctr run --rm --runc-binary "$OCI" $img c1 sh -c 'echo hi; exit 4'
step run-d cctr run -d --runc-binary "$OCI" $img c2 sleep 1000
# The process stays a moment: ctr 1.6 loses the output of an exec that
# exits at once when the machine is busy, with runc as with nucleus-oci
# (300 execs with both CPUs busy: runc 4 lost, nucleus-oci 6; idle: 0, 0).
step exec cctr task exec --exec-id x1 c2 sh -c 'id -u; sleep 0.3; exit 6'
step pause cctr task pause c2
step paused sh -c "ctr -a $CTRD_SOCK task ls | grep c2 | tr -s ' ' | cut -d' ' -f3"
step resume cctr task resume c2
step kill cctr task kill -s SIGKILL c2
sleep 0.5
step delete cctr task delete c2
step rm cctr containers rm c2
step oom cctr run --rm --runc-binary "$OCI" --memory-limit 33554432 $img c3 tail /dev/zero
step gvisor cctr run --rm --runc-binary "$OCI" --annotation org.nucleus.trust-level=untrusted $img g1 sh -c "dmesg | head -1 | sed 's/^[^]]*] //'"
leftovers() { cctr task ls -q; ls -A /run/containerd/runc/default 2>/dev/null; }
step leftovers leftovers
