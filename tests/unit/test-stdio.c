/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the stdio relay. No runtime: the "container" is the other end of the
 * pipes (written from the same libev loop, or by a forked child), the "client" is FIFOs
 * made in a temp dir, read and written from the same loop. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "reaper.h"
#include "stdio-relay.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------------- */

static char tmp_root[] = "/tmp/test-stdio-XXXXXX";

static void tmp_root_setup(void) {
        strcpy(tmp_root, "/tmp/test-stdio-XXXXXX");
        if (!mkdtemp(tmp_root))
                abort();
}

static void tmp_root_teardown(void) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", tmp_root);
}

/* A fresh directory for one test, under the root the runner removes. */
static char *test_dir(const char *name) {
        char *d;
        ck_assert_int_ge(asprintf(&d, "%s/%s", tmp_root, name), 0);
        ck_assert_msg(mkdir(d, 0700) == 0, "mkdir %s: %s", d, strerror(errno));
        return d;
}

static char *make_fifo(const char *dir, const char *name) {
        char *p;
        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        ck_assert_msg(mkfifo(p, 0700) == 0, "mkfifo %s: %s", p, strerror(errno));
        return p;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
        if (w->data)
                (*(int *)w->data)++;
}

/* Run the loop until cond() holds or secs pass; a 10 ms tick keeps ev_run returning. */
static bool run_until(struct ev_loop *loop, bool (*cond)(void *), void *ud, double secs) {
        ev_timer t;
        ev_timer_init(&t, on_tick, 0.01, 0.01);
        t.data = NULL;
        ev_timer_start(loop, &t);
        double end = ev_time() + secs;
        while (!cond(ud) && ev_time() < end)
                ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
        return cond(ud);
}

static bool never(void *ud) {
        return false;
}

static uint8_t pattern(size_t i) {
        return (uint8_t)((i % 251) ^ ((i / 65536) & 0xff));
}

/* The client reading a stdout FIFO (or the container reading its stdin pipe). */
struct reader {
        int fd;
        ev_io w;
        char *buf;
        size_t len, cap;
        bool eof;
        int err;
};

static void reader_pull(struct reader *r) {
        for (;;) {
                if (r->cap - r->len < 65536) {
                        r->cap = r->cap ? r->cap * 2 : 1 << 20;
                        r->buf = realloc(r->buf, r->cap);
                        ck_assert_ptr_nonnull(r->buf);
                }
                ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
                if (n > 0) {
                        r->len += (size_t)n;
                        continue;
                }
                if (n == 0)
                        r->eof = true;
                else if (errno != EAGAIN && errno != EINTR)
                        r->err = errno;
                return;
        }
}

static void on_reader(struct ev_loop *loop, ev_io *w, int revents) {
        struct reader *r = w->data;
        reader_pull(r);
        if (r->eof || r->err)
                ev_io_stop(loop, w);
}

static void reader_start(struct ev_loop *loop, struct reader *r, int fd) {
        r->fd = fd;
        fd_set_nonblock(fd, true);
        ev_io_init(&r->w, on_reader, fd, EV_READ);
        r->w.data = r;
        ev_io_start(loop, &r->w);
}

static void reader_done(struct ev_loop *loop, struct reader *r) {
        ev_io_stop(loop, &r->w);
        r->fd = safe_close(r->fd);
        free(r->buf);
        r->buf = NULL;
}

static bool reader_eof(void *ud) {
        return ((struct reader *)ud)->eof;
}

/* The container writing `target` pattern bytes to its stdout, then closing it. */
struct writer {
        int fd;
        ev_io w;
        size_t target, written;
        bool got_eagain;
};

static void on_writer(struct ev_loop *loop, ev_io *w, int revents) {
        struct writer *c = w->data;
        uint8_t chunk[16384];
        while (c->written < c->target) {
                size_t n = MIN(sizeof chunk, c->target - c->written);
                for (size_t i = 0; i < n; i++)
                        chunk[i] = pattern(c->written + i);
                ssize_t k = write(c->fd, chunk, n);
                if (k < 0 && errno == EAGAIN) {
                        c->got_eagain = true;
                        return;
                }
                ck_assert_msg(k > 0, "container write: %s", strerror(errno));
                c->written += (size_t)k;
        }
        ev_io_stop(loop, w);
        c->fd = safe_close(c->fd);
}

static void writer_start(struct ev_loop *loop, struct writer *c, int fd, size_t target) {
        *c = (struct writer){.fd = fd, .target = target};
        fd_set_nonblock(fd, true);
        ev_io_init(&c->w, on_writer, fd, EV_WRITE);
        c->w.data = c;
        ev_io_start(loop, &c->w);
}

static void check_pattern(const char *buf, size_t len) {
        for (size_t i = 0; i < len; i++)
                if ((uint8_t)buf[i] != pattern(i))
                        ck_abort_msg("byte %zu is %u, expected %u", i, (uint8_t)buf[i], pattern(i));
}

static int dup_cloexec(int fd) {
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        ck_assert_int_ge(d, 0);
        return d;
}

static struct stdio *new_stdio(struct ev_loop *loop, const struct stdio_config *cfg) {
        struct stdio *s = NULL;
        char *err = NULL;
        int r = stdio_new(loop, cfg, &s, &err);
        ck_assert_msg(r == 0, "stdio_new: %s (%s)", strerror(-r), err ? err : "-");
        free(err);
        return s;
}

static pid_t fork_child(void) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                prctl(PR_SET_PDEATHSIG, SIGKILL);
        return pid;
}

static int wait_child(pid_t pid) {
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return status;
}

/* ---- URIs ---------------------------------------------------------------------- */

struct uri_case {
        const char *uri;
        int scheme; /* -1: must be rejected */
        const char *path;
        const char *args[8];
        const char *error; /* substring of the error */
};

