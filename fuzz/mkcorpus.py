#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the binary seed inputs of fuzz/corpus/ (the text seeds are kept as files).

    python3 fuzz/mkcorpus.py            # rewrites fuzz/corpus/<target>/*.bin

Frames and messages are encoded here with a minimal protobuf writer so that the seeds
follow the ttrpc and task API wire layouts; the frame bytes of the Connect exchange and
of the Exec error answer are the ones observed between containerd 1.6 and runc-v2."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    """One proto3 field: int/bool -> varint, str/bytes -> length-delimited."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(field(n, v) for n, v in fields)


def any_(type_url, value):
    return msg((1, type_url), (2, value))


def frame(stream_id, ftype, data, flags=0):
    return struct.pack(">IIBB", len(data), stream_id, ftype, flags) + data


def request(service, method, payload, timeout=0, metadata=()):
    fields = [(1, service), (2, method), (3, payload)]
    if timeout:
        fields.append((4, timeout))
    fields += [(5, msg((1, k), (2, v))) for k, v in metadata]
    return msg(*fields)


TASK = "containerd.task.v2.Task"
RUNC_OPTIONS = msg((6, "crun"), (7, "/run/containerd/runc/k8s.io"), (9, True), (4, 1000), (5, 1000))
PROCESS_JSON = (b'{"terminal":false,"user":{"uid":0,"gid":0,"additionalGids":[1,2]},"args":["sh","-c","echo hi"],'
                b'"env":["PATH=/bin"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],'
                b'"consoleSize":{"height":24,"width":80},"noNewPrivileges":true}')
CREATE = msg((1, "ctr1"), (2, "/run/containerd/io.containerd.runtime.v2.task/default/ctr1"),
             (3, msg((1, "overlay"), (2, "overlay"), (4, "lowerdir=/l1:/l2"), (4, "upperdir=/u"), (4, "workdir=/w"),
                     (4, "ro"), (4, "rshared"))),
             (5, "/run/containerd/fifo/1/ctr1-stdin"), (6, "/run/containerd/fifo/1/ctr1-stdout"),
             (7, "/run/containerd/fifo/1/ctr1-stderr"), (10, any_("containerd.runc.v1.Options", RUNC_OPTIONS)))
EXEC = msg((1, "ctr1"), (2, "exec-1"), (3, True), (5, "binary:///usr/bin/logger?a=b"),
           (7, any_("types.containerd.io/opencontainers/runtime-spec/1/Process", PROCESS_JSON)))
UPDATE = msg((1, "ctr1"), (2, any_("types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                                   b'{"memory":{"limit":1048576}}')),
             (3, msg((1, "io.kubernetes.cri.sandbox-id"), (2, "abc"))))

# (target selector, seed name, bytes); selectors as in fuzz-task-requests.c `messages`
TASK_SEEDS = [
    (0, "create", CREATE),
    (1, "delete-exec", msg((1, "ctr1"), (2, "exec-1"))),
    (2, "exec", EXEC),
    (3, "resize", msg((1, "ctr1"), (3, 80), (4, 24))),
    (4, "state", msg((1, "tr-rm1"))),
    (5, "kill-all", msg((1, "ctr1"), (3, 9), (4, True))),
    (6, "closeio", msg((1, "ctr1"), (3, True))),
    (7, "pids", msg((1, "ctr1"))),
    (8, "checkpoint", msg((1, "ctr1"), (2, "/tmp/cp"))),
    (9, "update", UPDATE),
    (10, "start", msg((1, "ctr1"))),
    (11, "wait", msg((1, "ctr1"), (2, "exec-1"))),
    (12, "stats", msg((1, "ctr1"))),
    (13, "connect", msg((1, "tr-rm1"))),
    (14, "shutdown", msg((1, "ctr1"), (2, True))),
    (15, "pause", msg((1, "ctr1"))),
    (16, "resume", msg((1, "ctr1"))),
    (17, "runc-options", RUNC_OPTIONS),
    (18, "runtime-options", msg((1, "runtimeoptions.v1.Options"), (2, "/etc/containerd/runc.toml"))),
    (19, "runc-options-any", RUNC_OPTIONS),
    (20, "process-spec", PROCESS_JSON),
    (21, "runtime-toml", b'[options]\nBinaryName = "/usr/bin/crun"\nRoot = "/run/x" # comment\n'
                         b'SystemdCgroup = true\nIoUid = 1000\nIoGid = 1000\nCriuPath = ""\n'),
]

CONNECT_REQ = bytes.fromhex("0000002c0000000301000a17") + b"containerd.task.v2.Task" + \
    bytes.fromhex("1207") + b"Connect" + bytes.fromhex("1a080a06") + b"tr-rm1"
CONNECT_RESP = bytes.fromhex("00000008000000030200120608ba4e10eb4e")
EXEC_DUP = bytes.fromhex("0000001c0000001d02000a1a08061216") + b"id dup: already exists"

# (limit selector, split seed, name, stream); limit selectors as in fuzz-ttrpc-frame.c `limits`
FRAME_SEEDS = [
    (0, 1, "connect-request", CONNECT_REQ),
    (0, 2, "connect-response", CONNECT_RESP),
    (0, 3, "empty-response", bytes.fromhex("00000000000000010200")),
    (0, 4, "create-response", bytes.fromhex("00000005000000010200120308eb4e")),
    (0, 5, "exec-duplicate", EXEC_DUP),
    (0, 6, "connect-start-one-write",
     frame(5, 1, request(TASK, "Connect", msg((1, "c")))) + frame(7, 1, request(TASK, "Start", msg((1, "c"))))),
    (0, 7, "create-request", frame(1, 1, request(TASK, "Create", CREATE, timeout=5000000000))),
    (0, 8, "forward-metadata",
     frame(1, 1, request("containerd.services.events.ttrpc.v1.Events", "Forward", b"\x0a\x02/x",
                         timeout=5000000000, metadata=[("containerd-namespace-ttrpc", "default")]))),
    (4, 9, "oversize-then-frame", frame(3, 1, b"x" * 100) + CONNECT_RESP),
    (2, 10, "zero-length-frames", frame(1, 1, b"") + frame(3, 1, b"") + frame(5, 2, b"")),
    (0, 11, "even-stream-unknown-type", frame(2, 1, b"") + frame(9, 7, b"\x08\x01", flags=1)),
    (0, 12, "truncated", CONNECT_REQ[:25]),
]


# config.json as tools/mkbundle.sh writes it (command `sh -c 'echo hi'`), compacted.
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE"]
CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo hi"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"], "cwd": "/",
        "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "nanoshim",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "annotations": {"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "abc"},
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "cgroupsPath": "/default/ctr1",
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                       {"type": "network", "path": "/var/run/netns/cni-1"}],
        "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
    },
}

