#!/bin/bash
# Quick start: install, build, and run a real container through nanoshim under a
# private containerd, on a busybox rootfs built from Debian's busybox-static.
#   sudo tools/quickstart.sh [COMMAND...]     (default: a greeting from inside)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
if [ "$(id -u)" != 0 ]; then
        echo "quickstart: run as root (containers need it): sudo $0" >&2
        exit 1
fi
"$SRC/tools/install-deps.sh"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
CTR_NS=nanoshim-demo
WORK=$(mktemp -d /tmp/nanoshim-demo-XXXXXX)
trap 'ctrd_stop; rm -rf "$WORK"' EXIT
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null
ctrd_start "$WORK/ctrd" "$SRC/build/containerd-shim-nanoshim-v2"
if [ $# -eq 0 ]; then
        # shellcheck disable=SC2016 # expanded inside the container
        set -- sh -c 'echo "hello from a container run by nanoshim (pid $$, $(hostname))"; ls /'
fi
echo "+ ctr run --rm --runtime io.containerd.nanoshim.v2 --rootfs $WORK/bundle/rootfs demo $*"
status=0
ctr_ run --rm --runtime io.containerd.nanoshim.v2 --env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        --rootfs "$WORK/bundle/rootfs" demo "$@" || status=$?
echo "+ container exited with status $status"
exit "$status"