static const struct uri_case uri_cases[] = {
        {"", STDIO_NONE, NULL, {NULL}, NULL},
        {"/run/containerd/fifo/1/id-stdout", STDIO_FIFO, "/run/containerd/fifo/1/id-stdout", {NULL}, NULL},
        {"/a%20b+c", STDIO_FIFO, "/a%20b+c", {NULL}, NULL}, /* bare paths are verbatim */
        {"fifo:///abs/p", STDIO_FIFO, "/abs/p", {NULL}, NULL},
        {"file:///var/log/x.log", STDIO_FILE, "/var/log/x.log", {NULL}, NULL},
        {"file:///a%20b/c+d", STDIO_FILE, "/a b/c+d", {NULL}, NULL},
        {"binary:///usr/bin/logger", STDIO_BINARY, "/usr/bin/logger", {NULL}, NULL},
        {"binary:///usr/bin/logger?", STDIO_BINARY, "/usr/bin/logger", {NULL}, NULL},
        {"binary:///bin/l?k=v&k2=v%202&--flag&x=a+b&e=", STDIO_BINARY, "/bin/l",
         {"k", "v", "k2", "v 2", "--flag", "x", "a b", "e"}, NULL},
        {"binary:///bin/l?a%3Db=c%26d", STDIO_BINARY, "/bin/l", {"a=b", "c&d"}, NULL},
        {"relative/path", -1, NULL, {NULL}, "absolute"},
        {"fifo", -1, NULL, {NULL}, "absolute"},
        {"fifo://rel", -1, NULL, {NULL}, "absolute"},
        {"file://host/path", -1, NULL, {NULL}, "absolute"},
        {"file://", -1, NULL, {NULL}, "absolute"},
        {"binary://?k=v", -1, NULL, {NULL}, "absolute"},
        {"http://example.com/x", -1, NULL, {NULL}, "unknown STDIO scheme http"},
        {"tcp://1.2.3.4:5", -1, NULL, {NULL}, "unknown STDIO scheme tcp"},
        {"file:///a%00b", -1, NULL, {NULL}, "escape"},
        {"file:///a/../etc/passwd", -1, NULL, {NULL}, ".."},
};

START_TEST(test_uri_parse) {
        const struct uri_case *c = &uri_cases[_i];
        struct stdio_uri u = {.scheme = 99};
        char *err = NULL;
        int r = stdio_uri_parse(c->uri, &u, &err);
        if (c->scheme < 0) {
                ck_assert_msg(r == -EINVAL, "\"%s\" accepted (r=%d)", c->uri, r);
                ck_assert_msg(err && strstr(err, c->error), "\"%s\": error \"%s\" lacks \"%s\"", c->uri,
                              err ? err : "(null)", c->error);
                ck_assert_int_eq(u.scheme, 99); /* untouched */
                free(err);
                return;
        }
        ck_assert_msg(r == 0, "\"%s\" rejected: %s", c->uri, err ? err : "-");
        ck_assert_int_eq(u.scheme, c->scheme);
        if (c->path)
                ck_assert_str_eq(u.path, c->path);
        else
                ck_assert_ptr_null(u.path);
        size_t n = 0;
        while (n < ELEMENTSOF(c->args) && c->args[n])
                n++;
        ck_assert_uint_eq(u.n_args, n);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(u.args[i], c->args[i]);
        if (n)
                ck_assert_ptr_null(u.args[n]);
        stdio_uri_done(&u);
}
END_TEST

START_TEST(test_uri_null) {
        struct stdio_uri u = {.scheme = 99};
        ck_assert_int_eq(stdio_uri_parse(NULL, &u, NULL), 0);
        ck_assert_int_eq(u.scheme, STDIO_NONE);
        /* no error string asked for */
        ck_assert_int_eq(stdio_uri_parse("ftp://x", &u, NULL), -EINVAL);
}
END_TEST

START_TEST(test_new_errors) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("errors");
        struct stdio *s = NULL;
        char *err = NULL;
        struct stdio_config cfg = {.stdout_uri = "udp:///x"};
        ck_assert_int_eq(stdio_new(loop, &cfg, &s, &err), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_msg(err && strstr(err, "unknown STDIO scheme udp"), "%s", err ? err : "(null)");
        free(err);
        err = NULL;
        /* a FIFO path that does not exist */
        _cleanup_free_ char *missing = NULL;
        ck_assert_int_ge(asprintf(&missing, "%s/missing", dir), 0);
        cfg = (struct stdio_config){.stdout_uri = missing};
        ck_assert_int_lt(stdio_new(loop, &cfg, &s, &err), 0);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(err);
        free(err);
}
END_TEST

/* ---- relaying ------------------------------------------------------------------ */

START_TEST(test_stdout_1mib) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("mib");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        struct stdio_config cfg = {.stdout_uri = out};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        ck_assert_int_eq(fds[0], -1);
        ck_assert_int_ge(fds[1], 0);
        ck_assert_int_eq(fds[2], -1);
        int container = dup_cloexec(fds[1]);
        /* the client opens its reader after the shim: never blocks, the shim's ends exist */
        int client = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client, 0);
        ck_assert_int_eq(stdio_start(s), 0);
        struct reader rd = {0};
        reader_start(loop, &rd, client);
        struct writer wr;
        writer_start(loop, &wr, container, 1 << 20);
        ck_assert_msg(run_until(loop, reader_eof, &rd, 20), "EOF not reached: %zu bytes", rd.len);
        ck_assert_uint_eq(wr.written, 1 << 20);
        ck_assert_uint_eq(rd.len, 1 << 20);
        check_pattern(rd.buf, rd.len);
        reader_done(loop, &rd);
        stdio_free(s);
}
END_TEST

struct pipe_probe {
        int fd;
        char buf[64];
        size_t len;
        bool eof;
};

static void probe(struct pipe_probe *p) {
        for (;;) {
                ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
                if (n > 0) {
                        p->len += (size_t)n;
                        continue;
                }
                if (n == 0)
                        p->eof = true;
                return;
        }
}

static bool probe_has_line(void *ud) {
        struct pipe_probe *p = ud;
        probe(p);
        return p->len == 6 || p->eof;
}

static bool probe_eof(void *ud) {
        struct pipe_probe *p = ud;
        probe(p);
        return p->eof;
}

