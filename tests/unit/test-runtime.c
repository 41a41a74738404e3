/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the runtime adapter: argv building, the runtime's JSON log, state and
 * ps parsing, and the asynchronous calls against a fake runtime.
 *
 * The fake runtime is this test binary itself, run under the name "fake-runtime" (a
 * symlink): it records its argv, open fds, signal mask, ignored signals and stdin in
 * $FAKE_RECORD, then behaves as the FAKE_* environment variables say (an error in the
 * --log JSON file, text on stdout/stderr, an exit code or a signal). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "file-util.h"
#include "macro.h"
#include "reaper.h"
#include "runtime.h"
#include "unit.h"

#define CRIU_EMPTY_NS_TEST 17 /* one more than the adapter takes */

/* ---- the fake runtime ----------------------------------------------------------- */

static void fake_append(const char *path, const char *text) {
        FILE *f = fopen(path, "ae");
        if (!f)
                _exit(90);
        fputs(text, f);
        fclose(f);
}

static int fake_runtime_main(int argc, char **argv) {
        const char *record = getenv("FAKE_RECORD");
        const char *log_path = NULL;
        for (int i = 1; i + 1 < argc; i++)
                if (strcmp(argv[i], "--log") == 0)
                        log_path = argv[i + 1];
        if (record) {
                FILE *f = fopen(record, "ae");
                if (!f)
                        return 91;
                fputs("argv:", f);
                for (int i = 1; i < argc; i++)
                        fprintf(f, " %s", argv[i]);
                fputs("\nfds:", f);
                DIR *d = opendir("/proc/self/fd");
                struct dirent *e;
                int fds[64], n = 0;
                while (d && (e = readdir(d)))
                        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && atoi(e->d_name) != fileno(f) && n < 64)
                                fds[n++] = atoi(e->d_name);
                if (d)
                        closedir(d);
                for (int i = 0; i < n; i++) /* readdir order is ascending for /proc fds */
                        fprintf(f, " %d", fds[i]);
                sigset_t cur;
                sigprocmask(SIG_SETMASK, NULL, &cur);
                int blocked = 0, ignored = 0;
                for (int s = 1; s < 32; s++) {
                        struct sigaction sa;
                        if (sigismember(&cur, s))
                                blocked++;
                        if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
                                ignored++;
                }
                fprintf(f, "\nblocked: %d\nignored: %d\n", blocked, ignored);
                const char *criu_config = getenv("CRIU_CONFIG_FILE");
                fprintf(f, "criu-config: %s\n", criu_config ? criu_config : "(unset)");
                if (getenv("FAKE_READ_STDIN")) {
                        char buf[256];
                        ssize_t l = read(0, buf, sizeof buf - 1);
                        buf[l > 0 ? l : 0] = 0;
                        fprintf(f, "stdin: %s\n", buf);
                }
                fclose(f);
        }
        const char *v;
        if ((v = getenv("FAKE_LOG_ERROR")) && log_path) {
                char line[1024];
                snprintf(line, sizeof line,
                         "{\"level\":\"info\",\"msg\":\"noise\",\"time\":\"t\"}\n"
                         "{\"level\":\"error\",\"msg\":\"%s\",\"time\":\"t\"}\n",
                         v);
                fake_append(log_path, line);
        }
        if ((v = getenv("FAKE_STDOUT")))
                (void)!write(1, v, strlen(v));
        if ((v = getenv("FAKE_STDERR")))
                (void)!write(2, v, strlen(v));
        if ((v = getenv("FAKE_SIGNAL"))) {
                signal(atoi(v), SIG_DFL);
                raise(atoi(v));
        }
        return (v = getenv("FAKE_EXIT")) ? atoi(v) : 0;
}

/* ---- fixtures ---------------------------------------------------------------------- */

static char tmpdir[64];
static char fake_bin[128], record_path[128], log_path[128];

static void setup(void) {
        strcpy(tmpdir, "/tmp/test-runtime-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        char self[512];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        ck_assert_int_gt(n, 0);
        self[n] = 0;
        snprintf(fake_bin, sizeof fake_bin, "%s/fake-runtime", tmpdir);
        snprintf(record_path, sizeof record_path, "%s/record", tmpdir);
        snprintf(log_path, sizeof log_path, "%s/log.json", tmpdir);
        ck_assert_int_eq(symlink(self, fake_bin), 0);
        setenv("FAKE_RECORD", record_path, 1);
}

static void teardown(void) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "/bin/rm -rf '%s'", tmpdir);
        (void)!system(cmd);
}

struct done {
        int calls;
        int exit_status;
        char error[512];
        char out[512];
        bool has_error;
};

