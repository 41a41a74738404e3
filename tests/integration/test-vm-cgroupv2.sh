#!/bin/bash
# The cgroup v2 tier: boots the guest of tools/vm-run.sh (Debian bookworm's kernel,
# cgroup v2 only) and runs in it, on cgroup v2:
#   - the runtime adapter against crun (test-adapter; crun refuses the hybrid host);
#   - test-cgroupv2.sh under containerd 1.6 with crun (every scenario) and runc (those
#     the 2.1 part does not run), side by side with containerd-shim-runc-v2, and the
#     containerd suite's runtime-options-file scenario;
#   - test-cgroupv2.sh under containerd 2.1 (Debian sid's, fetched here before the
#     boot: the guest has no network) with runc, a subset of the scenarios (bookworm's
#     crun 1.8 refuses the OCI spec 1.2 that containerd 2.1 writes: "unknown version
#     specified", with either shim);
#   - the CRI tier's pod scenario (tests/cri/test-cri.sh) under containerd 1.6 and 2.1,
#     nanoshim and runc-v2 side by side (its CRI client is generated here before the
#     boot): Kubernetes' usual node today is containerd 2.x on cgroup v2.
#   - the Docker tier (tests/integration/test-docker.sh: Debian sid's dockerd on
#     containerd 2.1, both fetched here before the boot), the scenarios where cgroups
#     matter (DOCKER_SCENARIOS below), nanoshim and Docker's runc side by side.
#   test-vm-cgroupv2.sh SHIM SHIMCTL TEST_ADAPTER SUBREAPER SOURCE_ROOT
# Skips (77) where the guest cannot be had (no QEMU, no kernel). CG2_VM_PARTS chooses
# the parts ("adapter ctrd16 ctrd21 cri docker", default all).
set -u
SHIM=$(readlink -f "$1")
SHIMCTL=$(readlink -f "$2")
ADAPTER=$(readlink -f "$3")
SUBREAPER=$(readlink -f "$4")
SRC=$(readlink -f "$5")
PARTS=${CG2_VM_PARTS:-adapter ctrd16 ctrd21 cri docker}