START_TEST(test_stdin_closeio) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("stdin");
        _cleanup_free_ char *in = make_fifo(dir, "id-stdin");
        struct stdio_config cfg = {.stdin_uri = in};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        ck_assert_int_ge(fds[0], 0);
        ck_assert_int_eq(fds[1], -1);
        struct pipe_probe container = {.fd = dup_cloexec(fds[0])};
        fd_set_nonblock(container.fd, true);
        /* the client's writer: succeeds at once, the shim holds a reader */
        int client = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client, 0);
        ck_assert_int_eq(stdio_start(s), 0);
        ck_assert_int_eq(write(client, "hello\n", 6), 6);
        close(client);
        ck_assert(run_until(loop, probe_has_line, &container, 10));
        container.buf[container.len] = 0;
        ck_assert_str_eq(container.buf, "hello\n");
        /* the client is gone, but the shim's keep-alive writer is not: no EOF yet */
        run_until(loop, never, NULL, 0.3);
        probe(&container);
        ck_assert_msg(!container.eof, "stdin EOF before CloseIO");
        stdio_close_stdin(s);
        ck_assert_msg(run_until(loop, probe_eof, &container, 10), "no stdin EOF after CloseIO");
        ck_assert_uint_eq(container.len, 6);
        close(container.fd);
        stdio_free(s);
}
END_TEST

/* CloseIO before the client ever opened its writer (ctr with stdin at EOF): EOF. */
START_TEST(test_stdin_no_client) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("stdin-none");
        _cleanup_free_ char *in = make_fifo(dir, "id-stdin");
        struct stdio_config cfg = {.stdin_uri = in};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        struct pipe_probe container = {.fd = dup_cloexec(fds[0])};
        fd_set_nonblock(container.fd, true);
        ck_assert_int_eq(stdio_start(s), 0);
        run_until(loop, never, NULL, 0.1);
        probe(&container);
        ck_assert(!container.eof);
        stdio_close_stdin(s);
        ck_assert(run_until(loop, probe_eof, &container, 10));
        close(container.fd);
        stdio_free(s);
}
END_TEST

static long rss_kib(void) {
        FILE *f = fopen("/proc/self/statm", "re");
        ck_assert_ptr_nonnull(f);
        long size, res;
        ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &res), 2);
        fclose(f);
        return res * (sysconf(_SC_PAGESIZE) / 1024);
}

struct stall {
        struct writer *wr;
        int ticks;
};

static bool stalled(void *ud) {
        struct stall *st = ud;
        return st->wr->got_eagain && st->ticks >= 30;
}

START_TEST(test_backpressure) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("slow");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        struct stdio_config cfg = {.stdout_uri = out};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        int container = dup_cloexec(fds[1]);
        int client = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client, 0);
        ck_assert_int_eq(stdio_start(s), 0);
        const size_t total = 32u << 20;
        long rss0 = rss_kib();
        struct writer wr;
        writer_start(loop, &wr, container, total);
        /* the client does not read: the container's pipe fills and its writes would block,
         * while the loop goes on serving a timer */
        struct stall st = {.wr = &wr};
        ev_timer tick;
        ev_timer_init(&tick, on_tick, 0.01, 0.01);
        tick.data = &st.ticks;
        ev_timer_start(loop, &tick);
        ck_assert_msg(run_until(loop, stalled, &st, 20), "ticks %d, eagain %d", st.ticks, wr.got_eagain);
        ev_timer_stop(loop, &tick);
        /* what moved fits in the pipe and the FIFO (1 MiB each) and one relay buffer:
         * nothing piles up */
        ck_assert_msg(wr.written < (3u << 20), "%zu bytes left the container", wr.written);
        long grown = rss_kib() - rss0;
        ck_assert_msg(grown < 4096, "RSS grew by %ld KiB", grown);
        /* the reader resumes: everything arrives, in order */
        struct reader rd = {0};
        reader_start(loop, &rd, client);
        ck_assert_msg(run_until(loop, reader_eof, &rd, 60), "EOF not reached: %zu bytes", rd.len);
        ck_assert_uint_eq(rd.len, total);
        check_pattern(rd.buf, rd.len);
        reader_done(loop, &rd);
        stdio_free(s);
}
END_TEST

struct drain_state {
        bool called;
        int client;
        char got[256];
        size_t len;
        struct stdio *s;
        double at;
};

static void on_drained(struct stdio *s, void *ud) {
        struct drain_state *d = ud;
        ck_assert_ptr_eq(s, d->s);
        d->called = true;
        d->at = ev_time();
        /* everything must already be in the client's FIFO */
        if (d->client >= 0)
                for (;;) {
                        ssize_t n = read(d->client, d->got + d->len, sizeof d->got - 1 - d->len);
                        if (n <= 0)
                                break;
                        d->len += (size_t)n;
                }
}

static bool drain_called(void *ud) {
        return ((struct drain_state *)ud)->called;
}

START_TEST(test_drain_quick_exit) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("drain");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        _cleanup_free_ char *err = make_fifo(dir, "id-stderr");
        struct stdio_config cfg = {.stdout_uri = out, .stderr_uri = err};
        struct stdio *s = new_stdio(loop, &cfg);
        int client = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        int client_err = open(err, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client, 0);
        ck_assert_int_ge(client_err, 0);
        int fds[3];
        stdio_child_fds(s, fds);
        pid_t pid = fork_child();
        if (pid == 0) {
                dup2(fds[1], 1);
                dup2(fds[2], 2);
                static const char msg[] = "first line\nlast line without newline";
                (void)!write(1, msg, sizeof msg - 1);
                (void)!write(2, "e", 1);
                _exit(0);
        }
        ck_assert_int_eq(stdio_start(s), 0);
        ck_assert_int_eq(wait_child(pid), 0); /* it is gone before the drain starts */
        struct drain_state d = {.client = client, .s = s};
        stdio_drain(s, 10, on_drained, &d);
        ck_assert_msg(!d.called, "drain callback ran synchronously");
        ck_assert(run_until(loop, drain_called, &d, 10));
        d.got[d.len] = 0;
        ck_assert_str_eq(d.got, "first line\nlast line without newline");
        char e[4] = {0};
        ck_assert_int_eq(read(client_err, e, sizeof e), 1);
        ck_assert_str_eq(e, "e");
        /* asked again once drained: still deferred to the loop */
        struct drain_state d2 = {.client = -1, .s = s};
        stdio_drain(s, 10, on_drained, &d2);
        ck_assert(!d2.called);
        ck_assert(run_until(loop, drain_called, &d2, 5));
        close(client);
        close(client_err);
        stdio_free(s);
}
END_TEST

