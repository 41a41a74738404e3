#!/bin/bash
# A private containerd for tests and the quick start: own root, state and sockets under
# a temp dir, CRI off, our shim on its PATH. Stopped by its PID, never by name.
#   ctrd_start DIR SHIM_BINARY     (sets CTRD_PID, CTRD_SOCK, CTRD_DIR)
#   ctr_ ARGS...                   ctr against it (namespace $CTR_NS, default "nanoshim-test")
#   ctrd_stop [SIGNAL]             stop it (default TERM; KILL for crash tests)
#   ctrd_teardown WORK             kill and remove every task and container of $CTR_NS,
#                                  stop containerd, unmount what is left under WORK, rm it
#   task_status ID, task_stopped ID, task_running ID
#   run_captured CMD...            CMD's stdout and stderr apart, through the suite's normalize
#   criu_select WORK               a working CRIU first on PATH (else CRIU_WHY, return 1)
# CTRD=1.6|1.7|2.1 picks the containerd version (default 1.6, the system's): 1.7 and
# 2.1 are Debian trixie's and sid's, fetched and unpacked by tools/containerd-version.sh
# (never installed). Its own ctr and containerd-shim-runc-v2 are used with it:
# CTRD_BIN is their directory, CTRD_VERSION what `containerd --version` says.
CTR_NS=${CTR_NS:-nanoshim-test}
CTRD=${CTRD:-1.6}

# ctrd_select: set CTRD_BIN/CTRD_VERSION for $CTRD, fetching it if needed; put
# CTRD_BIN first on PATH so that `containerd`, `ctr` and containerd's own runc shim
# are that version's.
ctrd_select() {
        local here
        here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        if [ -z "${CTRD_BIN:-}" ]; then
                CTRD_BIN=$("$here/tools/containerd-version.sh" "$CTRD") || return 1
        fi
        CTRD_VERSION=$("$CTRD_BIN/containerd" --version | awk '{print $3}')
        case ":$PATH:" in
        *":$CTRD_BIN:"*) ;;
        *) PATH=$CTRD_BIN:$PATH ;;
        esac
        export CTRD_BIN CTRD_VERSION PATH
}

# ctrd_major: 1 or 2 (the config format and plugin names differ).
ctrd_major() { echo "${CTRD_VERSION#v}" | cut -d. -f1; }

# skip_unless_ready CMD...: exit 77 (skipped) unless root with every CMD installed.
skip_unless_ready() {
        if [ "$(id -u)" != 0 ]; then
                echo "SKIP: needs root"
                exit 77
        fi
        local b
        for b in "$@"; do
                command -v "$b" >/dev/null || { echo "SKIP: $b not installed"; exit 77; }
        done
}

# criu_select WORK: a CRIU that works on this kernel (tools/build-criu.sh, cached) put
# first on PATH, so that containerd, the shims and runc inherit it; CRIU_DIR its
# directory. Otherwise sets CRIU_WHY (why not) and returns 1 (the caller skips). WORK
# gets the logs. Not in a subshell: it sets PATH.
criu_select() {
        local here
        here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        if ! CRIU_DIR=$("$here/tools/build-criu.sh" 2>"$1/build-criu.log"); then
                CRIU_WHY="no CRIU could be had: $(tail -n 3 "$1/build-criu.log" | tr '\n' ' ')"
                return 1
        fi
        if ! PATH=$CRIU_DIR:$PATH criu check >"$1/criu-check.log" 2>&1; then
                CRIU_WHY="criu $("$CRIU_DIR/criu" --version | awk '/Version/ {print $2}') does not work on kernel $(uname -r): $(grep -m1 -i error "$1/criu-check.log")"
                return 1
        fi
        PATH=$CRIU_DIR:$PATH
        export PATH CRIU_DIR
}

# poll_until SECONDS CMD...: run CMD until it succeeds or the deadline passes.
poll_until() {
        local deadline=$(( $(date +%s%N) / 1000000 + ${1} * 1000 ))
        shift
        while ! "$@" >/dev/null 2>&1; do
                if [ "$(( $(date +%s%N) / 1000000 ))" -ge "$deadline" ]; then
                        return 1
                fi
                sleep 0.02
        done
}

