/* SPDX-License-Identifier: Apache-2.0 */
/* Hostile and broken input against one live standalone shim, over raw unix sockets:
 * bad frames, bad protobuf, bad ids, planted symlinks, broken config.json, peers of
 * another uid, clients that stall or vanish mid-call. After each the shim must still
 * serve; at the end it runs a container normally, and 1000 exec cycles must not leak
 * fds or memory.
 *   test-hostile SHIM SHIMCTL SOURCE_ROOT       (root; exit 77 = skipped)
 * Every check prints PASS or FAIL; a FAIL marked "known bug" is a shim bug already
 * reported, still a failure. Exit 1 on any failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "task.pb-c.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

#define TASK "containerd.task.v2.Task"
#define PROCESS_SPEC_TYPE "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define EXEC_SPEC "{\"args\":[\"true\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},\"env\":[\"PATH=/bin\"]}"
#define REPLY_TIMEOUT_MS 30000
#define NOBODY 65534

static const char *shim_bin, *src_dir;
static char tmp[64], sock_path[100], runc_root[128];
static pid_t shim_pid = -1;
static int ctl = -1; /* the well-behaved client's connection */
static uint32_t next_sid = 1;
static unsigned n_pass, n_fail;

/* ---- bookkeeping ---- */

static void report(bool ok, const char *bug, const char *fmt, va_list ap) {
        if (ok) {
                n_pass++;
                fputs("PASS: ", stdout);
        } else {
                n_fail++;
                if (bug)
                        printf("FAIL (known bug: %s): ", bug);
                else
                        fputs("FAIL: ", stdout);
        }
        vprintf(fmt, ap);
        putchar('\n');
        fflush(stdout);
}

__attribute__((format(printf, 2, 3))) static bool check(bool ok, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        report(ok, NULL, fmt, ap);
        va_end(ap);
        return ok;
}

/* A check that fails because of a shim bug reported but not fixed here. */
__attribute__((format(printf, 3, 4))) static bool check_bug(bool ok, const char *bug, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        report(ok, bug, fmt, ap);
        va_end(ap);
        return ok;
}

static void die(const char *what) {
        printf("FAIL: %s: %s\n", what, strerror(errno));
        exit(1);
}