static void on_done(const struct runtime_result *res, void *ud) {
        struct done *d = ud;
        d->calls++;
        d->exit_status = res->exit_status;
        d->has_error = res->error != NULL;
        snprintf(d->error, sizeof d->error, "%s", res->error ? res->error : "");
        snprintf(d->out, sizeof d->out, "%s", res->out);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
        ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until pred(ud) or the deadline. */
static bool run_until(bool (*pred)(void *), void *ud, double seconds) {
        ev_timer t;
        ev_timer_init(&t, on_deadline, seconds, 0);
        ev_timer_start(EV_DEFAULT, &t);
        while (!pred(ud) && ev_is_active(&t))
                ev_run(EV_DEFAULT, EVRUN_ONCE);
        ev_timer_stop(EV_DEFAULT, &t);
        return pred(ud);
}

static bool done_called(void *ud) {
        return ((struct done *)ud)->calls > 0;
}

struct env {
        struct reaper *reaper;
        struct runtime *rt;
};

static void env_open(struct env *e, const char *binary, const char *root, bool with_log, bool systemd) {
        ck_assert_int_eq(reaper_new(EV_DEFAULT, &e->reaper), 0);
        struct runtime_config cfg = {
                .binary = binary,
                .root = root,
                .log_path = with_log ? log_path : NULL,
                .systemd_cgroup = systemd,
        };
        ck_assert_int_eq(runtime_new(EV_DEFAULT, e->reaper, &cfg, &e->rt), 0);
}

static void env_close(struct env *e) {
        runtime_free(e->rt);
        reaper_free(e->reaper);
}

static char *record(void) {
        char *buf = NULL;
        size_t len;
        if (read_file_at(AT_FDCWD, record_path, 1 << 20, &buf, &len) < 0)
                return strdup("");
        return buf;
}

/* The value after "KEY: " on the n-th (0-based) record of KEY. */
static char *record_field(const char *key, int nth) {
        _cleanup_free_ char *all = record();
        char want[64];
        snprintf(want, sizeof want, "%s:", key);
        for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n"))
                if (strncmp(line, want, strlen(want)) == 0 && nth-- == 0)
                        return strdup(line + strlen(want) + (line[strlen(want)] == ' '));
        return strdup("(none)");
}

#define ck_assert_record(key, nth, expect)                              \
        do {                                                            \
                _cleanup_free_ char *_v = record_field(key, nth);       \
                ck_assert_str_eq(_v, expect);                           \
        } while (0)

/* ---- pure helpers ---------------------------------------------------------------- */

START_TEST(test_build_argv) {
        char **argv = NULL;
        const char *kill_cmd[] = {"kill", "--all", "c1", "9", NULL};
        struct runtime_config cfg = {.binary = "/usr/bin/crun", .root = "/run/r", .log_path = "/b/log.json",
                                     .systemd_cgroup = true};
        ck_assert_int_eq(runtime_build_argv(&cfg, kill_cmd, &argv), 0);
        const char *want[] = {"/usr/bin/crun", "--root", "/run/r", "--log", "/b/log.json", "--log-format", "json",
                              "--systemd-cgroup", "kill", "--all", "c1", "9", NULL};
        for (size_t i = 0; want[i]; i++)
                ck_assert_str_eq(argv[i], want[i]);
        ck_assert_ptr_null(argv[12]);
        runtime_argv_free(argv);

        /* Defaults: "runc", no global options. */
        struct runtime_config plain = {0};
        const char *start_cmd[] = {"start", "c2", NULL};
        ck_assert_int_eq(runtime_build_argv(&plain, start_cmd, &argv), 0);
        ck_assert_str_eq(argv[0], "runc");
        ck_assert_str_eq(argv[1], "start");
        ck_assert_str_eq(argv[2], "c2");
        ck_assert_ptr_null(argv[3]);
        runtime_argv_free(argv);
}
END_TEST

START_TEST(test_log_last_error) {
        const char *log = "{\"level\":\"error\",\"msg\":\"first\"}\n"
                          "not json at all\n"
                          "{\"level\":\"warning\",\"msg\":\"a warning\"}\n"
                          "{\"level\":\"error\",\"msg\":\"exec: \\\"sh\\\": executable file not found in $PATH\"}\n"
                          "{\"level\":\"info\",\"msg\":\"later info\"}\n"
                          "{\"level\":\"error\",\"msg\":\"cut off at the ta";
        _cleanup_free_ char *m = runtime_log_last_error(log, strlen(log));
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, "exec: \"sh\": executable file not found in $PATH");
        ck_assert_ptr_null(runtime_log_last_error("", 0));
        const char *none = "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\"}\n{\"msg\":\"no level\"}\n";
        ck_assert_ptr_null(runtime_log_last_error(none, strlen(none)));
        /* crun writes without a trailing newline */
        const char *crun = "{\"msg\": \"crun says no\", \"level\": \"error\", \"time\": \"x\"}";
        _cleanup_free_ char *c = runtime_log_last_error(crun, strlen(crun));
        ck_assert_str_eq(c, "crun says no");
}
END_TEST

/* The not-exist and not-running answers, in runc's and crun's words; other errors that
 * mention a missing file are not mistaken for them. */
START_TEST(test_error_classes) {
        ck_assert(runtime_error_not_exist("container does not exist"));
        ck_assert(runtime_error_not_exist("error opening file `/run/crun/c1/status`: No such file or directory"));
        ck_assert(runtime_error_not_exist("cannot open directory '/run/crun/c1': No such file or directory"));
        ck_assert(!runtime_error_not_exist(NULL));
        ck_assert(!runtime_error_not_exist("executable file `/bin/x` not found: No such file or directory"));
        ck_assert(!runtime_error_not_exist("error opening file `/b/config.json`: No such file or directory"));
        ck_assert(!runtime_error_not_exist("error opening file `/run/crun/c1/status`: Permission denied"));
        ck_assert(runtime_error_not_running("container not running"));
        ck_assert(runtime_error_not_running("kill container: No such process"));
        ck_assert(runtime_error_not_running("os: process already finished"));
        ck_assert(!runtime_error_not_running("container does not exist"));
        ck_assert(!runtime_error_not_running(NULL));
}
END_TEST

