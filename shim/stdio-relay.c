/* SPDX-License-Identifier: Apache-2.0 */
/* Relaying a process's stdio without ever blocking the loop. */
#include "stdio-relay.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "reaper.h"

#define RELAY_CHUNK (64u * 1024) /* one splice, or the size of the fallback buffer */

/* One direction: src -> dst. Interest in src/dst follows the state: a full destination
 * stops reading the source (back-pressure), never the loop. */
#define RELAY_PIPE_SIZE (1 << 20)

struct stream {
        struct stdio *s;
        const char *name;
        int src, dst;
        bool own_src, own_dst;
        int keepalive;        /* stdout/stderr: our reader on the client's FIFO, closed with dst */
        ev_io rw, ww;
        bool splice_ok;
        char *buf;            /* fallback when splice cannot be used (pty, regular file source) */
        size_t len, off;
        bool discard;         /* destination broken: drain the source so the writer never blocks */
        bool done;
        bool active;
        bool is_output;
};

struct stdio {
        struct ev_loop *loop;
        struct reaper *reaper;
        double logger_kill_s;
        bool terminal;
        bool direct;          /* see stdio_config.direct */
        /* the child's ends, until stdio_start */
        int child[3];
        /* the client's ends */
        int stdin_r, stdin_keepalive;
        int out_w[2], out_keepalive[2];
        /* our ends of the pipes */
        int stdin_pipe_w, out_pipe_r[2];
        /* terminal */
        char *console_dir, *console_path;
        int console_listen;
        int master;
        /* binary:// logger */
        pid_t logger_pid;
        int logger_ready;
        ev_io ready_w;
        void (*ready_fn)(struct stdio *, int, void *);
        void *ready_ud;
        ev_timer ready_t;
        struct stream streams[3]; /* stdin, stdout, stderr */
        size_t n_streams;
        bool started;
        stdio_drained_fn drained_fn;
        void *drained_ud;
        ev_timer drain_timer;
        ev_timer drain_now;
};

/* ---- URIs ---------------------------------------------------------------------- */