START_TEST(test_drain_deadline) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("deadline");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        struct stdio_config cfg = {.stdout_uri = out};
        struct stdio *s = new_stdio(loop, &cfg);
        int client = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client, 0);
        int fds[3];
        stdio_child_fds(s, fds);
        /* a "grandchild" that outlives the container and keeps its stdout open */
        pid_t holder = fork_child();
        if (holder == 0) {
                dup2(fds[1], 1);
                execl("/bin/sleep", "sleep", "30", (char *)NULL);
                _exit(127);
        }
        pid_t pid = fork_child();
        if (pid == 0) {
                dup2(fds[1], 1);
                (void)!write(1, "bye\n", 4);
                _exit(0);
        }
        ck_assert_int_eq(stdio_start(s), 0);
        ck_assert_int_eq(wait_child(pid), 0);
        struct drain_state d = {.client = client, .s = s};
        double t0 = ev_time();
        stdio_drain(s, 0.3, on_drained, &d);
        ck_assert(run_until(loop, drain_called, &d, 10));
        double took = d.at - t0;
        kill(holder, SIGKILL);
        wait_child(holder);
        ck_assert_msg(took >= 0.25 && took < 5, "drain after %.3f s", took);
        d.got[d.len] = 0;
        ck_assert_str_eq(d.got, "bye\n");
        close(client);
        stdio_free(s);
}
END_TEST

START_TEST(test_fifo_symlink_refused) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("symlink");
        _cleanup_free_ char *real = make_fifo(dir, "real");
        _cleanup_free_ char *link = NULL;
        ck_assert_int_ge(asprintf(&link, "%s/id-stdout", dir), 0);
        ck_assert_int_eq(symlink(real, link), 0);
        int before = count_open_fds();
        const char *uris[][3] = {{link, "", ""}, {"", link, ""}, {"", "", link}};
        for (size_t i = 0; i < ELEMENTSOF(uris); i++) {
                struct stdio_config cfg = {.stdin_uri = uris[i][0], .stdout_uri = uris[i][1], .stderr_uri = uris[i][2]};
                struct stdio *s = NULL;
                char *err = NULL;
                ck_assert_msg(stdio_new(loop, &cfg, &s, &err) < 0, "symlink accepted (%zu)", i);
                ck_assert_ptr_null(s);
                ck_assert_ptr_nonnull(err);
                free(err);
        }
        ck_assert_int_eq(count_open_fds(), before);
        /* a directory is no FIFO either */
        struct stdio_config cfg = {.stdout_uri = dir};
        struct stdio *s = NULL;
        char *err = NULL;
        ck_assert_int_lt(stdio_new(loop, &cfg, &s, &err), 0);
        free(err);
}
END_TEST

static bool file_has(const char *path, size_t len) {
        struct stat st;
        return stat(path, &st) == 0 && (size_t)st.st_size >= len;
}

struct file_wait {
        const char *path;
        size_t len;
};

static bool file_ready(void *ud) {
        struct file_wait *f = ud;
        return file_has(f->path, f->len);
}

static char *slurp(const char *path) {
        FILE *f = fopen(path, "re");
        ck_assert_msg(f, "open %s: %s", path, strerror(errno));
        char *buf = calloc(1, 65536);
        ck_assert_ptr_nonnull(buf);
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

/* A regular file given as a plain path is appended to, as runc-v2 does. */
START_TEST(test_regular_file_path) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("regular");
        _cleanup_free_ char *path = NULL;
        ck_assert_int_ge(asprintf(&path, "%s/out.txt", dir), 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_eq(write(fd, "old\n", 4), 4);
        close(fd);
        struct stdio_config cfg = {.stdout_uri = path};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        int container = dup_cloexec(fds[1]);
        ck_assert_int_eq(stdio_start(s), 0);
        ck_assert_int_eq(write(container, "new\n", 4), 4);
        close(container);
        struct drain_state d = {.client = -1, .s = s};
        stdio_drain(s, 5, on_drained, &d);
        ck_assert(run_until(loop, drain_called, &d, 10));
        _cleanup_free_ char *got = slurp(path);
        ck_assert_str_eq(got, "old\nnew\n");
        stdio_free(s);
}
END_TEST

START_TEST(test_file_uri) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("file");
        _cleanup_free_ char *uri = NULL, *path = NULL;
        ck_assert_int_ge(asprintf(&path, "%s/a/b c/log.txt", dir), 0);
        ck_assert_int_ge(asprintf(&uri, "file://%s/a/b%%20c/log.txt", dir), 0);
        for (int round = 0; round < 2; round++) {
                struct stdio_config cfg = {.stdout_uri = uri, .stderr_uri = uri};
                struct stdio *s = new_stdio(loop, &cfg);
                int fds[3];
                stdio_child_fds(s, fds);
                ck_assert_int_ge(fds[1], 0);
                ck_assert_int_ge(fds[2], 0);
                int o = dup_cloexec(fds[1]), e = dup_cloexec(fds[2]);
                ck_assert_int_eq(stdio_start(s), 0);
                ck_assert_int_eq(write(o, "out\n", 4), 4);
                ck_assert_int_eq(write(e, "err\n", 4), 4);
                close(o);
                close(e);
                struct drain_state d = {.client = -1, .s = s};
                stdio_drain(s, 5, on_drained, &d);
                ck_assert(run_until(loop, drain_called, &d, 10));
                stdio_free(s);
        }
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0644);
        _cleanup_free_ char *parent = strndup(path, strrchr(path, '/') - path);
        ck_assert_int_eq(stat(parent, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0755);
        /* both streams, both rounds, appended */
        _cleanup_free_ char *got = slurp(path);
        ck_assert_uint_eq(strlen(got), 16);
        ck_assert_int_eq(!!strstr(got, "out\n"), 1);
        ck_assert_int_eq(!!strstr(got, "err\n"), 1);
        ck_assert_ptr_nonnull(strstr(strstr(got, "out\n") + 4, "out\n"));
}
END_TEST

