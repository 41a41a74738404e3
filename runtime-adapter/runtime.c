/* SPDX-License-Identifier: Apache-2.0 */
/* Spawning the OCI runtime and completing its calls from the event loop. */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "reaper.h"

#define CAPTURE_OUT_MAX (4u << 20) /* state / ps output */
#define CAPTURE_ERR_MAX (64u << 10) /* the runtime's own stderr, a fallback error text */
#define LOG_TAIL_MAX (256u << 10)   /* what is read of the JSON log after a failure */

struct runtime {
        struct ev_loop *loop;
        struct reaper *reaper;
        char *binary;
        char *resolved; /* its absolute path, once found */
        char *root;
        char *log_path;
        bool systemd_cgroup;
        char *criu;
        struct runtime_op *ops; /* in flight */
};

struct capture {
        ev_io w;
        int fd;
        char *buf;
        size_t len, cap, max;
        bool eof;
};

struct runtime_op {
        struct runtime_op *next;
        struct runtime *rt; /* NULL once detached (runtime freed) */
        char *name;         /* subcommand, for messages */
        pid_t pid;
        bool exited;
        int exit_status;
        off_t log_offset;   /* size of the JSON log before the call */
        char *criu_log;     /* checkpoint/restore: CRIU's log, read for its error lines on failure */
        struct capture out, err;
        bool missing;       /* the binary was not found: completes from this timer */
        ev_timer deferred;
        runtime_done_fn done;
        void *userdata;
};

/* ---- argv ---------------------------------------------------------------------- */

void runtime_argv_free(char **argv) {
        if (!argv)
                return;
        for (char **a = argv; *a; a++)
                free(*a);
        free(argv);
}

int runtime_build_argv(const struct runtime_config *cfg, const char *const *cmd_args, char ***ret_argv) {
        size_t n_cmd = 0;
        while (cmd_args[n_cmd])
                n_cmd++;
        char **argv = calloc(n_cmd + 12, sizeof *argv);
        if (!argv)
                return -ENOMEM;
        size_t k = 0;
        argv[k++] = strdup(cfg->binary && *cfg->binary ? cfg->binary : "runc");
        if (cfg->root && *cfg->root) {
                argv[k++] = strdup("--root");
                argv[k++] = strdup(cfg->root);
        }
        if (cfg->log_path && *cfg->log_path) {
                argv[k++] = strdup("--log");
                argv[k++] = strdup(cfg->log_path);
                argv[k++] = strdup("--log-format");
                argv[k++] = strdup("json");
        }
        if (cfg->systemd_cgroup)
                argv[k++] = strdup("--systemd-cgroup");
        if (cfg->criu && *cfg->criu) {
                argv[k++] = strdup("--criu");
                argv[k++] = strdup(cfg->criu);
        }
        for (size_t i = 0; i < n_cmd; i++)
                argv[k++] = strdup(cmd_args[i]);
        argv[k] = NULL;
        for (size_t i = 0; i < k; i++)
                if (!argv[i]) {
                        /* free what was allocated; argv[i] NULL ends the walk, so free the rest by index */
                        for (size_t j = 0; j < k; j++)
                                free(argv[j]);
                        free(argv);
                        return -ENOMEM;
                }
        *ret_argv = argv;
        return 0;
}

/* ---- the runtime's JSON log ------------------------------------------------------- */

/* Minimal extraction of "level" and "msg" from one JSON log line; jansson would do,
 * but a line may be cut off at the tail boundary and must then be skipped. */
#include <jansson.h>

char *runtime_log_last_error(const char *log, size_t len) {
        char *last = NULL;
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && log[i] != '\n')
                        continue;
                size_t l = i - start;
                if (l > 0 && log[start] == '{') {
                        json_t *j = json_loadb(log + start, l, 0, NULL);
                        const char *level = json_string_value(json_object_get(j, "level"));
                        const char *msg = json_string_value(json_object_get(j, "msg"));
                        if (level && msg && strcmp(level, "error") == 0) {
                                char *m = strdup(msg);
                                if (m) {
                                        free(last);
                                        last = m;
                                }
                        }
                        json_decref(j);
                }
                start = i + 1;
        }
        return last;
}

static off_t file_size(const char *path) {
        struct stat st;
        if (!path || stat(path, &st) < 0)
                return 0;
        return st.st_size;
}