# (parser selector, name, text); selectors as in fuzz-spec.c `parsers`
SPEC_SEEDS = [
    (0, "config", json.dumps(CONFIG, separators=(",", ":")).encode()),
    (0, "config-minimal", b'{"root":{"path":"/r"},"linux":{"namespaces":null},"annotations":null}'),
    (1, "process", PROCESS_JSON),
    (1, "process-nulls", b'{"args":["/bin/true"],"cwd":"/","env":null,"rlimits":null,"consoleSize":null}'),
    # `runc state` and `runc ps --format json` output as runc 1.1.5 prints them
    (2, "runc-state", b'{\n  "ociVersion": "1.0.2-dev",\n  "id": "nsfzc",\n  "pid": 6595,\n  "status": "created",\n'
                      b'  "bundle": "/tmp/b",\n  "rootfs": "/tmp/b/rootfs",\n'
                      b'  "created": "2026-11-30T04:45:11.107041384Z",\n  "owner": ""\n}'),
    (3, "runc-ps", b"[6595,6601]\n"),
    (3, "runc-ps-null", b"null"),
    (4, "runc-log", b'{"level":"warning","msg":"cgroup v1 is deprecated","time":"2026-11-30T04:45:11Z"}\n'
                    b'{"level":"error","msg":"container does not exist","time":"2026-11-30T04:45:11Z"}\n'
                    b'not json\n{"level":"error","msg":"cut off'),
]

# stdio URIs, the NUL-terminated text itself
URI_SEEDS = [
    ("bare-path", b"/run/containerd/fifo/123/ctr1-stdout"),
    ("fifo", b"fifo:///run/fifo%20x/out"),
    ("file", b"file:///var/log/ctr%2Flog.txt"),
    ("binary", b"binary:///bin/logger?a=b"),
    ("binary-query", b"binary:///usr/bin/log%20ger?--debug&id=ctr+1&x=%2F&&=v"),
    ("dotdot", b"file:///a/../b"),
    ("unknown-scheme", b"http://host/x"),
    ("relative", b"out.log"),
]


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".bin"), "wb") as f:
        f.write(data)


def main():
    for sel, name, data in TASK_SEEDS:
        write("fuzz-task-requests", name, bytes([sel]) + data)
    for limit, seed, name, data in FRAME_SEEDS:
        write("fuzz-ttrpc-frame", name, bytes([limit, seed]) + data)
        write("fuzz-ttrpc-server", name, data)
    for sel, name, data in SPEC_SEEDS:
        write("fuzz-spec", name, bytes([sel]) + data)
    for name, data in URI_SEEDS:
        write("fuzz-stdio-uri", name, data)


if __name__ == "__main__":
    main()
