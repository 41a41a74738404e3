/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the core helpers: ids, pid parsing, atomic files, exit statuses, the reaper. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd-util.h"
#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "reaper.h"
#include "unit.h"

START_TEST(test_identifiers) {
        ck_assert(identifier_is_valid("a"));
        ck_assert(identifier_is_valid("tr-rm1"));
        ck_assert(identifier_is_valid("a.b_c-d"));
        ck_assert(identifier_is_valid("0123456789012345678901234567890123456789012345678901234567890123456789012345"));
        ck_assert(!identifier_is_valid("01234567890123456789012345678901234567890123456789012345678901234567890123456"));
        ck_assert(!identifier_is_valid(""));
        ck_assert(!identifier_is_valid(NULL));
        ck_assert(!identifier_is_valid("../x"));
        ck_assert(!identifier_is_valid("a/b"));
        ck_assert(!identifier_is_valid(".."));
        ck_assert(!identifier_is_valid("-a"));
        ck_assert(!identifier_is_valid("a-"));
        ck_assert(!identifier_is_valid("a--b"));
        ck_assert(!identifier_is_valid("a b"));
        ck_assert(!identifier_is_valid("a\nb"));
}
END_TEST

START_TEST(test_parse_pid) {
        pid_t p = 0;
        ck_assert_int_eq(parse_pid("1234", &p), 0);
        ck_assert_int_eq(p, 1234);
        ck_assert_int_eq(parse_pid("42\n", &p), 0);
        ck_assert_int_eq(p, 42);
        p = 7;
        ck_assert_int_lt(parse_pid("", &p), 0);
        ck_assert_int_lt(parse_pid("0", &p), 0);
        ck_assert_int_lt(parse_pid("-5", &p), 0);
        ck_assert_int_lt(parse_pid("12x", &p), 0);
        ck_assert_int_lt(parse_pid("99999999999999999999", &p), 0);
        ck_assert_int_eq(p, 7); /* untouched on error */
}
END_TEST

START_TEST(test_scan_u64) {
        const char *rec = "137 1700000000 999999999 1\n", *p = rec;
        uint64_t v[4];
        for (size_t i = 0; i < 4; i++)
                ck_assert_int_eq(scan_u64(&p, 10, UINT64_MAX, &v[i]), 0);
        ck_assert_uint_eq(v[0], 137);
        ck_assert_uint_eq(v[1], 1700000000);
        ck_assert_uint_eq(v[2], 999999999);
        ck_assert_uint_eq(v[3], 1);
        ck_assert_str_eq(p, "\n");
        ck_assert_int_eq(scan_u64(&p, 10, UINT64_MAX, &v[0]), -EINVAL); /* nothing left */
        ck_assert_str_eq(p, "\n");                                   /* not moved on error */
        p = "1f:ABc0]";
        ck_assert_int_eq(scan_u64(&p, 16, UINT64_MAX, &v[0]), 0);
        ck_assert_uint_eq(v[0], 0x1f);
        ck_assert_int_eq(*p, ':');
        p++;
        ck_assert_int_eq(scan_u64(&p, 16, UINT64_MAX, &v[0]), 0);
        ck_assert_uint_eq(v[0], 0xabc0);
        ck_assert_str_eq(p, "]");
        p = "256";
        ck_assert_int_eq(scan_u64(&p, 10, 255, &v[0]), -ERANGE);
        p = "99999999999999999999";
        ck_assert_int_eq(scan_u64(&p, 10, UINT64_MAX, &v[0]), -ERANGE);
        p = "-1";
        ck_assert_int_eq(scan_u64(&p, 10, UINT64_MAX, &v[0]), -EINVAL);
        p = "ab";
        ck_assert_int_eq(scan_u64(&p, 10, UINT64_MAX, &v[0]), -EINVAL);
}
END_TEST

START_TEST(test_exit_status) {
        ck_assert_int_eq(exit_status_from_wait(0), 0);
        ck_assert_int_eq(exit_status_from_wait(42 << 8), 42);
        ck_assert_int_eq(exit_status_from_wait(SIGKILL), 137);
        ck_assert_int_eq(exit_status_from_wait(SIGTERM), 143);
}
END_TEST