/* What a log file holds past offset `from`, its last LOG_TAIL_MAX bytes at most, as
 * parsed by `parse`. NULL when there is nothing (or no regular file). */
static char *read_log_tail(const char *path, off_t from, char *(*parse)(const char *, size_t)) {
        if (!path)
                return NULL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return NULL;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= from)
                return NULL;
        off_t start = st.st_size - from > (off_t)LOG_TAIL_MAX ? st.st_size - (off_t)LOG_TAIL_MAX : from;
        size_t want = (size_t)(st.st_size - start);
        _cleanup_free_ char *buf = malloc(want + 1);
        if (!buf)
                return NULL;
        ssize_t n = pread(fd, buf, want, start);
        if (n <= 0)
                return NULL;
        return parse(buf, (size_t)n);
}

/* CRIU's log lines look like "(00.170764) Error (criu/files-reg.c:1790): text", with
 * "     1: " after the timestamp in a restored task's lines. */
static bool criu_error_text(const char *line, size_t len, const char **ret, size_t *ret_len) {
        const char *e = memmem(line, len, "Error (", 7);
        if (!e)
                return false;
        const char *end = line + len;
        const char *colon = memmem(e, (size_t)(end - e), "): ", 3);
        if (!colon)
                return false;
        *ret = colon + 3;
        *ret_len = (size_t)(end - *ret);
        return *ret_len > 0;
}

static bool ends_with(const char *s, size_t len, const char *suffix) {
        size_t l = strlen(suffix);
        return len >= l && memcmp(s + len - l, suffix, l) == 0;
}

char *runtime_criu_log_error(const char *log, size_t len) {
        const char *last[2] = {NULL, NULL};
        size_t last_len[2] = {0, 0};
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && log[i] != '\n')
                        continue;
                const char *text;
                size_t tl;
                if (criu_error_text(log + start, i - start, &text, &tl)) {
                        if (ends_with(text, tl, "FAILED."))
                                break; /* the summary: what follows is clean-up noise */
                        last[0] = last[1];
                        last_len[0] = last_len[1];
                        last[1] = text;
                        last_len[1] = tl;
                }
                start = i + 1;
        }
        if (!last[1])
                return NULL;
        char *out = NULL;
        int r = last[0] ? asprintf(&out, "%.*s; %.*s", (int)last_len[0], last[0], (int)last_len[1], last[1])
                        : asprintf(&out, "%.*s", (int)last_len[1], last[1]);
        return r < 0 ? NULL : out;
}

bool runtime_error_not_exist(const char *error) {
        if (!error)
                return false;
        if (strstr(error, "does not exist"))
                return true;
        /* crun: "error opening file `ROOT/ID/status`: No such file or directory" (state,
         * kill) and "cannot open directory 'ROOT/ID': No such file or directory" (delete) */
        if (!strcasestr(error, "no such file or directory"))
                return false;
        const char *f = strstr(error, "error opening file `");
        return (f && strstr(f, "/status`:")) || strstr(error, "cannot open directory '");
}

bool runtime_error_not_running(const char *error) {
        return error && (strstr(error, "not running") || strcasestr(error, "no such process") ||
                         strstr(error, "process already finished"));
}

/* ---- parsing state / ps ------------------------------------------------------------ */

void runtime_state_done(struct runtime_state *s) {
        free(s->id);
        free(s->status);
        free(s->bundle);
        *s = (struct runtime_state){0};
}

int runtime_parse_state(const char *json, size_t len, struct runtime_state *ret) {
        json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return -EINVAL;
        }
        json_t *id = json_object_get(j, "id"), *pid = json_object_get(j, "pid"),
               *status = json_object_get(j, "status"), *bundle = json_object_get(j, "bundle");
        int r = -EINVAL;
        if (json_is_string(id) && json_is_integer(pid) && json_is_string(status) &&
            json_integer_value(pid) >= 0 && json_integer_value(pid) <= INT32_MAX &&
            (!bundle || json_is_string(bundle))) {
                struct runtime_state s = {
                        .id = strdup(json_string_value(id)),
                        .pid = (pid_t)json_integer_value(pid),
                        .status = strdup(json_string_value(status)),
                        .bundle = strdup(bundle ? json_string_value(bundle) : ""),
                };
                if (!s.id || !s.status || !s.bundle) {
                        runtime_state_done(&s);
                        r = -ENOMEM;
                } else {
                        *ret = s;
                        r = 0;
                }
        }
        json_decref(j);
        return r;
}

