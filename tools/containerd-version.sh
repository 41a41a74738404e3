#!/bin/bash
# Print a directory holding containerd, ctr and containerd-shim-runc-v2 of the asked
# containerd version, fetched from Debian's archive when it is not the system's:
#
#   tools/containerd-version.sh 1.6     the system's containerd (Debian bookworm)
#   tools/containerd-version.sh 1.7     Debian trixie's (1.7.x), unpacked, not installed
#   tools/containerd-version.sh 2.1     Debian sid's (2.x), unpacked, not installed
#
# The version found is checked against the one asked for: a suite that moved on to
# another minor version is reported on stderr (the tests then say which ran).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=${1:?usage: $0 1.6|1.7|2.1}
case $want in
1.6) suite= ;;
1.7) suite=trixie ;;
2 | 2.* ) suite=sid ;;
*) echo "containerd-version: unknown version '$want' (1.6, 1.7 or 2.1)" >&2; exit 1 ;;
esac
if [ -z "$suite" ]; then
        bin=$(dirname "$(command -v containerd || echo /usr/bin/containerd)")
else
        dir=$("$here/fetch-debian.sh" "$suite" containerd)
        bin=$dir/usr/bin
fi
for b in containerd ctr containerd-shim-runc-v2; do
        [ -x "$bin/$b" ] || { echo "containerd-version: $bin/$b missing" >&2; exit 1; }
done
got=$("$bin/containerd" --version | awk '{print $3}')
case $got in
v"$want"* | "$want"*) ;;
*) echo "containerd-version: asked for $want, $bin/containerd is $got" >&2 ;;
esac
echo "$bin"