START_TEST(test_atomic_file) {
        char dir[] = "/tmp/nanoshim-test-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        int dfd = open(dir, O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dfd, 0);
        ck_assert_int_eq(write_file_replace_at(dfd, "f", "hello", 5, 0600), 0);
        char *buf = NULL;
        size_t len = 0;
        ck_assert_int_eq(read_file_at(dfd, "f", 100, &buf, &len), 0);
        ck_assert_uint_eq(len, 5);
        ck_assert_str_eq(buf, "hello");
        free(buf);
        buf = NULL;
        ck_assert_int_eq(read_file_at(dfd, "f", 4, &buf, &len), -EFBIG);
        ck_assert_ptr_null(buf);
        ck_assert_int_eq(symlinkat("f", dfd, "link"), 0);
        ck_assert_int_eq(read_file_at(dfd, "link", 100, &buf, &len), -ELOOP);
        ck_assert_int_eq(write_file_replace_at(dfd, "a/b", "x", 1, 0600), -EINVAL);
        ck_assert_int_eq(write_file_replace_at(dfd, "pid", "77\n", 3, 0600), 0);
        pid_t p;
        ck_assert_int_eq(read_pid_file_at(dfd, "pid", &p), 0);
        ck_assert_int_eq(p, 77);
        unlinkat(dfd, "f", 0);
        unlinkat(dfd, "link", 0);
        unlinkat(dfd, "pid", 0);
        close(dfd);
        rmdir(dir);
}
END_TEST

/* --- reaper --- */
struct seen {
        pid_t pid;
        int status;
        int calls;
};
static void on_exit_seen(pid_t pid, int status, void *ud) {
        struct seen *s = ud;
        s->pid = pid;
        s->status = status;
        s->calls++;
        ev_break(EV_DEFAULT, EVBREAK_ALL);
}
static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
        ev_break(loop, EVBREAK_ALL);
}
static void run_loop_for(double seconds) {
        ev_timer t;
        ev_timer_init(&t, on_timeout, seconds, 0);
        ev_timer_start(EV_DEFAULT, &t);
        ev_run(EV_DEFAULT, 0);
        ev_timer_stop(EV_DEFAULT, &t);
}

START_TEST(test_reaper_routes_exit) {
        struct reaper *r = NULL;
        ck_assert_int_eq(reaper_new(EV_DEFAULT, &r), 0);
        pid_t pid = fork();
        if (pid == 0)
                _exit(42);
        struct seen s = {0};
        ck_assert_int_eq(reaper_watch(r, pid, on_exit_seen, &s), 0);
        ck_assert_int_eq(reaper_watch(r, pid, on_exit_seen, &s), -EEXIST);
        run_loop_for(10);
        ck_assert_int_eq(s.calls, 1);
        ck_assert_int_eq(s.pid, pid);
        ck_assert_int_eq(exit_status_from_wait(s.status), 42);
        reaper_free(r);
}
END_TEST

/* An exit that arrives before its owner registers (the container init dying before
 * runc's pid file is read) is kept while the reaper is held, and delivered later. */
START_TEST(test_reaper_early_exit_stash) {
        struct reaper *r = NULL;
        ck_assert_int_eq(reaper_new(EV_DEFAULT, &r), 0);
        reaper_hold(r);
        pid_t pid = fork();
        if (pid == 0)
                _exit(7);
        /* Let the loop reap it with nobody watching. */
        for (int i = 0; i < 200 && reaper_n_stashed(r) == 0; i++)
                run_loop_for(0.05);
        ck_assert_uint_eq(reaper_n_stashed(r), 1);
        struct seen s = {0};
        ck_assert_int_eq(reaper_watch(r, pid, on_exit_seen, &s), 0);
        ck_assert_int_eq(s.calls, 0); /* never from inside reaper_watch */
        run_loop_for(10);
        ck_assert_int_eq(s.calls, 1);
        ck_assert_int_eq(exit_status_from_wait(s.status), 7);
        reaper_release(r);
        reaper_free(r);
}
END_TEST

START_TEST(test_reaper_orphans_counted_not_stashed) {
        struct reaper *r = NULL;
        ck_assert_int_eq(reaper_new(EV_DEFAULT, &r), 0);
        for (int i = 0; i < 20; i++)
                if (fork() == 0)
                        _exit(0);
        for (int i = 0; i < 400 && reaper_n_orphans(r) < 20; i++)
                run_loop_for(0.05);
        ck_assert_uint_eq(reaper_n_orphans(r), 20);
        ck_assert_uint_eq(reaper_n_stashed(r), 0);
        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* no zombie left */
        reaper_free(r);
}
END_TEST

START_TEST(test_close_all_fds_except) {
        int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY), c = open("/dev/null", O_RDONLY);
        ck_assert_int_ge(c, 0);
        pid_t pid = fork();
        if (pid == 0) {
                int keep[] = {b};
                close_all_fds_except(keep, 1);
                bool ok = fcntl(a, F_GETFD) < 0 && fcntl(b, F_GETFD) >= 0 && fcntl(c, F_GETFD) < 0 && count_open_fds() == 4;
                _exit(ok ? 0 : 1);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_int_eq(exit_status_from_wait(st), 0);
        close(a);
        close(b);
        close(c);
}
END_TEST

