#!/usr/bin/python3
"""The CRI tier's scenarios: each one runs with the handler `nanoshim` and with the
handler `runc` (containerd's io.containerd.runc.v2) under the same containerd, and the
answers are compared; the main facts are also checked against what Kubernetes expects.

Run by tests/cri/test-cri.sh, which starts containerd (tests/cri/cri-env.sh) and
passes CRI_DIR, CRI_SOCK, CRI_SUBNET, CRI_BRIDGE, CRI_IMAGE. Prints PASS/FAIL lines;
exit 1 on any failure. CRI_ONLY=name,name runs only those scenarios; CRI_VERBOSE=1
prints the (common) answers of the scenarios that passed.
"""
import glob
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cri  # noqa: E402
from cri import CriError  # noqa: E402

DIR = os.environ["CRI_DIR"]
SOCK = os.environ["CRI_SOCK"]
SUBNET = os.environ["CRI_SUBNET"]
IMAGE = os.environ["CRI_IMAGE"]
TAG = os.environ.get("CRI_TAG", "cri")
HANDLERS = ("nanoshim", "runc")
SHIM_EXE = {"nanoshim": "containerd-shim-nanoshim-v2", "runc": "containerd-shim-runc-v2"}
CG_PARENT = os.environ.get("CRI_CGROUP_PARENT") or "/nanoshim-%s-%d" % (TAG, os.getpid())
LABEL = {"nanoshim-cri": TAG}

client = None
failures = []
passes = 0
seq = [0]


