#!/bin/bash
# Fetch packages of another Debian release without installing them.
#
#   tools/fetch-debian.sh SUITE PACKAGE...      e.g. tools/fetch-debian.sh sid containerd
#
# Each PACKAGE, in the version SUITE (trixie, sid, ...) carries, is downloaded with
# `apt-get download` under a private apt state and sources list (nothing of the
# system's apt is read or written but its archive URI and keyring) and unpacked with
# `dpkg -x` into $NANOSHIM_CACHE/debian/<package>_<version>/. One directory is printed
# per package, in order. Nothing is installed; the system's packages are untouched.
#
# Cached: a package version already unpacked is not downloaded again, and the package
# lists are refreshed at most every NANOSHIM_FETCH_MAXAGE seconds (default 6 h). When
# the archive cannot be reached, the last unpacked version of each package is used with
# a warning; with none, the script fails and says so.
#
# Environment: NANOSHIM_CACHE (default /var/cache/nanoshim), DEBIAN_ARCHIVE (default:
# the URI of the machine's own Debian source), NANOSHIM_FETCH_MAXAGE.
set -euo pipefail

die() { echo "fetch-debian: $*" >&2; exit 1; }
warn() { echo "fetch-debian: $*" >&2; }

[ $# -ge 2 ] || die "usage: $0 SUITE PACKAGE..."
suite=$1
shift

cache=${NANOSHIM_CACHE:-/var/cache/nanoshim}
maxage=${NANOSHIM_FETCH_MAXAGE:-21600}
# shellcheck source=tools/debian-apt.sh
. "$(dirname "$0")/debian-apt.sh"

mkdir -p "$cache"
# One fetch at a time per cache (parallel test tiers share it).
exec 9>"$cache/.lock"
flock 9
debian_apt_setup "$suite" deb
mkdir -p "$cache/debian" "$cache/index/$suite"
uri=$(debian_archive_uri)

# unpack PACKAGE: print the directory holding PACKAGE's unpacked tree.
unpack() {
        local pkg=$1 version dir deb
        version=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$pkg" 2>/dev/null |
                awk '/^Version:/ {print $2; exit}') || true
        if [ -z "$version" ]; then
                if [ -s "$cache/index/$suite/$pkg" ] && [ -d "$(cat "$cache/index/$suite/$pkg")" ]; then
                        warn "$pkg not in the $suite lists; using the cached $(basename "$(cat "$cache/index/$suite/$pkg")")"
                        cat "$cache/index/$suite/$pkg"
                        return
                fi
                [ "$online" = 1 ] || die "$pkg: the archive is unreachable and nothing is cached"
                die "$pkg: no such package in $suite"
        fi
        dir=$cache/debian/${pkg}_${version//[:~]/_}
        if [ ! -f "$dir/.complete" ]; then
                rm -rf "$dir" "$dir.tmp"
                mkdir -p "$dir.tmp"
                if ! (cd "$aptdir/archives" && apt-get "${apt_opts[@]}" -qq download "$pkg=$version") >"$aptdir/download.log" 2>&1; then
                        sed 's/^/  /' "$aptdir/download.log" >&2
                        if [ -s "$cache/index/$suite/$pkg" ] && [ -d "$(cat "$cache/index/$suite/$pkg")" ]; then
                                warn "could not download $pkg $version; using the cached $(basename "$(cat "$cache/index/$suite/$pkg")")"
                                cat "$cache/index/$suite/$pkg"
                                rm -rf "$dir.tmp"
                                return
                        fi
                        die "could not download $pkg $version from $uri ($suite)"
                fi
                deb=$(ls -t "$aptdir/archives/${pkg}_"*.deb | head -n1)
                dpkg-deb --info "$deb" >/dev/null || die "$deb: not a valid package"
                dpkg -x "$deb" "$dir.tmp"
                echo "$version" >"$dir.tmp/.version"
                touch "$dir.tmp/.complete"
                mv "$dir.tmp" "$dir"
                rm -f "$deb"
        fi
        echo "$dir" >"$cache/index/$suite/$pkg"
        echo "$dir"
}

for pkg in "$@"; do
        case $pkg in
        *[!a-z0-9.+-]* | "") die "bad package name '$pkg'" ;;
        esac
        unpack "$pkg"
done
