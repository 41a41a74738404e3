#!/bin/bash
# Lifecycle ratios on cgroup v2 with crun: in the guest of tools/vm-run.sh (Debian
# bookworm's kernel, cgroup v2 only), under one private containerd, `ctr run --rm` of a
# busybox `true` (create, start, exit, delete) for three subjects, in rotating order:
#   nanoshim + crun, containerd-shim-runc-v2 + runc, containerd-shim-runc-v2 + crun.
# Reports medians and their ratios; only the ratios matter: the guest runs under TCG
# here (emulation stretches every absolute time, unevenly).
#   sudo bench/cgroupv2.sh [-r RUNS] [-o DIR]      (default 20 runs, bench/results)
# Writes DIR/<date>-cgroupv2.{md,tsv}.
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
RUNS=20
OUT=$SRC/bench/results
while [ $# -gt 0 ]; do
        case $1 in
        -r) RUNS=$2; shift ;;
        -o) OUT=$2; shift ;;
        *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
        esac
        shift
done
BUILD=${BUILD:-$SRC/build}

if [ -z "${NANOSHIM_IN_VM:-}" ]; then
        [ "$(id -u)" = 0 ] || { echo "bench/cgroupv2: needs root" >&2; exit 1; }
        [ -x "$BUILD/containerd-shim-nanoshim-v2" ] || { echo "bench/cgroupv2: build first ($BUILD)" >&2; exit 1; }
        export NANOSHIM_IN_VM=1 BUILD RUNS VM_ENV="NANOSHIM_IN_VM BUILD"
        got=$(mktemp -d)
        "$SRC/tools/vm-run.sh" -o "$got" bash "$0" -r "$RUNS"
        rc=$?
        if [ "$rc" = 0 ]; then
                mkdir -p "$OUT"
                for f in "$got"/*; do cp "$f" "$OUT/$(date +%F)-$(basename "$f")"; done
                echo "bench/cgroupv2: results in $OUT/$(date +%F)-cgroupv2.{md,tsv}"
        fi
        rm -rf "$got"
        exit "$rc"
fi

# ---- in the guest ----
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
export CTR_NS=nanoshim-bench-cg2
WORK=$(mktemp -d /tmp/nanoshim-bench-cg2-XXXXXX)
IMAGE=localhost/nanoshim-busybox:bench-cg2
trap 'ctrd_teardown "$WORK"' EXIT
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || exit 1
ctrd_start "$WORK/ctrd" "$BUILD/containerd-shim-nanoshim-v2" || exit 1
ctrd_import_image "$WORK/bundle/rootfs" "$IMAGE" || exit 1
printf 'BinaryName = "crun"\n' >"$WORK/crun.toml"

subjects=(nanoshim+crun runc-v2+runc runc-v2+crun)
args_of() {
        case $1 in
        nanoshim+crun) echo "--runtime io.containerd.nanoshim.v2 --runtime-config-path $WORK/crun.toml" ;;
        runc-v2+runc) echo "--runtime io.containerd.runc.v2" ;;
        runc-v2+crun) echo "--runtime io.containerd.runc.v2 --runc-binary crun" ;;
        esac
}
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
# One warm-up each, then RUNS rounds; the order rotates every round.
for s in "${subjects[@]}"; do
        # shellcheck disable=SC2046
        ctr_ run --rm $(args_of "$s") "$IMAGE" "warm-${s//+/-}" true || { echo "warm-up of $s failed"; exit 1; }
done
for r in $(seq 1 "$RUNS"); do
        for k in 0 1 2; do
                s=${subjects[$(((r + k) % 3))]}
                t0=$(now_us)
                # shellcheck disable=SC2046
                ctr_ run --rm $(args_of "$s") "$IMAGE" "b$r-${s//+/-}" true || { echo "run $r of $s failed"; exit 1; }
                echo "$(( $(now_us) - t0 ))" >>"$WORK/$s"
        done
done
median() { sort -n "$1" | awk '{v[NR] = $1} END {printf "%d\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
m_nc=$(median "$WORK/nanoshim+crun")
m_rr=$(median "$WORK/runc-v2+runc")
m_rc=$(median "$WORK/runc-v2+crun")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
out=${VM_OUT:-$WORK/out}
mkdir -p "$out"
{
        printf 'subject\tmedian_us\truns\n'
        for s in "${subjects[@]}"; do printf '%s\t%s\t%s\n' "$s" "$(median "$WORK/$s")" "$RUNS"; done
} >"$out/cgroupv2.tsv"
{
        echo "# Lifecycle on cgroup v2 with crun ($(date +%F))"
        echo
        echo "Guest: kernel $(uname -r), cgroup v2 only, $(nproc) vCPUs under QEMU (TCG unless KVM booted);"
        echo "containerd $CTRD_VERSION; runc $(runc --version | awk 'NR == 1 {print $3}'), crun $(crun --version | awk 'NR == 1 {print $3}')."
        echo "\`ctr run --rm\` of busybox \`true\`, $RUNS rounds, the order rotating each round."
        echo "Absolute times are the emulator's: only the ratios mean something."
        echo
        echo "| subject | median (ms, emulated) |"
        echo "|---|---|"
        for s in "${subjects[@]}"; do echo "| $s | $(awk -v u="$(median "$WORK/$s")" 'BEGIN {printf "%.0f", u / 1000}') |"; done
        echo
        echo "| ratio | value |"
        echo "|---|---|"
        echo "| nanoshim+crun / runc-v2+runc | $(ratio "$m_nc" "$m_rr") |"
        echo "| nanoshim+crun / runc-v2+crun | $(ratio "$m_nc" "$m_rc") |"
        echo "| runc-v2+crun / runc-v2+runc | $(ratio "$m_rc" "$m_rr") |"
} >"$out/cgroupv2.md"
cat "$out/cgroupv2.md"
