# The podman session of engines.rs: every step prints "== NAME" before and "== NAME rc=N" after.
. "$HARNESS"
close_extra_fds; harness_traps; private_run
RUNTIME=$OCI podman_env "$WORK/pm"
build_busybox_rootfs "$WORK/rootfs" && podman_import_image "$WORK/rootfs" || exit 90
img=localhost/bb:latest
step() { local name=$1; shift; echo "== $name"; "$@" 2>&1; echo "== $name rc=$?"; }
step run-true pmrun --rm $img true
step run-exit pmrun --rm $img sh -c 'echo hi; echo err >&2; exit 3'
id=$(pmrun -d $img sleep 1000)
step exec-id pm exec $id id -u
step exec-exit pm exec $id sh -c 'exit 7'
step exec-missing pm exec $id /nonexistent
step exec-user pm exec --user 1000:1000 --workdir /tmp -e FOO=bar $id sh -c 'id -u; pwd; echo $FOO'
step stop pm stop -t 1 $id
step rm pm rm $id
# The limits as the container sees its cgroup: v1's files, or v2's.
step limits pmrun --rm --memory 64m --pids-limit 50 $img sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max'
step oom pmrun --rm --memory 32m --memory-swap 32m $img tail /dev/zero
# No pipeline: under load the shell's own fork for one could be the one
# refused. busybox sh exits 2 at the first fork the limit refuses.
step pids pmrun --rm --pids-limit 8 $img sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done 2>&1'
# One stream: conmon may deliver a container's stdout and stderr in either order.
step read-only pmrun --rm --read-only $img sh -c 'touch /x 2>&1; touch /tmp/y && echo tmp-writable'
step user pmrun --rm --user 1000:1000 $img id
step cap-drop pmrun --rm --cap-drop ALL $img sh -c 'grep CapEff /proc/self/status'
step no-caps-no-mount pmrun --rm $img mount -t tmpfs none /tmp
step tty script -qec "podman ${PODMAN_FLAGS[*]} run ${PODMAN_RUN_FLAGS[*]} --rm -t $img tty" /dev/null
step gvisor pmrun --rm --annotation org.nucleus.trust-level=untrusted $img sh -c "dmesg | head -1 | sed 's/^[^]]*] //'"
leftovers() { pm ps -aq; ls -A /run/nucleus/oci; }
step leftovers leftovers
