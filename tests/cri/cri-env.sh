#!/bin/bash
# A private containerd with its CRI plugin, for the CRI tier (tests/cri/test-cri.sh)
# and the pod benchmark (bench/pods.sh). Sourced; uses ctrd-lib.sh (CTRD=1.6|1.7|2.1).
#
#   cri_start DIR SHIM PAUSE_BINARY [TAG]
#       Writes DIR/config.toml (CRI on; handlers `runc` = io.containerd.runc.v2 and
#       `nanoshim` = io.containerd.nanoshim.v2, both with their runc --root in DIR/runc;
#       on 2.x also `nanoshim-runc`, nanoshim's binary under runc-v2's runtime type),
#       a CNI bridge network with a unique bridge name and private subnet, starts
#       containerd (DIR/start.sh starts it again; its pid is in DIR/containerd.pid) and
#       imports the pause image (PAUSE_BINARY) and busybox into the k8s.io namespace.
#       Sets CRI_DIR, CRI_SOCK, CRI_BRIDGE, CRI_SUBNET, CRI_PAUSE_IMAGE, CRI_IMAGE.
#   cri_stop
#       Stops containerd by its pid, removes the bridge and what the CNI plugins left
#       (their IPAM and cache files of this network), and the runc root.
#
# The CRI plugin always uses the containerd namespace k8s.io, so everything that
# containerd names after the namespace is made private here: root, state, sockets,
# runc's --root (the options' Root); pods should get their own cgroup_parent.

# shellcheck source=tests/integration/ctrd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/ctrd-lib.sh"

CRI_PAUSE_IMAGE=localhost/nanoshim-pause:cri
CRI_IMAGE=localhost/nanoshim-busybox:cri

# cri_prereqs: say (on stdout) what is missing, return 1; used for skip 77.
cri_prereqs() {
        local b
        [ "$(id -u)" = 0 ] || { echo "needs root"; return 1; }
        for b in runc ip cc /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /bin/busybox; do
                command -v "$b" >/dev/null || [ -x "$b" ] || { echo "$b not installed (tools/install-deps.sh)"; return 1; }
        done
        /usr/bin/python3 -c 'import grpc, grpc_tools.protoc, websocket' 2>/dev/null ||
                { echo "python3-grpcio, python3-grpc-tools or python3-websocket missing (tools/install-deps.sh)"; return 1; }
}

# cri_write_config DIR: containerd's config with the CRI plugin for the selected
# version: 1.6/1.7 (config version 2) keep it all in io.containerd.grpc.v1.cri, 2.x
# (version 3) split it in io.containerd.cri.v1.images/runtime and the gRPC server.
cri_write_config() {
        local dir=$1 rt images grpc
        printf 'Root = "%s"\n' "$dir/runc" >"$dir/nanoshim-options.toml"
        ctrd_write_config "$dir" cri
        if [ "$(ctrd_major)" -ge 2 ]; then
                rt='plugins."io.containerd.cri.v1.runtime"' images='plugins."io.containerd.cri.v1.images"'
                grpc='plugins."io.containerd.grpc.v1.cri"'
                cat >>"$dir/config.toml" <<TOML
[$images]
  snapshotter = "overlayfs"
  [$images.pinned_images]
    sandbox = "$CRI_PAUSE_IMAGE"
[$rt]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [$rt.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/cni"
[$grpc]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
        else
                rt='plugins."io.containerd.grpc.v1.cri"'
                cat >>"$dir/config.toml" <<TOML
[$rt]
  sandbox_image = "$CRI_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [$rt.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
TOML
        fi
        # The handlers: runc-v2 takes its options inline; any other runtime_type gets
        # runtimeoptions.v1.Options, whose ConfigPath names a TOML file of runc options.
        cat >>"$dir/config.toml" <<TOML
[$rt.containerd]
  default_runtime_name = "runc"
  [$rt.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [$rt.containerd.runtimes.runc.options]
      Root = "$dir/runc"
  [$rt.containerd.runtimes.nanoshim]
    runtime_type = "io.containerd.nanoshim.v2"
    [$rt.containerd.runtimes.nanoshim.options]
      ConfigPath = "$dir/nanoshim-options.toml"
TOML
        # containerd 2.x's CheckpointContainer hands CRIU's work path (the container's
        # directory, from which it copies dump.log and stats-dump into the archive)
        # only to the runtime type io.containerd.runc.v2: the handler `nanoshim-runc`
        # is that type with nanoshim's binary, its runc options inline.
        [ "$(ctrd_major)" -ge 2 ] && cat >>"$dir/config.toml" <<TOML
  [$rt.containerd.runtimes.nanoshim-runc]
    runtime_type = "io.containerd.runc.v2"
    runtime_path = "$dir/bin/containerd-shim-nanoshim-v2"
    [$rt.containerd.runtimes.nanoshim-runc.options]
      Root = "$dir/runc"
TOML
        return 0
}

# cri_write_cni DIR TAG: a bridge network with a bridge and subnet no one else uses.
cri_write_cni() {
        local dir=$1 tag=$2 n
        mkdir -p "$dir/cni" "$dir/cni-ipam"
        # Bridge names are at most 15 bytes; a subnet in 10.211.0.0/16 not yet routed.
        CRI_BRIDGE=ns${tag:0:5}$(printf '%04x' $((RANDOM % 65536)))
        for _ in $(seq 50); do
                n=$((RANDOM % 250 + 2))
                ip -4 route show | grep -q "^10\.211\.$n\." || break
        done
        CRI_SUBNET=10.211.$n.0/24
        cat >"$dir/cni/10-$CRI_BRIDGE.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$CRI_BRIDGE",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CRI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni-ipam",
        "ranges": [[{"subnet": "$CRI_SUBNET"}]]
      }
    }
  ]
}
JSON
}