static long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void nap_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...) {
        char cmd[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof cmd, fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void path_of(char *buf, size_t size, const char *rel) {
        snprintf(buf, size, "%s/%s", tmp, rel);
}

static bool write_text(const char *path, const char *text, size_t len) {
        FILE *f = fopen(path, "w");
        if (!f)
                return false;
        bool ok = fwrite(text, 1, len, f) == len;
        return fclose(f) == 0 && ok;
}

static bool file_has(const char *path, const char *want) {
        char buf[256] = "";
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        return strcmp(buf, want) == 0;
}

/* ---- the shim's process ---- */

static bool shim_alive(void) {
        int st;
        return shim_pid > 0 && waitpid(shim_pid, &st, WNOHANG) == 0;
}

static int shim_fds(void) {
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/fd", (int)shim_pid);
        DIR *d = opendir(p);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* A "Vm...:" figure of /proc/PID/status in kB. */
static long shim_vm_kb(const char *key) {
        char p[64], line[256];
        snprintf(p, sizeof p, "/proc/%d/status", (int)shim_pid);
        FILE *f = fopen(p, "r");
        if (!f)
                return -1;
        long v = -1;
        size_t kl = strlen(key);
        while (fgets(line, sizeof line, f))
                if (strncmp(line, key, kl) == 0 && line[kl] == ':')
                        v = strtol(line + kl + 1, NULL, 10);
        fclose(f);
        return v;
}

/* The shim under test built with AddressSanitizer: its quarantine keeps freed memory
 * resident, so RSS figures say nothing there (its leak checker covers that build). */
static bool shim_has_asan(void) {
        char p[64], line[512];
        snprintf(p, sizeof p, "/proc/%d/maps", (int)shim_pid);
        FILE *f = fopen(p, "r");
        bool asan = false;
        while (f && !asan && fgets(line, sizeof line, f))
                asan = strstr(line, "libasan") != NULL;
        if (f)
                fclose(f);
        return asan;
}

/* The shim's fd count back to `want` within a deadline (closing is asynchronous). */
static int fds_settle(int want) {
        long deadline = now_ms() + 10000;
        int n;
        while ((n = shim_fds()) != want && now_ms() < deadline)
                nap_ms(20);
        return n;
}

/* ---- raw ttrpc ---- */

static int sock_connect(void) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static bool send_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                p += n;
                len -= (size_t)n;
        }
        return true;
}

/* 1 = all read, 0 = EOF or error first, -1 = timed out. */
static int recv_all(int fd, void *buf, size_t len, long deadline) {
        uint8_t *p = buf;
        while (len > 0) {
                struct pollfd pfd = {fd, POLLIN, 0};
                long left = deadline - now_ms();
                if (left <= 0)
                        return -1;
                int r = poll(&pfd, 1, (int)left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0)
                        return -1;
                ssize_t n = recv(fd, p, len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0;
                p += n;
                len -= (size_t)n;
        }
        return 1;
}

static bool send_request(int fd, uint32_t sid, const char *service, const char *method, const uint8_t *payload,
                         size_t len) {
        Nanoshim__Ttrpc__Request req = NANOSHIM__TTRPC__REQUEST__INIT;
        req.service = (char *)service;
        req.method = (char *)method;
        req.payload.data = (uint8_t *)payload;
        req.payload.len = len;
        size_t plen = nanoshim__ttrpc__request__get_packed_size(&req);
        uint8_t *buf = malloc(TTRPC_HEADER_SIZE + plen);
        if (!buf)
                return false;
        struct ttrpc_header h = {.length = (uint32_t)plen, .stream_id = sid, .type = TTRPC_TYPE_REQUEST};
        ttrpc_header_encode(&h, buf);
        nanoshim__ttrpc__request__pack(&req, buf + TTRPC_HEADER_SIZE);
        bool ok = send_all(fd, buf, TTRPC_HEADER_SIZE + plen);
        free(buf);
        return ok;
}

struct reply {
        int got;      /* 1 answered, 0 connection closed, -1 timed out */
        int code;     /* gRPC status */
        char msg[4096];
        uint8_t *payload;
        size_t len;
};

static void reply_done(struct reply *r) {
        free(r->payload);
        r->payload = NULL;
}

/* Reads frames until the answer of stream `sid`. */
static void recv_reply(int fd, uint32_t sid, struct reply *r, int timeout_ms) {
        long deadline = now_ms() + timeout_ms;
        *r = (struct reply){0};
        for (;;) {
                uint8_t hb[TTRPC_HEADER_SIZE];
                r->got = recv_all(fd, hb, sizeof hb, deadline);
                if (r->got != 1)
                        return;
                struct ttrpc_header h;
                ttrpc_header_decode(hb, &h);
                if (h.length > TTRPC_MAX_MESSAGE) {
                        r->got = 0;
                        return;
                }
                uint8_t *data = malloc(h.length ? h.length : 1);
                if (!data)
                        die("malloc");
                r->got = recv_all(fd, data, h.length, deadline);
                if (r->got != 1) {
                        free(data);
                        return;
                }
                if (h.stream_id != sid || h.type != TTRPC_TYPE_RESPONSE) {
                        free(data);
                        continue;
                }
                Nanoshim__Ttrpc__Response *resp = nanoshim__ttrpc__response__unpack(NULL, h.length, data);
                free(data);
                if (!resp) {
                        r->code = -1;
                        snprintf(r->msg, sizeof r->msg, "undecodable ttrpc.Response");
                        return;
                }
                if (resp->status) {
                        r->code = resp->status->code;
                        snprintf(r->msg, sizeof r->msg, "%s", resp->status->message ? resp->status->message : "");
                }
                if (resp->payload.len > 0) {
                        r->payload = malloc(resp->payload.len);
                        if (!r->payload)
                                die("malloc");
                        memcpy(r->payload, resp->payload.data, resp->payload.len);
                        r->len = resp->payload.len;
                }
                nanoshim__ttrpc__response__free_unpacked(resp, NULL);
                return;
        }
}

static void call_bytes_on(int fd, const char *service, const char *method, const uint8_t *payload, size_t len,
                          struct reply *r) {
        uint32_t sid = next_sid;
        next_sid += 2;
        if (!send_request(fd, sid, service, method, payload, len)) {
                *r = (struct reply){.got = 0};
                return;
        }
        recv_reply(fd, sid, r, REPLY_TIMEOUT_MS);
}

static const char *describe(const struct reply *r) {
        static char d[4200];
        if (r->got == 0)
                return "connection closed";
        if (r->got < 0)
                return "no answer (timeout)";
        snprintf(d, sizeof d, "%s \"%s\"", ttrpc_code_to_string(r->code), r->msg);
        return d;
}

/* ---- Task calls on the well-behaved connection ---- */

static void t_create_full(const char *id, size_t id_len, const char *bundle,
                          Nanoshim__Types__Mount **mounts, size_t n_mounts, struct reply *r) {
        Nanoshim__Task__CreateTaskRequest req = NANOSHIM__TASK__CREATE_TASK_REQUEST__INIT;
        /* protobuf-c packs strings with strlen: an id with a NUL goes in by hand below */
        req.id = (char *)(id_len == strlen(id) ? id : "");
        req.bundle = (char *)bundle;
        req.rootfs = mounts;
        req.n_rootfs = n_mounts;
        req.stdin = req.stdout = req.stderr = (char *)"";
        size_t len = nanoshim__task__create_task_request__get_packed_size(&req);
        size_t extra = id_len == strlen(id) ? 0 : 2 + id_len;
        uint8_t *buf = malloc(len + extra);
        if (!buf)
                die("malloc");
        size_t off = 0;
        if (extra) { /* field 1 (id), wire type 2, length < 128 */
                buf[0] = 0x0a;
                buf[1] = (uint8_t)id_len;
                memcpy(buf + 2, id, id_len);
                off = extra;
        }
        nanoshim__task__create_task_request__pack(&req, buf + off);
        call_bytes_on(ctl, TASK, "Create", buf, len + off, r);
        free(buf);
}

static void t_create(const char *id, const char *bundle, struct reply *r) {
        t_create_full(id, strlen(id), bundle, NULL, 0, r);
}

/* Requests whose first field is `id` (and second `exec_id`), id possibly with a NUL. */
static void t_id_call(const char *method, const char *id, size_t id_len, const char *exec_id, uint32_t signal,
                      struct reply *r) {
        uint8_t buf[512];
        size_t off = 0;
        buf[off++] = 0x0a;
        buf[off++] = (uint8_t)id_len;
        memcpy(buf + off, id, id_len);
        off += id_len;
        if (exec_id && *exec_id) {
                size_t el = strlen(exec_id);
                buf[off++] = 0x12;
                buf[off++] = (uint8_t)el;
                memcpy(buf + off, exec_id, el);
                off += el;
        }
        if (signal) { /* KillRequest.signal = 3, varint */
                buf[off++] = 0x18;
                buf[off++] = (uint8_t)signal;
        }
        call_bytes_on(ctl, TASK, method, buf, off, r);
}

static void t_call(const char *method, const char *id, const char *exec_id, struct reply *r) {
        t_id_call(method, id, strlen(id), exec_id, 0, r);
}

static void t_kill(const char *id, const char *exec_id, uint32_t sig, struct reply *r) {
        t_id_call("Kill", id, strlen(id), exec_id, sig, r);
}

static void t_exec(const char *id, size_t id_len, const char *exec_id, const char *spec, struct reply *r) {
        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
        any.type_url = (char *)PROCESS_SPEC_TYPE;
        any.value.data = (uint8_t *)spec;
        any.value.len = strlen(spec);
        Nanoshim__Task__ExecProcessRequest req = NANOSHIM__TASK__EXEC_PROCESS_REQUEST__INIT;
        req.exec_id = (char *)exec_id;
        req.stdin = req.stdout = req.stderr = (char *)"";
        req.spec = &any;
        size_t len = nanoshim__task__exec_process_request__get_packed_size(&req);
        uint8_t *buf = malloc(len + 2 + id_len);
        if (!buf)
                die("malloc");
        buf[0] = 0x0a; /* id first, by hand: it may hold a NUL */
        buf[1] = (uint8_t)id_len;
        memcpy(buf + 2, id, id_len);
        nanoshim__task__exec_process_request__pack(&req, buf + 2 + id_len);
        call_bytes_on(ctl, TASK, "Exec", buf, len + 2 + id_len, r);
        free(buf);
}

/* State's status, or -1 with the error in r. */
static int t_status(const char *id, const char *exec_id, struct reply *r) {
        t_call("State", id, exec_id, r);
        if (r->got != 1 || r->code != 0)
                return -1;
        Nanoshim__Task__StateResponse *s = nanoshim__task__state_response__unpack(NULL, r->len, r->payload);
        int st = s ? (int)s->status : -1;
        if (s)
                nanoshim__task__state_response__free_unpacked(s, NULL);
        reply_done(r);
        return st;
}

/* Wait's exit status; -1 on an error, -2 if no answer came within timeout_ms. */
static int t_wait_within(const char *id, const char *exec_id, int timeout_ms) {
        struct reply r;
        uint8_t buf[256];
        Nanoshim__Task__WaitRequest req = NANOSHIM__TASK__WAIT_REQUEST__INIT;
        req.id = (char *)id;
        req.exec_id = (char *)(exec_id ? exec_id : "");
        size_t len = nanoshim__task__wait_request__pack(&req, buf);
        uint32_t sid = next_sid;
        next_sid += 2;
        if (!send_request(ctl, sid, TASK, "Wait", buf, len))
                return -1;
        recv_reply(ctl, sid, &r, timeout_ms);
        if (r.got != 1 || r.code != 0)
                return r.got < 0 ? -2 : -1;
        Nanoshim__Task__WaitResponse *w = nanoshim__task__wait_response__unpack(NULL, r.len, r.payload);
        int st = w ? (int)w->exit_status : -1;
        if (w)
                nanoshim__task__wait_response__free_unpacked(w, NULL);
        reply_done(&r);
        return st;
}

static int t_wait(const char *id, const char *exec_id) {
        return t_wait_within(id, exec_id, REPLY_TIMEOUT_MS);
}

static bool t_ok(const char *method, const char *id, const char *exec_id) {
        struct reply r;
        t_call(method, id, exec_id, &r);
        bool ok = r.got == 1 && r.code == 0;
        if (!ok)
                printf("  %s %s%s%s: %s\n", method, id, exec_id ? "/" : "", exec_id ? exec_id : "", describe(&r));
        reply_done(&r);
        return ok;
}

/* Kill the init, wait and delete: the container is gone. */
static bool t_remove(const char *id) {
        struct reply r;
        t_kill(id, NULL, 9, &r);
        reply_done(&r);
        int st = t_wait(id, NULL);
        return st >= 0 && t_ok("Delete", id, NULL);
}

static bool make_bundle(const char *name, const char *cmd, char *dir, size_t size) {
        snprintf(dir, size, "%s/b/%s", tmp, name);
        return run("'%s/tools/mkbundle.sh' '%s' %s >/dev/null", src_dir, dir, cmd) == 0;
}

/* create + start: a running container. */
static bool run_container(const char *id, const char *cmd, char *bundle, size_t size) {
        struct reply r;
        if (!make_bundle(id, cmd, bundle, size))
                return false;
        t_create(id, bundle, &r);
        bool ok = r.got == 1 && r.code == 0;
        if (!ok)
                printf("  create %s: %s\n", id, describe(&r));
        reply_done(&r);
        return ok && t_ok("Start", id, NULL);
}

/* The shim answers a plain State on a fresh connection. */
static bool serves_fresh_client(void) {
        int fd = sock_connect();
        if (fd < 0)
                return false;
        struct reply r;
        uint8_t req[] = {0x0a, 0x06, 'n', 'o', 's', 'u', 'c', 'h'};
        call_bytes_on(fd, TASK, "State", req, sizeof req, &r);
        close(fd);
        reply_done(&r);
        return r.got == 1 && r.code == TTRPC_NOT_FOUND;
}

/* ---- setup and cleanup ---- */

static void cleanup(void) {
        if (ctl >= 0)
                close(ctl);
        if (tmp[0])
                run("for id in $(runc --root '%s' list -q 2>/dev/null); do runc --root '%s' delete --force \"$id\"; "
                    "done >/dev/null 2>&1",
                    runc_root, runc_root);
        if (shim_pid > 0) {
                kill(shim_pid, SIGTERM);
                long deadline = now_ms() + 5000;
                while (waitpid(shim_pid, NULL, WNOHANG) == 0) {
                        if (now_ms() > deadline) {
                                kill(shim_pid, SIGKILL);
                                waitpid(shim_pid, NULL, 0);
                                break;
                        }
                        nap_ms(20);
                }
                shim_pid = -1;
        }
        if (tmp[0]) {
                run("awk -v d='%s' 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | "
                    "while read -r m; do umount -l \"$m\"; done",
                    tmp);
                run("rm -rf '%s'", tmp);
        }
}

static void on_signal(int sig) {
        exit(128 + sig); /* runs cleanup() */
}

static void start_shim(int *ret_log_fifo) {
        char cwd[128], fifo[128], logf[128], link[160];
        path_of(cwd, sizeof cwd, "cwd");
        path_of(fifo, sizeof fifo, "logfifo");
        path_of(logf, sizeof logf, "shim.log");
        snprintf(link, sizeof link, "%s/log", cwd);
        /* The daemon opens "log" in its working directory (containerd's log FIFO): a
         * planted symlink there, pointing at a FIFO we read, must not be followed. */
        if (mkdir(cwd, 0700) < 0 || mkfifo(fifo, 0600) < 0 || symlink(fifo, link) < 0)
                die("setup of the log symlink");
        *ret_log_fifo = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (*ret_log_fifo < 0)
                die("open log fifo");
        shim_pid = fork();
        if (shim_pid < 0)
                die("fork");
        if (shim_pid == 0) {
                int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0 || chdir(cwd) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(127);
                execl(shim_bin, shim_bin, "-namespace", "hostile", "-socket", sock_path, "-runtime-root", runc_root,
                      "-debug", (char *)NULL);
                _exit(127);
        }
        long deadline = now_ms() + 10000;
        struct stat st;
        while (stat(sock_path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                if (now_ms() > deadline || !shim_alive()) {
                        printf("FAIL: the shim did not come up; its log:\n");
                        run("tail -n 20 '%s'", logf);
                        exit(1);
                }
                nap_ms(20);
        }
}

/* ---- the cases ---- */

static void t_socket_modes(void) {
        char dir[128];
        path_of(dir, sizeof dir, "sock");
        struct stat st;
        mode_t m = stat(dir, &st) == 0 ? st.st_mode & 07777 : 0;
        check(m == 0700, "socket directory mode 0700 (got %o)", m);
        m = stat(sock_path, &st) == 0 ? st.st_mode & 07777 : 0;
        check(m == 0600, "socket mode 0600 (got %o)", m);
}

static void t_log_symlink(int fifo) {
        char buf[256];
        /* Wait until the shim has logged something of its own (it does at startup). */
        char logf[128];
        path_of(logf, sizeof logf, "shim.log");
        long deadline = now_ms() + 5000;
        struct stat st;
        while ((stat(logf, &st) < 0 || st.st_size == 0) && now_ms() < deadline)
                nap_ms(20);
        ssize_t n = read(fifo, buf, sizeof buf);
        check(n <= 0 && st.st_size > 0, "planted <cwd>/log symlink to a FIFO: not followed (%zd bytes through it, "
              "%lld in the real log)", n < 0 ? (ssize_t)0 : n, (long long)st.st_size);
}

static void t_oversize(void) {
        long vm0 = shim_vm_kb("VmSize"), rss0 = shim_vm_kb("VmRSS");
        int fd = sock_connect();
        if (fd < 0)
                die("connect");
        uint8_t h[TTRPC_HEADER_SIZE];
        struct ttrpc_header hd = {.length = 0xFFFFFFF0u, .stream_id = 1, .type = TTRPC_TYPE_REQUEST};
        ttrpc_header_encode(&hd, h);
        send_all(fd, h, sizeof h);
        send_all(fd, "some of the promised 4 GiB", 26);
        struct reply r;
        recv_reply(fd, 1, &r, 10000);
        bool ok = (r.got == 1 && r.code == TTRPC_RESOURCE_EXHAUSTED) || r.got == 0;
        check(ok, "length header 0xFFFFFFF0: answered RESOURCE_EXHAUSTED or closed (%s)", describe(&r));
        long vm1 = shim_vm_kb("VmSize"), rss1 = shim_vm_kb("VmRSS");
        check(vm1 - vm0 < 65536 && rss1 - rss0 < 4096,
              "length header 0xFFFFFFF0: nothing allocated (VmSize %+ld kB, VmRSS %+ld kB)", vm1 - vm0, rss1 - rss0);
        check(serves_fresh_client(), "oversize: another client is still served while that connection is open");
        reply_done(&r);
        close(fd);
}

static void t_truncated(void) {
        int fd = sock_connect();
        uint8_t b[TTRPC_HEADER_SIZE + 20] = {0};
        struct ttrpc_header hd = {.length = 100, .stream_id = 3, .type = TTRPC_TYPE_REQUEST};
        ttrpc_header_encode(&hd, b);
        send_all(fd, b, sizeof b);
        close(fd);
        /* and a header cut in half */
        fd = sock_connect();
        send_all(fd, b, 5);
        close(fd);
        check(serves_fresh_client() && shim_alive(), "truncated frame then close: the shim still serves");
}

static void t_garbage(void) {
        int fd = sock_connect();
        uint8_t junk[65536];
        srandom(42);
        for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (uint8_t)random();
        bool sent = send_all(fd, junk, sizeof junk);
        /* whatever it answers (statuses for frames it could parse) or closes */
        struct reply r;
        recv_reply(fd, 0xFFFFFFFFu, &r, 300);
        close(fd);
        check(serves_fresh_client() && shim_alive(), "64 KiB of random garbage (sent %s): the shim still serves",
              sent ? "whole" : "partly, then closed");
}

static void t_unknown(void) {
        struct reply r;
        call_bytes_on(ctl, "containerd.task.v2.Nope", "State", NULL, 0, &r);
        check(r.got == 1 && r.code == TTRPC_UNIMPLEMENTED && strstr(r.msg, "containerd.task.v2.Nope"),
              "unknown service -> UNIMPLEMENTED (%s)", describe(&r));
        reply_done(&r);
        call_bytes_on(ctl, TASK, "Frobnicate", NULL, 0, &r);
        check(r.got == 1 && r.code == TTRPC_UNIMPLEMENTED && strstr(r.msg, "Frobnicate"),
              "unknown method -> UNIMPLEMENTED (%s)", describe(&r));
        reply_done(&r);
        static const uint8_t bad[] = {0xff, 0xff, 0xff, 0x0a, 0x80};
        static const char *const methods[] = {"Create", "State", "Kill", "Exec", "Wait", "Delete"};
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
                call_bytes_on(ctl, TASK, methods[i], bad, sizeof bad, &r);
                check(r.got == 1 && r.code == TTRPC_INVALID_ARGUMENT && strstr(r.msg, "cannot decode"),
                      "undecodable %s payload -> INVALID_ARGUMENT (%s)", methods[i], describe(&r));
                reply_done(&r);
        }
        /* a well-formed envelope that is not a ttrpc.Request */
        int fd = sock_connect();
        uint8_t fr[TTRPC_HEADER_SIZE + 3];
        struct ttrpc_header hd = {.length = 3, .stream_id = 5, .type = TTRPC_TYPE_REQUEST};
        ttrpc_header_encode(&hd, fr);
        memcpy(fr + TTRPC_HEADER_SIZE, "\xff\xff\xff", 3);
        send_all(fd, fr, sizeof fr);
        recv_reply(fd, 5, &r, 10000);
        check(r.got == 1 && r.code == TTRPC_INVALID_ARGUMENT, "undecodable ttrpc.Request -> INVALID_ARGUMENT (%s)",
              describe(&r));
        close(fd);
}

static void t_idle_clients(void) {
        int idle = sock_connect(), half = sock_connect();
        uint8_t b[TTRPC_HEADER_SIZE];
        struct ttrpc_header hd = {.length = 40, .stream_id = 1, .type = TTRPC_TYPE_REQUEST};
        ttrpc_header_encode(&hd, b);
        send_all(half, b, 7); /* slowloris: a header never finished */
        long t0 = now_ms();
        bool ok = serves_fresh_client();
        check(idle >= 0 && half >= 0 && ok && now_ms() - t0 < 2000,
              "a silent client and a half-header client: another client is answered in %ld ms", now_ms() - t0);
        close(idle);
        close(half);
}

static void t_vanishing_clients(void) {
        char b[256];
        if (!check(run_container("w1", "sleep 1000", b, sizeof b), "vanish: container w1 runs"))
                return;
        /* a Wait whose client leaves */
        int fd = sock_connect();
        uint8_t req[] = {0x0a, 0x02, 'w', '1'};
        send_request(fd, 1, TASK, "Wait", req, sizeof req);
        struct reply r;
        recv_reply(fd, 1, &r, 200); /* nothing yet: the container runs */
        close(fd);
        check(r.got == -1, "vanish: Wait pending while running (%s)", describe(&r));
        t_kill("w1", NULL, 9, &r);
        reply_done(&r);
        check(t_wait("w1", NULL) == 137, "vanish: after a Wait client left, the exit is still reported (137)");
        check(t_ok("Delete", "w1", NULL), "vanish: w1 deleted");

        /* a Create whose client leaves before the answer */
        if (!make_bundle("cgone", "sleep 1000", b, sizeof b))
                return;
        fd = sock_connect();
        Nanoshim__Task__CreateTaskRequest creq = NANOSHIM__TASK__CREATE_TASK_REQUEST__INIT;
        creq.id = (char *)"cgone";
        creq.bundle = b;
        creq.stdin = creq.stdout = creq.stderr = (char *)"";
        uint8_t cbuf[512];
        size_t clen = nanoshim__task__create_task_request__pack(&creq, cbuf);
        send_request(fd, 1, TASK, "Create", cbuf, clen);
        close(fd);
        long deadline = now_ms() + 20000;
        int st;
        while ((st = t_status("cgone", NULL, &r)) != NANOSHIM__TYPES__STATUS__CREATED && now_ms() < deadline) {
                bool gone = st < 0 && r.code == TTRPC_NOT_FOUND;
                reply_done(&r);
                if (gone && now_ms() > deadline - 15000)
                        break; /* refused or rolled back: also fine */
                nap_ms(20);
        }
        reply_done(&r);
        check(st == NANOSHIM__TYPES__STATUS__CREATED || st < 0,
              "vanish: a Create whose client left completes consistently (state %d)", st);
        if (st == NANOSHIM__TYPES__STATUS__CREATED)
                check(t_ok("Delete", "cgone", NULL), "vanish: the orphaned create is deleted cleanly");
        check(run("runc --root '%s' state cgone >/dev/null 2>&1", runc_root) != 0,
              "vanish: nothing of cgone is left in runc");
}

struct bad_id {
        const char *name;
        const char *id;
        size_t len;
};

/* An id with a NUL reaches the handlers cut at the NUL ("ok\0../x" is taken as "ok"). */
#define NUL_ID_BUG "protobuf-c strings end at a NUL, task-service.c checks the cut id"

static bool id_check(const struct bad_id *b, const struct reply *r, const char *what) {
        bool ok = r->got == 1 && r->code == TTRPC_INVALID_ARGUMENT;
        bool nul = b->len != strlen(b->id);
        return check_bug(ok, ok || !nul ? NULL : NUL_ID_BUG, "%s id %s -> INVALID_ARGUMENT (%s)", what, b->name,
                         describe(r));
}

static void t_invalid_ids(void) {
        char id77[78], marker[128], bundle[256];
        if (!make_bundle("ids", "true", bundle, sizeof bundle))
                return;
        memset(id77, 'a', 77);
        id77[77] = 0;
        const struct bad_id ids[] = {
                {"../x", "../x", 4}, {"a/b", "a/b", 3},        {"empty", "", 0},
                {"77 chars", id77, 77}, {"NUL inside", "ok\0../x", 7}, {"..", "..", 2},
        };
        path_of(marker, sizeof marker, "marker");
        write_text(marker, "", 0);
        nap_ms(1100); /* find -newer has 1 s granularity on some file systems */
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
                const struct bad_id *b = &ids[i];
                struct reply r;
                t_create_full(b->id, b->len, bundle, NULL, 0, &r);
                id_check(b, &r, "Create");
                reply_done(&r);
                t_id_call("State", b->id, b->len, NULL, 0, &r);
                id_check(b, &r, "State");
                reply_done(&r);
                t_id_call("Kill", b->id, b->len, NULL, 9, &r);
                id_check(b, &r, "Kill");
                reply_done(&r);
                t_exec(b->id, b->len, "e1", EXEC_SPEC, &r);
                id_check(b, &r, "Exec container");
                reply_done(&r);
                if (b->len == strlen(b->id)) {
                        t_exec("main", 4, b->id, EXEC_SPEC, &r);
                        check(r.got == 1 && r.code == TTRPC_INVALID_ARGUMENT, "Exec exec id %s -> INVALID_ARGUMENT (%s)",
                              b->name, describe(&r));
                        reply_done(&r);
                }
        }
        /* What an id may have touched: nothing new anywhere under the test dir but the log. */
        char out[1024] = "";
        /* popen runs in our cwd, the test dir; the bundle given may be written */
        FILE *f = popen("find . -newer marker ! -name shim.log ! -path ./runc/main ! -path ./runc ! -path . "
                        "! -path './b/ids' ! -path './b/ids/*' 2>/dev/null | head -5", "r");
        if (f) {
                size_t n = fread(out, 1, sizeof out - 1, f);
                out[n] = 0;
                pclose(f);
        }
        check_bug(f && out[0] == 0, strstr(out, "./runc/ok") ? NUL_ID_BUG : NULL,
                  "invalid ids: no file created outside the bundle%s%s", out[0] ? ": " : "", out);
        check(t_status("main", NULL, &(struct reply){0}) == NANOSHIM__TYPES__STATUS__RUNNING,
              "invalid ids: the running container is untouched");
        /* An id cut at its NUL ("ok") may have been taken as valid: remove it. */
        struct reply r;
        if (t_status("ok", NULL, &r) >= 0)
                t_remove("ok");
        reply_done(&r);
}

static void t_symlinks(void) {
        char b[256], p[320], v1[128], v2[128];
        /* files the shim writes in the bundle, planted as symlinks to files outside */
        if (!make_bundle("plant", "sh -c 'exit 3'", b, sizeof b))
                return;
        path_of(v1, sizeof v1, "victim-options");
        path_of(v2, sizeof v2, "victim-exit");
        write_text(v1, "ORIGINAL", 8);
        write_text(v2, "ORIGINAL", 8);
        snprintf(p, sizeof p, "%s/options.json", b);
        if (symlink(v1, p) < 0)
                die("symlink");
        snprintf(p, sizeof p, "%s/init.exit", b);
        if (symlink(v2, p) < 0)
                die("symlink");
        struct reply r;
        t_create("plant", b, &r);
        bool created = r.got == 1 && r.code == 0;
        reply_done(&r);
        if (created && t_ok("Start", "plant", NULL))
                check(t_wait("plant", NULL) == 3, "symlinks: the container ran (exit 3)");
        check(file_has(v1, "ORIGINAL"), "planted <bundle>/options.json symlink: target not written");
        check(file_has(v2, "ORIGINAL"), "planted <bundle>/init.exit symlink: target not written");
        if (created)
                t_ok("Delete", "plant", NULL);

        /* rootfs a symlink to a directory outside, with rootfs mounts to make */
        char src[256], outside[128];
        if (!make_bundle("rlsrc", "true", src, sizeof src) || !make_bundle("rl", "true", b, sizeof b))
                return;
        path_of(outside, sizeof outside, "outside");
        if (mkdir(outside, 0755) < 0)
                die("mkdir");
        run("rm -rf '%s/rootfs' && ln -s '%s' '%s/rootfs'", b, outside, b);
        snprintf(p, sizeof p, "%s/rootfs", src);
        char *opts[] = {(char *)"rbind", (char *)"ro"};
        Nanoshim__Types__Mount m = NANOSHIM__TYPES__MOUNT__INIT;
        m.type = (char *)"bind";
        m.source = p;
        m.target = (char *)"";
        m.options = opts;
        m.n_options = 2;
        Nanoshim__Types__Mount *mp = &m;
        t_create_full("rl", 2, b, &mp, 1, &r);
        bool rl_created = r.got == 1 && r.code == 0;
        printf("  create with rootfs -> %s: %s\n", outside, describe(&r));
        reply_done(&r);
        int mounted = run("grep -q ' %s ' /proc/self/mounts", outside) == 0;
        check_bug(!mounted, mounted ? "rootfs symlink followed by mount_all" : NULL,
                  "planted <bundle>/rootfs symlink: no mount made on its target %s", outside);
        if (rl_created)
                t_remove("rl");
        if (mounted)
                run("umount -l '%s'", outside);
}

struct bad_config {
        const char *name;
        const char *text; /* NULL: generated */
        const char *want; /* in the message */
};

static char *deep_json(size_t levels) {
        char *s = malloc(2 * levels + 1);
        if (!s)
                die("malloc");
        memset(s, '[', levels);
        memset(s + levels, ']', levels);
        s[2 * levels] = 0;
        return s;
}

static void t_bad_configs(void) {
        const struct bad_config cases[] = {
                {"not JSON", "{\"ociVersion\": ", "invalid JSON"},
                {"empty file", "", "invalid JSON"},
                {"a JSON array", "[1,2]", "must be a JSON object"},
                {"wrong types", "{\"ociVersion\": 1, \"process\": \"sh\", \"root\": []}", "config.json"},
                {"huge uid", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":"
                             "{\"uid\":99999999999999999999999,\"gid\":0}},\"root\":{\"path\":\"rootfs\"}}",
                 "config.json"},
                {"uid 2^32", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":"
                             "{\"uid\":4294967296,\"gid\":0}},\"root\":{\"path\":\"rootfs\"}}",
                 "uid"},
                {"negative gid", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":"
                                 "{\"uid\":0,\"gid\":-1}},\"root\":{\"path\":\"rootfs\"}}",
                 "gid"},
                {"NUL in an arg", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"s\\u0000h\"],\"cwd\":\"/\","
                                  "\"user\":{\"uid\":0,\"gid\":0}},\"root\":{\"path\":\"rootfs\"}}",
                 "NUL"},
                {"duplicate key", "{\"ociVersion\":\"1.0.2\",\"ociVersion\":\"1.0.2\"}", "duplicate"},
                {"missing process", "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"}}", "process"},
                {"deep nesting 10000", NULL, "nested deeper"},
                {"8 MiB file", NULL, "File too large"},
        };
        char b[256], cfg[320];
        if (!make_bundle("badcfg", "true", b, sizeof b))
                return;
        snprintf(cfg, sizeof cfg, "%s/config.json", b);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const struct bad_config *c = &cases[i];
                bool ok;
                if (c->text)
                        ok = write_text(cfg, c->text, strlen(c->text));
                else if (strstr(c->name, "deep")) {
                        char *s = deep_json(10000);
                        char *doc = NULL;
                        ok = asprintf(&doc, "{\"ociVersion\":\"1.0.2\",\"x\":%s}", s) > 0 &&
                             write_text(cfg, doc, strlen(doc));
                        free(s);
                        free(doc);
                } else {
                        size_t n = 8u << 20;
                        char *s = malloc(n);
                        if (!s)
                                die("malloc");
                        memset(s, ' ', n);
                        memcpy(s, "{\"ociVersion\":\"1.0.2\"}", 22);
                        ok = write_text(cfg, s, n);
                        free(s);
                }
                if (!ok)
                        die("write config.json");
                struct reply r;
                char id[16];
                snprintf(id, sizeof id, "bad%zu", i);
                t_create(id, b, &r);
                check(r.got == 1 && r.code != 0 && strstr(r.msg, c->want),
                      "config.json %s -> clear error (%s)", c->name, describe(&r));
                reply_done(&r);
                int st = t_status(id, NULL, &r);
                check(st < 0 && r.code == TTRPC_NOT_FOUND, "config.json %s: nothing left behind", c->name);
                reply_done(&r);
        }
        /* config.json a directory, then absent */
        unlink(cfg);
        mkdir(cfg, 0700);
        struct reply r;
        t_create("baddir", b, &r);
        check(r.got == 1 && r.code != 0 && strstr(r.msg, "config.json"), "config.json a directory -> clear error (%s)",
              describe(&r));
        reply_done(&r);
        rmdir(cfg);
        t_create("badnone", b, &r);
        check(r.got == 1 && r.code != 0 && strstr(r.msg, "No such file"), "config.json missing -> clear error (%s)",
              describe(&r));
        reply_done(&r);
        /* config.json a planted symlink to a valid config elsewhere */
        char real[128];
        path_of(real, sizeof real, "b/plant/config.json");
        if (symlink(real, cfg) < 0)
                die("symlink");
        t_create("badlink", b, &r);
        check(r.got == 1 && r.code != 0 && strstr(r.msg, "symbolic links"),
              "config.json a symlink -> not followed, clear error (%s)", describe(&r));
        reply_done(&r);
        unlink(cfg);
        /* bundle paths */
        t_create("badb1", "relative/bundle", &r);
        check(r.got == 1 && r.code == TTRPC_INVALID_ARGUMENT, "relative bundle path -> INVALID_ARGUMENT (%s)",
              describe(&r));
        reply_done(&r);
        char dotdot[300];
        snprintf(dotdot, sizeof dotdot, "%s/../b/badcfg", b);
        t_create("badb2", dotdot, &r);
        check(r.got == 1 && r.code == TTRPC_INVALID_ARGUMENT, "bundle path with /../ -> INVALID_ARGUMENT (%s)",
              describe(&r));
        reply_done(&r);
}