def log(msg):
    print(msg, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def poll(pred, what, deadline_s=60):
    end = time.monotonic() + deadline_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out (%ss) waiting for %s" % (deadline_s, what))
        time.sleep(0.05)


def ctrd_pid():
    with open(os.path.join(DIR, "containerd.pid")) as f:
        return int(f.read())


def proc_gone(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1] == "Z"
    except OSError:
        return True
    return False


def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def exe_name(pid):
    try:
        return os.path.basename(os.readlink("/proc/%d/exe" % pid))
    except OSError:
        return ""


def shims_of(sock_addr_part):
    """Pids of shims (either kind) whose command line names SOCK_ADDR_PART."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).decode(errors="replace") in SHIM_EXE.values() \
                and sock_addr_part.encode() in b" ".join(argv):
            out.append(int(p))
    return out


def listen_paths(pid):
    """The paths of the unix sockets process PID listens on (from /proc/net/unix)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    except OSError:
        return []
    out = []
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            # Num RefCount Protocol Flags Type St Inode Path; flags 00010000: listening
            w = line.split()
            if len(w) >= 8 and w[6] in inodes and int(w[3], 16) & 0x10000:
                out.append(w[7])
    return out


# --- pods ------------------------------------------------------------------------

class Pod:
    """One pod of a scenario: its config, sandbox id and containers by name."""

    def __init__(self, handler, scenario, host_network=True):
        seq[0] += 1
        self.handler = handler
        self.name = "%s-%s-%s-%d" % (TAG, scenario, handler, seq[0])
        self.logdir = os.path.join(DIR, "logs", self.name)
        os.makedirs(self.logdir, exist_ok=True)
        self.cfg = client.pod_config(self.name, host_network=host_network,
                                     cgroup_parent=CG_PARENT, log_directory=self.logdir,
                                     labels=dict(LABEL))
        self.id = client.run_pod(handler, self.cfg)
        self.ctrs = {}

    def add(self, name, cmd, start=True, **kw):
        cfg = client.container_config(name, IMAGE, cmd, log_path=name + ".log",
                                      labels=dict(LABEL), **kw)
        cid = client.create_container(self.id, self.cfg, cfg)
        self.ctrs[name] = cid
        if start:
            client.start_container(cid)
        return cid

    def logfile(self, name):
        return os.path.join(self.logdir, name + ".log")

    def info(self):
        r = client.call("PodSandboxStatus", pod_sandbox_id=self.id, verbose=True)
        return r.status, json.loads(r.info.get("info", "{}"))

    def pid(self):
        return self.info()[1]["pid"]

    def remove(self):
        client.stop_remove_pod(self.id)


def ctr_pid(cid):
    r = client.call("ContainerStatus", container_id=cid, verbose=True)
    return json.loads(r.info["info"])["pid"]


def cri_log(path):
    """The CRI log file as (stream, tag, text) tuples, timestamps dropped."""
    out = []
    with open(path, "rb") as f:
        for line in f.read().split(b"\n"):
            if not line:
                continue
            parts = line.split(b" ", 3)
            out.append((parts[1].decode(), parts[2].decode(), parts[3] if len(parts) > 3 else b""))
    return out


def state_name(st):
    return cri.pb.ContainerState.Name(st.state)


def exited(cid, deadline_s=60):
    return client.wait_container_state(cid, "CONTAINER_EXITED", deadline_s)


def leftovers(pod_id, cids, deadline_s=60):
    """What a removed pod may not leave: shims, mounts, bundles, runc state, cgroups,
    netns. containerd cleans up after a dead shim in the background: poll."""
    end = time.monotonic() + deadline_s
    while True:
        left = leftovers_now(pod_id, cids)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


def leftovers_now(pod_id, cids):
    left = []
    ids = [pod_id] + list(cids)
    if shims_of(pod_id):
        left.append("shim")
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    for i in ids:
        if i in mounts:
            left.append("mount " + i[:12])
        for d in ("state/io.containerd.runtime.v2.task/k8s.io/" + i, "runc/k8s.io/" + i):
            if os.path.exists(os.path.join(DIR, d)):
                left.append(d)
        # v1 controllers, and the unified hierarchy of a cgroup v2 host
        for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"):
            if os.path.exists("%s%s/%s" % (base, CG_PARENT, i)):
                left.append("cgroup %s %s" % (base, i[:12]))
    for netns in glob.glob(os.path.join(DIR, "state", "*", "netns")):
        if os.listdir(netns):
            left.append("netns " + " ".join(os.listdir(netns)))
    return left


# --- scenarios: each returns the answers to compare --------------------------------

def sc_pod(h):
    """Bridge-network pod, two containers in one shim, a in the sandbox's PID namespace
    (shareProcessNamespace), b in its own (the kubelet's default); exit codes and
    reasons; the CRI log file with stream tags and partial lines; ExecSync."""
    pod = Pod(h, "pod", host_network=False)
    a = pod.add("a", ["sh", "-c", "echo out-a; echo err-a >&2; exec sleep 100000"], pid="POD")
    b = pod.add("b", ["sh", "-c",
                      "echo line1; head -c 20000 /dev/zero | tr '\\0' x; echo; printf tail; exit 3"])
    ans = {}
    st, info = pod.info()
    ans["pod_state"] = cri.pb.PodSandboxState.Name(st.state)
    ans["ip_in_subnet"] = ipaddress.ip_address(st.network.ip) in ipaddress.ip_network(SUBNET)
    check(ans["ip_in_subnet"], "pod ip %r not in %s" % (st.network.ip, SUBNET))
    # One shim process is the parent of the pause process and of both containers.
    bst = exited(b)
    a_pid = ctr_pid(a)
    parents = {ppid_of(info["pid"]), ppid_of(a_pid)}
    ans["one_parent"] = len(parents) == 1
    ans["parent_is_handlers_shim"] = all(exe_name(p) == SHIM_EXE[h] for p in parents)
    ans["shims_for_pod"] = len(shims_of(pod.id))
    check(ans["one_parent"] and ans["parent_is_handlers_shim"] and ans["shims_for_pod"] == 1,
          "not one %s shim for the pod: parents %s, shims %s" % (
              SHIM_EXE[h], parents, shims_of(pod.id)))
    ans["b_exit"] = (bst.exit_code, bst.reason, state_name(bst))
    check(ans["b_exit"] == (3, "Error", "CONTAINER_EXITED"), "b: %r" % (ans["b_exit"],))
    # The log: stdout/stderr tags, a 20000-byte line split in P + F, a last partial.
    lg = poll(lambda: (lambda l: l if len(l) >= 4 else None)(cri_log(pod.logfile("b"))), "b's log")
    ans["b_log"] = [(s, t, len(x) if len(x) > 64 else x.decode()) for s, t, x in lg]
    la = poll(lambda: (lambda l: l if len(l) >= 2 else None)(cri_log(pod.logfile("a"))), "a's log")
    ans["a_log"] = sorted((s, t, x.decode()) for s, t, x in la)
    check(ans["a_log"] == [("stderr", "F", "err-a"), ("stdout", "F", "out-a")], "a's log %r" % la)
    check([t for _, t, _ in lg] in (["F", "P", "F", "F"], ["F", "P", "F", "P"]), "b's log tags %r" % lg)
    # ExecSync: output, exit code, and a timeout.
    ans["exec"] = client.exec_sync(a, ["sh", "-c", "echo so; echo se >&2; exit 7"])
    check(ans["exec"] == (7, b"so\n", b"se\n"), "exec_sync %r" % (ans["exec"],))
    try:
        client.exec_sync(a, ["sleep", "30"], timeout=1)
        ans["exec_timeout"] = "no error"
    except CriError as e:
        ans["exec_timeout"] = (e.code, "timeout" in str(e))
    check(ans["exec_timeout"] != "no error", "ExecSync did not time out")
    ans["a_pid1"] = client.exec_sync(a, ["cat", "/proc/1/cmdline"])[1].split(b"\0")[0]
    check(ans["a_pid1"] == b"/pause", "a does not share the sandbox's PID namespace: pid 1 is %r" % ans["a_pid1"])
    ans["sleep_left"] = poll(lambda: b"sleep 30" not in client.exec_sync(a, ["ps", "-o", "args"])[1],
                             "the timed-out exec to be killed")
    # The leftover check must see the pod's cgroups while they exist (v1 controllers,
    # or the unified hierarchy on a v2 host), or its "nothing left" would mean nothing.
    ans["cgroups_seen_while_running"] = any(x.startswith("cgroup ") for x in leftovers_now(pod.id, pod.ctrs.values()))
    check(ans["cgroups_seen_while_running"], "no cgroup of the pod found under %s" % CG_PARENT)
    pod.remove()
    ans["leftovers"] = leftovers(pod.id, pod.ctrs.values())
    return ans


STEP = [""]  # where a scenario is, for the log when it fails


def sc_stream(h):
    """Streaming Exec with and without a tty, Attach (stdin, tty, resize) and
    ReopenContainerLog through the CRI streaming server."""
    STEP[0] = "containers"
    pod = Pod(h, "stream")
    a = pod.add("a", ["sleep", "100000"])
    c = pod.add("c", ["sh", "-c", "while read l; do echo \"got $l\"; done"], stdin=True)
    t = pod.add("t", ["sh"], stdin=True, tty=True)
    ans = {}
    STEP[0] = "exec"
    s = client.exec_stream(a, ["sh", "-c", "echo so; echo se >&2; exit 5"]).read_until()
    ans["exec"] = (s.stdout, s.stderr, s.exit_code())
    check(ans["exec"] == (b"so\n", b"se\n", 5), "exec %r" % (ans["exec"],))
    s = client.exec_stream(a, ["sh", "-c", "echo hi"]).read_until()
    ans["exec_ok"] = (s.stdout, s.exit_code())
    STEP[0] = "exec with a tty"
    # With a tty and stdin: resize, then ask the terminal for its size.
    s = client.exec_stream(a, ["sh"], tty=True, stdin=True)
    s.resize(123, 45)
    ans["exec_tty_size"] = tty_size(s, b"45 123")
    s.send(b"exit 4\n")
    s.read_until()
    ans["exec_tty_exit"] = s.exit_code()
    check(ans["exec_tty_exit"] == 4, "tty exec exit %r" % s.status)
    s.close()
    STEP[0] = "attach"
    # Attach to a container reading stdin (no tty); its output also goes to its log.
    s = client.attach(c, stdin=True)
    s.send(b"first\n")
    s.read_until(lambda x: b"got first\n" in x.stdout)
    ans["attach"] = s.stdout
    STEP[0] = "ReopenContainerLog"
    # ReopenContainerLog: the log moved away, reopened, the next line in the new file.
    os.rename(pod.logfile("c"), pod.logfile("c") + ".1")
    client.call("ReopenContainerLog", container_id=c)
    s.send(b"second\n")
    s.read_until(lambda x: b"got second\n" in x.stdout)
    s.close()
    new = poll(lambda: cri_log(pod.logfile("c")) if os.path.exists(pod.logfile("c")) else None,
               "the reopened log")
    ans["reopen"] = ([x for _, _, x in cri_log(pod.logfile("c") + ".1")], [x for _, _, x in new])
    check(ans["reopen"] == ([b"got first"], [b"got second"]), "reopen %r" % (ans["reopen"],))
    STEP[0] = "attach with a tty"
    # Attach with a tty: resize the container's own terminal.
    s = client.attach(t, tty=True, stdin=True)
    s.resize(77, 22)
    ans["attach_tty_size"] = tty_size(s, b"22 77")
    s.close()
    pod.remove()
    ans["leftovers"] = leftovers(pod.id, pod.ctrs.values())
    return ans


def tty_size(s, want):
    """Ask the shell on stream S for `stty size` until it says WANT (the resize is
    asynchronous); returns WANT when it did."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        s.stdout = b""
        s.send(b"stty size\n")
        s.read_until(lambda x: re.search(rb"\r?\n\d+ \d+\r?\n", x.stdout), timeout=30)
        got = re.search(rb"\n(\d+ \d+)\r?\n", s.stdout).group(1)
        if got == want:
            return got
    raise AssertionError("terminal size %r, wanted %r" % (got, want))


def sc_resources(h):
    """ContainerStats/ListContainerStats, UpdateContainerResources (cgroup files),
    OOMKilled, StopContainer with a grace period, StopPodSandbox."""
    pod = Pod(h, "res")
    a = pod.add("a", ["sh", "-c", "head -c 4000000 /dev/zero | tail -c 1 >/dev/null; exec sleep 100000"])
    g = pod.add("g", ["sh", "-c", "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done"])
    i = pod.add("i", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    oom = pod.add("oom", ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                  resources={"memory_limit_in_bytes": 32 << 20})
    ans = {}
    st = client.call("ContainerStats", container_id=a).stats
    ans["stats_id"] = st.attributes.id == a
    ans["stats_fields"] = {
        "cpu": st.cpu.usage_core_nano_seconds.value > 0,
        "mem_working_set": st.memory.working_set_bytes.value > 0,
        "writable_layer": st.writable_layer.fs_id.mountpoint != "" or st.writable_layer.used_bytes.value >= 0,
    }
    check(ans["stats_id"] and ans["stats_fields"]["cpu"] and ans["stats_fields"]["mem_working_set"],
          "ContainerStats %s" % st)
    lst = client.call("ListContainerStats", filter={"pod_sandbox_id": pod.id}).stats
    ans["list_stats"] = sorted(x.attributes.metadata.name for x in lst)
    # UpdateContainerResources reaches the container's cgroup.
    client.call("UpdateContainerResources", container_id=a,
                linux={"cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512,
                       "memory_limit_in_bytes": 96 << 20})
    cg = "/sys/fs/cgroup/%%s%s/%s/%%s" % (CG_PARENT, a)

    def rd(ctl, f):
        with open(cg % (ctl, f)) as fh:
            return fh.read().strip()
    ans["cgroup"] = (rd("cpu", "cpu.cfs_quota_us"), rd("cpu", "cpu.cfs_period_us"),
                     rd("cpu", "cpu.shares"), rd("memory", "memory.limit_in_bytes"))
    check(ans["cgroup"] == ("50000", "100000", "512", str(96 << 20)), "cgroup %r" % (ans["cgroup"],))
    # OOM: the kernel kills the container; the reason says so.
    ost = exited(oom, 120)
    ans["oom"] = (ost.exit_code, ost.reason)
    check(ans["oom"] == (137, "OOMKilled"), "oom: %r" % (ans["oom"],))
    # StopContainer: TERM honoured within the grace period, or KILL after it.
    client.call("StopContainer", container_id=g, timeout=30)
    gst = client.container_status(g)
    ans["stop_term"] = (gst.exit_code, gst.reason, [x for _, _, x in cri_log(pod.logfile("g"))])
    check(ans["stop_term"] == (0, "Completed", [b"got-term"]), "stop with TERM %r" % (ans["stop_term"],))
    client.call("StopContainer", container_id=i, timeout=1)
    ist = client.container_status(i)
    ans["stop_kill"] = (ist.exit_code, ist.reason)
    check(ans["stop_kill"] == (137, "Error"), "stop after grace %r" % (ans["stop_kill"],))
    client.call("StopPodSandbox", pod_sandbox_id=pod.id)
    st, _ = pod.info()
    ans["stopped"] = (cri.pb.PodSandboxState.Name(st.state),
                      sorted(state_name(client.container_status(x)) for x in pod.ctrs.values()))
    check(ans["stopped"] == ("SANDBOX_NOTREADY", ["CONTAINER_EXITED"] * 4), "stopped %r" % (ans["stopped"],))
    client.call("RemovePodSandbox", pod_sandbox_id=pod.id)
    ans["leftovers"] = leftovers(pod.id, pod.ctrs.values())
    ans["pods_listed"] = [p.id for p in client.pods() if p.id == pod.id]
    return ans


def restart_containerd():
    pid = ctrd_pid()
    os.kill(pid, signal.SIGTERM)
    poll(lambda: proc_gone(pid), "containerd %d to stop" % pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    subprocess.run([os.path.join(DIR, "start.sh")], check=True)
    client.wait_ready(60)


def sc_restart(h):
    """containerd restarted while a pod runs: the pod is found again and works."""
    pod = Pod(h, "restart")
    a = pod.add("a", ["sleep", "100000"])
    b = pod.add("b", ["sh", "-c", "read x; echo \"got $x\"; exit 2"], stdin=True)
    shims = shims_of(pod.id)
    restart_containerd()
    ans = {}
    st, _ = pod.info()
    ans["after"] = (cri.pb.PodSandboxState.Name(st.state),
                    state_name(client.container_status(a)), state_name(client.container_status(b)))
    check(ans["after"] == ("SANDBOX_READY", "CONTAINER_RUNNING", "CONTAINER_RUNNING"),
          "after restart %r" % (ans["after"],))
    ans["same_shim"] = shims_of(pod.id) == shims and len(shims) == 1
    ans["exec"] = client.exec_sync(a, ["echo", "still"])
    s = client.attach(b, stdin=True)
    s.send(b"again\n")
    s.read_until(lambda x: b"got again" in x.stdout)
    s.close()
    bst = exited(b)
    ans["b_exit"] = (bst.exit_code, bst.reason)
    check(ans["b_exit"] == (2, "Error"), "b after restart %r" % (ans["b_exit"],))
    pod.remove()
    ans["leftovers"] = leftovers(pod.id, pod.ctrs.values())
    return ans


def sc_shimkill(h):
    """The pod's shim SIGKILLed: containerd notices, the pod and its containers are
    reported stopped, and removing the pod leaves nothing. The containers share the
    sandbox's PID namespace, so that the pause's death ends them: with PID namespaces
    of their own, containerd 2.x leaves them running after their shim died (it runs
    the shim's delete action only for the sandbox's id; seen with both handlers)."""
    pod = Pod(h, "shimkill")
    a = pod.add("a", ["sleep", "100000"], pid="POD")
    b = pod.add("b", ["sleep", "100000"], pid="POD")
    pids = [pod.pid(), ctr_pid(a), ctr_pid(b)]
    shims = shims_of(pod.id)
    check(len(shims) == 1, "shims %r" % shims)
    socks = listen_paths(shims[0])
    check(len(socks) == 1, "the shim's listening sockets: %r" % socks)
    os.kill(shims[0], signal.SIGKILL)
    log("  %s: killed shim %d (%s); pod pids %s" % (h, shims[0], exe_name(shims[0]), pids))
    ans = {}
    ans["containers"] = [(lambda s: (state_name(s), s.exit_code))(exited(x, 120)) for x in (a, b)]
    ans["processes_gone"] = poll(lambda: all(proc_gone(p) for p in pids),
                                 "the pod's processes to be gone", 120)
    st = poll(lambda: (lambda s: s if s.state == cri.pb.SANDBOX_NOTREADY else None)(pod.info()[0]),
              "the sandbox to be not ready", 120)
    ans["sandbox"] = cri.pb.PodSandboxState.Name(st.state)
    pod.remove()
    # containerd 2.x, with a shim that answered `start` with the v3 bootstrap (runc-v2,
    # and nanoshim since it does), runs the shim's `delete` action only for the shim's
    # own id (the sandbox) when it died: the pod's other containers keep their runc
    # state and cgroups (their processes are gone). The same for both handlers, noted
    # and cleaned up here; containerd 1.x runs it for every task, and nothing may be left.
    v2 = os.environ.get("CTRD", "1.6").split(".")[0] >= "2"
    left = leftovers(pod.id, pod.ctrs.values(), 15 if v2 else 60)
    if v2 and left and all(x.startswith(("runc/", "cgroup ")) for x in left):
        ids = [x.split("/")[-1] for x in left if x.startswith("runc/")]
        log("  NOTE: %s on containerd 2.x left runc state and cgroups of %d container(s) after "
            "its shim was killed; removed with runc delete" % (SHIM_EXE[h], len(ids)))
        for i in ids:
            subprocess.run(["runc", "--root", os.path.join(DIR, "runc", "k8s.io"), "delete",
                            "--force", i], check=False)
        left = leftovers(pod.id, pod.ctrs.values())
    # The dead shim's socket: nanoshim's delete action (which containerd runs in the
    # background of its cleanup) removes it; runc-v2 leaves it in /run/containerd/s,
    # noted and removed here. Its answer is the same either way: nothing left.
    if h == "nanoshim":
        try:
            poll(lambda: not os.path.exists(socks[0]), "the dead shim's socket to be removed", 15)
        except AssertionError:
            left.append("socket " + socks[0])
    elif os.path.exists(socks[0]):
        log("  NOTE: %s left its socket %s when killed; removed" % (SHIM_EXE[h], socks[0]))
        os.unlink(socks[0])
    ans["leftovers"] = left
    return ans


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def sc_loop(h):
    """10 pods of two containers created and removed in a loop: containerd's fds flat."""
    def one(k):
        pod = Pod(h, "loop")
        pod.add("a", ["sleep", "100000"])
        pod.add("b", ["sleep", "100000"])
        pod.remove()
        return leftovers(pod.id, pod.ctrs.values())
    one(0)
    pid = ctrd_pid()
    before = fd_count(pid)
    left = []
    for k in range(10):
        left += one(k)
    # Let containerd close what it closes lazily (shim connections); poll, no sleep.
    try:
        after = poll(lambda: (lambda n: n if n <= before + 2 else None)(fd_count(pid)),
                     "containerd's fds back to %d" % before, 30)
    except AssertionError:
        after = fd_count(pid)
    ans = {"fds_flat": after <= before + 2, "leftovers": left}
    log("  %s: containerd fds %d before, %d after 10 pods" % (h, before, after))
    check(ans["fds_flat"], "containerd fds %d -> %d" % (before, after))
    return ans


COUNTER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"


def log_numbers(path):
    try:
        return [int(t) for _, _, t in cri_log(path) if t.strip().isdigit()]
    except OSError:
        return []


def sc_checkpoint(h):
    """CheckpointContainer (containerd 2.x, CRIU) of a running counter: it keeps running
    (Kubernetes' forensic checkpointing) and counting; the archive holds CRIU's images,
    the rw layer's diff, the spec, config and status dumps and the log. A container
    created from the archive (CreateContainer with it as the image) is what containerd
    2.1 cannot do here: it pulls the base image from a registry even when it is local.
    nanoshim runs as handler `nanoshim-runc` (its binary under runc-v2's runtime type):
    containerd gives CRIU's work path to that type only (under handler `nanoshim`, the
    archive lacks CRIU's dump.log and stats-dump, which it copies from there)."""
    pod = Pod("nanoshim-runc" if h == "nanoshim" else h, "ckpt")
    cid = pod.add("counter", ["sh", "-c", COUNTER])
    shims = [exe_name(p) for p in shims_of(pod.id)]
    check(shims == [SHIM_EXE[h]], "shims %r" % shims)
    logf = pod.logfile("counter")
    poll(lambda: len(log_numbers(logf)) >= 5, "5 lines from the counter")
    archive = os.path.join(DIR, "ckpt-%s-%s.tar" % (h, cid[:12]))
    t0 = time.monotonic()
    client.call("CheckpointContainer", container_id=cid, location=archive)
    log("  %s: CheckpointContainer %.1fs, archive %d bytes" % (h, time.monotonic() - t0, os.path.getsize(archive)))
    ans = {}
    with tarfile.open(archive) as t:
        names = {n[2:] if n.startswith("./") else n for n in t.getnames()}
        ans["archive"] = sorted({n.split("/")[0] for n in names} - {"", "."})
        ans["criu_images"] = all("checkpoint/%s.img" % i in names for i in ("inventory", "pstree", "pages-1"))
    check(ans["criu_images"], "CRIU's images in the archive: %r" % sorted(names))
    ans["running_after_checkpoint"] = state_name(client.container_status(cid))
    n = len(log_numbers(logf))
    ans["counts_on"] = bool(poll(lambda: len(log_numbers(logf)) >= n + 3, "the counter to go on"))
    ans["consecutive"] = log_numbers(logf) == list(range(1, len(log_numbers(logf)) + 1))
    client.call("StopContainer", container_id=cid, timeout=0)
    client.call("RemoveContainer", container_id=cid)
    cfgc = client.container_config("counter", archive, ["sh"], log_path="restored.log", labels=dict(LABEL))
    try:
        pod.ctrs["restored"] = client.create_container(pod.id, pod.cfg, cfgc)
        ans["restore"] = "created"
    except CriError as e:
        ans["restore"] = "failed to pull the base image" if "failed to pull checkpoint base image" in str(e) else str(e)
    pod.remove()
    os.unlink(archive)
    left = leftovers(pod.id, pod.ctrs.values())
    for c in pod.ctrs.values():
        for d in glob.glob(os.path.join(DIR, "root", "io.containerd.*", "containers", c)):
            left.append("container dir " + d)
    ans["leftovers"] = left
    return ans


SCENARIOS = [("pod", sc_pod), ("stream", sc_stream), ("resources", sc_resources),
             ("restart", sc_restart), ("shimkill", sc_shimkill), ("loop", sc_loop),
             ("checkpoint", sc_checkpoint)]


def cleanup_pods():
    """Remove every pod this run made (by its label), whatever happened."""
    try:
        for p in client.pods(label=LABEL):
            try:
                client.stop_remove_pod(p.id)
            except CriError as e:
                log("cleanup: %s" % e)
    except CriError as e:
        log("cleanup: %s" % e)


def main():
    global client, passes
    client = cri.Client(SOCK, timeout=120)
    client.wait_ready(60)
    v = client.call("Version")
    log("containerd %s (CRI %s), cgroup parent %s" % (v.runtime_version, v.runtime_api_version, CG_PARENT))
    only = [x for x in os.environ.get("CRI_ONLY", "").split(",") if x]
    try:
        for name, fn in SCENARIOS:
            if only and name not in only:
                continue
            if name == "checkpoint" and os.environ.get("CRI_NO_CRIU"):
                log("SKIP: checkpoint: %s" % os.environ["CRI_NO_CRIU"])
                continue
            answers = {}
            for h in HANDLERS:
                t0 = time.monotonic()
                for attempt in (1, 2):
                    STEP[0] = ""
                    try:
                        answers[h] = fn(h)
                        break
                    except Exception as e:  # one handler's failure must not hide the other's
                        answers[h] = {"error": "%s: %s" % (type(e).__name__, e)}
                        log("  %s/%s: %s%s" % (name, h, "".join(traceback.format_exception_only(type(e), e)).strip(),
                                               " (at: %s)" % STEP[0] if STEP[0] else ""))
                        cleanup_pods()
                        # The streaming server's websocket sometimes never answers (seen
                        # once in 20 runs, with runc-v2): one more try, said in the log;
                        # a second failure stands.
                        if attempt == 1 and type(e).__name__ == "WebSocketTimeoutException":
                            log("  %s/%s: a websocket timed out; the scenario runs once more" % (name, h))
                            continue
                        break
                log("  %s/%s: %.1fs" % (name, h, time.monotonic() - t0))
            diffs = {k for k in set(answers["nanoshim"]) | set(answers["runc"])
                     if answers["nanoshim"].get(k) != answers["runc"].get(k)}
            bad = diffs or any("error" in a for a in answers.values()) or \
                any(a.get("leftovers") for a in answers.values())
            if bad:
                failures.append(name)
                log("FAIL: %s" % name)
                for k in sorted(diffs | {"error", "leftovers"}):
                    for h in HANDLERS:
                        if k in answers[h] and (k in diffs or answers[h][k]):
                            log("    %-9s %s: %r" % (h, k, answers[h][k]))
            else:
                passes += 1
                log("PASS: %s (nanoshim and runc answer alike)" % name)
                if os.environ.get("CRI_VERBOSE"):
                    for k in sorted(answers["runc"]):
                        log("    %s: %r" % (k, answers["runc"][k]))
    finally:
        cleanup_pods()
    log("%d passed, %d failed%s" % (passes, len(failures), (": " + " ".join(failures)) if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