int runtime_parse_ps(const char *json, size_t len, pid_t **ret_pids, size_t *ret_n) {
        /* runc prints a nil Go slice, "null", when there is no process */
        json_t *j = json_loadb(json, len, JSON_DECODE_ANY, NULL);
        if (json_is_null(j) || (j && json_is_array(j) && json_array_size(j) == 0)) {
                json_decref(j);
                *ret_pids = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!json_is_array(j) || json_array_size(j) > 1u << 20) {
                json_decref(j);
                return -EINVAL;
        }
        size_t n = json_array_size(j);
        pid_t *pids = calloc(n, sizeof *pids);
        if (!pids) {
                json_decref(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_array_get(j, i);
                if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT32_MAX) {
                        free(pids);
                        json_decref(j);
                        return -EINVAL;
                }
                pids[i] = (pid_t)json_integer_value(v);
        }
        json_decref(j);
        *ret_pids = pids;
        *ret_n = n;
        return 0;
}

/* ---- operations ---------------------------------------------------------------- */

static void capture_stop(struct ev_loop *loop, struct capture *c) {
        if (c->fd >= 0) {
                ev_io_stop(loop, &c->w);
                c->fd = safe_close(c->fd);
        }
        c->eof = true;
}

static void op_unlink(struct runtime_op *op) {
        if (!op->rt)
                return;
        struct runtime_op **pp = &op->rt->ops;
        while (*pp && *pp != op)
                pp = &(*pp)->next;
        if (*pp)
                *pp = op->next;
}

static void op_free(struct ev_loop *loop, struct runtime_op *op) {
        if (op->missing)
                ev_timer_stop(loop, &op->deferred);
        capture_stop(loop, &op->out);
        capture_stop(loop, &op->err);
        free(op->out.buf);
        free(op->err.buf);
        free(op->name);
        free(op->criu_log);
        free(op);
}

static void op_maybe_complete(struct ev_loop *loop, struct runtime_op *op) {
        if (!op->exited || !op->out.eof || !op->err.eof)
                return;
        struct runtime *rt = op->rt;
        op_unlink(op);
        if (!rt) { /* detached by runtime_free() */
                if (rt && !op->missing)
                        reaper_release(rt->reaper);
                op_free(loop, op);
                return;
        }
        _cleanup_free_ char *log_error = NULL, *fallback = NULL, *criu_error = NULL, *joined = NULL;
        struct runtime_result res = {
                .exit_status = op->exit_status,
                .out = op->out.buf ? op->out.buf : "",
                .out_len = op->out.len,
        };
        if (op->exit_status != 0) {
                log_error = read_log_tail(rt->log_path, op->log_offset, runtime_log_last_error);
                if (log_error)
                        res.error = log_error;
                else if (op->err.len > 0) {
                        /* the runtime's stderr, without its trailing newline */
                        while (op->err.len > 0 && (op->err.buf[op->err.len - 1] == '\n'))
                                op->err.buf[--op->err.len] = 0;
                        res.error = op->err.buf;
                } else if (op->missing) {
                        if (asprintf(&fallback, "runtime binary \"%s\" not found", rt->binary) > 0)
                                res.error = fallback;
                } else if (op->exit_status == 127) {
                        if (asprintf(&fallback, "runtime binary \"%s\" could not be executed", rt->binary) > 0)
                                res.error = fallback;
                } else if (asprintf(&fallback, "%s %s exited with status %d", rt->binary, op->name,
                                    op->exit_status) > 0)
                        res.error = fallback;
                if (op->criu_log && (criu_error = read_log_tail(op->criu_log, 0, runtime_criu_log_error)) &&
                    asprintf(&joined, "%s: criu: %s", res.error ? res.error : op->name, criu_error) > 0)
                        res.error = joined;
        }
        /* The hold ends after the callback: an exit reaped while the call ran (the
         * container's init dying before its pid file is read) must still be in the
         * stash when the callback watches that pid. The reaper outlives the runtime,
         * which the callback may free. */
        struct reaper *reaper = op->missing ? NULL : rt->reaper;
        op->done(&res, op->userdata);
        op_free(loop, op);
        if (reaper)
                reaper_release(reaper);
}

