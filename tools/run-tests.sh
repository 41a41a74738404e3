#!/bin/bash
# The whole test suite: installs dependencies, builds, runs every test tier.
#   tools/run-tests.sh               normal build in build/, every tier
#   tools/run-tests.sh --quick       normal build, without the slow tiers (meson suite
#                                    'slow': containerd version matrix, CRI, Docker, the
#                                    cgroup v2 guest, checkpoint)
#   tools/run-tests.sh --sanitize    ASan+UBSan build in build-asan/, without the slow tiers
# Extra arguments after the option go to `meson test` (e.g. a test name or --suite cri).
# Integration tiers need root (they start real runc and a private containerd); as a
# normal user they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
"$PWD/tools/install-deps.sh"
builddir=build
setup_args=""
select=()
case "${1:-}" in
--sanitize)
        builddir=build-asan
        setup_args="-Db_sanitize=address,undefined -Db_lundef=false"
        select=(--no-suite slow)
        shift
        ;;
--quick)
        select=(--no-suite slow)
        shift
        ;;
esac
if [ $# -gt 0 ]; then
        select=("$@")
fi
if [ ! -f "$builddir/build.ninja" ]; then
        # shellcheck disable=SC2086
        meson setup "$builddir" $setup_args
fi
ninja -C "$builddir"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "${select[@]}" | tee "$builddir/test-summary.txt" || status=$?
# One plain closing line, whatever the tiers printed.
awk '/^Ok:/ {ok=$2} /^Expected Fail:/ {xf=$3} /^Fail:/ {f=$2} /^Unexpected Pass:/ {up=$3}
     /^Skipped:/ {s=$2} /^Timeout:/ {t=$2}
     END {printf "tests: %d passed, %d failed, %d skipped\n", ok+xf, f+up+t, s}' "$builddir/test-summary.txt"
exit $status