/* stdout and stderr on one FIFO: both arrive; the client sees EOF only after both. */
START_TEST(test_shared_fifo) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("shared");
        _cleanup_free_ char *out = make_fifo(dir, "id-out");
        struct stdio_config cfg = {.stdout_uri = out, .stderr_uri = out};
        struct stdio *s = new_stdio(loop, &cfg);
        int client = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client, 0);
        int fds[3];
        stdio_child_fds(s, fds);
        int o = dup_cloexec(fds[1]), e = dup_cloexec(fds[2]);
        ck_assert_int_eq(stdio_start(s), 0);
        struct reader rd = {0};
        reader_start(loop, &rd, client);
        ck_assert_int_eq(write(o, "out\n", 4), 4);
        close(o);
        run_until(loop, never, NULL, 0.2);
        ck_assert_uint_eq(rd.len, 4);
        ck_assert(!rd.eof);
        ck_assert_int_eq(write(e, "err\n", 4), 4);
        close(e);
        ck_assert(run_until(loop, reader_eof, &rd, 10));
        ck_assert_uint_eq(rd.len, 8);
        ck_assert_int_eq(memcmp(rd.buf, "out\nerr\n", 8), 0);
        reader_done(loop, &rd);
        stdio_free(s);
}
END_TEST

/* ---- binary:// ------------------------------------------------------------------- */

struct ready_state {
        bool called;
        int r;
};

static void on_ready(struct stdio *s, int r, void *ud) {
        struct ready_state *st = ud;
        st->called = true;
        st->r = r;
}

static bool ready_called(void *ud) {
        return ((struct ready_state *)ud)->called;
}

struct reaped {
        struct reaper *reaper;
        size_t n;
};

static bool reaped_enough(void *ud) {
        struct reaped *r = ud;
        return reaper_n_reaped(r->reaper) >= r->n;
}

START_TEST(test_binary_logger) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("binary");
        _cleanup_free_ char *script = NULL, *outfile = NULL, *envfile = NULL, *uri = NULL;
        ck_assert_int_ge(asprintf(&script, "%s/logger.sh", dir), 0);
        ck_assert_int_ge(asprintf(&outfile, "%s/out.txt", dir), 0);
        ck_assert_int_ge(asprintf(&envfile, "%s/env.txt", dir), 0);
        FILE *f = fopen(script, "we");
        ck_assert_ptr_nonnull(f);
        /* $1 $2 = out <file>, $3 $4 = env <file> */
        fprintf(f, "#!/bin/sh\n/usr/bin/env > \"$4.tmp\"\n/bin/mv \"$4.tmp\" \"$4\"\n"
                   "printf x >&5\nexec 5>&-\n/bin/cat <&3 > \"$2.tmp\"\n/bin/mv \"$2.tmp\" \"$2\"\n");
        fclose(f);
        ck_assert_int_eq(chmod(script, 0755), 0);
        ck_assert_int_ge(asprintf(&uri, "binary://%s?out=%s&env=%s", script, outfile, envfile), 0);
        struct reaper *reaper = NULL;
        ck_assert_int_eq(reaper_new(loop, &reaper), 0);
        struct stdio_config cfg = {.stdout_uri = uri, .stderr_uri = uri, .container_id = "c1",
                                   .namespace = "ns1", .reaper = reaper};
        struct stdio *s = new_stdio(loop, &cfg);
        struct ready_state rs = {.r = -1};
        ck_assert_int_eq(stdio_wait_ready(s, on_ready, &rs), 0);
        ck_assert(!rs.called);
        ck_assert(run_until(loop, ready_called, &rs, 10));
        ck_assert_int_eq(rs.r, 0);
        /* the script writes this before its ready byte: "ready" really waited for it */
        ck_assert_int_eq(access(envfile, F_OK), 0);
        int fds[3];
        stdio_child_fds(s, fds);
        ck_assert_int_ge(fds[1], 0);
        ck_assert_int_ge(fds[2], 0);
        int o = dup_cloexec(fds[1]);
        ck_assert_int_eq(stdio_start(s), 0);
        ck_assert_int_eq(write(o, "to the logger\n", 14), 14);
        close(o);
        /* the logger sees EOF on fd 3, writes the file and exits; the reaper gets it */
        struct file_wait fw = {outfile, 14};
        ck_assert(run_until(loop, file_ready, &fw, 10));
        struct reaped rp = {reaper, 1};
        ck_assert(run_until(loop, reaped_enough, &rp, 10));
        _cleanup_free_ char *got = slurp(outfile);
        ck_assert_str_eq(got, "to the logger\n");
        _cleanup_free_ char *env = slurp(envfile);
        ck_assert_msg(strstr(env, "CONTAINER_ID=c1\n") && strstr(env, "CONTAINER_NAMESPACE=ns1\n"), "%s", env);
        ck_assert_msg(!strstr(env, "PATH="), "environment leaked: %s", env);
        stdio_free(s);
        reaper_free(reaper);
}
END_TEST

/* A logger still running when its stdio is freed gets SIGTERM (and the reaper its exit). */
START_TEST(test_binary_logger_terminated) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("binary-term");
        _cleanup_free_ char *uri = NULL;
        ck_assert_int_ge(asprintf(&uri, "binary:///bin/sleep?30"), 0);
        struct reaper *reaper = NULL;
        ck_assert_int_eq(reaper_new(loop, &reaper), 0);
        struct stdio_config cfg = {.stdout_uri = uri, .stderr_uri = uri, .reaper = reaper};
        struct stdio *s = new_stdio(loop, &cfg);
        ck_assert_int_eq(stdio_start(s), 0);
        stdio_free(s);
        struct reaped rp = {reaper, 1};
        ck_assert(run_until(loop, reaped_enough, &rp, 10));
        reaper_free(reaper);
}
END_TEST

