#!/bin/bash
# A private Docker Engine for tests and the benchmark: Debian sid's dockerd and docker
# CLI (fetched and unpacked by tools/fetch-debian.sh, never installed) on a private
# containerd from ctrd-lib.sh (CTRD=2.1 by default), with its own data-root, exec-root,
# API socket, pidfile, daemon.json, containerd namespace and cgroup parent. No network
# is touched: no bridge, no iptables; containers are run with --net none.
#   docker_select DIR               fetch dockerd, docker, docker-init (DOCKER_BIN=DIR/bin)
#   dockerd_start DIR [ARGS...]     start it on $CTRD_SOCK (sets DOCKERD_PID, DOCKER_DIR)
#   dockerd_stop                    TERM by PID, wait (KILL at the deadline)
#   docker_ ARGS...                 the docker CLI against it
#   docker_import_image ROOTFS REF  `docker import` of a rootfs directory
#   docker_teardown WORK            remove the containers, stop both daemons, rm WORK
# Sourced after ctrd-lib.sh. $CTR_NS is the containerd namespace dockerd uses (instead
# of "moby") and the name of its cgroup parent, so that ctrd_stop removes both. Set
# CTRD=2.1 before sourcing ctrd-lib.sh for the containerd Docker 28 is built against.
DOCKER_SUITE=${DOCKER_SUITE:-sid}

# docker_select DIR: DOCKER_BIN (DIR/bin) gets dockerd, docker and docker-init (tini-static), fetched
# from Debian $DOCKER_SUITE; DOCKER_VERSION what dockerd says.
docker_select() {
        local here dirs
        here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        dirs=$("$here/tools/fetch-debian.sh" "$DOCKER_SUITE" docker.io docker-cli tini-static) || return 1
        DOCKER_BIN=$1/bin
        mkdir -p "$DOCKER_BIN"
        local d
        for d in $dirs; do
                [ -x "$d/usr/sbin/dockerd" ] && ln -sf "$d/usr/sbin/dockerd" "$DOCKER_BIN/dockerd"
                [ -x "$d/usr/bin/docker" ] && ln -sf "$d/usr/bin/docker" "$DOCKER_BIN/docker"
                [ -x "$d/usr/bin/tini-static" ] && ln -sf "$d/usr/bin/tini-static" "$DOCKER_BIN/docker-init"
        done
        for d in dockerd docker docker-init; do
                [ -x "$DOCKER_BIN/$d" ] || { echo "docker-lib: $d missing in the $DOCKER_SUITE packages" >&2; return 1; }
        done
        DOCKER_VERSION=$("$DOCKER_BIN/dockerd" --version | awk '{print $3}' | tr -d ,)
        export DOCKER_BIN DOCKER_VERSION
}

# dockerd_write_config DIR [JSON-MEMBERS]: DIR/daemon.json with the nanoshim runtime
# registered under the name "nanoshim"; JSON-MEMBERS (",\"key\": value" pairs) are added.
dockerd_write_config() {
        cat >"$1/daemon.json" <<JSON
{
  "runtimes": {
    "nanoshim": { "runtimeType": "io.containerd.nanoshim.v2" }${DOCKER_RUNTIMES:-}
  },
  "init-path": "$DOCKER_BIN/docker-init",
  "log-driver": "json-file"${2:-}
}
JSON
}

# dockerd_start DIR [JSON-MEMBERS]: dockerd on containerd $CTRD_SOCK; its state under
# DIR. JSON-MEMBERS go into daemon.json (e.g. ',"live-restore": true').
dockerd_start() {
        DOCKER_DIR=$1
        mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
        dockerd_write_config "$DOCKER_DIR" "${2:-}"
        DOCKER_SOCK=$DOCKER_DIR/docker.sock
        PATH="$DOCKER_BIN:$PATH" dockerd --config-file "$DOCKER_DIR/daemon.json" \
                --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" \
                --pidfile "$DOCKER_DIR/docker.pid" --host "unix://$DOCKER_SOCK" \
                --containerd "$CTRD_SOCK" --containerd-namespace "$CTR_NS" \
                --containerd-plugins-namespace "$CTR_NS-plugins" \
                --cgroup-parent "/$CTR_NS" --exec-opt native.cgroupdriver=cgroupfs \
                --bridge none --iptables=false --ip6tables=false --ip-forward=false \
                --ip-masq=false --userland-proxy=false --storage-driver overlay2 \
                >>"$DOCKER_DIR/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        echo "$DOCKERD_PID" >"$DOCKER_DIR/dockerd.ppid"
        if ! poll_until 60 docker_ version; then
                echo "dockerd did not come up; its log:" >&2
                tail -n 30 "$DOCKER_DIR/dockerd.log" >&2
                return 1
        fi
}

dockerd_stop() {
        local pid
        pid=$(cat "$DOCKER_DIR/dockerd.ppid" 2>/dev/null) || pid=${DOCKERD_PID:-}
        [ -n "$pid" ] || return 0
        kill -TERM "$pid" 2>/dev/null || true
        if ! poll_until 60 ctrd_gone "$pid"; then
                echo "dockerd $pid did not stop on SIGTERM; killing it" >&2
                kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null || true
        rm -f "$DOCKER_DIR/dockerd.ppid"
        DOCKERD_PID=
}

# docker_teardown WORK: remove every container, stop dockerd and containerd by PID,
# unmount what is left under WORK and remove it.
docker_teardown() {
        local work=$1
        if [ -n "${DOCKER_DIR:-}" ] && [ -s "$DOCKER_DIR/dockerd.ppid" ]; then
                local ids
                ids=$(docker_ ps -aq 2>/dev/null)
                # shellcheck disable=SC2086 # one argument per id
                [ -z "$ids" ] || docker_ rm -f $ids >/dev/null 2>&1
                dockerd_stop
        fi
        if [ -n "${CTRD_DIR:-}" ]; then
                ctrd_remove_all
                ctrd_stop
        fi
        grep -o " ${work}[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
        rm -rf "$work"
}

docker_() {
        "$DOCKER_BIN/docker" --host "unix://$DOCKER_SOCK" "$@"
}

# docker_import_image ROOTFS REF: a one-layer image of ROOTFS, PATH set, as REF.
docker_import_image() {
        tar -C "$1" --numeric-owner --owner=0 --group=0 -c . |
                docker_ import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["sh"]' - "$2" >/dev/null
}
