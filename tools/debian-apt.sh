# Sourced by tools/fetch-debian.sh and tools/build-criu.sh: a private apt state for
# another Debian suite. Nothing of the system's apt is read or written but its archive
# URI and keyring.
#
#   debian_apt_setup SUITE deb|deb-src   sets aptdir, apt_opts and online (1: the lists
#                                        are fresh or were refreshed, 0: offline)
#
# Needs: cache (the cache root), maxage (seconds between list refreshes), die, warn.

debian_keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# The archive URI of the machine's own apt source for Debian (deb822 or one-line).
debian_archive_uri() {
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

debian_apt_setup() {
        local suite=$1 type=$2 uri now stamp
        case $suite in
        *[!a-z0-9-]* | "") die "bad suite name '$suite'" ;;
        esac
        [ -r "$debian_keyring" ] || die "$debian_keyring missing (package debian-archive-keyring)"
        uri=$(debian_archive_uri) || die "no Debian archive URI found in /etc/apt/sources.list{,.d} (set DEBIAN_ARCHIVE)"
        aptdir=$cache/apt/$suite
        [ "$type" = deb ] || aptdir=$cache/apt/$suite-$type
        mkdir -p "$aptdir/etc" "$aptdir/lists/partial" "$aptdir/archives/partial"
        echo "$type [signed-by=$debian_keyring] $uri $suite main" >"$aptdir/etc/sources.list.new"
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
                        warn "could not refresh the package lists of '$suite' ($type) from $uri:"
                        sed 's/^/  /' "$aptdir/update.log" >&2
                fi
        fi
}