/* In a child as uid/gid 65534: connect, ask State, report what happened.
 * Exit: 10 connect EACCES, 11 other connect error, 20 closed unanswered, 21 answered, 22 no answer. */
static int other_uid_try(void) {
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(1);
                int fd = sock_connect();
                if (fd < 0)
                        _exit(fd == -EACCES ? 10 : 11);
                struct reply r;
                uint8_t req[] = {0x0a, 0x04, 'm', 'a', 'i', 'n'};
                call_bytes_on(fd, TASK, "State", req, sizeof req, &r);
                _exit(r.got == 0 ? 20 : r.got == 1 ? 21 : 22);
        }
        int st;
        if (waitpid(pid, &st, 0) < 0)
                die("waitpid");
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void t_other_uid(void) {
        char dir[128];
        path_of(dir, sizeof dir, "sock");
        /* Layer 1, file modes: let nobody reach the directory, then the socket. */
        chmod(tmp, 0711);
        int r1 = other_uid_try();
        check(r1 == 10, "uid 65534, socket dir 0700: connect refused with EACCES (result %d)", r1);
        chmod(dir, 0711);
        int r2 = other_uid_try();
        check(r2 == 10, "uid 65534, socket 0600: connect refused with EACCES (result %d)", r2);
        /* Layer 2, SO_PEERCRED: with the socket opened to all, the shim itself refuses. */
        chmod(sock_path, 0666);
        int r3 = other_uid_try();
        check(r3 == 20, "uid 65534 connected anyway: the shim closes without answering (result %d)", r3);
        chmod(sock_path, 0600);
        chmod(dir, 0700);
        chmod(tmp, 0700);
        check(serves_fresh_client(), "after the other-uid peers: root is still served");
}