if [ -z "${NANOSHIM_IN_VM:-}" ]; then
        [ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
        CTRD21_BIN=
        if echo " $PARTS " | grep -Eq ' (ctrd21|cri|docker) '; then
                CTRD21_BIN=$("$SRC/tools/containerd-version.sh" 2.1) ||
                        echo "containerd 2.1 could not be fetched: the parts that need it are left out"
        fi
        # Docker's packages into the cache, which the guest reads (it has no network)
        if echo " $PARTS " | grep -q ' docker ' &&
                ! { [ -n "$CTRD21_BIN" ] && "$SRC/tools/fetch-debian.sh" sid docker.io docker-cli tini-static >/dev/null; }; then
                echo "Docker could not be fetched: the Docker part is left out"
                PARTS=$(echo " $PARTS " | sed 's/ docker / /')
        fi
        if echo " $PARTS " | grep -q ' cri ' &&
                ! /usr/bin/python3 -c "import sys; sys.path.insert(0, '$SRC/tests/cri'); import cri; cri.load()" >/dev/null 2>&1; then
                echo "the CRI client cannot be generated here: the CRI part is left out"
                PARTS=$(echo " $PARTS " | sed 's/ cri / /')
        fi
        export CTRD21_BIN PARTS NANOSHIM_IN_VM=1 CG2_VM_PARTS=$PARTS
        # the source and build trees may be in the host's /tmp (a CI clone)
        export VM_SHARE="$SRC $(dirname "$SHIM")"
        export VM_ENV="NANOSHIM_IN_VM CTRD21_BIN CG2_VM_PARTS CG2_SCENARIOS CG2_SCENARIOS_runc CG2_SCENARIOS_crun CG2_RUNTIMES DOCKER_SCENARIOS VERBOSE"
        # the guest's deadline comes before meson's (1800 s), so that its log is shown
        export VM_TIMEOUT=${VM_TIMEOUT:-1680}
        exec "$SRC/tools/vm-run.sh" bash "$0" "$@"
fi

# ---- in the guest ----
echo "# guest: kernel $(uname -r), $(stat -f -c %T /sys/fs/cgroup) at /sys/fs/cgroup, $(nproc) cpus"
echo "# runc $(runc --version | awk 'NR == 1 {print $3}'), crun $(crun --version | awk 'NR == 1 {print $3}')"
failed=""
part() { # part NAME CMD...
        local name=$1 start rc
        shift
        start=$(date +%s)
        echo "## $name"
        "$@"
        rc=$?
        echo "## $name: exit $rc in $(($(date +%s) - start)) s"
        [ "$rc" = 0 ] || [ "$rc" = 77 ] || failed="$failed $name"
}
for p in $PARTS; do
        case $p in
        adapter)
                # (runc's adapter test runs on the host; crun's is skipped there)
                part adapter-crun "$ADAPTER" crun "$SRC"
                ;;
        ctrd16)
                # runc: the scenarios the 2.1 part leaves out; crun: all of them
                part cgroupv2-containerd-1.6 env CTRD=1.6 CTR_NS=nanoshim-cg2-16 \
                        CG2_SCENARIOS_runc="${CG2_SCENARIOS_runc:-${CG2_SCENARIOS:-oom-child update shim-cgroup exec-cycle orphans}}" \
                        "$SUBREAPER" "$SRC/tests/integration/test-cgroupv2.sh" "$SHIM" "$SHIMCTL" "$SRC"
                # the containerd suite's ShimCgroup scenario, which made its cgroup under
                # v1 paths only
                part containerd-runtime-options-file env CTRD=1.6 CTR_NS=nanoshim-cg2-opts \
                        CTRD_SCENARIOS=runtime-options-file \
                        "$SUBREAPER" "$SRC/tests/integration/test-containerd.sh" "$SHIM" "$SRC"
                ;;
        ctrd21)
                if [ -n "${CTRD21_BIN:-}" ]; then
                        part cgroupv2-containerd-2.1 env CTRD=2.1 CTRD_BIN="$CTRD21_BIN" CTR_NS=nanoshim-cg2-21 \
                                CG2_RUNTIMES="${CG2_RUNTIMES:-runc}" \
                                CG2_SCENARIOS="${CG2_SCENARIOS:-oom-init pause stats}" \
                                "$SUBREAPER" "$SRC/tests/integration/test-cgroupv2.sh" "$SHIM" "$SHIMCTL" "$SRC"
                fi
                ;;
        cri)
                part cri-pod-containerd-1.6 env CRI_ONLY=pod "$SUBREAPER" "$SRC/tests/cri/test-cri.sh" 1.6 "$SHIM" "$SRC"
                if [ -n "${CTRD21_BIN:-}" ]; then
                        part cri-pod-containerd-2.1 env CRI_ONLY=pod CTRD_BIN="$CTRD21_BIN" NANOSHIM_FETCH_MAXAGE=315360000 \
                                "$SUBREAPER" "$SRC/tests/cri/test-cri.sh" 2.1 "$SHIM" "$SRC"
                fi
                ;;
        docker)
                # what depends on the cgroup version: stats, pause (the v2 freezer), update
                # --memory (memory.max), OOMKilled (memory.events), a container's cgroups
                # gone after rm; plus exit codes and a stop, the basics under a v2 host
                part docker-containerd-2.1 env CTRD=2.1 CTRD_BIN="$CTRD21_BIN" CTR_NS=nanoshim-cg2-docker \
                        NANOSHIM_FETCH_MAXAGE=315360000 \
                        DOCKER_SCENARIOS="${DOCKER_SCENARIOS:-runtime-is-nanoshim out-err exit-42 exec-start-failure stop-no-handler stats-pause-update oom-killed nothing-left-after-rm nothing-left-in-the-daemons nothing-left-after-stop}" \
                        "$SUBREAPER" "$SRC/tests/integration/test-docker.sh" "$SHIM" "$SRC"
                ;;
        *) echo "unknown part '$p'"; failed="$failed $p" ;;
        esac
done
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
echo "all parts passed"