cri_start() {
        CRI_DIR=$1
        local shim=$2 pause=$3 tag=${4:-cri}
        ctrd_select || return 1
        mkdir -p "$CRI_DIR/bin" "$CRI_DIR/runc" "$CRI_DIR/img/pause" "$CRI_DIR/img/busybox/bin"
        ln -sf "$(readlink -f "$shim")" "$CRI_DIR/bin/containerd-shim-nanoshim-v2"
        cri_write_config "$CRI_DIR"
        cri_write_cni "$CRI_DIR" "$tag"
        CRI_SOCK=$CRI_DIR/c.sock
        CTRD_DIR=$CRI_DIR
        CTRD_SOCK=$CRI_SOCK
        cat >"$CRI_DIR/start.sh" <<SH
#!/bin/sh
# Start this containerd (again) in the background; its pid goes to containerd.pid.
PATH="$CRI_DIR/bin:$CTRD_BIN:\$PATH" containerd --config "$CRI_DIR/config.toml" >>"$CRI_DIR/containerd.log" 2>&1 &
echo \$! >"$CRI_DIR/containerd.pid"
SH
        chmod +x "$CRI_DIR/start.sh"
        "$CRI_DIR/start.sh"
        CTRD_PID=$(cat "$CRI_DIR/containerd.pid")
        if ! poll_until 60 ctr --address "$CRI_SOCK" version; then
                echo "containerd did not come up; its log:" >&2
                tail -n 30 "$CRI_DIR/containerd.log" >&2
                return 1
        fi
        cp "$pause" "$CRI_DIR/img/pause/pause"
        cp /bin/busybox "$CRI_DIR/img/busybox/bin/busybox"
        local a
        for a in sh sleep echo cat ls head tail dd stty true false kill ps grep wc env yes; do
                ln -sf busybox "$CRI_DIR/img/busybox/bin/$a"
        done
        mkdir -p "$CRI_DIR/img/busybox/tmp" "$CRI_DIR/img/busybox/proc" "$CRI_DIR/img/busybox/dev" "$CRI_DIR/img/busybox/sys" "$CRI_DIR/img/busybox/etc"
        (
                CTR_NS=k8s.io
                ctrd_import_image_cmd "$CRI_DIR/img/pause" "$CRI_PAUSE_IMAGE" /pause &&
                        ctrd_import_image_cmd "$CRI_DIR/img/busybox" "$CRI_IMAGE" sh
        ) || { echo "cannot import the images" >&2; return 1; }
        export CRI_DIR CRI_SOCK CRI_BRIDGE CRI_SUBNET CRI_PAUSE_IMAGE CRI_IMAGE
}

# ctrd_import_image_cmd ROOTFS REF CMD: ctrd_import_image with CMD as the image's Cmd.
ctrd_import_image_cmd() {
        CTRD_IMAGE_CMD=$3 ctrd_import_image "$1" "$2"
}

cri_stop() {
        [ -n "${CRI_DIR:-}" ] || return 0
        local pid
        pid=$(cat "$CRI_DIR/containerd.pid" 2>/dev/null)
        if [ -n "$pid" ]; then
                kill -TERM "$pid" 2>/dev/null
                if ! poll_until 30 ctrd_gone "$pid"; then
                        echo "containerd $pid did not stop on SIGTERM; killing it" >&2
                        kill -KILL "$pid" 2>/dev/null
                fi
                wait "$pid" 2>/dev/null
                rm -f "$CRI_DIR/containerd.pid"
        fi
        if [ -n "${CRI_BRIDGE:-}" ] && ip link show "$CRI_BRIDGE" >/dev/null 2>&1; then
                ip link del "$CRI_BRIDGE"
        fi
        # libcni's result cache lives in /var/lib/cni whatever the config says: only the
        # files of this network (named after it) are ours.
        [ -n "${CRI_BRIDGE:-}" ] && rm -f /var/lib/cni/results/"$CRI_BRIDGE"-* 2>/dev/null
        return 0
}