static void t_normal_after(void) {
        char b[256];
        struct reply r;
        bool ok = make_bundle("final", "sh -c 'exit 7'", b, sizeof b);
        t_create("final", b, &r);
        ok = ok && r.got == 1 && r.code == 0;
        reply_done(&r);
        check(ok && t_status("final", NULL, &r) == NANOSHIM__TYPES__STATUS__CREATED, "after all that: Create works");
        check(t_ok("Start", "final", NULL) && t_wait("final", NULL) == 7 && t_ok("Delete", "final", NULL),
              "after all that: Start, Wait (exit 7), Delete work");
        check(t_status("main", NULL, &r) == NANOSHIM__TYPES__STATUS__RUNNING, "after all that: State of main works");
}

static bool exec_cycle(unsigned i) {
        char eid[32];
        snprintf(eid, sizeof eid, "x%u", i);
        struct reply r;
        long t0 = now_ms();
        t_exec("main", 4, eid, EXEC_SPEC, &r);
        bool ok = r.got == 1 && r.code == 0;
        if (!ok)
                printf("  exec %s: %s\n", eid, describe(&r));
        reply_done(&r);
        long t1 = now_ms();
        if (!ok || !t_ok("Start", "main", eid))
                return false;
        long t2 = now_ms();
        int st = t_wait_within("main", eid, 10000);
        long t3 = now_ms();
        if (st == -2) {
                check_bug(false, "exec exit lost, see runtime.c op_maybe_complete",
                          "exec %s (`true`): Wait answered within 10 s", eid);
                return false;
        }
        if (st != 0) {
                printf("  exec %s: exit status %d\n", eid, st);
                return false;
        }
        ok = t_ok("Delete", "main", eid);
        long t4 = now_ms();
        if (t4 - t0 > 1000) /* a slow cycle is worth seeing */
                printf("  exec %s slow: exec %ld ms, start %ld ms, wait %ld ms, delete %ld ms\n", eid, t1 - t0,
                       t2 - t1, t3 - t2, t4 - t3);
        return ok;
}