static void on_capture(struct ev_loop *loop, ev_io *w, int revents) {
        struct runtime_op *op = w->data;
        struct capture *c = w == &op->out.w ? &op->out : &op->err;
        for (;;) {
                /* Read straight into the capture (no big stack buffer: its pages would
                 * stay dirty for the shim's lifetime); beyond the cap, keep draining so
                 * that the runtime never blocks on us. */
                char discard[256], *dst = discard;
                size_t room = sizeof discard;
                if (c->len < c->max) {
                        room = MIN(c->max - c->len, (size_t)4096);
                        if (c->len + room + 1 > c->cap) {
                                size_t ncap = MAX(c->cap * 2, c->len + room + 1);
                                char *nb = realloc(c->buf, ncap);
                                if (nb) {
                                        c->buf = nb;
                                        c->cap = ncap;
                                }
                        }
                        if (c->len + room + 1 <= c->cap)
                                dst = c->buf + c->len;
                        else
                                room = sizeof discard;
                }
                ssize_t n = read(c->fd, dst, room);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        capture_stop(loop, c);
                        op_maybe_complete(loop, op);
                        return;
                }
                if (dst != discard) {
                        c->len += (size_t)n;
                        c->buf[c->len] = 0;
                }
        }
}

static void on_runtime_exit(pid_t pid, int wait_status, void *userdata) {
        struct runtime_op *op = userdata;
        op->exited = true;
        op->exit_status = exit_status_from_wait(wait_status);
        struct ev_loop *loop = op->rt ? op->rt->loop : EV_DEFAULT;
        op_maybe_complete(loop, op);
}

static void capture_init(struct runtime_op *op, struct capture *c, int fd, size_t max) {
        c->fd = fd;
        c->max = max;
        c->eof = fd < 0;
        if (fd >= 0) {
                ev_io_init(&c->w, on_capture, fd, EV_READ);
                c->w.data = op;
                ev_io_start(op->rt->loop, &c->w);
        }
}

/* The absolute path of bin (looked up in PATH when it has no '/'), or NULL. */
static char *binary_resolve(const char *bin) {
        if (strchr(bin, '/'))
                return access(bin, X_OK) == 0 ? strdup(bin) : NULL;
        const char *path = getenv("PATH");
        if (!path)
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (const char *p = path; *p;) {
                const char *e = strchr(p, ':');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                char buf[4096];
                if (l > 0 && l + strlen(bin) + 2 < sizeof buf) {
                        memcpy(buf, p, l);
                        buf[l] = '/';
                        strcpy(buf + l + 1, bin);
                        if (access(buf, X_OK) == 0)
                                return strdup(buf);
                }
                if (!e)
                        break;
                p = e + 1;
        }
        return NULL;
}

static void on_deferred(struct ev_loop *loop, ev_timer *w, int revents) {
        op_maybe_complete(loop, w->data);
}

/* A missing binary is an answer like any other (status 127, a clear message), given
 * from the loop so that callers have one completion path. */
static int spawn_missing(struct runtime *rt, const char *name, runtime_done_fn done, void *ud) {
        struct runtime_op *op = calloc(1, sizeof *op);
        if (!op || !(op->name = strdup(name))) {
                free(op);
                return -ENOMEM;
        }
        op->rt = rt;
        op->done = done;
        op->userdata = ud;
        op->missing = op->exited = op->out.eof = op->err.eof = true;
        op->out.fd = op->err.fd = -1;
        op->exit_status = 127;
        ev_timer_init(&op->deferred, on_deferred, 0, 0);
        op->deferred.data = op;
        ev_timer_start(rt->loop, &op->deferred);
        op->next = rt->ops;
        rt->ops = op;
        return 0;
}

/* Spawn the runtime with the subcommand `cmd` and the fds stdio_in[3] as its 0,1,2 (-1:
 * /dev/null; -2: a pipe captured into the op), and for checkpoint/restore CRIU's
 * extras. Completion goes through the reaper. */
/* The environment of this process with one more "KEY=value" (replacing KEY's own).
 * The array is malloc'd, its strings are environ's and assign's. */
extern char **environ;
static char **env_with(const char *assign) {
        size_t n = 0, klen = strcspn(assign, "=") + 1;
        while (environ[n])
                n++;
        char **env = calloc(n + 2, sizeof *env);
        if (!env)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], assign, klen) != 0)
                        env[k++] = environ[i];
        env[k++] = (char *)assign;
        env[k] = NULL;
        return env;
}

