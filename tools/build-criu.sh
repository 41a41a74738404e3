#!/bin/bash
# Build a CRIU that works on this machine, from Debian's source package of a newer
# release, against the system's (bookworm's) libraries, and print the directory that
# holds its `criu` binary (put it first on PATH: runc looks criu up there).
#
#   tools/build-criu.sh [SUITE]          SUITE: trixie (default, criu 4.1.1) or sid
#
# Why: bookworm's criu 3.17 fails on recent kernels before dumping anything ("Failed
# to fill self vdso symtable"), and the binary packages of newer releases need a newer
# C library than bookworm's.
#
# The source is fetched with `apt-get source --download-only` under a private apt state
# and sources list (tools/debian-apt.sh; the system's apt is untouched). The hashes of
# every file fetched are checked against the suite's signed Sources index by apt. When
# the archive serves the upstream tarball but not Debian's packaging (a partial mirror),
# the upstream tarball alone is built, with a warning.
#
# Only the criu binary is built (no docs, plugins, crit, libcriu) and installed into
# $NANOSHIM_CACHE/criu-<version>/ -- never into the system. A version already built is
# reused; offline, the newest one built before is used with a warning.
#
# Build dependencies are installed from the system's own release with apt-get (as root):
# only -dev packages and the protobuf compilers, listed in BUILD_DEPS below.
#
# Environment: NANOSHIM_CACHE (default /var/cache/nanoshim), DEBIAN_ARCHIVE,
# NANOSHIM_FETCH_MAXAGE (as for tools/fetch-debian.sh).
set -euo pipefail

die() { echo "build-criu: $*" >&2; exit 1; }
warn() { echo "build-criu: $*" >&2; }

suite=${1:-trixie}
cache=${NANOSHIM_CACHE:-/var/cache/nanoshim}
maxage=${NANOSHIM_FETCH_MAXAGE:-21600}
# shellcheck source=tools/debian-apt.sh
. "$(dirname "$0")/debian-apt.sh"

# What criu's Makefiles look for; libnftables for its network locking, libbsd for
# setproctitle, protoc (+ the protobuf-c plugin) for its image descriptions.
BUILD_DEPS="build-essential pkg-config libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
libnl-3-dev libnet1-dev libcap-dev libbsd-dev libnftables-dev uuid-dev"

# The newest criu built before, for when the archive cannot be reached.
cached_criu() {
        local d
        d=$(ls -d "$cache"/criu-*/ 2>/dev/null | sort -V | tail -n1)
        [ -n "$d" ] && [ -f "$d/.complete" ] && [ -x "$d/criu" ] && echo "${d%/}"
}

install_build_deps() {
        local p missing=""
        for p in $BUILD_DEPS; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
        done
        [ -z "$missing" ] && return
        [ "$(id -u)" = 0 ] || die "missing build dependencies:$missing (run as root)"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        if ! apt-get install -y -qq --no-install-recommends $missing >"$cache/criu-build-deps.log" 2>&1; then
                apt-get update -qq >/dev/null 2>&1 || true
                # shellcheck disable=SC2086
                apt-get install -y -qq --no-install-recommends $missing >"$cache/criu-build-deps.log" 2>&1 ||
                        { sed 's/^/  /' "$cache/criu-build-deps.log" >&2; die "could not install:$missing"; }
        fi
}

mkdir -p "$cache"
# One build at a time per cache (parallel test tiers share it).
exec 9>"$cache/.criu.lock"
flock 9

debian_apt_setup "$suite" deb-src
version=$(apt-cache "${apt_opts[@]}" showsrc --only-source criu 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n1) || true
if [ -z "$version" ]; then
        d=$(cached_criu) || die "criu is not in the $suite source lists and none was built before"
        warn "criu not in the $suite source lists; using $d"
        echo "$d"
        exit 0
fi
upstream=${version#*:}
upstream=${upstream%-*}
dest=$cache/criu-$upstream
if [ -f "$dest/.complete" ] && [ -x "$dest/criu" ]; then
        echo "$dest"
        exit 0
fi

work=$(mktemp -d "$cache/criu-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get "${apt_opts[@]}" -q source --download-only "criu=$version") >"$work/source.log" 2>&1; then
        if [ ! -f "$work/criu_$upstream.orig.tar.xz" ] && [ ! -f "$work/criu_$upstream.orig.tar.gz" ]; then
                sed 's/^/  /' "$work/source.log" >&2
                d=$(cached_criu) || die "could not download the source of criu $version ($suite)"
                warn "could not download the source of criu $version; using $d"
                echo "$d"
                exit 0
        fi
        warn "the archive serves only the upstream tarball of criu $version (no Debian packaging); building it as is"
fi
# apt checked every file it kept against the Sources index's SHA256.
src=$work/src
mkdir -p "$src"
tar -xf "$(ls "$work"/criu_"$upstream".orig.tar.* | head -n1)" -C "$src" --strip-components=1
if [ -f "$work/criu_$version.debian.tar.xz" ] || [ -f "$work/criu_${version#*:}.debian.tar.xz" ]; then
        tar -xf "$work"/criu_*.debian.tar.xz -C "$src"
        if [ -f "$src/debian/patches/series" ]; then
                while read -r patch _; do
                        case $patch in '' | '#'*) continue ;; esac
                        patch -d "$src" -p1 -s <"$src/debian/patches/$patch" || die "Debian patch $patch does not apply"
                done <"$src/debian/patches/series"
        fi
fi

install_build_deps
start=$(date +%s)
# GnuTLS (page-server TLS) is left out: one dependency less, nothing runc uses.
if ! make -C "$src" -j"$(nproc)" NO_GNUTLS=1 criu >"$work/build.log" 2>&1; then
        tail -n 30 "$work/build.log" | sed 's/^/  /' >&2
        die "criu $upstream did not build (log above)"
fi
"$src/criu/criu" --version >/dev/null || die "the criu just built does not run"
rm -rf "$dest" "$dest.tmp"
mkdir -p "$dest.tmp"
install -m 0755 "$src/criu/criu" "$dest.tmp/criu"
echo "$version ($suite), built in $(($(date +%s) - start)) s on $(uname -r)" >"$dest.tmp/.version"
touch "$dest.tmp/.complete"
mv "$dest.tmp" "$dest"
echo "$dest"