/* A logger that ignores SIGTERM gets SIGKILL at its deadline; one still waiting for its
 * deadline when the shim exits gets it at once. */
START_TEST(test_binary_logger_killed) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("binary-kill");
        _cleanup_free_ char *script = NULL, *uri = NULL;
        ck_assert_int_ge(asprintf(&script, "%s/stubborn.sh", dir), 0);
        FILE *f = fopen(script, "w");
        ck_assert_ptr_nonnull(f);
        /* ready once the trap is set; an ignored signal stays ignored across exec */
        fputs("#!/bin/sh\ntrap '' TERM\nprintf x >&5\nexec 5>&-\nexec sleep 60\n", f);
        fclose(f);
        ck_assert_int_eq(chmod(script, 0755), 0);
        ck_assert_int_ge(asprintf(&uri, "binary://%s", script), 0);
        struct reaper *reaper = NULL;
        ck_assert_int_eq(reaper_new(loop, &reaper), 0);

        struct stdio_config cfg = {.stdout_uri = uri, .stderr_uri = uri, .reaper = reaper, .logger_kill_s = 0.3};
        struct stdio *s = new_stdio(loop, &cfg);
        struct ready_state rs = {.r = -1};
        ck_assert_int_eq(stdio_wait_ready(s, on_ready, &rs), 0);
        ck_assert(run_until(loop, ready_called, &rs, 10)); /* the trap is set */
        stdio_free(s);
        struct reaped rp = {reaper, 1};
        ck_assert(run_until(loop, reaped_enough, &rp, 10));

        cfg.logger_kill_s = 0; /* the default, 12 s: the shim's exit comes first */
        s = new_stdio(loop, &cfg);
        rs = (struct ready_state){.r = -1};
        ck_assert_int_eq(stdio_wait_ready(s, on_ready, &rs), 0);
        ck_assert(run_until(loop, ready_called, &rs, 10));
        stdio_free(s);
        stdio_kill_lingering_loggers();
        rp.n = 2;
        ck_assert(run_until(loop, reaped_enough, &rp, 5));
        reaper_free(reaper);
}
END_TEST

START_TEST(test_ready_other_schemes) {
        struct ev_loop *loop = EV_DEFAULT;
        struct stdio_config cfg = {0};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        ck_assert_int_eq(fds[0], -1);
        ck_assert_int_eq(fds[1], -1);
        ck_assert_int_eq(fds[2], -1);
        struct ready_state rs = {.r = -1};
        ck_assert_int_eq(stdio_wait_ready(s, on_ready, &rs), 0);
        ck_assert(!rs.called);
        ck_assert(run_until(loop, ready_called, &rs, 5));
        ck_assert_int_eq(rs.r, 0);
        ck_assert_int_eq(stdio_resize(s, 80, 24), 0); /* no console: no-op */
        stdio_free(s);
}
END_TEST

/* ---- terminal -------------------------------------------------------------------- */

/* The runtime's side: connect to the console socket and send fds with SCM_RIGHTS. */
static void send_fds(const char *sock, const int *fds, size_t n) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
        if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) < 0)
                _exit(2);
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        memset(&ctl, 0, sizeof ctl);
        char name[] = "/dev/ptmx";
        struct iovec iov = {name, sizeof name - 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
        if (sendmsg(c, &msg, 0) < 0)
                _exit(3);
        _exit(0);
}

struct tty_probe {
        int fd;
        char buf[64];
        size_t len;
        size_t want;
};

static bool tty_got(void *ud) {
        struct tty_probe *p = ud;
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n > 0)
                p->len += (size_t)n;
        return p->len >= p->want;
}

START_TEST(test_terminal) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("tty");
        _cleanup_free_ char *in = make_fifo(dir, "id-stdin");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        int before = count_open_fds();
        struct stdio_config cfg = {.stdin_uri = in, .stdout_uri = out, .terminal = true};
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        ck_assert_int_eq(fds[0], -1);
        ck_assert_int_eq(fds[1], -1);
        ck_assert_int_eq(fds[2], -1);
        const char *sock = NULL;
        ck_assert_int_eq(stdio_console_socket(s, &sock), 0);
        ck_assert_int_eq(strncmp(sock, "/tmp/nanoshim-pty-", 18), 0);
        _cleanup_free_ char *sockdir = strndup(sock, strrchr(sock, '/') - sock);
        ck_assert_str_eq(strrchr(sock, '/'), "/pty.sock");
        struct stat st;
        ck_assert_int_eq(stat(sockdir, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0700);
        ck_assert_int_eq(lstat(sock, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));

        int master, slave;
        ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
        fd_set_cloexec(master, true);
        fd_set_cloexec(slave, true);
        struct termios tio;
        ck_assert_int_eq(tcgetattr(slave, &tio), 0);
        cfmakeraw(&tio);
        ck_assert_int_eq(tcsetattr(slave, TCSANOW, &tio), 0);
        pid_t pid = fork_child();
        if (pid == 0)
                send_fds(sock, &master, 1);
        ck_assert_int_eq(wait_child(pid), 0);
        close(master); /* only the shim holds it now */
        ck_assert_int_eq(stdio_console_receive(s), 0);
        ck_assert_int_eq(stat(sock, &st), -1);
        ck_assert_int_eq(stat(sockdir, &st), -1);

        int client_in = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        int client_out = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client_in, 0);
        ck_assert_int_ge(client_out, 0);
        ck_assert_int_eq(stdio_start(s), 0);
        fd_set_nonblock(slave, true);

        /* client -> container */
        ck_assert_int_eq(write(client_in, "ping\n", 5), 5);
        struct tty_probe tp = {.fd = slave, .want = 5};
        ck_assert(run_until(loop, tty_got, &tp, 10));
        tp.buf[tp.len] = 0;
        ck_assert_str_eq(tp.buf, "ping\n");
        /* container -> client */
        ck_assert_int_eq(write(slave, "pong", 4), 4);
        struct tty_probe cp = {.fd = client_out, .want = 4};
        ck_assert(run_until(loop, tty_got, &cp, 10));
        cp.buf[cp.len] = 0;
        ck_assert_str_eq(cp.buf, "pong");
        /* ResizePty */
        ck_assert_int_eq(stdio_resize(s, 97, 31), 0);
        struct winsize ws;
        ck_assert_int_eq(ioctl(slave, TIOCGWINSZ, &ws), 0);
        ck_assert_int_eq(ws.ws_col, 97);
        ck_assert_int_eq(ws.ws_row, 31);
        /* the container side closes: EIO on the master is EOF, the drain completes */
        ck_assert_int_eq(write(slave, "end", 3), 3);
        close(slave);
        struct drain_state d = {.client = client_out, .s = s};
        stdio_drain(s, 10, on_drained, &d);
        ck_assert(run_until(loop, drain_called, &d, 10));
        ck_assert_msg(d.at > 0, "drained");
        d.got[d.len] = 0;
        ck_assert_str_eq(d.got, "end");
        close(client_in);
        close(client_out);
        stdio_free(s);
        ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