START_TEST(test_parse_state) {
        struct runtime_state s;
        const char *ok = "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":4242,\"status\":\"running\","
                         "\"bundle\":\"/b\",\"rootfs\":\"/b/rootfs\",\"created\":\"x\",\"owner\":\"\"}";
        ck_assert_int_eq(runtime_parse_state(ok, strlen(ok), &s), 0);
        ck_assert_str_eq(s.id, "c1");
        ck_assert_int_eq(s.pid, 4242);
        ck_assert_str_eq(s.status, "running");
        ck_assert_str_eq(s.bundle, "/b");
        runtime_state_done(&s);
        const char *stopped = "{\"id\":\"c1\",\"pid\":0,\"status\":\"stopped\"}";
        ck_assert_int_eq(runtime_parse_state(stopped, strlen(stopped), &s), 0);
        ck_assert_int_eq(s.pid, 0);
        ck_assert_str_eq(s.bundle, "");
        runtime_state_done(&s);
        const char *bad[] = {
                "",
                "[]",
                "null",
                "{\"id\":\"c1\",\"status\":\"running\"}",                         /* no pid */
                "{\"id\":\"c1\",\"pid\":\"12\",\"status\":\"running\"}",          /* pid a string */
                "{\"id\":\"c1\",\"pid\":-1,\"status\":\"running\"}",
                "{\"id\":\"c1\",\"pid\":99999999999,\"status\":\"running\"}",
                "{\"id\":1,\"pid\":1,\"status\":\"running\"}",
                "{\"id\":\"c1\",\"pid\":1,\"status\":\"running\",\"bundle\":7}",
                "{\"id\":\"c1\",\"id\":\"c2\",\"pid\":1,\"status\":\"running\"}", /* duplicate key */
                "{\"id\":\"c1\",\"pid\":1,\"status\":\"running\"",                /* truncated */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(runtime_parse_state(bad[i], strlen(bad[i]), &s) == -EINVAL, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(test_parse_ps) {
        pid_t *pids = NULL;
        size_t n = 99;
        ck_assert_int_eq(runtime_parse_ps("[12,34,56]", 10, &pids, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(pids[0], 12);
        ck_assert_int_eq(pids[2], 56);
        free(pids);
        ck_assert_int_eq(runtime_parse_ps("null", 4, &pids, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(pids);
        ck_assert_int_eq(runtime_parse_ps("[]\n", 3, &pids, &n), 0);
        ck_assert_uint_eq(n, 0);
        const char *bad[] = {"", "{}", "[1,\"2\"]", "[0]", "[-3]", "[1.5]", "[4294967296]", "[1,2"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(runtime_parse_ps(bad[i], strlen(bad[i]), &pids, &n) == -EINVAL, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(test_criu_log_error) {
        const char *log = "(00.000001) Version: 4.1.1\n"
                          "(00.026918) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE\n"
                          "(00.263041)      1: Error (criu/files-reg.c:2175): File fd/1 has bad size 0 (expect 60)\n"
                          "(00.263044)      1: Error (criu/files.c:1221): Unable to open fd=1 id=0x3\n"
                          "(00.270551) Error (criu/cr-restore.c:2320): Restoring FAILED.\n"
                          "(00.273429) Error (criu/cgroup.c:1998): cg: cgroupd: recv req error";
        _cleanup_free_ char *m = runtime_criu_log_error(log, strlen(log));
        ck_assert_str_eq(m, "File fd/1 has bad size 0 (expect 60); Unable to open fd=1 id=0x3");
        const char *one = "(00.1) Warn  (criu/kerndat.c:1290): not an error\n(00.2) Error (criu/x.c:1): only this";
        _cleanup_free_ char *m1 = runtime_criu_log_error(one, strlen(one));
        ck_assert_str_eq(m1, "only this");
        const char *none = "(00.1) Info  (criu/x.c:1): fine\nError ( no closing";
        ck_assert_ptr_null(runtime_criu_log_error(none, strlen(none)));
        ck_assert_ptr_null(runtime_criu_log_error("", 0));
}
END_TEST

/* ---- asynchronous calls against the fake runtime ------------------------------------ */

START_TEST(test_call_argv_and_status) {
        struct env e;
        env_open(&e, fake_bin, "/run/fake-root", true, true);
        struct done d = {0};
        setenv("FAKE_EXIT", "0", 1);
        ck_assert_int_eq(runtime_kill(e.rt, "c1", 9, true, on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_int_eq(d.exit_status, 0);
        ck_assert(!d.has_error);
        char want[256];
        snprintf(want, sizeof want, "--root /run/fake-root --log %s --log-format json --systemd-cgroup kill --all c1 9",
                 log_path);
        ck_assert_record("argv", 0, want);

        struct done d2 = {0};
        ck_assert_int_eq(runtime_kill(e.rt, "c1", 15, false, on_done, &d2), 0);
        ck_assert(run_until(done_called, &d2, 10));
        snprintf(want, sizeof want, "--root /run/fake-root --log %s --log-format json --systemd-cgroup kill c1 15",
                 log_path);
        ck_assert_record("argv", 1, want);
        env_close(&e);
}
END_TEST

START_TEST(test_call_argv_each) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        struct done d[8] = {{0}};
        struct runtime_create_opts co = {.id = "c1", .bundle = "/b", .pid_file = "/b/init.pid",
                                         .console_socket = "/s/console.sock", .no_pivot = true, .no_new_keyring = true,
                                         .stdio = {-1, -1, -1}};
        struct runtime_exec_opts eo = {.id = "c1", .process_file = "/b/p.json", .pid_file = "/b/e.pid", .detach = true,
                                       .stdio = {-1, -1, -1}};
        /* One at a time, so that the records come in order. */
        ck_assert_int_eq(runtime_create(e.rt, &co, on_done, &d[0]), 0);
        ck_assert(run_until(done_called, &d[0], 10));
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d[1]), 0);
        ck_assert(run_until(done_called, &d[1], 10));
        ck_assert_int_eq(runtime_delete(e.rt, "c1", true, on_done, &d[2]), 0);
        ck_assert(run_until(done_called, &d[2], 10));
        ck_assert_int_eq(runtime_exec(e.rt, &eo, on_done, &d[3]), 0);
        ck_assert(run_until(done_called, &d[3], 10));
        ck_assert_int_eq(runtime_pause(e.rt, "c1", on_done, &d[4]), 0);
        ck_assert(run_until(done_called, &d[4], 10));
        ck_assert_int_eq(runtime_resume(e.rt, "c1", on_done, &d[5]), 0);
        ck_assert(run_until(done_called, &d[5], 10));
        ck_assert_int_eq(runtime_ps(e.rt, "c1", on_done, &d[6]), 0);
        ck_assert(run_until(done_called, &d[6], 10));
        ck_assert_int_eq(runtime_delete(e.rt, "c1", false, on_done, &d[7]), 0);
        ck_assert(run_until(done_called, &d[7], 10));
        struct done d8 = {0};
        co.console_socket = NULL;
        co.no_new_keyring = false;
        ck_assert_int_eq(runtime_run(e.rt, &co, on_done, &d8), 0);
        ck_assert(run_until(done_called, &d8, 10));
        ck_assert_record("argv", 8, "run --detach --bundle /b --pid-file /b/init.pid --no-pivot c1");
        ck_assert_record("argv", 0, "create --bundle /b --pid-file /b/init.pid --console-socket /s/console.sock "
                                    "--no-pivot --no-new-keyring c1");
        ck_assert_record("argv", 1, "start c1");
        ck_assert_record("argv", 2, "delete --force c1");
        ck_assert_record("argv", 3, "exec --process /b/p.json --detach --pid-file /b/e.pid c1");
        ck_assert_record("argv", 4, "pause c1");
        ck_assert_record("argv", 5, "resume c1");
        ck_assert_record("argv", 6, "ps --format json c1");
        ck_assert_record("argv", 7, "delete c1");
        env_close(&e);
}
END_TEST

/* checkpoint and restore: every option as runc 1.1 spells it, CRIU's configuration file
 * in the runtime's environment only, --criu when a criu path is configured. */
START_TEST(test_checkpoint_restore_argv) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        const char *empty[] = {"network", "ipc", NULL};
        struct runtime_checkpoint_opts all = {
                .id = "c1", .image_path = "/img", .work_path = "/work", .parent_path = "../pre",
                .leave_running = true, .tcp_established = true, .ext_unix_sk = true, .shell_job = true,
                .file_locks = true, .empty_ns = empty, .manage_cgroups_mode = "soft", .criu_config = "/w/criu.conf",
        };
        struct runtime_checkpoint_opts plain = {.id = "c1", .image_path = "/img"};
        struct runtime_checkpoint_opts pre = {.id = "c1", .image_path = "/pre", .pre_dump = true, .leave_running = true};
        struct runtime_restore_opts ro = {
                .id = "c2", .bundle = "/b", .pid_file = "/b/init.pid", .console_socket = "/s/c.sock",
                .image_path = "/img", .work_path = "/work2", .no_pivot = true, .tcp_established = true,
                .file_locks = true, .empty_ns = empty, .criu_config = "/w/restore.conf", .stdio = {-1, -1, -1},
        };
        struct runtime_restore_opts rplain = {.id = "c2", .bundle = "/b", .pid_file = "/b/p", .image_path = "/img",
                                              .stdio = {-1, -1, -1}};
        struct done d[5] = {{0}};
        ck_assert_int_eq(runtime_checkpoint(e.rt, &all, on_done, &d[0]), 0);
        ck_assert(run_until(done_called, &d[0], 10));
        ck_assert_int_eq(runtime_checkpoint(e.rt, &plain, on_done, &d[1]), 0);
        ck_assert(run_until(done_called, &d[1], 10));
        ck_assert_int_eq(runtime_checkpoint(e.rt, &pre, on_done, &d[2]), 0);
        ck_assert(run_until(done_called, &d[2], 10));
        ck_assert_int_eq(runtime_restore(e.rt, &ro, on_done, &d[3]), 0);
        ck_assert(run_until(done_called, &d[3], 10));
        ck_assert_int_eq(runtime_restore(e.rt, &rplain, on_done, &d[4]), 0);
        ck_assert(run_until(done_called, &d[4], 10));
        ck_assert_record("argv", 0, "checkpoint --image-path /img --work-path /work --tcp-established --ext-unix-sk "
                                    "--shell-job --file-locks --empty-ns network --empty-ns ipc "
                                    "--manage-cgroups-mode soft --parent-path ../pre --leave-running c1");
        ck_assert_record("criu-config", 0, "/w/criu.conf");
        ck_assert_record("argv", 1, "checkpoint --image-path /img c1");
        ck_assert_record("criu-config", 1, "(unset)");
        ck_assert_record("argv", 2, "checkpoint --image-path /pre --pre-dump c1");
        ck_assert_record("argv", 3, "restore --detach --no-subreaper --bundle /b --pid-file /b/init.pid "
                                    "--console-socket /s/c.sock --no-pivot --image-path /img --work-path /work2 "
                                    "--tcp-established --file-locks --empty-ns network --empty-ns ipc c2");
        ck_assert_record("criu-config", 3, "/w/restore.conf");
        ck_assert_record("argv", 4, "restore --detach --no-subreaper --bundle /b --pid-file /b/p --image-path /img c2");
        ck_assert_record("criu-config", 4, "(unset)");
        /* the configuration file is the runtime's only: the shim's environment is untouched */
        ck_assert_ptr_null(getenv("CRIU_CONFIG_FILE"));

        /* No image path, too many namespaces: refused before anything runs. */
        struct runtime_checkpoint_opts bad = {.id = "c1"};
        ck_assert_int_eq(runtime_checkpoint(e.rt, &bad, on_done, &d[0]), -EINVAL);
        const char *many[CRIU_EMPTY_NS_TEST + 1];
        for (size_t i = 0; i < CRIU_EMPTY_NS_TEST; i++)
                many[i] = "network";
        many[CRIU_EMPTY_NS_TEST] = NULL;
        rplain.empty_ns = many;
        ck_assert_int_eq(runtime_restore(e.rt, &rplain, on_done, &d[0]), -EINVAL);
        env_close(&e);

        /* A criu path: the global --criu (runc 1.1). */
        struct reaper *reaper;
        struct runtime *rt;
        ck_assert_int_eq(reaper_new(EV_DEFAULT, &reaper), 0);
        struct runtime_config cfg = {.binary = fake_bin, .criu = "/opt/criu/criu"};
        ck_assert_int_eq(runtime_new(EV_DEFAULT, reaper, &cfg, &rt), 0);
        struct done d5 = {0};
        ck_assert_int_eq(runtime_checkpoint(rt, &plain, on_done, &d5), 0);
        ck_assert(run_until(done_called, &d5, 10));
        ck_assert_record("argv", 5, "--criu /opt/criu/criu checkpoint --image-path /img c1");
        runtime_free(rt);
        reaper_free(reaper);
}
END_TEST

/* A failed checkpoint/restore: runc's error, then CRIU's own error lines from its log in
 * the work path (else the image path). */
START_TEST(test_checkpoint_criu_error) {
        struct env e;
        env_open(&e, fake_bin, NULL, true, false);
        char work[160];
        snprintf(work, sizeof work, "%s/work", tmpdir);
        ck_assert_int_eq(mkdir(work, 0700), 0);
        const char *criu_log = "(00.000100) Version: 4.1.1\n"
                               "(00.063435) Error (criu/util.c:1533): rlimit: cannot raise\n"
                               "(00.170764) Error (criu/files-reg.c:1790): Can't lookup mount=27 for fd=1 path=/x\n"
                               "(00.170777) Error (criu/cr-dump.c:1681): Dump files (pid: 5) failed with -1\n"
                               "(00.182171) Error (criu/cr-dump.c:2111): Dumping FAILED.\n"
                               "(00.190000) Error (criu/cgroup.c:1998): clean-up noise\n";
        int wfd = open(work, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(wfd, 0);
        ck_assert_int_eq(write_file_replace_at(wfd, "dump.log", criu_log, strlen(criu_log), 0600), 0);
        close(wfd);
        setenv("FAKE_EXIT", "1", 1);
        setenv("FAKE_LOG_ERROR", "criu failed: type NOTIFY errno 0", 1);
        struct runtime_checkpoint_opts o = {.id = "c1", .image_path = "/nonexistent-img", .work_path = work};
        struct done d = {0};
        ck_assert_int_eq(runtime_checkpoint(e.rt, &o, on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_int_eq(d.exit_status, 1);
        ck_assert_str_eq(d.error, "criu failed: type NOTIFY errno 0: criu: Can't lookup mount=27 for fd=1 path=/x; "
                                  "Dump files (pid: 5) failed with -1");

        /* No CRIU log (criu never ran): runc's error alone. */
        struct runtime_restore_opts ro = {.id = "c1", .bundle = "/b", .pid_file = "/b/p", .image_path = work,
                                          .work_path = "/nonexistent-work", .stdio = {-1, -1, -1}};
        setenv("FAKE_LOG_ERROR", "exec: \\\"criu\\\": executable file not found in $PATH", 1);
        struct done d2 = {0};
        ck_assert_int_eq(runtime_restore(e.rt, &ro, on_done, &d2), 0);
        ck_assert(run_until(done_called, &d2, 10));
        ck_assert_str_eq(d2.error, "exec: \"criu\": executable file not found in $PATH");
        unsetenv("FAKE_EXIT");
        unsetenv("FAKE_LOG_ERROR");
        env_close(&e);
}
END_TEST

/* The runtime starts clean: only fds 0,1,2, no blocked or ignored signal, whatever the
 * shim had. */
START_TEST(test_child_is_clean) {
        int leaked = open("/dev/null", O_RDONLY); /* not O_CLOEXEC on purpose */
        ck_assert_int_ge(leaked, 3);
        signal(SIGUSR1, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        sigprocmask(SIG_BLOCK, &set, NULL);
        struct env e;
        env_open(&e, fake_bin, NULL, true, false);
        struct done d = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_int_eq(d.exit_status, 0);
        ck_assert_record("fds", 0, "0 1 2");
        ck_assert_record("blocked", 0, "0");
        ck_assert_record("ignored", 0, "0");
        env_close(&e);
        close(leaked);
}
END_TEST

/* The runtime's error reaches the caller word for word: from the JSON log (only what this
 * call wrote), else from its stderr, else a plain statement. */
START_TEST(test_error_messages) {
        struct env e;
        env_open(&e, fake_bin, NULL, true, false);
        struct done d = {0};
        setenv("FAKE_EXIT", "1", 1);
        setenv("FAKE_LOG_ERROR", "container \\\"c1\\\" does not exist", 1);
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_int_eq(d.exit_status, 1);
        ck_assert_str_eq(d.error, "container \"c1\" does not exist");

        /* The next failure writes nothing to the log: the old error must not be reused. */
        unsetenv("FAKE_LOG_ERROR");
        setenv("FAKE_STDERR", "runc: something broke\n", 1);
        struct done d2 = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d2), 0);
        ck_assert(run_until(done_called, &d2, 10));
        ck_assert_str_eq(d2.error, "runc: something broke");

        unsetenv("FAKE_STDERR");
        setenv("FAKE_EXIT", "3", 1);
        struct done d3 = {0};
        ck_assert_int_eq(runtime_pause(e.rt, "c1", on_done, &d3), 0);
        ck_assert(run_until(done_called, &d3, 10));
        ck_assert_int_eq(d3.exit_status, 3);
        ck_assert_ptr_nonnull(strstr(d3.error, "pause exited with status 3"));

        /* Success: no error even if the log holds old ones. */
        setenv("FAKE_EXIT", "0", 1);
        struct done d4 = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d4), 0);
        ck_assert(run_until(done_called, &d4, 10));
        ck_assert(!d4.has_error);
        env_close(&e);
}
END_TEST

START_TEST(test_killed_runtime) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        struct done d = {0};
        setenv("FAKE_SIGNAL", "9", 1);
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_int_eq(d.exit_status, 137);
        ck_assert(d.has_error);
        env_close(&e);
}
END_TEST

START_TEST(test_missing_binary) {
        struct env e;
        env_open(&e, "/nonexistent/bin/runc", NULL, false, false);
        struct done d = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d), 0);
        ck_assert_int_eq(d.calls, 0); /* never from inside the call */
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_int_eq(d.exit_status, 127);
        ck_assert_str_eq(d.error, "runtime binary \"/nonexistent/bin/runc\" not found");
        env_close(&e);

        /* by name, through PATH */
        setenv("PATH", tmpdir, 1);
        env_open(&e, "no-such-runtime", NULL, false, false);
        struct done d2 = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d2), 0);
        ck_assert(run_until(done_called, &d2, 10));
        ck_assert_int_eq(d2.exit_status, 127);
        env_close(&e);
        env_open(&e, "fake-runtime", NULL, false, false);
        struct done d3 = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d3), 0);
        ck_assert(run_until(done_called, &d3, 10));
        ck_assert_int_eq(d3.exit_status, 0);
        env_close(&e);
}
END_TEST

START_TEST(test_state_output_captured) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        struct done d = {0};
        setenv("FAKE_STDOUT", "{\"id\":\"c1\",\"pid\":77,\"status\":\"paused\",\"bundle\":\"/b\"}", 1);
        ck_assert_int_eq(runtime_state(e.rt, "c1", on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        struct runtime_state s;
        ck_assert_int_eq(runtime_parse_state(d.out, strlen(d.out), &s), 0);
        ck_assert_int_eq(s.pid, 77);
        ck_assert_str_eq(s.status, "paused");
        runtime_state_done(&s);
        ck_assert_record("argv", 0, "state c1");
        env_close(&e);
}
END_TEST

/* create/exec hand the container's stdio to the runtime as its fds 0,1,2. */
START_TEST(test_create_stdio) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        int p[2];
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        setenv("FAKE_STDOUT", "to-the-container-stdout", 1);
        struct runtime_create_opts co = {.id = "c1", .bundle = "/b", .pid_file = "/b/pid", .stdio = {-1, p[1], -1}};
        struct done d = {0};
        ck_assert_int_eq(runtime_create(e.rt, &co, on_done, &d), 0);
        close(p[1]);
        ck_assert(run_until(done_called, &d, 10));
        char buf[64] = {0};
        ck_assert_int_eq(read(p[0], buf, sizeof buf - 1), 23);
        ck_assert_str_eq(buf, "to-the-container-stdout");
        close(p[0]);
        env_close(&e);
}
END_TEST

START_TEST(test_update_stdin) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        setenv("FAKE_READ_STDIN", "1", 1);
        struct done d = {0};
        ck_assert_int_eq(runtime_update(e.rt, "c1", "{\"memory\":{\"limit\":1048576}}", on_done, &d), 0);
        ck_assert(run_until(done_called, &d, 10));
        ck_assert_record("argv", 0, "update --resources - c1");
        ck_assert_record("stdin", 0, "{\"memory\":{\"limit\":1048576}}");
        env_close(&e);
}
END_TEST