# ctrd_write_config DIR [cri]: containerd's config for the selected version, CRI off
# (with "cri": the CRI plugins stay on, the caller appends their sections).
# 2.x reads config version 3, where the CRI plugin is split in several plugins.
ctrd_write_config() {
        local dir=$1 cri_off=
        if [ "$(ctrd_major)" -ge 2 ]; then
                [ "${2:-}" = cri ] || cri_off='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images",
                    "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox",
                    "io.containerd.sandbox.controller.v1.shim", '
                cat >"$dir/config.toml" <<TOML
version = 3
root = "$dir/root"
state = "$dir/state"
disabled_plugins = [${cri_off}"io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
                    "io.containerd.nri.v1.nri"]
TOML
        else
                [ "${2:-}" = cri ] || cri_off='"io.containerd.grpc.v1.cri", '
                cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = [${cri_off}"io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]
TOML
        fi
        cat >>"$dir/config.toml" <<TOML
[grpc]
  address = "$dir/c.sock"
[ttrpc]
  address = "$dir/c.sock.ttrpc"
[debug]
  level = "${CTRD_LOG_LEVEL:-info}"
TOML
}

ctrd_start() {
        CTRD_DIR=$1
        local shim=$2
        ctrd_select || return 1
        mkdir -p "$CTRD_DIR/bin"
        ln -sf "$(readlink -f "$shim")" "$CTRD_DIR/bin/containerd-shim-nanoshim-v2"
        ctrd_write_config "$CTRD_DIR"
        CTRD_SOCK=$CTRD_DIR/c.sock
        PATH="$CTRD_DIR/bin:$PATH" containerd --config "$CTRD_DIR/config.toml" >>"$CTRD_DIR/containerd.log" 2>&1 &
        CTRD_PID=$!
        # Also in a file: a restart done in a subshell (a test's $(...)) must still be
        # stoppable by the parent.
        echo "$CTRD_PID" >"$CTRD_DIR/containerd.pid"
        if ! poll_until 30 ctr --address "$CTRD_SOCK" version; then
                echo "containerd did not come up; its log:" >&2
                tail -n 30 "$CTRD_DIR/containerd.log" >&2
                return 1
        fi
}

ctrd_stop() {
        local sig=${1:-TERM} pid
        pid=$(cat "$CTRD_DIR/containerd.pid" 2>/dev/null) || pid=${CTRD_PID:-}
        [ -n "$pid" ] || return 0
        kill -s "$sig" "$pid" 2>/dev/null || true
        # Not always our child (see ctrd_start): wait for it to be gone, with a deadline.
        if ! poll_until 30 ctrd_gone "$pid"; then
                echo "containerd $pid did not stop on SIG$sig; killing it" >&2
                kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null || true
        rm -f "$CTRD_DIR/containerd.pid"
        CTRD_PID=
        # runc removes a container's cgroup but not the namespace's parent, which
        # containerd names after the namespace, nor its root for the namespace
        # (/run/containerd/runc/<ns>): remove them when empty.
        if [ "$sig" = TERM ]; then
                local d
                for d in /sys/fs/cgroup/*/"$CTR_NS" /sys/fs/cgroup/"$CTR_NS" /run/containerd/runc/"$CTR_NS"; do
                        [ -d "$d" ] && rmdir "$d" 2>/dev/null
                done
        fi
        return 0
}

# A process is gone once it is no longer running (a zombie awaiting its reaper counts
# as gone).
ctrd_gone() {
        local st
        st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
        [ -z "$st" ] || [ "$st" = Z ]
}

# ctrd_shim_address ID: the unix://... address of the shim serving task ID. containerd
# 2.x's runc shim writes no `address` file: containerd keeps its answer in bootstrap.json.
ctrd_shim_address() {
        local b=$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$1
        if [ -s "$b/address" ]; then
                cat "$b/address"
        else
                grep -o '"address":"[^"]*"' "$b/bootstrap.json" 2>/dev/null | cut -d'"' -f4 | grep .
        fi
}

ctr_() {
        # ctr keeps a task's FIFOs in /run/containerd/fifo unless told otherwise, and leaves
        # them there when the task ends abnormally (a killed shim): under our own dir.
        case " $* " in
        *" --fifo-dir "*) ;;
        " run "* | " task start "* | " task exec "* | " t start "* | " t exec "*)
                if [ -n "${CTRD_DIR:-}" ]; then
                        local n=1
                        [ "$1" = run ] || n=2
                        set -- "${@:1:n}" --fifo-dir "$CTRD_DIR/fifo" "${@:n+1}"
                fi
                ;;
        esac
        ctr --address "$CTRD_SOCK" -n "$CTR_NS" "$@"
}

# run_captured CMD...: run CMD (with $ID and $RT set by the caller); print its stdout and
# stderr apart (their relative order is not defined), each without carriage returns and
# through the calling suite's `normalize ID` filter; exit with CMD's status.
run_captured() {
        local o e rc
        o=$(mktemp) e=$(mktemp)
        "$@" >"$o" 2>"$e"
        rc=$?
        printf 'stdout:[%s]\nstderr:[%s]\n' "$(tr -d '\r' <"$o" | normalize "$ID")" "$(tr -d '\r' <"$e" | normalize "$ID")"
        rm -f "$o" "$e"
        return $rc
}

task_status() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
task_stopped() { [ "$(task_status "$1")" = STOPPED ] || [ -z "$(task_status "$1")" ]; }
task_running() { [ "$(task_status "$1")" = RUNNING ]; }

ctrd_teardown() {
        local work=$1
        ctrd_remove_all
        ctrd_stop
        # Snapshot mounts of the private root, if any survived.
        grep -o " ${work}[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
        rm -rf "$work"
}

# Build a small OCI image from a rootfs directory and import it as $2 (e.g.
# localhost/busybox:test), so that Create gets real snapshot mounts. Its Cmd is
# $CTRD_IMAGE_CMD (one word; default sh).
ctrd_import_image() {
        local rootfs=$1 ref=$2 work
        work=$(mktemp -d)
        mkdir -p "$work/oci/blobs/sha256"
        tar -C "$rootfs" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cf "$work/layer.tar" .
        local layer_digest layer_size config_digest config_size manifest_digest manifest_size
        layer_digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
        layer_size=$(stat -c %s "$work/layer.tar")
        mv "$work/layer.tar" "$work/oci/blobs/sha256/$layer_digest"
        printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["%s"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
                "$(dpkg --print-architecture)" "${CTRD_IMAGE_CMD:-sh}" "$layer_digest" >"$work/config.json"
        config_digest=$(sha256sum "$work/config.json" | cut -d' ' -f1)
        config_size=$(stat -c %s "$work/config.json")
        mv "$work/config.json" "$work/oci/blobs/sha256/$config_digest"
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
                "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
        manifest_digest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
        manifest_size=$(stat -c %s "$work/manifest.json")
        mv "$work/manifest.json" "$work/oci/blobs/sha256/$manifest_digest"
        printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
                "$manifest_digest" "$manifest_size" "$ref" >"$work/oci/index.json"
        printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
        tar -C "$work/oci" -cf "$work/image.tar" .
        ctr_ images import "$work/image.tar" >/dev/null
        local rc=$?
        rm -rf "$work"
        return $rc
}

# ctrd_remove_all: kill, delete and remove every task and container of $CTR_NS (at a
# test's exit, whatever it left).
ctrd_remove_all() {
        local ids id
        ids=$(ctr_ task ls -q 2>/dev/null)
        for id in $ids; do ctr_ task kill -s KILL "$id" >/dev/null 2>&1; done
        for id in $ids; do
                poll_until 10 task_stopped "$id"
                ctr_ task delete "$id" >/dev/null 2>&1
        done
        for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$id" >/dev/null 2>&1; done
}
