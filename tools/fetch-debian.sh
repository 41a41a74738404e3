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
case $suite in
*[!a-z0-9-]* | "") die "bad suite name '$suite'" ;;
esac

cache=${NANOSHIM_CACHE:-/var/cache/nanoshim}
maxage=${NANOSHIM_FETCH_MAXAGE:-21600}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (package debian-archive-keyring)"

# The archive URI of the machine's own apt source for Debian (deb822 or one-line).
archive_uri() {
        if [ -n "${DEBIAN_ARCHIVE:-}" ]; then
                echo "$DEBIAN_ARCHIVE"
                return
        fi
        local f uri
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                uri=$(awk 'BEGIN{RS=""; FS="\n"}
                        /Suites:[^\n]*(bookworm|trixie|sid|stable)([ \n]|$)/ && !/Suites:[^\n]*-security/ {
                                for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, " "); print u[1]; exit }
                        }' "$f")
                [ -n "$uri" ] && { echo "$uri"; return; }
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -r "$f" ] || continue
                uri=$(awk '$1 == "deb" {
                                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                if ($(i+1) !~ /-security/ && $i ~ /debian/) { print $i; exit }
                        }' "$f")
                [ -n "$uri" ] && { echo "$uri"; return; }
        done
        return 1
}

mkdir -p "$cache"
# One fetch at a time per cache (parallel test tiers share it).
exec 9>"$cache/.lock"
flock 9
uri=$(archive_uri) || die "no Debian archive URI found in /etc/apt/sources.list{,.d} (set DEBIAN_ARCHIVE)"
aptdir=$cache/apt/$suite
mkdir -p "$aptdir/etc" "$aptdir/lists/partial" "$aptdir/archives/partial" "$cache/debian" "$cache/index/$suite"
echo "deb [signed-by=$keyring] $uri $suite main" >"$aptdir/etc/sources.list.new"
if ! cmp -s "$aptdir/etc/sources.list.new" "$aptdir/etc/sources.list" 2>/dev/null; then
        mv "$aptdir/etc/sources.list.new" "$aptdir/etc/sources.list"
        rm -f "$aptdir/updated"
else
        rm -f "$aptdir/etc/sources.list.new"
fi

apt_opts=(-o "Dir::State=$aptdir" -o "Dir::State::status=/dev/null" -o "Dir::State::Lists=$aptdir/lists"
        -o "Dir::Cache=$aptdir" -o "Dir::Cache::archives=$aptdir/archives"
        -o "Dir::Etc::SourceList=$aptdir/etc/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
        -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/nonexistent"
        -o "APT::Get::List-Cleanup=0" -o "Acquire::Retries=2" -o "Acquire::http::Timeout=30"
        -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")

online=1
now=$(date +%s)
stamp=$(cat "$aptdir/updated" 2>/dev/null || echo 0)
if [ $((now - stamp)) -ge "$maxage" ]; then
        if apt-get "${apt_opts[@]}" -qq update >"$aptdir/update.log" 2>&1 &&
                ! grep -qE '^(W|E):' "$aptdir/update.log"; then
                echo "$now" >"$aptdir/updated"
        else
                online=0
                warn "could not refresh the package lists of '$suite' from $uri:"
                sed 's/^/  /' "$aptdir/update.log" >&2
        fi
fi

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