static bool reaped_one(void *ud) {
        return reaper_n_reaped(ud) >= 1;
}

/* Freeing the runtime with calls in flight detaches them. */
START_TEST(test_free_detaches) {
        struct env e;
        env_open(&e, fake_bin, NULL, false, false);
        struct done d = {0};
        ck_assert_int_eq(runtime_start(e.rt, "c1", on_done, &d), 0);
        runtime_free(e.rt);
        e.rt = NULL;
        ck_assert(run_until(reaped_one, e.reaper, 10));
        for (int i = 0; i < 10; i++)
                ev_run(EV_DEFAULT, EVRUN_NOWAIT);
        ck_assert_int_eq(d.calls, 0);
        reaper_free(e.reaper);
}
END_TEST

/* ---- runc's state removed in place --------------------------------------------------- */

/* A runc state dir <tmp>/root/c1 and its cgroups <tmp>/cg/{memory,pids}/ns/c1, with
 * state.json built from fields; returns the cgroup prefix "<tmp>/cg/". */
static char cg_prefix[160], state_root[160];

static void mkdir_p(const char *path) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        (void)mkdir(buf, 0755);
                        *p = '/';
                }
        ck_assert(mkdir(buf, 0755) == 0 || errno == EEXIST);
}

/* dir followed by rest exists */
static bool exists(const char *dir, const char *rest) {
        char path[256];
        snprintf(path, sizeof path, "%s%s", dir, rest);
        return access(path, F_OK) == 0;
}