/* What checkpoint and restore add to a call: CRIU's configuration file, and its log. */
struct criu_extra {
        const char *config;
        char *log; /* taken by the op */
};

static int spawn_full(struct runtime *rt, const char *name, const char *const *cmd, const int stdio_in[3],
                      struct criu_extra *criu, runtime_done_fn done, void *ud) {
        /* Looked up once, not at every exec: execvp tries each PATH entry in turn, and
         * every failed execve costs (~0.1 ms each here). */
        if (!rt->resolved && !(rt->resolved = binary_resolve(rt->binary)))
                return spawn_missing(rt, name, done, ud);
        struct runtime_config cfg = {rt->binary, rt->root, rt->log_path, rt->systemd_cgroup, rt->criu};
        char **argv = NULL;
        int r = runtime_build_argv(&cfg, cmd, &argv);
        if (r < 0)
                return r;
        _cleanup_free_ char *env_assign = NULL;
        _cleanup_free_ char **envp = NULL;
        if (criu && criu->config && (asprintf(&env_assign, "CRIU_CONFIG_FILE=%s", criu->config) < 0 ||
                                     !(envp = env_with(env_assign)))) {
                runtime_argv_free(argv);
                return -ENOMEM;
        }
        struct runtime_op *op = calloc(1, sizeof *op);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        int child_fds[3];
        if (!op || devnull < 0 || !(op->name = strdup(name))) {
                r = -ENOMEM;
                goto fail;
        }
        op->out.fd = op->err.fd = -1;
        for (int i = 0; i < 3; i++) {
                if (stdio_in[i] >= 0)
                        child_fds[i] = stdio_in[i];
                else if (stdio_in[i] == -2) {
                        int *p = i == 1 ? out_pipe : err_pipe;
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                r = -errno;
                                goto fail;
                        }
                        child_fds[i] = p[1];
                } else
                        child_fds[i] = devnull;
        }
        op->rt = rt;
        op->done = done;
        op->userdata = ud;
        op->log_offset = file_size(rt->log_path);

        reaper_hold(rt->reaper);
        pid_t pid = fork_signals_blocked();
        if (pid < 0) {
                r = (int)pid;
                reaper_release(rt->reaper);
                goto fail;
        }
        if (pid == 0) {
                /* async-signal-safe only from here */
                child_reset_signals();
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* Move the wanted fds above 2 first so that dup2 order cannot clobber them. */
                int tmp[3];
                for (int i = 0; i < 3; i++) {
                        tmp[i] = fcntl(child_fds[i], F_DUPFD_CLOEXEC, 3);
                        if (tmp[i] < 0)
                                _exit(127);
                }
                for (int i = 0; i < 3; i++)
                        if (dup2(tmp[i], i) < 0)
                                _exit(127);
                close_all_fds_except(NULL, 0);
                execve(rt->resolved, argv, envp ? envp : environ);
                if (errno == ENOENT) /* moved since it was looked up */
                        execvp(argv[0], argv);
                _exit(127);
        }
        op->pid = pid;
        if (criu)
                op->criu_log = TAKE_PTR(criu->log);
        runtime_argv_free(argv);
        argv = NULL;
        close(devnull);
        if (out_pipe[1] >= 0)
                close(out_pipe[1]);
        if (err_pipe[1] >= 0)
                close(err_pipe[1]);
        if (out_pipe[0] >= 0)
                fd_set_nonblock(out_pipe[0], true);
        if (err_pipe[0] >= 0)
                fd_set_nonblock(err_pipe[0], true);
        capture_init(op, &op->out, out_pipe[0], CAPTURE_OUT_MAX);
        capture_init(op, &op->err, err_pipe[0], CAPTURE_ERR_MAX);
        op->next = rt->ops;
        rt->ops = op;
        r = reaper_watch(rt->reaper, pid, on_runtime_exit, op);
        if (r < 0)
                log_error_errno(r, "cannot watch runtime pid %d: %m", (int)pid); /* cannot happen: fresh pid */
        log_debug("runtime: %s %s (pid %d)", rt->binary, name, (int)pid);
        return 0;
fail:
        runtime_argv_free(argv);
        safe_close(devnull);
        for (int i = 0; i < 2; i++) {
                safe_close(out_pipe[i]);
                safe_close(err_pipe[i]);
        }
        if (op) {
                free(op->name);
                free(op);
        }
        return r;
}

