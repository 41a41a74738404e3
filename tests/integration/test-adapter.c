/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime adapter driving a real OCI runtime on a busybox bundle, as root:
 * create, state, ps, start, pause/resume, kill, delete, and a failing create whose
 * error text comes from the runtime itself.
 *   test-adapter RUNTIME_BINARY SOURCE_ROOT      (exit 77: skipped)
 * Runs as a child subreaper so that the container's init is reaped here, through the
 * one reaper, as in the shim. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-util.h"
#include "macro.h"
#include "reaper.h"
#include "runtime.h"

static int n_pass, n_fail;

#define CHECK(cond, ...)                                  \
        do {                                              \
                if (cond) {                               \
                        n_pass++;                         \
                        printf("PASS: " __VA_ARGS__);     \
                } else {                                  \
                        n_fail++;                         \
                        printf("FAIL: " __VA_ARGS__);     \
                }                                         \
                printf("\n");                             \
        } while (0)

struct call {
        bool done;
        int status;
        char *error;
        char *out;
};

static void on_done(const struct runtime_result *res, void *ud) {
        struct call *c = ud;
        c->done = true;
        c->status = res->exit_status;
        c->error = res->error ? strdup(res->error) : NULL;
        c->out = strdup(res->out);
}

static void call_done(struct call *c) {
        free(c->error);
        free(c->out);
        *c = (struct call){0};
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
        *(bool *)w->data = true;
}

/* Run the loop until *flag or 30 s. */
static bool wait_for(const bool *flag) {
        bool expired = false;
        ev_timer t;
        ev_timer_init(&t, on_deadline, 30, 0);
        t.data = &expired;
        ev_timer_start(EV_DEFAULT, &t);
        while (!*flag && !expired)
                ev_run(EV_DEFAULT, EVRUN_ONCE);
        ev_timer_stop(EV_DEFAULT, &t);
        return *flag;
}

static struct runtime *rt;
static const char *cid;