/* extra: JSON members added to the top level; config: the members of "config" but
 * "cgroups" (NULL: NEWNS and NEWPID namespaces); cgroups: the members of
 * "config.cgroups" but "name" (NULL: Systemd false); paths_json: the cgroup_paths
 * object (NULL: memory and pids). */
static void runc_state_paths(void) {
        snprintf(cg_prefix, sizeof cg_prefix, "%s/cg/", tmpdir);
        snprintf(state_root, sizeof state_root, "%s/root", tmpdir);
}

static void make_runc_state(int pid, const char *extra, const char *config, const char *cgroups,
                            const char *paths_json) {
        runc_state_paths();
        char path[256], paths[512];
        snprintf(path, sizeof path, "%smemory/ns/c1", cg_prefix);
        mkdir_p(path);
        snprintf(path, sizeof path, "%spids/ns/c1", cg_prefix);
        mkdir_p(path);
        snprintf(path, sizeof path, "%s/c1", state_root);
        mkdir_p(path);
        if (!paths_json) {
                snprintf(paths, sizeof paths, "{\"memory\": \"%smemory/ns/c1\", \"pids\": \"%spids/ns/c1\"}", cg_prefix,
                         cg_prefix);
                paths_json = paths;
        }
        char json[2048];
        int n = snprintf(json, sizeof json,
                         "{\"id\": \"c1\", \"init_process_pid\": %d, \"init_process_start\": 123, %s"
                         "\"config\": {%s, \"cgroups\": {\"name\": \"c1\", %s}}, "
                         "\"cgroup_paths\": %s}",
                         pid, extra ? extra : "",
                         config ? config
                                : "\"namespaces\": [{\"type\": \"NEWNS\", \"path\": \"\"}, {\"type\": \"NEWPID\", \"path\": \"\"}]",
                         cgroups ? cgroups : "\"Systemd\": false", paths_json);
        ck_assert_int_lt(n, (int)sizeof json);
        snprintf(path, sizeof path, "%s/c1/state.json", state_root);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(json, f);
        fclose(f);
}