void stdio_uri_done(struct stdio_uri *u) {
        free(u->path);
        for (size_t i = 0; i < u->n_args; i++)
                free(u->args[i]);
        free(u->args);
        *u = (struct stdio_uri){0};
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* URL unescaping: "%XX"; '+' means a space only in a query (as Go's QueryUnescape). */
static char *percent_decode(const char *s, size_t n, bool plus_is_space) {
        char *out = malloc(n + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                        out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else if (s[i] == '+' && plus_is_space)
                        out[o++] = ' ';
                else
                        out[o++] = s[i];
        }
        out[o] = 0;
        if (memchr(out, 0, o)) { /* an encoded NUL */
                free(out);
                return NULL;
        }
        return out;
}

static int uri_error(char **ret_error, const char *fmt, const char *uri) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (ret_error && asprintf(ret_error, fmt, uri) < 0)
                *ret_error = NULL;
#pragma GCC diagnostic pop
        return -EINVAL;
}

int stdio_uri_parse(const char *uri, struct stdio_uri *ret, char **ret_error) {
        struct stdio_uri u = {0};
        if (!uri || !*uri) {
                *ret = u;
                return 0;
        }
        if (strlen(uri) > 4096)
                return uri_error(ret_error, "stdio URI longer than 4096 bytes: \"%.64s...\"", uri);
        const char *rest;
        if (uri[0] == '/') {
                u.scheme = STDIO_FIFO;
                rest = uri;
        } else if (strncmp(uri, "fifo://", 7) == 0) {
                u.scheme = STDIO_FIFO;
                rest = uri + 7;
        } else if (strncmp(uri, "file://", 7) == 0) {
                u.scheme = STDIO_FILE;
                rest = uri + 7;
        } else if (strncmp(uri, "binary://", 9) == 0) {
                u.scheme = STDIO_BINARY;
                rest = uri + 9;
        } else if (strstr(uri, "://")) {
                if (ret_error && asprintf(ret_error, "unknown STDIO scheme %.*s", (int)MIN(strstr(uri, "://") - uri, 64),
                                          uri) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        else
                return uri_error(ret_error, "stdio path must be absolute: \"%.200s\"", uri);
        const char *q = u.scheme == STDIO_BINARY ? strchr(rest, '?') : NULL;
        size_t plen = q ? (size_t)(q - rest) : strlen(rest);
        if (plen == 0 || rest[0] != '/')
                return uri_error(ret_error, "stdio URI needs an absolute path: \"%.200s\"", uri);
        /* A bare path is taken as it is (runc-v2 uses the raw string for FIFOs). */
        u.path = uri[0] == '/' ? strndup(rest, plen) : percent_decode(rest, plen, false);
        if (!u.path)
                return uri_error(ret_error, "bad escape in stdio URI \"%.200s\"", uri);
        if (strstr(u.path, "/../") || (strlen(u.path) >= 3 && strcmp(u.path + strlen(u.path) - 3, "/..") == 0)) {
                stdio_uri_done(&u);
                return uri_error(ret_error, "stdio path must not contain \"..\": \"%.200s\"", uri);
        }
        if (q && q[1]) {
                /* key=value&key2=value2 -> args key, value, key2, value2 */
                size_t cap = 2;
                for (const char *p = q + 1; *p; p++)
                        if (*p == '&')
                                cap += 2;
                u.args = calloc(cap + 1, sizeof(char *));
                if (!u.args) {
                        stdio_uri_done(&u);
                        return -ENOMEM;
                }
                const char *p = q + 1;
                while (*p) {
                        const char *amp = strchr(p, '&');
                        size_t l = amp ? (size_t)(amp - p) : strlen(p);
                        const char *eq = memchr(p, '=', l);
                        size_t kl = eq ? (size_t)(eq - p) : l;
                        if (kl > 0) {
                                /* An empty value adds no argument (runc-v2: "?--debug" -> "--debug"). */
                                bool has_value = eq && l - kl - 1 > 0;
                                u.args[u.n_args++] = percent_decode(p, kl, true);
                                if (has_value)
                                        u.args[u.n_args++] = percent_decode(eq + 1, l - kl - 1, true);
                                if (!u.args[u.n_args - 1] || (has_value && !u.args[u.n_args - 2])) {
                                        stdio_uri_done(&u);
                                        return uri_error(ret_error, "bad query in stdio URI \"%.200s\"", uri);
                                }
                        }
                        p += l;
                        if (*p == '&')
                                p++;
                }
        }
        *ret = u;
        return 0;
}

/* ---- streams --------------------------------------------------------------------- */

static void stream_close(struct stream *st) {
        struct ev_loop *loop = st->s->loop;
        ev_io_stop(loop, &st->rw);
        ev_io_stop(loop, &st->ww);
        if (st->own_src)
                safe_close(st->src);
        if (st->own_dst)
                safe_close(st->dst);
        st->keepalive = safe_close(st->keepalive);
        st->src = st->dst = -1;
        free(st->buf);
        st->buf = NULL;
        st->done = true;
}

static void check_drained(struct stdio *s);

static void stream_finish(struct stream *st) {
        if (st->done)
                return;
        stream_close(st);
        if (st->is_output)
                check_drained(st->s);
}

static void stream_want(struct stream *st, bool read, bool write) {
        struct ev_loop *loop = st->s->loop;
        if (read)
                ev_io_start(loop, &st->rw);
        else
                ev_io_stop(loop, &st->rw);
        if (write)
                ev_io_start(loop, &st->ww);
        else
                ev_io_stop(loop, &st->ww);
}

/* Move what can be moved now; re-arm the watchers for what is left. */
static void stream_pump(struct stream *st) {
        for (int rounds = 0; rounds < 16 && !st->done; rounds++) {
                if (st->splice_ok && !st->discard) {
                        ssize_t n = splice(st->src, NULL, st->dst, NULL, RELAY_CHUNK, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
                        if (n > 0)
                                continue;
                        if (n == 0) {
                                stream_finish(st);
                                return;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                /* Either nothing to read or no room to write: wait for room first;
                                 * if there is room the write watcher fires at once and we go back
                                 * to waiting for data. */
                                stream_want(st, false, true);
                                return;
                        }
                        if (errno == EINVAL || errno == ENOSYS) {
                                st->splice_ok = false; /* not splice-able: copy through the buffer */
                                continue;
                        }
                        log_debug("stdio %s: destination failed (%m), discarding", st->name);
                        st->discard = true;
                        continue;
                }
                if (!st->buf) {
                        st->buf = malloc(RELAY_CHUNK);
                        if (!st->buf) {
                                stream_want(st, true, false); /* try again later */
                                return;
                        }
                }
                if (st->len == 0) {
                        ssize_t n = read(st->src, st->buf, RELAY_CHUNK);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN) {
                                stream_want(st, true, false);
                                return;
                        }
                        if (n <= 0) { /* EOF; EIO on a pty master whose other side is gone */
                                stream_finish(st);
                                return;
                        }
                        st->len = (size_t)n;
                        st->off = 0;
                }
                if (st->discard) {
                        st->len = st->off = 0;
                        continue;
                }
                ssize_t w = write(st->dst, st->buf + st->off, st->len - st->off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        stream_want(st, false, true);
                        return;
                }
                if (w < 0) {
                        log_debug("stdio %s: destination failed (%m), discarding", st->name);
                        st->discard = true;
                        continue;
                }
                st->off += (size_t)w;
                if (st->off == st->len)
                        st->len = st->off = 0;
        }
        if (!st->done)
                stream_want(st, st->len == 0, st->len > 0);
}

static void on_stream_read(struct ev_loop *loop, ev_io *w, int revents) {
        stream_pump(w->data);
}

static void on_stream_write(struct ev_loop *loop, ev_io *w, int revents) {
        struct stream *st = w->data;
        if (st->splice_ok && st->len == 0) {
                /* room again: go back to waiting for data */
                stream_want(st, true, false);
                return;
        }
        stream_pump(st);
}

static void stream_add(struct stdio *s, const char *name, int src, bool own_src, int dst, bool own_dst,
                       int keepalive, bool is_output) {
        struct stream *st = &s->streams[s->n_streams++];
        /* splice between two pipes (FIFOs are pipes) needs no buffer; anything else (a pty
         * master, whose EIO would be ambiguous, an O_APPEND file splice refuses) copies
         * through the fixed buffer. */
        struct stat sst, dst_st;
        bool both_pipes = fstat(src, &sst) == 0 && fstat(dst, &dst_st) == 0 && S_ISFIFO(sst.st_mode) &&
                          S_ISFIFO(dst_st.st_mode);
        *st = (struct stream){.s = s, .name = name, .src = src, .dst = dst, .own_src = own_src,
                              .own_dst = own_dst, .keepalive = keepalive, .splice_ok = both_pipes,
                              .is_output = is_output, .active = true};
        fd_set_nonblock(src, true);
        fd_set_nonblock(dst, true);
        ev_io_init(&st->rw, on_stream_read, src, EV_READ);
        st->rw.data = st;
        ev_io_init(&st->ww, on_stream_write, dst, EV_WRITE);
        st->ww.data = st;
        ev_io_start(s->loop, &st->rw);
}

/* ---- drain ------------------------------------------------------------------------ */

static bool outputs_done(const struct stdio *s) {
        for (size_t i = 0; i < s->n_streams; i++)
                if (s->streams[i].is_output && !s->streams[i].done)
                        return false;
        return true;
}

static void drained_call(struct stdio *s) {
        ev_timer_stop(s->loop, &s->drain_timer);
        ev_timer_stop(s->loop, &s->drain_now);
        stdio_drained_fn fn = s->drained_fn;
        s->drained_fn = NULL;
        if (fn)
                fn(s, s->drained_ud);
}

static void check_drained(struct stdio *s) {
        if (s->drained_fn && outputs_done(s) && !ev_is_active(&s->drain_now)) {
                ev_timer_set(&s->drain_now, 0, 0);
                ev_timer_start(s->loop, &s->drain_now);
        }
}

static void on_drain_now(struct ev_loop *loop, ev_timer *w, int revents) {
        drained_call(w->data);
}

static void on_drain_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
        struct stdio *s = w->data;
        log_debug("stdio: drain deadline passed with output still open (a process keeps the pipe)");
        drained_call(s);
}

void stdio_drain(struct stdio *s, double deadline_s, stdio_drained_fn fn, void *userdata) {
        s->drained_fn = fn;
        s->drained_ud = userdata;
        if (s->direct) {
                /* Everything the process wrote is in the client's FIFO already; dropping
                 * our ends lets the client see EOF. */
                s->out_w[0] = safe_close(s->out_w[0]);
        }
        if (!s->started || outputs_done(s)) {
                ev_timer_set(&s->drain_now, 0, 0);
                ev_timer_start(s->loop, &s->drain_now);
                return;
        }
        ev_timer_set(&s->drain_timer, deadline_s, 0);
        ev_timer_start(s->loop, &s->drain_timer);
}

/* ---- opening the client's ends ------------------------------------------------------ */

static int open_checked(const char *path, int flags, bool want_fifo) {
        int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        if (want_fifo ? !S_ISFIFO(st.st_mode) : !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADFD;
        }
        return fd;
}

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *d = strdup(path);
        if (!d)
                return -ENOMEM;
        for (char *p = d + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(d, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        return 0;
}

/* An output destination: (keep-alive reader, writer) on a FIFO, or an append writer. */
static int open_output(const struct stdio_uri *u, int *ret_w, int *ret_keepalive, char **ret_error) {
        if (u->scheme == STDIO_FILE) {
                int r = mkdir_parents(u->path);
                if (r < 0)
                        return (uri_error(ret_error, "cannot create the directory of %s", u->path), r);
                int fd = open(u->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
                if (fd < 0) {
                        r = -errno;
                        uri_error(ret_error, "cannot open log file %s", u->path);
                        return r;
                }
                *ret_w = fd;
                *ret_keepalive = -1;
                return 0;
        }
        struct stat st;
        if (lstat(u->path, &st) < 0) {
                int r = -errno;
                uri_error(ret_error, "cannot open %s: no such FIFO or file", u->path);
                return r;
        }
        if (S_ISREG(st.st_mode)) {
                int fd = open_checked(u->path, O_WRONLY | O_APPEND, false);
                if (fd < 0)
                        uri_error(ret_error, "cannot open %s for appending", u->path);
                else {
                        *ret_w = fd;
                        *ret_keepalive = -1;
                }
                return fd < 0 ? fd : 0;
        }
        if (!S_ISFIFO(st.st_mode))
                return uri_error(ret_error, "%s is neither a FIFO nor a regular file (a symlink is refused)", u->path);
        /* One fd, read-write: our writer, and a reader too, so the FIFO never has no
         * reader (no EPIPE while the client is away, e.g. containerd restarting) and
         * opening never blocks. The client sees EOF once it is closed. */
        int w = open_checked(u->path, O_RDWR | O_NONBLOCK, true);
        if (w < 0)
                return (uri_error(ret_error, "cannot open FIFO %s", u->path), w);
        *ret_w = w;
        *ret_keepalive = -1;
        return 0;
}

static int open_stdin(const struct stdio_uri *u, int *ret_r, int *ret_keepalive, char **ret_error) {
        if (u->scheme != STDIO_FIFO)
                return uri_error(ret_error, "stdin must be a FIFO path, not \"%.200s\"", u->path);
        int r = open_checked(u->path, O_RDONLY | O_NONBLOCK, true);
        if (r < 0)
                return (uri_error(ret_error, "cannot open stdin FIFO %s (missing, not a FIFO, or a symlink)",
                                 u->path), r);
        /* our own writer: a reader sees EOF only once the client's writer and this are gone */
        int kw = open_checked(u->path, O_WRONLY | O_NONBLOCK, true);
        if (kw < 0) {
                close(r);
                return (uri_error(ret_error, "cannot open stdin FIFO %s for writing", u->path), kw);
        }
        *ret_r = r;
        *ret_keepalive = kw;
        return 0;
}

/* Direct mode: the container's own fds on the client's FIFOs/files. stdin: a read end
 * of the FIFO (blocking; our keep-alive writer holds off EOF until CloseIO, and lets
 * this open return at once). Output: a write-only, blocking open of the same FIFO (we
 * keep our read-write end: the FIFO never loses its reader), or an append writer of the
 * same file. Each is a fresh open of what we opened (through /proc/self/fd, which names
 * the file we checked, not the path again), without our O_NOFOLLOW and O_NONBLOCK: CRIU
 * reopens a checkpointed container's files with the flags they carry, and O_NOFOLLOW on
 * its /proc/self/fd path would fail. */
static int reopen_for_child(int fd, int flags) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int w = open(path, flags | O_CLOEXEC | O_NOCTTY);
        return w < 0 ? -errno : w;
}

/* stdin and stdout (stderr: see stdio_new). */
static int direct_child_fds(struct stdio *s) {
        if (s->stdin_r >= 0) {
                int fd = reopen_for_child(s->stdin_r, O_RDONLY);
                if (fd < 0)
                        return fd;
                s->child[0] = fd;
                s->stdin_r = safe_close(s->stdin_r);
        }
        if (s->out_w[0] >= 0) {
                struct stat st;
                if (fstat(s->out_w[0], &st) < 0)
                        return -errno;
                int fd = reopen_for_child(s->out_w[0], S_ISFIFO(st.st_mode) ? O_WRONLY : O_WRONLY | O_APPEND);
                if (fd < 0)
                        return fd;
                s->child[1] = fd;
        }
        return 0;
}

/* ---- binary:// loggers -------------------------------------------------------------- */

/* A logger sent SIGTERM when its stdio went: SIGKILL if it is still there later. The
 * stdio is gone by then, so this outlives it (all of them listed, for the shim's exit). */
struct lingering_logger {
        struct lingering_logger *next;
        struct ev_loop *loop;
        struct reaper *reaper;
        ev_timer deadline;
        double after;
        pid_t pid;
};
static struct lingering_logger *lingering;

static void lingering_forget(struct lingering_logger *l) {
        struct lingering_logger **pp = &lingering;
        while (*pp && *pp != l)
                pp = &(*pp)->next;
        if (*pp)
                *pp = l->next;
        ev_timer_stop(l->loop, &l->deadline);
        free(l);
}

static void on_lingering_exit(pid_t pid, int status, void *ud) {
        log_debug("stdio: logger %d exited with status %d", (int)pid, exit_status_from_wait(status));
        lingering_forget(ud);
}

static void on_lingering_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
        struct lingering_logger *l = w->data;
        log_warn("stdio: logger %d still running %g s after SIGTERM: killing it", (int)l->pid, l->after);
        kill(l->pid, SIGKILL); /* its exit comes through the reaper: on_lingering_exit */
}

static void logger_stop(struct stdio *s) {
        struct lingering_logger *l = s->reaper ? calloc(1, sizeof *l) : NULL;
        if (s->reaper)
                reaper_unwatch(s->reaper, s->logger_pid);
        if (l && reaper_watch(s->reaper, s->logger_pid, on_lingering_exit, l) == 0) {
                l->loop = s->loop;
                l->reaper = s->reaper;
                l->pid = s->logger_pid;
                l->after = s->logger_kill_s > 0 ? s->logger_kill_s : LOGGER_KILL_S;
                ev_timer_init(&l->deadline, on_lingering_deadline, l->after, 0.);
                l->deadline.data = l;
                ev_timer_start(s->loop, &l->deadline);
                l->next = lingering;
                lingering = l;
        } else
                free(l); /* its exit is then reaped as an orphan's */
        kill(s->logger_pid, SIGTERM);
        s->logger_pid = 0;
}

void stdio_kill_lingering_loggers(void) {
        while (lingering) {
                struct lingering_logger *l = lingering;
                kill(l->pid, SIGKILL);
                reaper_unwatch(l->reaper, l->pid);
                lingering_forget(l);
        }
}

static void on_logger_exit(pid_t pid, int status, void *ud) {
        struct stdio *s = ud;
        log_debug("stdio: logger %d exited with status %d", (int)pid, exit_status_from_wait(status));
        if (s)
                s->logger_pid = 0;
}

static int spawn_logger(struct stdio *s, const struct stdio_uri *u, const struct stdio_config *cfg, int out_r,
                        int err_r, char **ret_error) {
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        char id_env[128], ns_env[128];
        snprintf(id_env, sizeof id_env, "CONTAINER_ID=%s", cfg->container_id ? cfg->container_id : "");
        snprintf(ns_env, sizeof ns_env, "CONTAINER_NAMESPACE=%s", cfg->namespace ? cfg->namespace : "");
        char *envp[] = {id_env, ns_env, NULL};
        char **argv = calloc(u->n_args + 2, sizeof *argv);
        if (!argv) {
                close(ready[0]);
                close(ready[1]);
                return -ENOMEM;
        }
        argv[0] = u->path;
        for (size_t i = 0; i < u->n_args; i++)
                argv[i + 1] = u->args[i];
        if (cfg->reaper)
                reaper_hold(cfg->reaper);
        pid_t pid = fork_signals_blocked();
        if (pid < 0) {
                int e = (int)-pid;
                if (cfg->reaper)
                        reaper_release(cfg->reaper);
                free(argv);
                close(ready[0]);
                close(ready[1]);
                return -e;
        }
        if (pid == 0) {
                child_reset_signals();
                int devnull = open("/dev/null", O_RDWR);
                int o = fcntl(out_r >= 0 ? out_r : devnull, F_DUPFD, 10);
                int e = fcntl(err_r >= 0 ? err_r : devnull, F_DUPFD, 10);
                int rd = fcntl(ready[1], F_DUPFD, 10);
                if (devnull < 0 || o < 0 || e < 0 || rd < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
                    dup2(devnull, 2) < 0 || dup2(o, 3) < 0 || dup2(e, 4) < 0 || dup2(rd, 5) < 0)
                        _exit(127);
                int keep[] = {3, 4, 5};
                close_all_fds_except(keep, 3);
                execve(u->path, argv, envp);
                _exit(127);
        }
        free(argv);
        close(ready[1]);
        s->logger_pid = pid;
        s->logger_ready = ready[0];
        if (cfg->reaper) {
                if (reaper_watch(cfg->reaper, pid, on_logger_exit, s) < 0)
                        log_warn("stdio: cannot watch logger %d", (int)pid);
                reaper_release(cfg->reaper);
        }
        (void)ret_error;
        return 0;
}

/* ---- public -------------------------------------------------------------------------- */

static void on_ready_timer(struct ev_loop *loop, ev_timer *w, int revents) {
        struct stdio *s = w->data;
        void (*fn)(struct stdio *, int, void *) = s->ready_fn;
        s->ready_fn = NULL;
        if (fn)
                fn(s, 0, s->ready_ud);
}

static void on_logger_ready(struct ev_loop *loop, ev_io *w, int revents) {
        struct stdio *s = w->data;
        char c;
        ssize_t n = read(s->logger_ready, &c, 1);
        if (n < 0 && errno == EAGAIN)
                return;
        ev_io_stop(loop, w);
        s->logger_ready = safe_close(s->logger_ready);
        void (*fn)(struct stdio *, int, void *) = s->ready_fn;
        s->ready_fn = NULL;
        if (fn)
                fn(s, 0, s->ready_ud);
}

int stdio_wait_ready(struct stdio *s, void (*fn)(struct stdio *s, int r, void *ud), void *ud) {
        s->ready_fn = fn;
        s->ready_ud = ud;
        if (s->logger_ready >= 0) {
                fd_set_nonblock(s->logger_ready, true);
                ev_io_init(&s->ready_w, on_logger_ready, s->logger_ready, EV_READ);
                s->ready_w.data = s;
                ev_io_start(s->loop, &s->ready_w);
        } else {
                ev_timer_set(&s->ready_t, 0, 0);
                ev_timer_start(s->loop, &s->ready_t);
        }
        return 0;
}

static struct stdio *stdio_alloc(struct ev_loop *loop) {
        struct stdio *s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        s->loop = loop;
        s->child[0] = s->child[1] = s->child[2] = -1;
        s->stdin_r = s->stdin_keepalive = s->stdin_pipe_w = -1;
        s->out_w[0] = s->out_w[1] = s->out_keepalive[0] = s->out_keepalive[1] = -1;
        s->out_pipe_r[0] = s->out_pipe_r[1] = -1;
        s->console_listen = s->master = s->logger_ready = -1;
        ev_timer_init(&s->drain_timer, on_drain_deadline, 0, 0);
        s->drain_timer.data = s;
        ev_timer_init(&s->drain_now, on_drain_now, 0, 0);
        s->drain_now.data = s;
        ev_timer_init(&s->ready_t, on_ready_timer, 0, 0);
        s->ready_t.data = s;
        return s;
}

int stdio_new(struct ev_loop *loop, const struct stdio_config *cfg, struct stdio **ret, char **ret_error) {
        struct stdio *s = stdio_alloc(loop);
        if (!s)
                return -ENOMEM;
        s->terminal = cfg->terminal;
        s->direct = cfg->direct && !cfg->terminal;
        s->reaper = cfg->reaper;
        s->logger_kill_s = cfg->logger_kill_s;
        struct stdio_uri in = {0}, out = {0}, err = {0};
        int r;
        if ((r = stdio_uri_parse(cfg->stdin_uri, &in, ret_error)) < 0 ||
            (r = stdio_uri_parse(cfg->stdout_uri, &out, ret_error)) < 0 ||
            (r = stdio_uri_parse(cfg->stderr_uri, &err, ret_error)) < 0)
                goto fail;
        if (in.scheme != STDIO_NONE && (r = open_stdin(&in, &s->stdin_r, &s->stdin_keepalive, ret_error)) < 0)
                goto fail;
        if (out.scheme == STDIO_BINARY || err.scheme == STDIO_BINARY) {
                const struct stdio_uri *bu = out.scheme == STDIO_BINARY ? &out : &err;
                s->direct = false; /* the logger's pipes are the container's already */
                int op[2] = {-1, -1}, ep[2] = {-1, -1};
                /* With a terminal the relay feeds the pty master into the logger's fd 3
                 * (stderr is merged into the pty; its fd 4 reads /dev/null). */
                if (pipe2(op, O_CLOEXEC) < 0 || (!cfg->terminal && pipe2(ep, O_CLOEXEC) < 0)) {
                        r = -errno;
                        safe_close(op[0]);
                        safe_close(op[1]);
                        goto fail;
                }
                if (cfg->terminal)
                        s->out_w[0] = op[1];
                else {
                        s->child[1] = op[1];
                        s->child[2] = ep[1];
                }
                r = spawn_logger(s, bu, cfg, op[0], ep[0], ret_error);
                close(op[0]);
                safe_close(ep[0]);
                if (r < 0) {
                        uri_error(ret_error, "cannot start logger %s", bu->path);
                        goto fail;
                }
        } else {
                /* When stdout and stderr name the same file, one writer serves both. */
                bool same = out.scheme != STDIO_NONE && err.scheme != STDIO_NONE && strcmp(out.path, err.path) == 0;
                if (out.scheme != STDIO_NONE && (r = open_output(&out, &s->out_w[0], &s->out_keepalive[0], ret_error)) < 0)
                        goto fail;
                if (err.scheme != STDIO_NONE && !s->terminal) {
                        if (same) {
                                /* Each stream owns its copies: the FIFO keeps its keep-alive
                                 * reader until the later of the two reaches EOF. */
                                s->out_w[1] = fcntl(s->out_w[0], F_DUPFD_CLOEXEC, 3);
                                if (s->out_w[1] < 0) {
                                        r = -errno;
                                        goto fail;
                                }
                                if (s->out_keepalive[0] >= 0) {
                                        s->out_keepalive[1] = fcntl(s->out_keepalive[0], F_DUPFD_CLOEXEC, 3);
                                        if (s->out_keepalive[1] < 0) {
                                                r = -errno;
                                                goto fail;
                                        }
                                }
                        } else if ((r = open_output(&err, &s->out_w[1], &s->out_keepalive[1], ret_error)) < 0)
                                goto fail;
                }
        }
        if (!s->terminal) {
                int p[2];
                if (s->direct) {
                        /* stdin and stdout are the client's own; stderr stays relayed: the
                         * runtime writes its own failure there before the container exists,
                         * and that must not reach the client (runc-v2 drops it too) */
                        r = direct_child_fds(s);
                        if (r < 0)
                                goto fail;
                } else if (s->stdin_r >= 0) {
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                r = -errno;
                                goto fail;
                        }
                        s->child[0] = p[0];
                        s->stdin_pipe_w = p[1];
                }
                for (int i = s->direct ? 1 : 0; i < 2; i++) {
                        if (s->out_w[i] < 0)
                                continue;
                        if (pipe2(p, O_CLOEXEC) < 0) {
                                r = -errno;
                                goto fail;
                        }
                        s->out_pipe_r[i] = p[0];
                        s->child[1 + i] = p[1];
                        /* Bigger pipes, fewer and larger splices: a container writing fast
                         * wakes us 16x less often. Pages are only used as data waits.
                         * Best effort (a capped pipe-max-size leaves the default). */
                        (void)fcntl(p[0], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
                        (void)fcntl(s->out_w[i], F_SETPIPE_SZ, RELAY_PIPE_SIZE); /* a FIFO; a file ignores it */
                }
                /* the pipes are ours to give to the io user; the client's FIFOs are not */
                for (int i = s->direct ? 2 : 0; i < 3; i++)
                        if (s->child[i] >= 0 && (cfg->io_uid || cfg->io_gid) &&
                            fchown(s->child[i], cfg->io_uid, cfg->io_gid) < 0) {
                                r = -errno;
                                goto fail;
                        }
        }
        stdio_uri_done(&in);
        stdio_uri_done(&out);
        stdio_uri_done(&err);
        *ret = s;
        return 0;
fail:
        stdio_uri_done(&in);
        stdio_uri_done(&out);
        stdio_uri_done(&err);
        stdio_free(s);
        return r;
}

void stdio_child_fds(const struct stdio *s, int ret_fds[3]) {
        for (int i = 0; i < 3; i++)
                ret_fds[i] = s->child[i];
}

int stdio_console_socket(struct stdio *s, const char **ret_path) {
        if (s->console_dir || s->master >= 0)
                return -EBUSY;
        char tmpl[] = "/tmp/nanoshim-pty-XXXXXX";
        if (!mkdtemp(tmpl))
                return -errno;
        s->console_dir = strdup(tmpl);
        if (!s->console_dir || asprintf(&s->console_path, "%s/pty.sock", tmpl) < 0) {
                rmdir(tmpl);
                return -ENOMEM;
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strncpy(sa.sun_path, s->console_path, sizeof sa.sun_path - 1);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        s->console_listen = fd;
        *ret_path = s->console_path;
        return 0;
}

static void console_cleanup(struct stdio *s) {
        s->console_listen = safe_close(s->console_listen);
        if (s->console_path) {
                unlink(s->console_path);
                free(s->console_path);
                s->console_path = NULL;
        }
        if (s->console_dir) {
                rmdir(s->console_dir);
                free(s->console_dir);
                s->console_dir = NULL;
        }
}

int stdio_console_receive(struct stdio *s) {
        if (s->console_listen < 0)
                return -EBADF;
        _cleanup_close_ int conn = accept4(s->console_listen, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
                int e = errno;
                console_cleanup(s);
                return -e;
        }
        char name[256];
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        struct iovec iov = {name, sizeof name - 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        console_cleanup(s);
        if (n < 0)
                return -errno;
        int fds[4], nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k && nfds < 4; i++)
                                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                }
        if (nfds != 1 || (msg.msg_flags & MSG_CTRUNC)) {
                for (int i = 0; i < nfds; i++)
                        close(fds[i]);
                return -EBADMSG;
        }
        if (!isatty(fds[0])) {
                close(fds[0]);
                return -ENOTTY;
        }
        s->master = fds[0];
        fd_set_nonblock(s->master, true);
        return 0;
}

int stdio_resize(struct stdio *s, unsigned width, unsigned height) {
        if (s->master < 0)
                return 0;
        struct winsize ws = {.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
        if (ioctl(s->master, TIOCSWINSZ, &ws) < 0)
                return -errno;
        return 0;
}

int stdio_start(struct stdio *s) {
        if (s->started)
                return 0;
        s->started = true;
        for (int i = 0; i < 3; i++)
                s->child[i] = safe_close(s->child[i]);
        if (s->terminal) {
                if (s->master < 0)
                        return 0;
                if (s->stdin_r >= 0) {
                        stream_add(s, "stdin", s->stdin_r, true, s->master, false, -1, false);
                        s->stdin_r = -1;
                }
                if (s->out_w[0] >= 0) {
                        stream_add(s, "stdout", s->master, false, s->out_w[0], true, s->out_keepalive[0], true);
                        s->out_w[0] = s->out_keepalive[0] = -1;
                }
                return 0;
        }
        if (s->stdin_r >= 0) {
                stream_add(s, "stdin", s->stdin_r, true, s->stdin_pipe_w, true, -1, false);
                s->stdin_r = s->stdin_pipe_w = -1;
        }
        for (int i = 0; i < 2; i++)
                if (s->out_pipe_r[i] >= 0) {
                        stream_add(s, i == 0 ? "stdout" : "stderr", s->out_pipe_r[i], true, s->out_w[i], true,
                                   s->out_keepalive[i], true);
                        s->out_pipe_r[i] = s->out_w[i] = s->out_keepalive[i] = -1;
                }
        return 0;
}

void stdio_close_stdin(struct stdio *s) {
        s->stdin_keepalive = safe_close(s->stdin_keepalive);
}

struct stdio *stdio_free(struct stdio *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_streams; i++)
                if (!s->streams[i].done)
                        stream_close(&s->streams[i]);
        ev_timer_stop(s->loop, &s->drain_timer);
        ev_timer_stop(s->loop, &s->drain_now);
        ev_timer_stop(s->loop, &s->ready_t);
        if (s->logger_ready >= 0) {
                ev_io_stop(s->loop, &s->ready_w);
                close(s->logger_ready);
        }
        if (s->logger_pid > 0)
                logger_stop(s); /* SIGTERM now, SIGKILL later if need be (as runc-v2) */
        console_cleanup(s);
        int *fds[] = {&s->child[0], &s->child[1], &s->child[2], &s->stdin_r, &s->stdin_keepalive,
                      &s->out_w[0], &s->out_w[1], &s->out_keepalive[0], &s->out_keepalive[1],
                      &s->stdin_pipe_w, &s->out_pipe_r[0], &s->out_pipe_r[1], &s->master};
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                *fds[i] = safe_close(*fds[i]);
        free(s);
        return NULL;
}