static void t_exec_cycles(void) {
        unsigned i = 0, warm = 10;
        for (; i < warm; i++)
                if (!exec_cycle(i))
                        break;
        int fd0 = fds_settle(shim_fds());
        long rss0 = shim_vm_kb("VmRSS");
        long t0 = now_ms();
        int fd100 = -1;
        long rss100 = -1;
        bool ok = i == warm;
        for (; ok && i < warm + 1000; i++) {
                ok = exec_cycle(i);
                if (i == warm + 99) {
                        fd100 = fds_settle(fd0);
                        rss100 = shim_vm_kb("VmRSS");
                }
        }
        int fd1000 = fds_settle(fd0);
        long rss1000 = shim_vm_kb("VmRSS");
        printf("  exec cycles: %u done in %ld ms; fds %d / %d / %d, VmRSS %ld / %ld / %ld kB "
               "(after %u warm-up, after 100, after 1000)\n",
               i - warm, now_ms() - t0, fd0, fd100, fd1000, rss0, rss100, rss1000, warm);
        check(ok, "1000 exec+start+wait+delete cycles on one container all succeed (%u done)", i - warm);
        check(fd100 == fd0 && fd1000 == fd0, "exec cycles: the shim's fd count returns to %d (100: %d, 1000: %d)", fd0,
              fd100, fd1000);
        if (shim_has_asan())
                printf("  (ASan build: the RSS growth is ASan's quarantine, not checked; LeakSanitizer is)\n");
        else
                check(rss1000 - rss0 < 512, "exec cycles: VmRSS growth %ld kB < 512 kB", rss1000 - rss0);
}

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: %s SHIM SHIMCTL SOURCE_ROOT\n", argv[0]);
                return 2;
        }
        if (geteuid() != 0) {
                puts("SKIP: needs root");
                return 77;
        }
        if (run("command -v runc >/dev/null") != 0 || access("/bin/busybox", X_OK) < 0) {
                puts("SKIP: needs runc and busybox-static");
                return 77;
        }
        static char shim_abs[4096], src_abs[4096];
        if (!realpath(argv[1], shim_abs) || !realpath(argv[3], src_abs))
                die("realpath");
        shim_bin = shim_abs;
        src_dir = src_abs;
        snprintf(tmp, sizeof tmp, "/tmp/nshost.XXXXXX");
        if (!mkdtemp(tmp))
                die("mkdtemp");
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        if (chdir(tmp) < 0)
                die("chdir");
        path_of(sock_path, sizeof sock_path, "sock/s.sock");
        path_of(runc_root, sizeof runc_root, "runc");
        char bdir[128];
        path_of(bdir, sizeof bdir, "b");
        mkdir(bdir, 0700);

        int log_fifo = -1;
        start_shim(&log_fifo);
        ctl = sock_connect();
        if (ctl < 0)
                die("connect");
        char main_bundle[256];
        if (!check(run_container("main", "sleep 1000000", main_bundle, sizeof main_bundle), "container main runs"))
                return 1;
        int fd_start = fds_settle(shim_fds());
        printf("  shim pid %d: %d fds, VmRSS %ld kB at the start\n", (int)shim_pid, fd_start, shim_vm_kb("VmRSS"));

        t_socket_modes();
        t_log_symlink(log_fifo);
        t_oversize();
        t_truncated();
        t_garbage();
        t_unknown();
        t_idle_clients();
        t_vanishing_clients();
        t_invalid_ids();
        t_symlinks();
        t_bad_configs();
        t_other_uid();
        int fd_now = fds_settle(fd_start);
        check(fd_now == fd_start, "all hostile clients gone: the shim is back to %d fds (has %d)", fd_start, fd_now);
        t_normal_after();
        t_exec_cycles();
        check(t_remove("main"), "main removed");
        check(shim_alive(), "the shim is still running");

        if (n_fail) {
                puts("the shim's log, last lines:");
                fflush(stdout);
                run("tail -n 40 '%s/shim.log'", tmp);
        }
        printf("%u passed, %u failed\n", n_pass, n_fail);
        return n_fail ? 1 : 0;
}