/* Nothing was touched: state and both cgroups are still there. */
static void assert_untouched(void) {
        ck_assert(exists(state_root, "/c1/state.json"));
        ck_assert(exists(cg_prefix, "memory/ns/c1"));
        ck_assert(exists(cg_prefix, "pids/ns/c1"));
}

START_TEST(test_runc_state_removed) {
        /* as runc 1.1 writes them for a container without these features */
        make_runc_state(4242, "\"rootless\": false, \"intel_rdt_path\": \"\",", NULL, NULL, NULL);
        _cleanup_free_ char *why = NULL;
        ck_assert_int_eq(runc_state_remove(state_root, "c1", 4242, cg_prefix, &why), 0);
        ck_assert(!exists(state_root, "/c1"));
        ck_assert(!exists(cg_prefix, "memory/ns/c1"));
        ck_assert(!exists(cg_prefix, "pids/ns/c1"));
        ck_assert(exists(cg_prefix, "memory/ns")); /* the parent is not ours */
        /* Already gone: nothing to do here, the runtime's delete decides. */
        free(TAKE_PTR(why));
        ck_assert_int_eq(runc_state_remove(state_root, "c1", 4242, cg_prefix, &why), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_runc_state_refused) {
        static const struct {
                const char *extra, *config, *cgroups, *paths;
                int pid;
                const char *why;
        } cases[] = {
                {NULL, NULL, NULL, NULL, 4343, "another init"},
                {NULL, NULL, "\"Systemd\": true", NULL, 4242, "systemd"},
                {NULL, NULL, "\"systemd\": true", NULL, 4242, "systemd"},
                {"\"x\": ,", NULL, NULL, NULL, 4242, "invalid JSON"},
                {"\"intel_rdt_path\": \"/sys/fs/resctrl/c1\",", NULL, NULL, NULL, 4242, "Intel RDT"},
                /* runc's own key, and the OCI spelling */
                {NULL, "\"Hooks\": {\"poststart\": null, \"poststop\": [{\"path\": \"/bin/true\"}]}", NULL, NULL, 4242,
                 "poststop"},
                {NULL, "\"hooks\": {\"poststop\": [{\"path\": \"/bin/true\"}]}", NULL, NULL, 4242, "poststop"},
                {"\"rootless\": true,", NULL, NULL, NULL, 4242, "rootless"},
                {NULL, NULL, NULL, "{\"memory\": \"/etc\"}", 4242, "unexpected cgroup path"},
                {NULL, NULL, NULL, "{\"memory\": \"/tmp/not-below-the-cgroup-mount/at-all/c1\"}", 4242,
                 "unexpected cgroup path"},
                {NULL, NULL, NULL, "{\"memory\": \"CG/memory/../../etc\"}", 4242, "unexpected cgroup path"},
                {NULL, NULL, NULL, "{\"memory\": \"CG/\"}", 4242, "unexpected cgroup path"},
                {NULL, NULL, NULL, "{\"memory\": 7}", 4242, "unexpected cgroup path"},
                {NULL, NULL, NULL, "[]", 4242, "not an object"},
                /* runc signals the cgroup's processes first without a PID namespace of its own */
                {NULL, "\"namespaces\": [{\"type\": \"NEWPID\", \"path\": \"/proc/1/ns/pid\"}]", NULL, NULL, 4242,
                 "PID namespace"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                runc_state_paths();
                /* "CG/" in a path stands for the test's cgroup prefix */
                char paths[256];
                const char *pj = cases[i].paths, *at = pj ? strstr(pj, "CG/") : NULL;
                if (at) {
                        snprintf(paths, sizeof paths, "%.*s%s%s", (int)(at - pj), pj, cg_prefix, at + 3);
                        pj = paths;
                }
                make_runc_state(4242, cases[i].extra, cases[i].config, cases[i].cgroups, pj);
                _cleanup_free_ char *why = NULL;
                int r = runc_state_remove(state_root, "c1", cases[i].pid, cg_prefix, &why);
                ck_assert_msg(r == -EOPNOTSUPP, "case %zu: %d (%s)", i, r, why ? why : "");
                ck_assert_ptr_nonnull(why);
                if (cases[i].why)
                        ck_assert_msg(strstr(why, cases[i].why), "case %zu: reason \"%s\"", i, why);
                assert_untouched();
        }
}
END_TEST

START_TEST(test_runc_state_other_files) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        char path[256];
        snprintf(path, sizeof path, "%s/c1/exec.fifo", state_root);
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        _cleanup_free_ char *why = NULL;
        ck_assert_int_eq(runc_state_remove(state_root, "c1", 4242, cg_prefix, &why), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(strstr(why, "exec.fifo"));
        assert_untouched();
}
END_TEST

/* A cgroup that cannot go (here: not empty) stops the removal with the state in place,
 * for the runtime's delete to finish. */
START_TEST(test_runc_state_busy_cgroup) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        char path[256];
        snprintf(path, sizeof path, "%spids/ns/c1/child", cg_prefix);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        _cleanup_free_ char *why = NULL;
        int r = runc_state_remove(state_root, "c1", 4242, cg_prefix, &why);
        ck_assert_int_eq(r, -ENOTEMPTY);
        ck_assert_ptr_nonnull(strstr(why, "pids/ns/c1"));
        ck_assert(exists(state_root, "/c1/state.json"));
        ck_assert(exists(cg_prefix, "pids/ns/c1"));
}
END_TEST

/* The adapter takes this path for runc only: another binary (a wrapper, crun) gets its
 * own delete; as does the systemd driver and a runtime without an explicit root. */
START_TEST(test_delete_in_place_only_runc) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        static const struct {
                const char *binary;
                bool root, systemd;
                const char *why;
        } cases[] = {
                {"crun", true, false, "not runc"},
                {"/usr/local/bin/runc-wrapper", true, false, "not runc"},
                {"runc", false, false, "root"},
                {"runc", true, true, "systemd"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct env e;
                env_open(&e, cases[i].binary, cases[i].root ? state_root : NULL, false, cases[i].systemd);
                _cleanup_free_ char *why = NULL;
                ck_assert_int_eq(runtime_delete_stopped_in_place(e.rt, "c1", 4242, &why), -EOPNOTSUPP);
                ck_assert_msg(why && strstr(why, cases[i].why), "case %zu: %s", i, why ? why : "(null)");
                env_close(&e);
                assert_untouched();
        }
}
END_TEST

/* ---- runc's start done in place (its exec fifo) -------------------------------------- */

static void make_exec_fifo(void) {
        char path[256];
        snprintf(path, sizeof path, "%s/c1/exec.fifo", state_root);
        ck_assert_int_eq(mkfifo(path, 0622), 0);
}

/* A child stands in for `runc init`: it blocks opening the write end, writes "0". */
static pid_t fake_init_writer(bool write_byte) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char path[256];
                snprintf(path, sizeof path, "%s/c1/exec.fifo", state_root);
                int fd = open(path, O_WRONLY | O_CLOEXEC);
                _exit(fd < 0 || (write_byte && write(fd, "0", 1) != 1) ? 1 : 0);
        }
        return pid;
}