static int spawn(struct runtime *rt, const char *name, const char *const *cmd, const int stdio_in[3],
                 runtime_done_fn done, void *ud) {
        return spawn_full(rt, name, cmd, stdio_in, NULL, done, ud);
}

int runtime_new(struct ev_loop *loop, struct reaper *reaper, const struct runtime_config *cfg, struct runtime **ret) {
        struct runtime *rt = calloc(1, sizeof *rt);
        if (!rt)
                return -ENOMEM;
        rt->loop = loop;
        rt->reaper = reaper;
        rt->binary = strdup(cfg->binary && *cfg->binary ? cfg->binary : "runc");
        rt->root = cfg->root ? strdup(cfg->root) : NULL;
        rt->log_path = cfg->log_path ? strdup(cfg->log_path) : NULL;
        rt->systemd_cgroup = cfg->systemd_cgroup;
        rt->criu = cfg->criu && *cfg->criu ? strdup(cfg->criu) : NULL;
        if (!rt->binary || (cfg->root && !rt->root) || (cfg->log_path && !rt->log_path) ||
            (cfg->criu && *cfg->criu && !rt->criu)) {
                runtime_free(rt);
                return -ENOMEM;
        }
        *ret = rt;
        return 0;
}

struct runtime *runtime_free(struct runtime *rt) {
        if (!rt)
                return NULL;
        /* Calls still running are detached: their children are reaped, callbacks never run. */
        while (rt->ops) {
                struct runtime_op *op = rt->ops;
                rt->ops = op->next;
                if (op->missing)
                        op_free(rt->loop, op);
                else {
                        reaper_release(rt->reaper);
                        op->rt = NULL;
                }
        }
        free(rt->binary);
        free(rt->resolved);
        free(rt->root);
        free(rt->log_path);
        free(rt->criu);
        free(rt);
        return NULL;
}

/* ---- the calls ------------------------------------------------------------------ */

static const int CAPTURE_ERR[3] = {-1, -1, -2};
static const int CAPTURE_BOTH[3] = {-1, -2, -2};

static int simple(struct runtime *rt, const char *name, const char *const *cmd, runtime_done_fn done, void *ud) {
        return spawn(rt, name, cmd, CAPTURE_ERR, done, ud);
}

/* The options create, run and restore share, appended to cmd at *k. */
static void bundle_args(const char **cmd, size_t *k, const char *bundle, const char *pid_file,
                        const char *console_socket, bool no_pivot) {
        cmd[(*k)++] = "--bundle";
        cmd[(*k)++] = bundle;
        cmd[(*k)++] = "--pid-file";
        cmd[(*k)++] = pid_file;
        if (console_socket) {
                cmd[(*k)++] = "--console-socket";
                cmd[(*k)++] = console_socket;
        }
        if (no_pivot)
                cmd[(*k)++] = "--no-pivot";
}

static int create_or_run(struct runtime *rt, bool run, const struct runtime_create_opts *o, runtime_done_fn done,
                         void *ud) {
        const char *cmd[16];
        size_t k = 0;
        cmd[k++] = run ? "run" : "create";
        if (run)
                cmd[k++] = "--detach";
        bundle_args(cmd, &k, o->bundle, o->pid_file, o->console_socket, o->no_pivot);
        if (o->no_new_keyring)
                cmd[k++] = "--no-new-keyring";
        cmd[k++] = o->id;
        cmd[k] = NULL;
        return spawn(rt, cmd[0], cmd, o->stdio, done, ud);
}

int runtime_create(struct runtime *rt, const struct runtime_create_opts *o, runtime_done_fn done, void *ud) {
        return create_or_run(rt, false, o, done, ud);
}

int runtime_run(struct runtime *rt, const struct runtime_create_opts *o, runtime_done_fn done, void *ud) {
        return create_or_run(rt, true, o, done, ud);
}

int runtime_start(struct runtime *rt, const char *id, runtime_done_fn done, void *ud) {
        const char *cmd[] = {"start", id, NULL};
        return simple(rt, "start", cmd, done, ud);
}

int runtime_kill(struct runtime *rt, const char *id, int sig, bool all, runtime_done_fn done, void *ud) {
        char signum[16];
        snprintf(signum, sizeof signum, "%d", sig);
        const char *cmd[] = {"kill", all ? "--all" : id, all ? id : signum, all ? signum : NULL, NULL};
        return simple(rt, "kill", cmd, done, ud);
}

