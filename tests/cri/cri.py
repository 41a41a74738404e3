#!/usr/bin/python3
"""A small CRI client for nanoshim's tests and benchmarks.

The gRPC code is generated at run time from the official CRI definition: Debian's
golang-k8s-cri-api-dev (sid) ships k8s.io/cri-api/pkg/apis/runtime/v1/api.proto; it
is fetched and unpacked by tools/fetch-debian.sh (never installed) and compiled with
python3-grpc-tools into a cache keyed by the proto's hash. Use Debian's /usr/bin/python3
(python3-grpcio, python3-grpc-tools, python3-websocket).

As a module:
    import cri
    c = cri.Client("/tmp/x/c.sock")
    pod, cids = c.start_pod("nanoshim", "web-1", [("a", ["sleep", "1000"]),
                                                 ("b", ["sleep", "1000"])],
                            image="localhost/nanoshim-busybox:cri")
    c.stop_remove_pod(pod)

As a command (prints JSON):
    cri.py --sock S version
    cri.py --sock S call RunPodSandbox '{"config": {...}, "runtimeHandler": "nanoshim"}'
    cri.py --sock S pods --handler nanoshim --image IMG --count 100 --containers 2 \
        [--parallel 10] [--prefix p] [--keep]
        start COUNT pods of CONTAINERS containers (sleep) and, unless --keep,
        stop and remove them; prints per-pod timings.
    cri.py --sock S rm-pods --prefix p       stop and remove pods whose name has PREFIX
"""
import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
PROTO_REL = "usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto"

pb = None       # the generated api_pb2 module, after load()
pb_grpc = None  # api_pb2_grpc


class CriError(Exception):
    pass