static int wait_readable(int fd) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return poll(&p, 1, 10000);
}

START_TEST(test_exec_fifo_started) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        make_exec_fifo();
        _cleanup_free_ char *why = NULL, *err = NULL;
        int fd = runc_exec_fifo_open(state_root, "c1", &why);
        ck_assert_msg(fd >= 0, "%s", why ? why : "");
        /* no writer yet: not readable (no EOF either), so the watcher waits */
        struct pollfd none = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&none, 1, 0), 0);
        pid_t w = fake_init_writer(true);
        ck_assert_int_eq(wait_readable(fd), 1);
        ck_assert_int_eq(runc_exec_fifo_read(fd, state_root, "c1", &err), 0);
        /* as runc start: the fifo is gone (runc's state says running), state.json stays */
        ck_assert(!exists(state_root, "/c1/exec.fifo"));
        ck_assert(exists(state_root, "/c1/state.json"));
        int st;
        ck_assert_int_eq(waitpid(w, &st, 0), w);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(fd);
}
END_TEST

/* The writer went without writing (an init that died at that point): runc's words. */
START_TEST(test_exec_fifo_dead_init) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        make_exec_fifo();
        _cleanup_free_ char *why = NULL, *err = NULL;
        int fd = runc_exec_fifo_open(state_root, "c1", &why);
        ck_assert_int_ge(fd, 0);
        pid_t w = fake_init_writer(false);
        int st;
        ck_assert_int_eq(waitpid(w, &st, 0), w);
        ck_assert_int_eq(runc_exec_fifo_read(fd, state_root, "c1", &err), -ESRCH);
        ck_assert_str_eq(err, "container process is already dead");
        ck_assert(exists(state_root, "/c1/exec.fifo"));
        close(fd);
}
END_TEST