int runtime_delete(struct runtime *rt, const char *id, bool force, runtime_done_fn done, void *ud) {
        const char *cmd[] = {"delete", force ? "--force" : id, force ? id : NULL, NULL};
        return simple(rt, "delete", cmd, done, ud);
}

/* What is done in place is done only for runc itself under an explicit root: a wrapper
 * or another runtime gets its own command run, always. */
static int in_place_ok(const struct runtime *rt, char **ret_reason) {
        const char *bin = rt->resolved ? rt->resolved : rt->binary;
        const char *base = strrchr(bin, '/');
        base = base ? base + 1 : bin;
        if (strcmp(base, "runc") != 0)
                return error_setf(ret_reason, "the runtime is %s, not runc", base), -EOPNOTSUPP;
        if (!rt->root)
                return error_setf(ret_reason, "no explicit runtime root"), -EOPNOTSUPP;
        return 0;
}

int runtime_delete_in_place_possible(struct runtime *rt, char **ret_reason) {
        int r = in_place_ok(rt, ret_reason);
        if (r < 0)
                return r;
        if (rt->systemd_cgroup)
                return error_setf(ret_reason, "systemd cgroup driver"), -EOPNOTSUPP;
        return 0;
}

int runtime_delete_stopped_in_place(struct runtime *rt, const char *id, pid_t init_pid, char **ret_reason) {
        int r = runtime_delete_in_place_possible(rt, ret_reason);
        if (r < 0)
                return r;
        return runc_state_remove(rt->root, id, init_pid, "/sys/fs/cgroup/", ret_reason);
}

int runtime_start_in_place(struct runtime *rt, const char *id, char **ret_reason) {
        int r = in_place_ok(rt, ret_reason);
        if (r < 0)
                return r;
        if (getenv("NOTIFY_SOCKET"))
                return error_setf(ret_reason, "NOTIFY_SOCKET is set"), -EOPNOTSUPP;
        return runc_exec_fifo_open(rt->root, id, ret_reason);
}

int runtime_start_in_place_finish(struct runtime *rt, const char *id, int fd, char **ret_error) {
        return runc_exec_fifo_read(fd, rt->root, id, ret_error);
}

int runtime_state(struct runtime *rt, const char *id, runtime_done_fn done, void *ud) {
        const char *cmd[] = {"state", id, NULL};
        return spawn(rt, "state", cmd, CAPTURE_BOTH, done, ud);
}

int runtime_ps(struct runtime *rt, const char *id, runtime_done_fn done, void *ud) {
        const char *cmd[] = {"ps", "--format", "json", id, NULL};
        return spawn(rt, "ps", cmd, CAPTURE_BOTH, done, ud);
}

int runtime_exec(struct runtime *rt, const struct runtime_exec_opts *o, runtime_done_fn done, void *ud) {
        const char *cmd[16];
        size_t k = 0;
        cmd[k++] = "exec";
        cmd[k++] = "--process";
        cmd[k++] = o->process_file;
        if (o->detach)
                cmd[k++] = "--detach";
        cmd[k++] = "--pid-file";
        cmd[k++] = o->pid_file;
        if (o->console_socket) {
                cmd[k++] = "--console-socket";
                cmd[k++] = o->console_socket;
        }
        cmd[k++] = o->id;
        cmd[k] = NULL;
        return spawn(rt, "exec", cmd, o->stdio, done, ud);
}

int runtime_pause(struct runtime *rt, const char *id, runtime_done_fn done, void *ud) {
        const char *cmd[] = {"pause", id, NULL};
        return simple(rt, "pause", cmd, done, ud);
}

int runtime_resume(struct runtime *rt, const char *id, runtime_done_fn done, void *ud) {
        const char *cmd[] = {"resume", id, NULL};
        return simple(rt, "resume", cmd, done, ud);
}