START_TEST(test_normal_absolute_paths) {
        ck_assert(path_is_normal_absolute("/", 100));
        ck_assert(path_is_normal_absolute("/run/containerd/io.containerd.runtime.v2.task/default/c1", 100));
        ck_assert(path_is_normal_absolute("/a/.b/..c/b..", 100));
        ck_assert(!path_is_normal_absolute(NULL, 100));
        ck_assert(!path_is_normal_absolute("", 100));
        ck_assert(!path_is_normal_absolute("relative/b", 100));
        ck_assert(!path_is_normal_absolute("/a/../b", 100));
        ck_assert(!path_is_normal_absolute("/a/..", 100));
        ck_assert(!path_is_normal_absolute("/..", 100));
        ck_assert(!path_is_normal_absolute("/a/./b", 100));
        ck_assert(!path_is_normal_absolute("/a/.", 100));
        ck_assert(!path_is_normal_absolute("/a//b", 100));
        ck_assert(!path_is_normal_absolute("/a/b/", 100));
        ck_assert(!path_is_normal_absolute("/abcdef", 5));
}
END_TEST


/* Every field of a log line is key=value (containerd re-logs the shim's lines, and log
 * tools parse them): no bare trailing id, and a quote or newline in the message stays
 * inside msg="...". */
static void split_fields(char *line, char **keys, size_t max, size_t *n) {
        *n = 0;
        char *p = line;
        while (*p && *p != '\n') {
                ck_assert_uint_lt(*n, max);
                keys[(*n)++] = p;
                char *eq = strchr(p, '=');
                ck_assert_msg(eq && eq < p + strcspn(p, " \n"), "field without '=' at: %s", p);
                *eq = 0;
                p = eq + 1;
                if (*p == '"') { /* quoted value: up to the next unescaped quote */
                        for (p++; *p && *p != '"'; p++)
                                if (*p == '\\' && p[1])
                                        p++;
                        ck_assert_int_eq(*p, '"');
                        p++;
                } else
                        p += strcspn(p, " \n");
                ck_assert_msg(*p == ' ' || *p == '\n' || *p == 0, "junk after a value: %s", p);
                if (*p == ' ')
                        p++;
        }
}

START_TEST(test_log_lines_are_key_value) {
        int fds[2];
        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        log_setup(fds[1], LOG_LEVEL_INFO, "c1-4db8");
        log_info("%s: created, init pid %d, \"quoted\"\nand a second line", "c1", 42);
        char buf[2048] = {0};
        ssize_t n = read(fds[0], buf, sizeof buf - 1);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(buf[n - 1], '\n');
        ck_assert_ptr_null(memchr(buf, '\n', (size_t)n - 1)); /* one line */
        char copy[2048];
        memcpy(copy, buf, sizeof copy);
        char *keys[16];
        size_t nk;
        split_fields(copy, keys, 16, &nk);
        const char *want[] = {"time", "level", "msg", "pid", "id"};
        ck_assert_uint_eq(nk, ELEMENTSOF(want));
        for (size_t i = 0; i < nk; i++)
                ck_assert_str_eq(keys[i], want[i]);
        ck_assert_ptr_nonnull(strstr(buf, " id=c1-4db8\n"));
        close(fds[0]);
        close(fds[1]);
}
END_TEST

START_TEST(test_log_civil_date_is_gmtime) {
        /* every day from 1900 to 2400 (leap centuries, the epoch, negative counts) */
        for (long long d = -25567; d <= 157026; d++) {
                time_t t = (time_t)(d * 86400);
                struct tm tm;
                ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
                int y, m, dd;
                log_civil_date(d, &y, &m, &dd);
                if (y != tm.tm_year + 1900 || m != tm.tm_mon + 1 || dd != tm.tm_mday)
                        ck_abort_msg("day %lld: %04d-%02d-%02d, gmtime says %04d-%02d-%02d", d, y, m, dd,
                                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("core");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_identifiers);
        tcase_add_test(tc, test_normal_absolute_paths);
        tcase_add_test(tc, test_parse_pid);
        tcase_add_test(tc, test_scan_u64);
        tcase_add_test(tc, test_exit_status);
        tcase_add_test(tc, test_atomic_file);
        tcase_add_test(tc, test_reaper_routes_exit);
        tcase_add_test(tc, test_reaper_early_exit_stash);
        tcase_add_test(tc, test_reaper_orphans_counted_not_stashed);
        tcase_add_test(tc, test_close_all_fds_except);
        tcase_add_test(tc, test_log_lines_are_key_value);
        tcase_add_test(tc, test_log_civil_date_is_gmtime);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