/* No fifo (started already, or not runc's layout), or something else in its place:
 * refused, nothing read. */
START_TEST(test_exec_fifo_refused) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        _cleanup_free_ char *why = NULL;
        ck_assert_int_eq(runc_exec_fifo_open(state_root, "c1", &why), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(strstr(why, "exec.fifo"));
        free(TAKE_PTR(why));
        ck_assert_int_eq(runc_exec_fifo_open(state_root, "../c1", &why), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(strstr(why, "invalid"));
        char path[256];
        snprintf(path, sizeof path, "%s/c1/exec.fifo", state_root);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
        free(TAKE_PTR(why));
        ck_assert_int_eq(runc_exec_fifo_open(state_root, "c1", &why), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(strstr(why, "not a fifo"));
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(symlink("/etc/passwd", path), 0);
        free(TAKE_PTR(why));
        ck_assert_int_eq(runc_exec_fifo_open(state_root, "c1", &why), -EOPNOTSUPP);
}
END_TEST

/* As the delete: runc only, with a root; and never with NOTIFY_SOCKET set. */
START_TEST(test_start_in_place_only_runc) {
        make_runc_state(4242, NULL, NULL, NULL, NULL);
        make_exec_fifo();
        static const struct {
                const char *binary;
                bool root, notify;
                const char *why;
        } cases[] = {
                {"crun", true, false, "not runc"},
                {"runc", false, false, "root"},
                {"runc", true, true, "NOTIFY_SOCKET"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct env e;
                env_open(&e, cases[i].binary, cases[i].root ? state_root : NULL, false, false);
                if (cases[i].notify)
                        setenv("NOTIFY_SOCKET", "/run/nowhere", 1);
                _cleanup_free_ char *why = NULL;
                ck_assert_int_eq(runtime_start_in_place(e.rt, "c1", &why), -EOPNOTSUPP);
                unsetenv("NOTIFY_SOCKET");
                ck_assert_msg(why && strstr(why, cases[i].why), "case %zu: %s", i, why ? why : "(null)");
                env_close(&e);
        }
        ck_assert(exists(state_root, "/c1/exec.fifo"));
}
END_TEST

int main(int argc, char **argv) {
        const char *base = strrchr(argv[0], '/');
        if (strcmp(base ? base + 1 : argv[0], "fake-runtime") == 0)
                return fake_runtime_main(argc, argv);

        Suite *s = suite_create("runtime");
        TCase *pure = tcase_create("pure");
        tcase_add_test(pure, test_build_argv);
        tcase_add_test(pure, test_log_last_error);
        tcase_add_test(pure, test_error_classes);
        tcase_add_test(pure, test_parse_state);
        tcase_add_test(pure, test_parse_ps);
        tcase_add_test(pure, test_criu_log_error);
        suite_add_tcase(s, pure);
        TCase *calls = tcase_create("calls");
        tcase_set_timeout(calls, 60);
        tcase_add_checked_fixture(calls, setup, teardown);
        tcase_add_test(calls, test_call_argv_and_status);
        tcase_add_test(calls, test_call_argv_each);
        tcase_add_test(calls, test_child_is_clean);
        tcase_add_test(calls, test_error_messages);
        tcase_add_test(calls, test_killed_runtime);
        tcase_add_test(calls, test_missing_binary);
        tcase_add_test(calls, test_state_output_captured);
        tcase_add_test(calls, test_create_stdio);
        tcase_add_test(calls, test_update_stdin);
        tcase_add_test(calls, test_free_detaches);
        tcase_add_test(calls, test_checkpoint_restore_argv);
        tcase_add_test(calls, test_checkpoint_criu_error);
        suite_add_tcase(s, calls);
        TCase *inplace = tcase_create("delete-in-place");
        tcase_add_checked_fixture(inplace, setup, teardown);
        tcase_add_test(inplace, test_runc_state_removed);
        tcase_add_test(inplace, test_runc_state_refused);
        tcase_add_test(inplace, test_runc_state_other_files);
        tcase_add_test(inplace, test_runc_state_busy_cgroup);
        tcase_add_test(inplace, test_delete_in_place_only_runc);
        suite_add_tcase(s, inplace);
        TCase *start = tcase_create("start-in-place");
        tcase_add_checked_fixture(start, setup, teardown);
        tcase_add_test(start, test_exec_fifo_started);
        tcase_add_test(start, test_exec_fifo_dead_init);
        tcase_add_test(start, test_exec_fifo_refused);
        tcase_add_test(start, test_start_in_place_only_runc);
        suite_add_tcase(s, start);
        return run_suite(s);
}