/* Play the runtime: make a pty, send its master over the console socket, keep the raw slave. */
static int attach_pty(struct stdio *s) {
        const char *sock = NULL;
        ck_assert_int_eq(stdio_console_socket(s, &sock), 0);
        int master, slave;
        ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
        fd_set_cloexec(master, true);
        fd_set_cloexec(slave, true);
        struct termios tio;
        ck_assert_int_eq(tcgetattr(slave, &tio), 0);
        cfmakeraw(&tio);
        ck_assert_int_eq(tcsetattr(slave, TCSANOW, &tio), 0);
        pid_t pid = fork_child();
        if (pid == 0)
                send_fds(sock, &master, 1);
        ck_assert_int_eq(wait_child(pid), 0);
        close(master);
        ck_assert_int_eq(stdio_console_receive(s), 0);
        return slave;
}

/* binary:// with a terminal: the logger's fd 3 carries the pty output. */
START_TEST(test_terminal_binary_logger) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("tty-binary");
        _cleanup_free_ char *script = NULL, *outfile = NULL, *uri = NULL;
        ck_assert_int_ge(asprintf(&script, "%s/logger.sh", dir), 0);
        ck_assert_int_ge(asprintf(&outfile, "%s/out.txt", dir), 0);
        FILE *f = fopen(script, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "#!/bin/sh\nexec 5>&-\n/bin/cat <&3 > \"$1.tmp\"\n/bin/mv \"$1.tmp\" \"$1\"\n");
        fclose(f);
        ck_assert_int_eq(chmod(script, 0755), 0);
        ck_assert_int_ge(asprintf(&uri, "binary://%s?%s", script, outfile), 0);
        struct reaper *reaper = NULL;
        ck_assert_int_eq(reaper_new(loop, &reaper), 0);
        struct stdio_config cfg = {.stdout_uri = uri, .terminal = true, .reaper = reaper};
        struct stdio *s = new_stdio(loop, &cfg);
        struct ready_state rs = {.r = -1};
        ck_assert_int_eq(stdio_wait_ready(s, on_ready, &rs), 0);
        ck_assert(run_until(loop, ready_called, &rs, 10));
        int slave = attach_pty(s);
        ck_assert_int_eq(stdio_start(s), 0);
        ck_assert_int_eq(write(slave, "via pty\n", 8), 8);
        close(slave);
        struct file_wait fw = {outfile, 8};
        ck_assert(run_until(loop, file_ready, &fw, 10));
        _cleanup_free_ char *got = slurp(outfile);
        ck_assert_str_eq(got, "via pty\n");
        struct reaped rp = {reaper, 1};
        ck_assert(run_until(loop, reaped_enough, &rp, 10));
        stdio_free(s);
        reaper_free(reaper);
}
END_TEST

