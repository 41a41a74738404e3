#!/bin/bash
# Build the libFuzzer targets (clang, ASan+UBSan, coverage everywhere) in build-fuzz/
# and run each for a bounded time on a copy of its seed corpus; then replay every saved
# crash input under fuzz/regressions/<target>/ once.
#   tools/fuzz.sh [--seconds N] [--target NAME]     (default: 20 s each, all targets)
# Exits non-zero if any target crashed; the crashing input's path is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
only=""
while [ $# -gt 0 ]; do
        case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --target) only=$2; shift 2 ;;
        *) echo "usage: $0 [--seconds N] [--target NAME]" >&2; exit 2 ;;
        esac
done
case "$seconds" in '' | *[!0-9]*) echo "fuzz: --seconds wants a number" >&2; exit 2 ;; esac

targets="fuzz-ttrpc-frame fuzz-ttrpc-server fuzz-task-requests fuzz-spec fuzz-stdio-uri"
max_len_of() {
        case "$1" in
        fuzz-stdio-uri) echo 4200 ;;     # past the 4096-byte URI limit
        fuzz-spec) echo 16384 ;;         # a config.json with room to grow
        *) echo 8192 ;;                  # a few frames / one request with its payloads
        esac
}
dict_of() {
        local d="fuzz/dict/${1#fuzz-}.dict"
        case "$1" in fuzz-ttrpc-*) d=fuzz/dict/ttrpc.dict ;; esac
        if [ -f "$d" ]; then echo "-dict=$d"; fi
}

"$PWD/tools/install-deps.sh"
if ! command -v clang >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q "ok installed"; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends clang libclang-rt-dev
fi

builddir=build-fuzz
# -fsanitize=fuzzer-no-link: coverage instrumentation in every library, not only the
# targets. clang (unlike gcc) calls a variable used only through its cleanup attribute
# unused: a warning here, not an error.
c_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
if [ ! -f "$builddir/build.ninja" ]; then
        CC=clang meson setup "$builddir" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
                -Db_lundef=false "-Dc_args=$c_args"
fi
ninja -C "$builddir"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
work=$(mktemp -d /tmp/nanoshim-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
report=""
for t in $targets; do
        [ -z "$only" ] || [ "$only" = "$t" ] || continue
        bin="$builddir/fuzz/$t"
        # Saved crash inputs first: each must run clean now.
        if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
                if "$bin" -runs=1 "fuzz/regressions/$t"/* >"$work/$t.regress.log" 2>&1; then
                        echo "fuzz: $t: $(ls "fuzz/regressions/$t" | wc -l) regression inputs pass"
                else
                        status=1
                        tail -40 "$work/$t.regress.log"
                        report="$report\n$t: a regression input under fuzz/regressions/$t/ fails again"
                fi
        fi
        mkdir -p "$work/$t.corpus" "$work/$t.artifacts"
        cp "fuzz/corpus/$t"/* "$work/$t.corpus/"
        echo "fuzz: $t for ${seconds}s"
        r=0
        "$bin" -max_total_time="$seconds" -max_len="$(max_len_of "$t")" -rss_limit_mb=1024 -timeout=10 \
                -print_final_stats=1 $(dict_of "$t") -artifact_prefix="$work/$t.artifacts/" "$work/$t.corpus" \
                >"$work/$t.log" 2>&1 || r=$?
        grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" \
                "$work/$t.log" | sed "s/^/  /" || true
        if [ $r -ne 0 ] || [ -n "$(ls -A "$work/$t.artifacts")" ]; then
                status=1
                keep="$builddir/crashes/$t"
                mkdir -p "$keep"
                cp "$work/$t.artifacts"/* "$keep/" 2>/dev/null || true
                cp "$work/$t.log" "$keep/fuzz.log"
                grep -E "ERROR: |SUMMARY: |assertion failed|runtime error" "$work/$t.log" | head -5 | sed "s/^/  /"
                report="$report\n$t: CRASH (exit $r); input(s) and log kept in $PWD/$keep/"
                for a in "$keep"/*; do
                        [ "$(basename "$a")" = fuzz.log ] || report="$report\n  reproduce: $bin $PWD/$a"
                done
        fi
done
if [ $status -ne 0 ]; then
        printf "fuzz: FAILED%b\n" "$report" >&2
        exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a crash"