def proto_path():
    """The api.proto to compile: $CRI_API_PROTO, or sid's golang-k8s-cri-api-dev."""
    path = os.environ.get("CRI_API_PROTO")
    if path:
        return path
    try:
        out = subprocess.run([os.path.join(SRC, "tools", "fetch-debian.sh"), "sid",
                              "golang-k8s-cri-api-dev"], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except subprocess.CalledProcessError as e:
        raise CriError("cannot fetch golang-k8s-cri-api-dev: " + e.stderr.strip())
    path = os.path.join(out.stdout.strip().splitlines()[-1], PROTO_REL)
    if not os.path.exists(path):
        raise CriError(path + " missing from golang-k8s-cri-api-dev")
    return path


def load():
    """Generate (once, cached) and import the CRI gRPC modules."""
    global pb, pb_grpc
    if pb is not None:
        return
    try:
        import grpc  # noqa: F401
        import grpc_tools.protoc  # noqa: F401
    except ImportError as e:
        raise CriError("needs python3-grpcio and python3-grpc-tools (Debian's "
                       "/usr/bin/python3): %s" % e)
    src = proto_path()
    if not os.path.isfile(src):
        raise CriError("no CRI definition at " + src)
    with open(src) as f:
        text = f.read()
    # Debian's grpc-tools bundles an older protoc that does not know the
    # debug_redact field option (it only affects logging): drop it.
    text = text.replace(" [debug_redact = true]", "")
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    cache = os.environ.get("CRI_GEN_DIR") or os.path.join(
        os.environ.get("NANOSHIM_CACHE", "/var/cache/nanoshim"), "cri-gen")
    out = os.path.join(cache, key)
    if not os.path.exists(os.path.join(out, ".complete")):
        tmp = "%s.tmp.%d" % (out, os.getpid())
        os.makedirs(tmp, exist_ok=True)
        with open(os.path.join(tmp, "api.proto"), "w") as f:
            f.write(text)
        r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + tmp,
                            "--python_out=" + tmp, "--grpc_python_out=" + tmp,
                            os.path.join(tmp, "api.proto")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise CriError("protoc failed on %s:\n%s" % (src, r.stdout))
        open(os.path.join(tmp, ".complete"), "w").close()
        try:
            os.rename(tmp, out)
        except OSError:  # another process won the race: use its copy
            subprocess.run(["rm", "-rf", tmp])
    sys.path.insert(0, out)
    pb = importlib.import_module("api_pb2")
    pb_grpc = importlib.import_module("api_pb2_grpc")


class Client:
    """The RuntimeService and ImageService of one CRI socket."""

    def __init__(self, sock, timeout=120):
        load()
        import grpc
        self.grpc = grpc
        self.sock = sock
        self.timeout = timeout
        self.channel = grpc.insecure_channel("unix://" + sock)
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.image = pb_grpc.ImageServiceStub(self.channel)
        self.services = {}
        for svc, stub in (("RuntimeService", self.runtime), ("ImageService", self.image)):
            for m in pb.DESCRIPTOR.services_by_name[svc].methods:
                self.services[m.name] = (stub, m.input_type.name)

    def close(self):
        self.channel.close()

    def call(self, method, req=None, deadline=None, **fields):
        """Call METHOD with a request built from FIELDS (proto field names; nested
        dicts for messages) or REQ; returns the response message. DEADLINE: seconds
        (default the client's). A gRPC error becomes CriError carrying containerd's
        own message."""
        from google.protobuf import json_format
        if method not in self.services:
            raise CriError("no CRI method " + method)
        stub, in_name = self.services[method]
        if req is None:
            req = json_format.ParseDict(fields, getattr(pb, in_name)())
        try:
            return getattr(stub, method)(req, timeout=deadline or self.timeout)
        except self.grpc.RpcError as e:
            err = CriError("%s: %s: %s" % (method, e.code().name, e.details()))
            err.code = e.code().name
            raise err from None

    def wait_ready(self, deadline_s=60):
        """Poll Status until the runtime answers (containerd may still start)."""
        end = time.monotonic() + deadline_s
        while True:
            try:
                return self.call("Status", deadline=5)
            except CriError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    # --- pods and containers -------------------------------------------------

    @staticmethod
    def pod_config(name, uid=None, namespace="default", host_network=True,
                   cgroup_parent="", log_directory="", hostname=None, annotations=None,
                   labels=None):
        cfg = {"metadata": {"name": name, "uid": uid or name, "namespace": namespace,
                            "attempt": 0},
               "labels": labels or {"nanoshim-cri": "1"},
               "annotations": annotations or {},
               "linux": {"security_context": {"namespace_options": {
                   "network": "NODE" if host_network else "POD",
                   "pid": "CONTAINER", "ipc": "POD"}}}}
        if not host_network:  # a host-network pod shares the node's UTS namespace
            cfg["hostname"] = hostname or name[:63]
        if cgroup_parent:
            cfg["linux"]["cgroup_parent"] = cgroup_parent
        if log_directory:
            cfg["log_directory"] = log_directory
        return cfg

    @staticmethod
    def container_config(name, image, command, args=None, tty=False, stdin=False,
                         stdin_once=False, log_path="", envs=None, resources=None,
                         labels=None, pid="CONTAINER"):
        """PID: the container's PID namespace, CONTAINER (its own: what the kubelet
        asks for unless the pod has shareProcessNamespace) or POD (the sandbox's; the
        protocol's default when nothing is said)."""
        cfg = {"metadata": {"name": name, "attempt": 0}, "image": {"image": image},
               "command": list(command), "args": list(args or []),
               "tty": tty, "stdin": stdin, "stdin_once": stdin_once,
               "labels": labels or {"nanoshim-cri": "1"},
               "envs": [{"key": k, "value": v} for k, v in (envs or {}).items()]}
        if log_path:
            cfg["log_path"] = log_path
        cfg["linux"] = {"security_context": {"namespace_options": {"pid": pid}}}
        if resources:
            cfg["linux"]["resources"] = resources
        return cfg

    def run_pod(self, handler, pod_cfg):
        return self.call("RunPodSandbox", config=pod_cfg, runtime_handler=handler).pod_sandbox_id

    def create_container(self, pod_id, pod_cfg, ctr_cfg):
        return self.call("CreateContainer", pod_sandbox_id=pod_id, config=ctr_cfg,
                         sandbox_config=pod_cfg).container_id

    def start_container(self, cid):
        self.call("StartContainer", container_id=cid)

    def start_pod(self, handler, name, containers, image, timings=None, **pod_kw):
        """RunPodSandbox, then CreateContainer + StartContainer for each
        (name, command[, pid namespace mode]) of CONTAINERS. Returns (pod_id, [container ids]); TIMINGS,
        a dict, receives the seconds of RunPodSandbox ("run_pod") and of all
        CreateContainer ("create") and StartContainer ("start") calls."""
        pod_cfg = self.pod_config(name, **pod_kw)
        t = {"run_pod": 0.0, "create": 0.0, "start": 0.0}
        t0 = time.monotonic()
        pod = self.run_pod(handler, pod_cfg)
        t["run_pod"] = time.monotonic() - t0
        cids = []
        try:
            for cname, cmd, *pid in containers:
                cfg = self.container_config(cname, image, cmd, pid=pid[0] if pid else "CONTAINER",
                                            log_path=cname + ".log" if pod_kw.get("log_directory") else "")
                t1 = time.monotonic()
                cid = self.create_container(pod, pod_cfg, cfg)
                t2 = time.monotonic()
                cids.append(cid)
                self.start_container(cid)
                t["create"] += t2 - t1
                t["start"] += time.monotonic() - t2
        except CriError:
            self.stop_remove_pod(pod)
            raise
        if timings is not None:
            timings.update(t)
        return pod, cids

    def stop_remove_pod(self, pod_id):
        self.call("StopPodSandbox", pod_sandbox_id=pod_id)
        self.call("RemovePodSandbox", pod_sandbox_id=pod_id)

    def pods(self, label=None):
        req = {}
        if label:
            req["filter"] = {"label_selector": label}
        return list(self.call("ListPodSandbox", **req).items)

    def container_status(self, cid):
        return self.call("ContainerStatus", container_id=cid).status

    def wait_container_state(self, cid, state, deadline_s=60):
        """Poll ContainerStatus until its state is STATE (e.g. "CONTAINER_EXITED")."""
        want = pb.ContainerState.Value(state)
        end = time.monotonic() + deadline_s
        while True:
            st = self.container_status(cid)
            if st.state == want:
                return st
            if time.monotonic() > end:
                raise CriError("%s still %s after %ss, wanted %s" % (
                    cid[:12], pb.ContainerState.Name(st.state), deadline_s, state))
            time.sleep(0.05)

    def exec_sync(self, cid, cmd, timeout=0):
        """(exit_code, stdout, stderr) of CMD in CID; TIMEOUT in seconds (0: none)."""
        r = self.call("ExecSync", container_id=cid, cmd=list(cmd), timeout=timeout,
                      deadline=(timeout + 60) if timeout else None)
        return r.exit_code, r.stdout, r.stderr

    # --- streaming (exec, attach) over the CRI streaming server ---------------

    def exec_stream(self, cid, cmd, tty=False, stdin=False):
        """A Stream to CMD run in CID through the CRI streaming server."""
        r = self.call("Exec", container_id=cid, cmd=list(cmd), tty=tty, stdin=stdin,
                      stdout=True, stderr=not tty)
        return Stream(r.url)

    def attach(self, cid, tty=False, stdin=False):
        """A Stream attached to CID's stdio."""
        r = self.call("Attach", container_id=cid, tty=tty, stdin=stdin, stdout=True,
                      stderr=not tty)
        return Stream(r.url)


class Stream:
    """One exec or attach session over the streaming server's websocket, protocol
    v4.channel.k8s.io: each binary message starts with its channel (0 stdin,
    1 stdout, 2 stderr, 3 the final status as JSON, 4 terminal resize)."""
    STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4

    def __init__(self, url, timeout=60):
        import websocket
        self.ws = websocket.create_connection(url.replace("http://", "ws://", 1),
                                              timeout=timeout,
                                              subprotocols=["v4.channel.k8s.io"])
        self.stdout = b""
        self.stderr = b""
        self.status = None   # the final status (a dict), once received
        self.closed = False

    def send(self, data, channel=0):
        self.ws.send_binary(bytes([channel]) + data)

    def resize(self, width, height):
        self.send(json.dumps({"Width": width, "Height": height}).encode(), self.RESIZE)

    def read_until(self, pred=None, timeout=60):
        """Read until PRED(self) is true or, without PRED, until the server closes;
        raises CriError at the deadline."""
        import websocket
        end = time.monotonic() + timeout
        while not (pred and pred(self)):
            if self.closed:
                if pred:
                    raise CriError("stream closed; stdout %r stderr %r status %r" % (
                        self.stdout, self.stderr, self.status))
                return self
            if time.monotonic() > end:
                raise CriError("stream: nothing after %ss; stdout %r stderr %r" % (
                    timeout, self.stdout, self.stderr))
            try:
                op, data = self.ws.recv_data()
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                self.closed = True
                continue
            if op == websocket.ABNF.OPCODE_CLOSE:
                self.closed = True
                continue
            if not data:
                continue
            ch, payload = data[0], data[1:]
            if ch == self.STDOUT:
                self.stdout += payload
            elif ch == self.STDERR:
                self.stderr += payload
            elif ch == self.ERROR and payload:
                self.status = json.loads(payload)
        return self

    def exit_code(self):
        """The exit code the final status reports (0 for Success)."""
        if not self.status:
            return None
        if self.status.get("status") == "Success":
            return 0
        for c in self.status.get("details", {}).get("causes", []):
            if c.get("reason") == "ExitCode":
                return int(c.get("message"))
        return -1

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


# --- command line ------------------------------------------------------------

def _pods_cmd(c, a):
    """Start COUNT pods (PARALLEL at a time), each with CONTAINERS sleepers."""
    results = [None] * a.count
    errors = []
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= a.count or errors:
                return
            t = {}
            t0 = time.monotonic()
            try:
                pod, cids = c.start_pod(a.handler, "%s-%d" % (a.prefix, i),
                                        [("c%d" % k, ["sleep", "100000"])
                                         for k in range(a.containers)],
                                        image=a.image, timings=t,
                                        cgroup_parent=a.cgroup_parent)
            except CriError as e:
                errors.append(str(e))
                return
            t["total"] = time.monotonic() - t0
            results[i] = {"pod": pod, "containers": cids, "timings": t}

    def run_all(fn):
        ths = [threading.Thread(target=fn) for _ in range(max(1, a.parallel))]
        for th in ths:
            th.start()
        for th in ths:
            th.join()

    t0 = time.monotonic()
    run_all(worker)
    started = time.monotonic() - t0
    report = {"handler": a.handler, "count": a.count, "containers": a.containers,
              "start_all_s": started, "pods": [r for r in results if r]}
    if not a.keep:
        todo = [r["pod"] for r in results if r]

        def remover():
            while True:
                with lock:
                    if not todo:
                        return
                    pod = todo.pop()
                try:
                    c.stop_remove_pod(pod)
                except CriError as e:
                    errors.append(str(e))

        t0 = time.monotonic()
        run_all(remover)
        report["remove_all_s"] = time.monotonic() - t0
    report["errors"] = errors
    print(json.dumps(report, indent=1))
    return 1 if errors else 0


def _rm_pods_cmd(c, a):
    n = 0
    for p in c.pods():
        if p.metadata.name.startswith(a.prefix):
            c.stop_remove_pod(p.id)
            n += 1
    print(json.dumps({"removed": n}))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="a small CRI client (nanoshim tests)")
    ap.add_argument("--sock", required=True, help="containerd's gRPC socket")
    ap.add_argument("--timeout", type=float, default=120)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    p = sub.add_parser("call")
    p.add_argument("method")
    p.add_argument("request", nargs="?", default="{}")
    p = sub.add_parser("pods")
    p.add_argument("--handler", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--containers", type=int, default=2)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--prefix", default="cri-pod")
    p.add_argument("--cgroup-parent", default="")
    p.add_argument("--keep", action="store_true")
    p = sub.add_parser("rm-pods")
    p.add_argument("--prefix", required=True)
    a = ap.parse_args(argv)
    from google.protobuf import json_format
    try:
        c = Client(a.sock, timeout=a.timeout)
        if a.cmd == "version":
            print(json_format.MessageToJson(c.call("Version")))
        elif a.cmd == "call":
            r = c.call(a.method, **json.loads(a.request))
            print(json_format.MessageToJson(r, preserving_proto_field_name=True))
        elif a.cmd == "pods":
            return _pods_cmd(c, a)
        elif a.cmd == "rm-pods":
            return _rm_pods_cmd(c, a)
    except CriError as e:
        print("cri: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