START_TEST(test_terminal_two_fds_refused) {
        struct ev_loop *loop = EV_DEFAULT;
        int before = count_open_fds();
        struct stdio_config cfg = {.terminal = true};
        struct stdio *s = new_stdio(loop, &cfg);
        const char *sock = NULL;
        ck_assert_int_eq(stdio_console_socket(s, &sock), 0);
        _cleanup_free_ char *sockdir = strndup(sock, strrchr(sock, '/') - sock);
        int master, slave;
        ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
        pid_t pid = fork_child();
        if (pid == 0) {
                int two[] = {master, slave};
                send_fds(sock, two, 2);
        }
        ck_assert_int_eq(wait_child(pid), 0);
        close(master);
        close(slave);
        int in_between = count_open_fds();
        ck_assert_int_lt(stdio_console_receive(s), 0);
        ck_assert_int_eq(count_open_fds(), in_between - 1); /* the listening socket went, nothing came */
        struct stat st;
        ck_assert_int_eq(stat(sockdir, &st), -1);
        ck_assert_int_eq(stdio_resize(s, 80, 24), 0);
        stdio_free(s);
        ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

/* ---- fds ------------------------------------------------------------------------- */

START_TEST(test_no_fd_leak) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("leak");
        _cleanup_free_ char *in = make_fifo(dir, "id-stdin");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        _cleanup_free_ char *err = make_fifo(dir, "id-stderr");
        int before = count_open_fds();
        for (int started = 0; started < 2; started++) {
                struct stdio_config cfg = {.stdin_uri = in, .stdout_uri = out, .stderr_uri = err};
                struct stdio *s = new_stdio(loop, &cfg);
                int fds[3];
                stdio_child_fds(s, fds);
                for (int i = 0; i < 3; i++) {
                        ck_assert_int_ge(fds[i], 0);
                        int fl = fcntl(fds[i], F_GETFD);
                        ck_assert_msg(fl >= 0 && (fl & FD_CLOEXEC), "child fd %d not O_CLOEXEC", i);
                }
                ck_assert_int_gt(count_open_fds(), before);
                if (started)
                        ck_assert_int_eq(stdio_start(s), 0);
                run_until(loop, never, NULL, 0.05);
                stdio_free(s);
                ck_assert_int_eq(count_open_fds(), before);
        }
        /* every fd the shim holds is O_CLOEXEC (fds we inherited are not ours to judge) */
        bool was_open[1024];
        for (int fd = 0; fd < 1024; fd++)
                was_open[fd] = fcntl(fd, F_GETFD) >= 0;
        struct stdio_config cfg = {.stdin_uri = in, .stdout_uri = out, .stderr_uri = err};
        struct stdio *s = new_stdio(loop, &cfg);
        ck_assert_int_eq(stdio_start(s), 0);
        int n_new = 0;
        for (int fd = 3; fd < 1024; fd++) {
                int fl = fcntl(fd, F_GETFD);
                if (fl >= 0 && !was_open[fd]) {
                        n_new++;
                        ck_assert_msg(fl & FD_CLOEXEC, "fd %d is not O_CLOEXEC", fd);
                }
        }
        ck_assert_int_ge(n_new, 5); /* stdin: source, keep-alive, pipe; stdout/err: 3 each */
        stdio_free(s);
        ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

static bool same_inode(int fd, const char *path) {
        struct stat a, b;
        return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Direct mode: stdin and stdout are the client's FIFOs themselves (no relay), stderr
 * is still a pipe; at the drain the shim's keep-alive goes and the client sees EOF;
 * stdin sees EOF only after CloseIO. */
START_TEST(test_direct) {
        struct ev_loop *loop = EV_DEFAULT;
        _cleanup_free_ char *dir = test_dir("direct");
        _cleanup_free_ char *in = make_fifo(dir, "id-stdin");
        _cleanup_free_ char *out = make_fifo(dir, "id-stdout");
        _cleanup_free_ char *err = make_fifo(dir, "id-stderr");
        struct stdio_config cfg = {.stdin_uri = in, .stdout_uri = out, .stderr_uri = err, .direct = true};
        int client_out = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client_out, 0);
        struct stdio *s = new_stdio(loop, &cfg);
        int fds[3];
        stdio_child_fds(s, fds);
        ck_assert(same_inode(fds[0], in));
        ck_assert(same_inode(fds[1], out));
        ck_assert(!same_inode(fds[2], err)); /* relayed */
        ck_assert_int_eq(fcntl(fds[1], F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_WRONLY);
        ck_assert_int_eq(fcntl(fds[0], F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDONLY);
        int c_in = dup_cloexec(fds[0]), c_out = dup_cloexec(fds[1]);
        ck_assert_int_eq(stdio_start(s), 0);
        int client_in = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(client_in, 0);

        /* stdin: what the client writes, the container reads; the client going away is
         * no EOF while the shim keeps its writer */
        ck_assert_int_eq(write(client_in, "ping\n", 5), 5);
        close(client_in);
        char buf[64] = {0};
        ck_assert_int_eq(read(c_in, buf, sizeof buf), 5);
        ck_assert_str_eq(buf, "ping\n");
        struct pollfd pin = {.fd = c_in, .events = POLLIN};
        ck_assert_int_eq(poll(&pin, 1, 0), 0);
        stdio_close_stdin(s);
        ck_assert_int_eq(read(c_in, buf, sizeof buf), 0); /* EOF now */

        /* stdout: straight into the client's FIFO, before any loop iteration */
        ck_assert_int_eq(write(c_out, "pong\n", 5), 5);
        ck_assert_int_eq(read(client_out, buf, sizeof buf), 5);
        /* the process exits: the client sees EOF once the drain dropped our end */
        close(c_out);
        close(c_in);
        ck_assert_int_eq(read(client_out, buf, sizeof buf), -1); /* EAGAIN: we still hold it */
        struct drain_state d = {.client = -1, .s = s};
        stdio_drain(s, 5, on_drained, &d);
        ck_assert(run_until(loop, drain_called, &d, 10));
        ck_assert_int_eq(read(client_out, buf, sizeof buf), 0);
        close(client_out);
        stdio_free(s);
}
END_TEST

int main(void) {
        signal(SIGPIPE, SIG_IGN); /* as the shim does */
        Suite *s = suite_create("stdio");
        TCase *tc = tcase_create("uri");
        tcase_set_timeout(tc, 10);
        tcase_add_loop_test(tc, test_uri_parse, 0, ELEMENTSOF(uri_cases));
        tcase_add_test(tc, test_uri_null);
        suite_add_tcase(s, tc);

        tc = tcase_create("relay");
        tcase_set_timeout(tc, 60);
        tcase_add_unchecked_fixture(tc, tmp_root_setup, tmp_root_teardown);
        tcase_add_test(tc, test_new_errors);
        tcase_add_test(tc, test_stdout_1mib);
        tcase_add_test(tc, test_stdin_closeio);
        tcase_add_test(tc, test_stdin_no_client);
        tcase_add_test(tc, test_backpressure);
        tcase_add_test(tc, test_drain_quick_exit);
        tcase_add_test(tc, test_drain_deadline);
        tcase_add_test(tc, test_fifo_symlink_refused);
        tcase_add_test(tc, test_regular_file_path);
        tcase_add_test(tc, test_file_uri);
        tcase_add_test(tc, test_shared_fifo);
        tcase_add_test(tc, test_no_fd_leak);
        tcase_add_test(tc, test_direct);
        suite_add_tcase(s, tc);

        tc = tcase_create("binary");
        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, tmp_root_setup, tmp_root_teardown);
        tcase_add_test(tc, test_binary_logger);
        tcase_add_test(tc, test_binary_logger_terminated);
        tcase_add_test(tc, test_binary_logger_killed);
        tcase_add_test(tc, test_ready_other_schemes);
        suite_add_tcase(s, tc);

        tc = tcase_create("terminal");
        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, tmp_root_setup, tmp_root_teardown);
        tcase_add_test(tc, test_terminal);
        tcase_add_test(tc, test_terminal_two_fds_refused);
        tcase_add_test(tc, test_terminal_binary_logger);
        suite_add_tcase(s, tc);

        return run_suite(s);
}
