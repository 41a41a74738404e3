#!/bin/bash
# The CRI runtime table that docs/containerd.md gives for a containerd version, as
# written there (only ConfigPath pointed at a private file), in a private containerd
# with its CRI plugin: a pod with the handler `nanoshim` must run and be removed.
#   check-doc-config.sh CTRD_VERSION SHIM_BINARY SOURCE_ROOT    (root; 77 = skipped)
set -u
export CTRD=$1
SHIM=$(readlink -f "$2")
SRC=$(readlink -f "$3")
TAG=doc${CTRD//./}
# shellcheck source=tests/cri/cri-env.sh
. "$SRC/tests/cri/cri-env.sh"
why=$(cri_prereqs) || { echo "SKIP: $why"; exit 77; }
ctrd_select 2>/dev/null || { echo "SKIP: containerd $CTRD cannot be had"; exit 77; }

# doc_table FILE N: the first ```toml block of FILE that starts with "version = N",
# without that line (ctrd_write_config writes it).
doc_table() {
        awk -v want="version = $2" '
                /^```toml/ { inblock = 1; first = 1; keep = 0; next }
                /^```/ { if (keep) exit; inblock = 0; next }
                inblock && first { first = 0; keep = ($0 == want); next }
                inblock && keep { print }' "$SRC/docs/$1"
}
major=2
[ "$(ctrd_major)" -ge 2 ] && major=3
table=$(doc_table containerd.md "$major")
[ -n "$table" ] || { echo "FAIL: docs/containerd.md has no \`\`\`toml block starting with version = $major"; exit 1; }
# docs/kubernetes.md shows the same table: it may not drift.
if [ "$(doc_table kubernetes.md "$major")" != "$table" ]; then
        echo "FAIL: docs/kubernetes.md's version = $major table differs from docs/containerd.md's"
        exit 1
fi

# cri-env's configuration, with its nanoshim table replaced by the documented one.
eval "$(declare -f cri_write_config | sed '1s/cri_write_config/cri_write_config_tested/')"
cri_write_config() {
        cri_write_config_tested "$1"
        sed -i '/runtimes\.nanoshim\]/,$d' "$1/config.toml"
        printf '%s\n' "$table" | sed "s#/etc/nanoshim/options.toml#$1/nanoshim-options.toml#" >>"$1/config.toml"
}

WORK=$(mktemp -d "/tmp/nanoshim-$TAG-XXXXXX")
export CRI_TAG=$TAG CRI_CGROUP_PARENT=/nanoshim-$TAG-$$
rc=0
trap 'cri_stop; grep -q "$WORK" /proc/self/mountinfo || rm -rf "$WORK"; exit $rc' EXIT
cc -static -O2 -o "$WORK/pause" "$SRC/tests/cri/pause.c" || { echo "FAIL: cannot build pause"; rc=1; exit; }
cri_start "$WORK" "$SHIM" "$WORK/pause" "$TAG" || { echo "FAIL: containerd $CTRD_VERSION did not start with the documented table"; rc=1; exit; }
echo "containerd $CTRD_VERSION, the documented table:"
sed 's/^/    /' <<<"$table"
# nanoshim itself logs "<id>: created, init pid N" into containerd's log.
if out=$(/usr/bin/python3 "$SRC/tests/cri/cri.py" --sock "$CRI_SOCK" pods --handler nanoshim --image "$CRI_IMAGE" \
        --count 1 --containers 1 --prefix "$TAG" --cgroup-parent "$CRI_CGROUP_PARENT" 2>&1) && grep -q ': created, init pid' "$WORK/containerd.log"; then
        echo "PASS: a pod ran with the handler nanoshim"
else
        echo "FAIL: no pod with the handler nanoshim: $out"
        tail -n 20 "$WORK/containerd.log"
        rc=1
fi
for d in /sys/fs/cgroup/*"$CRI_CGROUP_PARENT"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
