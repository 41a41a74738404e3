#!/bin/sh
# Install what nanoshim needs to build and test, from Debian's packages.
# Idempotent: packages already present are skipped by apt-get.
set -eu
PKGS="build-essential meson ninja-build pkg-config libev-dev libjansson-dev libprotobuf-c-dev
protobuf-c-compiler check runc crun containerd busybox-static iproute2 procps util-linux valgrind
python3-grpcio python3-grpc-tools python3-websocket containernetworking-plugins
qemu-system-x86 e2fsprogs curl"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "install-deps: missing packages:$missing (run as root)" >&2
                exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing
fi