int runtime_update(struct runtime *rt, const char *id, const char *resources_json, runtime_done_fn done, void *ud) {
        /* A memfd as stdin: written up front, so nothing can block. */
        _cleanup_close_ int fd = memfd_create("nanoshim-resources", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = loop_write(fd, resources_json, strlen(resources_json));
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        const char *cmd[] = {"update", "--resources", "-", id, NULL};
        int in[3] = {fd, -1, -2};
        return spawn(rt, "update", cmd, in, done, ud);
}

/* The options checkpoint and restore share, appended to cmd at *k. */
static void criu_common_args(const char **cmd, size_t *k, const char *image_path, const char *work_path,
                             bool tcp, bool ext_unix, bool shell_job, bool file_locks, const char *const *empty_ns,
                             const char *cgroups_mode) {
        cmd[(*k)++] = "--image-path";
        cmd[(*k)++] = image_path;
        if (work_path && *work_path) {
                cmd[(*k)++] = "--work-path";
                cmd[(*k)++] = work_path;
        }
        if (tcp)
                cmd[(*k)++] = "--tcp-established";
        if (ext_unix)
                cmd[(*k)++] = "--ext-unix-sk";
        if (shell_job)
                cmd[(*k)++] = "--shell-job";
        if (file_locks)
                cmd[(*k)++] = "--file-locks";
        for (size_t i = 0; empty_ns && empty_ns[i]; i++) {
                cmd[(*k)++] = "--empty-ns";
                cmd[(*k)++] = empty_ns[i];
        }
        if (cgroups_mode && *cgroups_mode) {
                cmd[(*k)++] = "--manage-cgroups-mode";
                cmd[(*k)++] = cgroups_mode;
        }
}

static size_t count_strv(const char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

#define CRIU_EMPTY_NS_MAX 16

static int criu_extra_init(struct criu_extra *x, const char *config, const char *image_path, const char *work_path,
                           const char *log_name) {
        x->config = config && *config ? config : NULL;
        x->log = NULL;
        if (asprintf(&x->log, "%s/%s", work_path && *work_path ? work_path : image_path, log_name) < 0)
                return -ENOMEM;
        return 0;
}

int runtime_checkpoint(struct runtime *rt, const struct runtime_checkpoint_opts *o, runtime_done_fn done, void *ud) {
        if (!o->image_path || !*o->image_path || count_strv(o->empty_ns) > CRIU_EMPTY_NS_MAX)
                return -EINVAL;
        const char *cmd[32 + 2 * CRIU_EMPTY_NS_MAX];
        size_t k = 0;
        cmd[k++] = "checkpoint";
        criu_common_args(cmd, &k, o->image_path, o->work_path, o->tcp_established, o->ext_unix_sk, o->shell_job,
                         o->file_locks, o->empty_ns, o->manage_cgroups_mode);
        if (o->parent_path && *o->parent_path) {
                cmd[k++] = "--parent-path";
                cmd[k++] = o->parent_path;
        }
        if (o->pre_dump)
                cmd[k++] = "--pre-dump";
        else if (o->leave_running)
                cmd[k++] = "--leave-running";
        cmd[k++] = o->id;
        cmd[k] = NULL;
        struct criu_extra x;
        /* runc names CRIU's log of a pre-dump as of a dump */
        if (criu_extra_init(&x, o->criu_config, o->image_path, o->work_path, "dump.log") < 0)
                return -ENOMEM;
        int r = spawn_full(rt, "checkpoint", cmd, CAPTURE_ERR, &x, done, ud);
        free(x.log);
        return r;
}

int runtime_restore(struct runtime *rt, const struct runtime_restore_opts *o, runtime_done_fn done, void *ud) {
        if (!o->image_path || !*o->image_path || count_strv(o->empty_ns) > CRIU_EMPTY_NS_MAX)
                return -EINVAL;
        const char *cmd[40 + 2 * CRIU_EMPTY_NS_MAX];
        size_t k = 0;
        cmd[k++] = "restore";
        cmd[k++] = "--detach";
        /* the shim is the subreaper already */
        cmd[k++] = "--no-subreaper";
        bundle_args(cmd, &k, o->bundle, o->pid_file, o->console_socket, o->no_pivot);
        criu_common_args(cmd, &k, o->image_path, o->work_path, o->tcp_established, o->ext_unix_sk, o->shell_job,
                         o->file_locks, o->empty_ns, o->manage_cgroups_mode);
        cmd[k++] = o->id;
        cmd[k] = NULL;
        struct criu_extra x;
        if (criu_extra_init(&x, o->criu_config, o->image_path, o->work_path, "restore.log") < 0)
                return -ENOMEM;
        int r = spawn_full(rt, "restore", cmd, o->stdio, &x, done, ud);
        free(x.log);
        return r;
}