/* Run one call to its end; the result in *c. */
#define RUN(c, expr)                                                                 \
        do {                                                                         \
                call_done(c);                                                        \
                int _r = (expr);                                                     \
                if (_r < 0 || !wait_for(&(c)->done)) {                               \
                        printf("FAIL: %s: %s\n", #expr, _r < 0 ? strerror(-_r) : "no answer in 30 s"); \
                        n_fail++;                                                    \
                }                                                                    \
        } while (0)

static char *state_status(pid_t *ret_pid) {
        struct call c = {0};
        RUN(&c, runtime_state(rt, cid, on_done, &c));
        struct runtime_state s;
        char *status = NULL;
        if (c.status == 0 && c.out && runtime_parse_state(c.out, strlen(c.out), &s) == 0) {
                status = strdup(s.status);
                if (ret_pid)
                        *ret_pid = s.pid;
                runtime_state_done(&s);
        } else
                status = strdup(c.error ? c.error : "(no state)");
        call_done(&c);
        return status;
}

struct exit_seen {
        bool done;
        int status;
};
static void on_init_exit(pid_t pid, int wait_status, void *ud) {
        struct exit_seen *e = ud;
        e->done = true;
        e->status = exit_status_from_wait(wait_status);
}

static int make_bundle(const char *src, const char *dir, const char *cmd) {
        char sh[1024];
        snprintf(sh, sizeof sh, "'%s/tools/mkbundle.sh' '%s' %s >/dev/null", src, dir, cmd);
        return system(sh) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: %s RUNTIME_BINARY SOURCE_ROOT\n", argv[0]);
                return 2;
        }
        const char *binary = argv[1], *src = argv[2];
        if (geteuid() != 0) {
                printf("SKIP: needs root\n");
                return 77;
        }
        char probe[512];
        snprintf(probe, sizeof probe, "command -v '%s' >/dev/null && test -x /bin/busybox", binary);
        if (system(probe) != 0) {
                printf("SKIP: %s or busybox-static not installed\n", binary);
                return 77;
        }
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        setvbuf(stdout, NULL, _IOLBF, 0);

        char tmp[] = "/tmp/nsadapter-XXXXXX";
        if (!mkdtemp(tmp))
                return 1;
        char bundle[128], bad_bundle[128], root[128], log_path[128], pid_file[128], id[64], bad_id[64];
        snprintf(bundle, sizeof bundle, "%s/bundle", tmp);
        snprintf(bad_bundle, sizeof bad_bundle, "%s/bad", tmp);
        snprintf(root, sizeof root, "%s/root", tmp);
        snprintf(log_path, sizeof log_path, "%s/log.json", tmp);
        snprintf(pid_file, sizeof pid_file, "%s/init.pid", tmp);
        snprintf(id, sizeof id, "adapter-%d", (int)getpid());
        snprintf(bad_id, sizeof bad_id, "adapter-bad-%d", (int)getpid());
        cid = id;
        if (make_bundle(src, bundle, "sh -c 'echo hello-from-init; exec sleep 1000'") < 0 ||
            make_bundle(src, bad_bundle, "/bin/nonexistent") < 0) {
                printf("FAIL: cannot build the bundles\n");
                return 1;
        }

        struct reaper *reaper = NULL;
        struct runtime_config cfg = {.binary = binary, .root = root, .log_path = log_path};
        if (reaper_new(EV_DEFAULT, &reaper) < 0 || runtime_new(EV_DEFAULT, reaper, &cfg, &rt) < 0)
                return 1;

        /* create, with the container's stdout on a pipe */
        int out[2];
        if (pipe2(out, O_CLOEXEC) < 0)
                return 1;
        struct call c = {0};
        struct runtime_create_opts co = {.id = id, .bundle = bundle, .pid_file = pid_file, .stdio = {-1, out[1], out[1]}};
        /* Held from create until the init is watched: an init dying early is kept. */
        reaper_hold(reaper);
        RUN(&c, runtime_create(rt, &co, on_done, &c));
        close(out[1]);
        if (c.status != 0 && c.error && strstr(c.error, "hybrid mode not supported")) {
                /* crun 1.8 refuses hosts whose cgroup v2 hierarchy holds a controller
                 * in hybrid mode; nothing the adapter can change. */
                printf("SKIP: %s cannot run containers on this host: %s\n", binary, c.error);
                call_done(&c);
                runtime_free(rt);
                reaper_free(reaper);
                close(out[0]);
                char rm[256];
                snprintf(rm, sizeof rm, "rm -rf '%s'", tmp);
                (void)!system(rm);
                return 77;
        }
        CHECK(c.status == 0, "create exits 0 (%d: %s)", c.status, c.error ? c.error : "");
        pid_t pid = 0, state_pid = 0;
        CHECK(read_pid_file_at(AT_FDCWD, pid_file, &pid) == 0 && pid > 0, "create wrote the pid file (%d)", (int)pid);
        struct exit_seen init_exit = {0};
        CHECK(reaper_watch(reaper, pid, on_init_exit, &init_exit) == 0, "the init's exit is watched");
        reaper_release(reaper);
        _cleanup_free_ char *st = state_status(&state_pid);
        CHECK(strcmp(st, "created") == 0 && state_pid == pid, "state: created, pid %d (%s, %d)", (int)pid, st,
              (int)state_pid);

        RUN(&c, runtime_start(rt, id, on_done, &c));
        CHECK(c.status == 0, "start exits 0");
        free(st);
        st = state_status(NULL);
        CHECK(strcmp(st, "running") == 0, "state: running (%s)", st);
        char buf[64] = {0};
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        ssize_t n = poll(&pfd, 1, 10000) == 1 ? read(out[0], buf, sizeof buf - 1) : -1;
        CHECK(n > 0 && strcmp(buf, "hello-from-init\n") == 0, "the container's stdout reached the pipe");

        RUN(&c, runtime_ps(rt, id, on_done, &c));
        pid_t *pids = NULL;
        size_t n_pids = 0;
        CHECK(c.status == 0 && runtime_parse_ps(c.out, strlen(c.out), &pids, &n_pids) == 0 && n_pids == 1 &&
                      pids[0] == pid,
              "ps lists the init (%s)", c.out ? c.out : "");
        free(pids);

        RUN(&c, runtime_pause(rt, id, on_done, &c));
        free(st);
        st = state_status(NULL);
        CHECK(c.status == 0 && strcmp(st, "paused") == 0, "pause: %s", st);
        RUN(&c, runtime_resume(rt, id, on_done, &c));
        free(st);
        st = state_status(NULL);
        CHECK(c.status == 0 && strcmp(st, "running") == 0, "resume: %s", st);

        RUN(&c, runtime_update(rt, id, "{\"pids\":{\"limit\":64}}", on_done, &c));
        CHECK(c.status == 0, "update with resources on stdin (%d: %s)", c.status, c.error ? c.error : "");

        RUN(&c, runtime_kill(rt, id, SIGKILL, false, on_done, &c));
        CHECK(c.status == 0, "kill exits 0");
        CHECK(wait_for(&init_exit.done) && init_exit.status == 137, "the init's exit reaches the reaper: %d",
              init_exit.status);
        free(st);
        st = state_status(NULL);
        CHECK(strcmp(st, "stopped") == 0, "state: stopped (%s)", st);

        RUN(&c, runtime_delete(rt, id, false, on_done, &c));
        CHECK(c.status == 0, "delete exits 0");
        free(st);
        st = state_status(NULL);
        CHECK(runtime_error_not_exist(st), "state after delete: the runtime's own error (%s)", st);
        RUN(&c, runtime_kill(rt, id, SIGKILL, false, on_done, &c));
        CHECK(c.status != 0 && runtime_error_not_exist(c.error),
              "kill after delete fails with the runtime's message (%s)", c.error ? c.error : "(none)");

        /* A create whose process cannot start: the runtime's message, word for word. */
        snprintf(pid_file, sizeof pid_file, "%s/bad.pid", tmp);
        struct runtime_create_opts bad = {.id = bad_id, .bundle = bad_bundle, .pid_file = pid_file,
                                          .stdio = {-1, -1, -1}};
        reaper_hold(reaper);
        RUN(&c, runtime_create(rt, &bad, on_done, &c));
        reaper_release(reaper);
        /* runc: exec: "/bin/nonexistent": stat /bin/nonexistent: no such file or directory;
         * crun: executable file `/bin/nonexistent` not found ...: No such file or directory */
        CHECK(c.status != 0 && c.error && strstr(c.error, "/bin/nonexistent") &&
                      strcasestr(c.error, "no such file or directory"),
              "failed create: %s", c.error ? c.error : "(no error)");
        RUN(&c, runtime_delete(rt, bad_id, true, on_done, &c));
        CHECK(c.status == 0, "delete --force after a failed create");

        /* The runtime itself missing. */
        struct runtime *missing = NULL;
        struct runtime_config mcfg = {.binary = "/nonexistent/runc", .root = root};
        runtime_new(EV_DEFAULT, reaper, &mcfg, &missing);
        struct runtime *saved = rt;
        rt = missing;
        RUN(&c, runtime_start(rt, id, on_done, &c));
        CHECK(c.status == 127 && c.error && strstr(c.error, "not found"), "missing runtime binary: %s",
              c.error ? c.error : "");
        rt = saved;
        runtime_free(missing);
        call_done(&c);

        close(out[0]);
        runtime_free(rt);
        reaper_free(reaper);
        char rm[256];
        snprintf(rm, sizeof rm, "rm -rf '%s'", tmp);
        (void)!system(rm);
        printf("%d passed, %d failed\n", n_pass, n_fail);
        return n_fail ? 1 : 0;
}
