/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the exit pipeline (shim/container.c) without a socket, a runtime or
 * root: containers whose processes are children of this test, killed in the orders the
 * races produce; the events the hooks see and the answers Wait and Delete give. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container-internal.h"
#include "macro.h"
#include "reaper.h"
#include "runtime.h"
#include "shim.h"
#include "status-code.h"
#include "unit.h"

struct fixture {
        struct shim shim;
        char bundle[64];
        char events[1024]; /* "exit:e1 exit:c1 ..." in the order the hooks saw them */
        pid_t children[8];
        size_t n_children;
        bool teardown_before_exit; /* an exit event came after some container's teardown began */
};
static struct fixture fx;

static void on_event(struct container *c, enum container_event ev, const struct process *p) {
        const char *names[] = {[CONTAINER_EVENT_EXIT] = "exit", [CONTAINER_EVENT_OOM] = "oom",
                               [CONTAINER_EVENT_DELETE] = "delete", [CONTAINER_EVENT_PAUSED] = "paused",
                               [CONTAINER_EVENT_RESUMED] = "resumed",
                               [CONTAINER_EVENT_EXEC_ADDED] = "exec-added", [CONTAINER_EVENT_START] = "start"};
        if (ev == CONTAINER_EVENT_EXIT)
                for (struct container *o = fx.shim.containers; o; o = o->next)
                        if (o->early_delete != EARLY_DELETE_NONE || o->unmount_pid > 0)
                                fx.teardown_before_exit = true;
        size_t n = strlen(fx.events);
        snprintf(fx.events + n, sizeof fx.events - n, "%s%s:%s", n ? " " : "", names[ev], p ? p->id : c->id);
}
static const struct container_hooks hooks = {.event = on_event};

static void setup(void) {
        memset(&fx, 0, sizeof fx);
        fx.shim.loop = EV_DEFAULT;
        fx.shim.namespace = (char *)"unit";
        fx.shim.runtime_binary = (char *)"runc";
        ck_assert_int_eq(reaper_new(fx.shim.loop, &fx.shim.reaper), 0);
        strcpy(fx.bundle, "/tmp/test-container-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(fx.bundle));
}

static void teardown(void) {
        container_forget_all(&fx.shim);
        for (size_t i = 0; i < fx.n_children; i++)
                kill(fx.children[i], SIGKILL);
        fx.shim.reaper = reaper_free(fx.shim.reaper);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "/bin/rm -rf '%s'", fx.bundle);
        (void)!system(cmd);
}

/* A child that waits to be killed. */
static pid_t child(void) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        ck_assert_uint_lt(fx.n_children, ELEMENTSOF(fx.children));
        fx.children[fx.n_children++] = pid;
        return pid;
}

static void run_for(double seconds) {
        ev_tstamp end = ev_time() + seconds;
        while (ev_time() < end) {
                ev_now_update(EV_DEFAULT);
                ev_run(EV_DEFAULT, EVRUN_NOWAIT);
                usleep(2000);
        }
}

#define RUN_UNTIL(cond)                                                                  \
        do {                                                                             \
                ev_tstamp end_ = ev_time() + 20;                                         \
                while (!(cond) && ev_time() < end_) {                                    \
                        ev_run(EV_DEFAULT, EVRUN_NOWAIT);                                \
                        usleep(1000);                                                    \
                }                                                                        \
                ck_assert_msg(cond, "timed out waiting for: " #cond);                    \
        } while (0)

/* A created container whose init runs (a child of ours); its own PID namespace. */
static struct container *container_running(const char *id) {
        struct container *c = container_new(&fx.shim, id, fx.bundle, &hooks);
        ck_assert_ptr_nonnull(c);
        c->created = true;
        c->private_pidns = true;
        ck_assert_int_eq(process_watch(c->init, child()), 0);
        ck_assert_int_eq(process_transition(c->init, PROCESS_RUNNING), 0);
        return c;
}

static struct process *exec_add(struct container *c, const char *id) {
        struct process *p = process_new(c, id, false);
        ck_assert_ptr_nonnull(p);
        p->next = c->execs;
        c->execs = p;
        return p;
}

/* An exec whose Start is in flight. */
static struct process *exec_starting(struct container *c, const char *id) {
        struct process *p = exec_add(c, id);
        process_start_begin(p);
        return p;
}

/* The init killed; back once its exit waits for the execs. */
static void kill_init(struct container *c) {
        kill(c->init->pid, SIGKILL);
        RUN_UNTIL(c->init->exit == EXIT_AWAITING_EXECS);
}

struct answered {
        int calls, code, exit_status;
        char message[256];
        pid_t pid;
        struct timespec at;
};

static void on_answer(void *ud, int code, const char *message, const struct container_answer *a) {
        struct answered *w = ud;
        w->calls++;
        w->code = code;
        snprintf(w->message, sizeof w->message, "%s", message ? message : "");
        if (a) {
                w->pid = a->pid;
                w->exit_status = a->exit_status;
                w->at = a->exited_at;
        }
}

/* The init dies while an exec's Start is in flight, and a started exec still runs: the
 * init's exit waits for both (the in-flight start without a time limit); the exec whose
 * start then fails never gets an exit event, and its Wait answers 0 without a time. */
START_TEST(test_failed_start_holds_then_releases_init) {
        struct container *c = container_running("c1");
        struct process *e1 = exec_add(c, "e1");
        ck_assert_int_eq(process_watch(e1, child()), 0);
        process_start_end(e1, true);
        struct process *e2 = exec_starting(c, "e2");
        struct answered w_init = {0}, w_e2 = {0};
        ck_assert_int_eq(process_wait(c->init, on_answer, &w_init), 0);
        ck_assert_int_eq(process_wait(e2, on_answer, &w_e2), 0);

        kill_init(c);
        kill(e1->pid, SIGKILL);
        RUN_UNTIL(process_exited(e1));
        ck_assert_str_eq(fx.events, "exit:e1");
        run_for(2.5); /* past the 2 s grace: a start in flight is waited for regardless */
        ck_assert_int_eq(c->init->exit, EXIT_AWAITING_EXECS);
        ck_assert_int_eq(w_init.calls, 0);

        process_start_end(e2, false);
        ck_assert_int_eq(e2->exit, EXIT_NEVER);
        ck_assert(process_exited(c->init));
        ck_assert_str_eq(fx.events, "exit:e1 exit:c1");
        ck_assert_int_eq(w_init.calls, 1);
        ck_assert_int_eq(w_init.exit_status, 137);
        ck_assert_int_eq(w_e2.calls, 1); /* the outstanding Wait of e2: 0, no exit time */
        ck_assert_int_eq(w_e2.code, 0);
        ck_assert_int_eq(w_e2.exit_status, 0);
        ck_assert_int_eq(w_e2.at.tv_sec, 0);
        ck_assert_int_eq(e2->state, PROCESS_CREATED);

        struct answered d = {0};
        container_delete(c, e2, on_answer, &d); /* as runc-v2: pid 0, status 0 */
        ck_assert_int_eq(d.calls, 1);
        ck_assert_int_eq(d.code, 0);
        ck_assert_int_eq(d.pid, 0);
        ck_assert_int_eq(d.exit_status, 0);
        ck_assert_str_eq(fx.events, "exit:e1 exit:c1");
}
END_TEST

/* An exec whose Start was in flight when the init died, and which did start: its exit
 * is reported before the init's. */
START_TEST(test_exec_started_during_init_death_exits_first) {
        struct container *c = container_running("c2");
        struct process *e = exec_starting(c, "e3");
        kill_init(c);
        ck_assert_int_eq(process_watch(e, child()), 0);
        process_start_end(e, true);
        ck_assert_int_eq(c->init->exit, EXIT_AWAITING_EXECS);
        kill(e->pid, SIGKILL);
        RUN_UNTIL(process_exited(c->init));
        ck_assert_str_eq(fx.events, "exit:e3 exit:c2");
}
END_TEST

/* An exec reaped while its start is still completing: its exit waits for the start. */
START_TEST(test_exit_during_start_waits_for_it) {
        struct container *c = container_running("c3");
        struct process *e = exec_starting(c, "e4");
        ck_assert_int_eq(process_watch(e, child()), 0);
        kill(e->pid, SIGKILL);
        RUN_UNTIL(e->exit == EXIT_DRAINED);
        run_for(0.1);
        ck_assert_int_eq(e->exit, EXIT_DRAINED);
        ck_assert_str_eq(fx.events, "");
        process_start_end(e, true);
        ck_assert(process_exited(e));
        ck_assert_str_eq(fx.events, "exit:e4");
}
END_TEST

/* A started exec that outlives its init (no PID namespace of its own would allow it)
 * holds the init's exit for the 2 s grace only. */
START_TEST(test_running_exec_grace) {
        struct container *c = container_running("c4");
        struct process *e = exec_add(c, "e5");
        ck_assert_int_eq(process_watch(e, child()), 0);
        process_start_end(e, true);
        kill_init(c);
        RUN_UNTIL(process_exited(c->init));
        ck_assert(c->exec_grace_expired);
        ck_assert_str_eq(fx.events, "exit:c4");
}
END_TEST

/* A runtime for Delete: a script that records its arguments in <bundle>/calls and, for
 * `delete --force` (a created container), kills the init whose pid is in
 * <bundle>/init.pid, as runc's forced delete does (here 0.3 s after it returned). The
 * other calls as the comments below say. */
static const char *fake_runtime_script(void) {
        static char path[128];
        char calls[128];
        snprintf(path, sizeof path, "%s/fake-runtime", fx.bundle);
        snprintf(calls, sizeof calls, "%s/calls", fx.bundle);
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        /* the kill lands after the runtime returned: the harder order for the shim */
        fprintf(f,
                "#!/bin/sh\necho \"$*\" >>%s\n"
                "case \"$*\" in *'delete --force'*) (sleep 0.3; kill -9 $(cat %s/init.pid)) </dev/null >/dev/null 2>&1 & ;; esac\n"
                /* the other calls: `ps` lists the pids of <bundle>/pids; a call whose
                 * name is in <bundle>/fail fails with the text of <bundle>/error */
                "d=%s\n"
                "for a; do case \"$a\" in ps|pause|resume|update|kill|start|exec|create|run|restore) cmd=$a; break;; esac; done\n"
                "if [ -n \"$cmd\" ] && grep -qx \"$cmd\" $d/fail 2>/dev/null; then\n"
                "  cat $d/error >&2; printf '{\"level\":\"error\",\"msg\":\"%%s\"}\\n' \"$(cat $d/error)\" >>$d/log.json; exit 1\nfi\n"
                "[ \"$cmd\" = update ] && cat >$d/resources\n"
                "[ \"$cmd\" = ps ] && echo \"[$(cat $d/pids)]\"\n"
                /* exec, create, run, restore: the process they made is the pid of <bundle>/spawn-pid */
                "case \"$cmd\" in exec|create|run|restore) while [ \"$1\" != --pid-file ]; do shift; done; cp $d/spawn-pid \"$2\";; esac\n"
                "exit 0\n",
                calls, fx.bundle, fx.bundle);
        fclose(f);
        ck_assert_int_eq(chmod(path, 0755), 0);
        return path;
}

static void fake_runtime(struct container *c) {
        const char *path = fake_runtime_script();
        char log[128];
        snprintf(log, sizeof log, "%s/log.json", fx.bundle);
        struct runtime_config cfg = {.binary = path, .root = fx.bundle, .log_path = log};
        ck_assert_int_eq(runtime_new(fx.shim.loop, fx.shim.reaper, &cfg, &c->rt), 0);
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)c->init->pid);
        ck_assert_int_eq(container_write_bundle_file(c, "init.pid", pid), 0);
}

static bool called(const char *what) {
        char path[128], buf[512] = {0};
        snprintf(path, sizeof path, "%s/calls", fx.bundle);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        return strstr(buf, what) != NULL;
}

/* Delete c's init; the answer: OK with the init's status, after the runtime's `call`,
 * with the exit event before the delete event. */
static void delete_and_check(struct container *c, const char *call) {
        struct answered d = {0};
        char events[64];
        snprintf(events, sizeof events, "exit:%s delete:%s", c->id, c->id);
        container_delete(c, c->init, on_answer, &d);
        RUN_UNTIL(d.calls == 1);
        ck_assert_int_eq(d.code, 0);
        ck_assert_int_eq(d.exit_status, 137);
        ck_assert(called(call));
        ck_assert_str_eq(fx.events, events);
}

/* The inits of two containers die at once (a pod stopped): both exits are reported
 * before either container's teardown (the runtime's delete) begins, which waits for
 * the loop to be idle; then both run. */
START_TEST(test_teardown_after_exits) {
        struct container *a = container_running("ta"), *b = container_running("tb");
        fake_runtime(a);
        fake_runtime(b);
        a->early_delete_ok = b->early_delete_ok = true;
        kill(a->init->pid, SIGKILL);
        kill(b->init->pid, SIGKILL);
        /* both are zombies before the loop looks */
        for (int i = 0; i < 2; i++) {
                char path[64], st[256] = {0};
                snprintf(path, sizeof path, "/proc/%d/stat", (int)(i ? b : a)->init->pid);
                for (int tries = 0; tries < 2000 && !strstr(st, ") Z "); tries++) {
                        FILE *f = fopen(path, "re");
                        if (f) {
                                (void)!fread(st, 1, sizeof st - 1, f);
                                fclose(f);
                        }
                        usleep(1000);
                }
                ck_assert_msg(strstr(st, ") Z "), "not a zombie: %s", st);
        }
        RUN_UNTIL(a->init->exit == EXIT_REPORTED && b->init->exit == EXIT_REPORTED);
        ck_assert_msg(!fx.teardown_before_exit, "a teardown began before the other exit was reported");
        RUN_UNTIL(called("delete ta") && called("delete tb"));
        RUN_UNTIL(a->early_delete == EARLY_DELETE_DONE && b->early_delete == EARLY_DELETE_DONE);
}
END_TEST

static bool teardown_began(const struct container *c) {
        return c->early_delete != EARLY_DELETE_NONE || c->unmount_pid > 0;
}

/* The early teardown waits until exits stopped coming for a while (a node-wide kill:
 * the unmounts and cgroup removals after the burst, not during it): another exit within
 * the wait starts it again. A Delete does not wait. (A 2 s wait; the checks come well
 * inside it.) */
START_TEST(test_teardown_waits_for_quiet) {
        struct container *a = container_running("qa"), *b = container_running("qb"), *c = container_running("qc");
        fake_runtime(a);
        fake_runtime(b);
        fake_runtime(c);
        a->early_delete_ok = b->early_delete_ok = c->early_delete_ok = true;
        kill(a->init->pid, SIGKILL);
        RUN_UNTIL(a->init->exit == EXIT_REPORTED);
        run_for(0.03);
        ck_assert_msg(!teardown_began(a), "a teardown began while exits may still come");
        kill(b->init->pid, SIGKILL);
        RUN_UNTIL(b->init->exit == EXIT_REPORTED);
        run_for(0.03);
        ck_assert_msg(!teardown_began(a) && !teardown_began(b), "another exit did not start the wait again");
        kill(c->init->pid, SIGKILL);
        RUN_UNTIL(c->init->exit == EXIT_REPORTED);
        struct answered d = {0};
        container_delete(c, c->init, on_answer, &d);
        ck_assert_msg(teardown_began(c), "a Delete waited for the quiet");
        RUN_UNTIL(d.calls == 1);
        ck_assert_int_eq(d.code, 0);
        RUN_UNTIL(a->early_delete == EARLY_DELETE_DONE && b->early_delete == EARLY_DELETE_DONE);
}
END_TEST

/* Delete of a container whose init exited: the runtime's delete, then the answer with
 * the init's status and the delete event after the exit's. */
START_TEST(test_delete_after_exit) {
        struct container *c = container_running("c5");
        fake_runtime(c);
        kill(c->init->pid, SIGKILL);
        RUN_UNTIL(process_exited(c->init));
        delete_and_check(c, "delete c5"); /* (c is freed) */
        ck_assert_ptr_null(container_find(&fx.shim, "c5"));
}
END_TEST

/* Delete of a created container (its init never started): a forced delete, and the
 * answer only once the init's exit it caused is reported, after it. */
START_TEST(test_delete_created_reports_exit_first) {
        struct container *c = container_new(&fx.shim, "c6", fx.bundle, &hooks);
        ck_assert_ptr_nonnull(c);
        c->created = c->private_pidns = true;
        ck_assert_int_eq(process_watch(c->init, child()), 0);
        fake_runtime(c);
        delete_and_check(c, "delete --force c6");
}
END_TEST

/* Delete of a running process is refused. */
START_TEST(test_delete_running_refused) {
        struct container *c = container_running("c7");
        struct answered d = {0};
        container_delete(c, c->init, on_answer, &d);
        ck_assert_int_eq(d.calls, 1);
        ck_assert_int_eq(d.code, TTRPC_UNKNOWN);
        ck_assert_str_eq(fx.events, "");
}
END_TEST

/* ---- kill, pause and resume, update, pids ---- */

static void write_bundle(struct container *c, const char *name, const char *text) {
        ck_assert_int_eq(container_write_bundle_file(c, name, text), 0);
}

/* One process is signalled directly (no runtime); its exit comes through the pipeline.
 * Bad signals and processes that are gone or never started get runc-v2's answers. */
START_TEST(test_kill_one_process) {
        struct container *c = container_running("k1");
        fake_runtime(c);
        struct answered a = {0};
        container_kill(c, c->init, 0, false, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        container_kill(c, c->init, 65, false, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        struct process *e = exec_add(c, "ke");
        container_kill(c, e, SIGUSR1, false, on_answer, &a); /* created, never started */
        ck_assert_int_eq(a.code, TTRPC_FAILED_PRECONDITION);

        container_kill(c, c->init, SIGUSR1, false, on_answer, &a);
        ck_assert_int_eq(a.calls, 4);
        ck_assert_int_eq(a.code, 0);
        RUN_UNTIL(process_exited(c->init));
        ck_assert_int_eq(c->init->exit_status, 128 + SIGUSR1);
        ck_assert(!called("kill"));
        container_kill(c, c->init, SIGKILL, false, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_NOT_FOUND);
        container_kill(c, c->init, SIGKILL, true, on_answer, &a); /* its PID namespace is gone */
        ck_assert_int_eq(a.code, TTRPC_NOT_FOUND);
        ck_assert_int_eq(a.calls, 6);
        ck_assert(!called("kill"));
}
END_TEST

/* Kill with all goes to the runtime; its "not running" becomes NOT_FOUND. */
START_TEST(test_kill_all_through_runtime) {
        struct container *c = container_running("k2");
        fake_runtime(c);
        struct answered a = {0};
        container_kill(c, c->init, SIGKILL, true, on_answer, &a);
        RUN_UNTIL(a.calls == 1);
        ck_assert_int_eq(a.code, 0);
        ck_assert(called("kill --all k2 9"));
        write_bundle(c, "fail", "kill\n");
        write_bundle(c, "error", "container not running\n");
        container_kill(c, c->init, SIGKILL, true, on_answer, &a);
        RUN_UNTIL(a.calls == 2);
        ck_assert_int_eq(a.code, TTRPC_NOT_FOUND);
}
END_TEST

/* Pause and resume: the runtime's call, the state, the events; refused in the wrong
 * state; the runtime's own error text reaches the caller. */
START_TEST(test_pause_resume) {
        struct container *c = container_running("p1");
        fake_runtime(c);
        struct answered a = {0};
        container_pause(c, false, on_answer, &a); /* not paused */
        ck_assert_int_eq(a.code, TTRPC_UNKNOWN);
        container_pause(c, true, on_answer, &a);
        ck_assert(c->init->busy);
        RUN_UNTIL(a.calls == 2);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(c->init->state, PROCESS_PAUSED);
        ck_assert(called("pause p1"));
        container_pause(c, false, on_answer, &a);
        RUN_UNTIL(a.calls == 3);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(c->init->state, PROCESS_RUNNING);
        ck_assert_str_eq(fx.events, "paused:p1 resumed:p1");

        write_bundle(c, "fail", "pause\n");
        write_bundle(c, "error", "the cgroup is frozen by someone else\n");
        container_pause(c, true, on_answer, &a);
        RUN_UNTIL(a.calls == 4);
        ck_assert_int_eq(a.code, TTRPC_UNKNOWN);
        ck_assert_str_eq(a.message, "the cgroup is frozen by someone else");
        ck_assert_int_eq(c->init->state, PROCESS_RUNNING);
        ck_assert(!c->init->busy);
}
END_TEST

/* Update: only a JSON object reaches the runtime, on its stdin. */
START_TEST(test_update) {
        struct container *c = container_running("u1");
        fake_runtime(c);
        struct answered a = {0};
        container_update(c, NULL, 0, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        container_update(c, "[1]", 3, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        ck_assert(!called("update"));
        const char *res = "{\"pids\":{\"limit\":7}}";
        container_update(c, res, strlen(res), on_answer, &a);
        RUN_UNTIL(a.calls == 3);
        ck_assert_int_eq(a.code, 0);
        ck_assert(called("update --resources - u1"));
        char path[128], buf[64] = {0};
        snprintf(path, sizeof path, "%s/resources", fx.bundle);
        FILE *f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        ck_assert(fgets(buf, sizeof buf, f));
        fclose(f);
        ck_assert_str_eq(buf, res);
}
END_TEST

static struct {
        int calls, code;
        size_t n;
        pid_t pids[4];
        char exec_ids[4][16];
} listed;

static void on_pids(void *ud, int code, const char *message, const struct container_pid *pids, size_t n) {
        listed.calls++;
        listed.code = code;
        listed.n = n;
        for (size_t i = 0; i < n && i < 4; i++) {
                listed.pids[i] = pids[i].pid;
                snprintf(listed.exec_ids[i], sizeof listed.exec_ids[i], "%s", pids[i].exec_id ? pids[i].exec_id : "-");
        }
}

/* Pids: the runtime's list, each exec named by its id. */
START_TEST(test_pids) {
        memset(&listed, 0, sizeof listed);
        struct container *c = container_running("l1");
        fake_runtime(c);
        struct process *e = exec_add(c, "le");
        ck_assert_int_eq(process_watch(e, child()), 0);
        process_start_end(e, true);
        char text[64];
        snprintf(text, sizeof text, "%d,%d", (int)c->init->pid, (int)e->pid);
        write_bundle(c, "pids", text);
        container_pids(c, on_pids, NULL);
        RUN_UNTIL(listed.calls == 1);
        ck_assert_int_eq(listed.code, 0);
        ck_assert_uint_eq(listed.n, 2);
        ck_assert_int_eq(listed.pids[0], c->init->pid);
        ck_assert_str_eq(listed.exec_ids[0], "-");
        ck_assert_int_eq(listed.pids[1], e->pid);
        ck_assert_str_eq(listed.exec_ids[1], "le");
        write_bundle(c, "fail", "ps\n");
        write_bundle(c, "error", "container does not exist\n");
        container_pids(c, on_pids, NULL);
        RUN_UNTIL(listed.calls == 2);
        ck_assert_int_eq(listed.code, TTRPC_UNKNOWN);
}
END_TEST

/* ---- exec and start ---- */

static const char exec_spec[] = "{\"args\":[\"sh\"],\"cwd\":\"/\"}";

/* Start of the init: the runtime's start, the START event, the answer with the pid. */
START_TEST(test_start_init) {
        struct container *c = container_new(&fx.shim, "s1", fx.bundle, &hooks);
        ck_assert_ptr_nonnull(c);
        c->created = c->private_pidns = true;
        ck_assert_int_eq(process_watch(c->init, child()), 0);
        fake_runtime(c);
        struct answered a = {0};
        container_start(c, c->init, on_answer, &a);
        RUN_UNTIL(a.calls == 1);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(a.pid, c->init->pid);
        ck_assert_int_eq(c->init->state, PROCESS_RUNNING);
        ck_assert(called("start s1"));
        ck_assert_str_eq(fx.events, "start:s1");
        container_start(c, c->init, on_answer, &a); /* only once */
        ck_assert_int_eq(a.calls, 2);
        ck_assert_int_eq(a.code, TTRPC_UNKNOWN);
}
END_TEST

/* Exec then Start: EXEC_ADDED, the runtime's exec with the spec (terminal as asked),
 * START with the pid from the runtime's pid file, and the exec's exit later. */
START_TEST(test_exec_start) {
        struct container *c = container_running("x1");
        fake_runtime(c);
        struct container_stdio io = {0};
        struct answered a = {0};
        container_exec(c, "bad/id", exec_spec, strlen(exec_spec), &io, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        container_exec(c, "x1", exec_spec, strlen(exec_spec), &io, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_ALREADY_EXISTS);
        container_exec(c, "xe", "{\"cwd\":\"/\"}", 10, &io, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        ck_assert_ptr_null(container_find_exec(c, "xe"));
        container_exec(c, "xe", exec_spec, strlen(exec_spec), &io, on_answer, &a);
        ck_assert_int_eq(a.calls, 4);
        ck_assert_int_eq(a.code, 0);
        struct process *e = container_find_exec(c, "xe");
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(fx.events, "exec-added:xe");

        pid_t pid = child();
        char text[32];
        snprintf(text, sizeof text, "%d", (int)pid);
        write_bundle(c, "spawn-pid", text);
        container_start(c, e, on_answer, &a);
        ck_assert(e->busy);
        RUN_UNTIL(a.calls == 5);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(a.pid, pid);
        ck_assert_int_eq(e->state, PROCESS_RUNNING);
        ck_assert(called("exec --process"));
        ck_assert_str_eq(fx.events, "exec-added:xe start:xe");
        kill(pid, SIGKILL);
        RUN_UNTIL(process_exited(e));
        ck_assert_str_eq(fx.events, "exec-added:xe start:xe exit:xe");
}
END_TEST

/* An exec whose runtime exec fails: the runtime's text, no exit event, ever; a second
 * Start is refused. */
START_TEST(test_exec_start_fails) {
        struct container *c = container_running("x2");
        fake_runtime(c);
        struct container_stdio io = {0};
        struct answered a = {0};
        container_exec(c, "xf", exec_spec, strlen(exec_spec), &io, on_answer, &a);
        ck_assert_int_eq(a.code, 0);
        struct process *e = container_find_exec(c, "xf");
        write_bundle(c, "fail", "exec\n");
        write_bundle(c, "error", "exec: nope: executable file not found in $PATH\n");
        container_start(c, e, on_answer, &a);
        RUN_UNTIL(a.calls == 2);
        ck_assert_int_eq(a.code, TTRPC_UNKNOWN);
        ck_assert_msg(strstr(a.message, "OCI runtime exec failed: exec: nope: executable file not found"), "%s",
                      a.message);
        ck_assert_int_eq(e->exit, EXIT_NEVER);
        ck_assert_int_eq(e->pid, 0);
        container_start(c, e, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_FAILED_PRECONDITION);
        kill(c->init->pid, SIGKILL);
        RUN_UNTIL(process_exited(c->init));
        ck_assert_str_eq(fx.events, "exec-added:xf exit:x2");
        container_exec(c, "xg", exec_spec, strlen(exec_spec), &io, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_FAILED_PRECONDITION); /* stopped */
}
END_TEST

/* ---- create ---- */

/* Create id in fx.bundle (restoring from checkpoint if not NULL); the fake runtime's
 * process is a child of ours: its pid. */
static int create_from(const char *id, enum container_create_mode mode, const char *checkpoint, struct answered *a) {
        char path[128];
        snprintf(path, sizeof path, "%s/config.json", fx.bundle);
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},"
              "\"linux\":{\"namespaces\":[{\"type\":\"pid\"}]}}",
              f);
        fclose(f);
        fx.shim.runtime_binary = (char *)fake_runtime_script();
        fx.shim.runtime_root = fx.bundle;
        pid_t pid = child();
        snprintf(path, sizeof path, "%s/spawn-pid", fx.bundle);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "%d", (int)pid);
        fclose(f);
        struct container_create_params params = {.id = id, .bundle = fx.bundle, .mode = mode, .checkpoint = checkpoint};
        container_create(&fx.shim, &params, &hooks, on_answer, a);
        RUN_UNTIL(a->calls == 1);
        return pid;
}

static int create_in(const char *id, enum container_create_mode mode, struct answered *a) {
        return create_from(id, mode, NULL, a);
}

/* Create: the runtime's create with the bundle, the init's pid from its pid file, the
 * container registered and created; its exit goes through the pipeline. */
START_TEST(test_create) {
        struct answered a = {0};
        pid_t pid = create_in("n1", CONTAINER_CREATE, &a);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(a.pid, pid);
        ck_assert(called("create --bundle"));
        struct container *c = container_find(&fx.shim, "n1");
        ck_assert_ptr_nonnull(c);
        ck_assert(c->created && c->private_pidns && c->early_delete_ok);
        ck_assert_int_eq(c->init->state, PROCESS_CREATED);
        struct answered b = {0};
        struct container_create_params again = {.id = "n1", .bundle = fx.bundle};
        container_create(&fx.shim, &again, &hooks, on_answer, &b);
        ck_assert_int_eq(b.code, TTRPC_ALREADY_EXISTS);
        kill(pid, SIGKILL);
        RUN_UNTIL(process_exited(c->init));
        ck_assert_str_eq(fx.events, "exit:n1");
}
END_TEST

/* Create and start at once: the runtime's run; the init is running. */
START_TEST(test_create_and_start) {
        struct answered a = {0};
        create_in("n2", CONTAINER_CREATE_AND_START, &a);
        ck_assert_int_eq(a.code, 0);
        ck_assert(called("run --detach --bundle"));
        ck_assert_int_eq(container_find(&fx.shim, "n2")->init->state, PROCESS_RUNNING);
}
END_TEST

/* A failed Create: bad input refused before the runtime; the runtime's own error text;
 * nothing of the container left. */
START_TEST(test_create_fails) {
        struct answered a = {0};
        struct container_create_params bad = {.id = "n3", .bundle = "relative/bundle"};
        container_create(&fx.shim, &bad, &hooks, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        bad = (struct container_create_params){.id = "../n3", .bundle = fx.bundle};
        container_create(&fx.shim, &bad, &hooks, on_answer, &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        ck_assert_int_eq(a.calls, 2);
        a.calls = 0;
        char path[128];
        snprintf(path, sizeof path, "%s/fail", fx.bundle);
        FILE *f = fopen(path, "we");
        fputs("create\n", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/error", fx.bundle);
        f = fopen(path, "we");
        fputs("rootfs does not look right\n", f);
        fclose(f);
        create_in("n3", CONTAINER_CREATE, &a);
        ck_assert_int_eq(a.code, TTRPC_UNKNOWN);
        ck_assert_str_eq(a.message, "OCI runtime create failed: rootfs does not look right");
        ck_assert_ptr_null(container_find(&fx.shim, "n3"));
        ck_assert_uint_eq(container_count(&fx.shim), 0);
}
END_TEST

/* A Create with a checkpoint: no runtime call, pid 0, the init created; its Start is the
 * runtime's restore from the images, then the lifecycle is a normal one. A restore
 * that fails leaves the container created, with the runtime's text. */
START_TEST(test_create_restore) {
        struct answered a = {0};
        char image[128];
        snprintf(image, sizeof image, "%s/images", fx.bundle);
        ck_assert_int_eq(mkdir(image, 0700), 0);
        pid_t pid = create_from("r1", CONTAINER_CREATE, image, &a);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(a.pid, 0);
        ck_assert(!called("create --bundle"));
        struct container *c = container_find(&fx.shim, "r1");
        ck_assert(c->created);
        ck_assert_int_eq(c->init->state, PROCESS_CREATED);
        write_bundle(c, "fail", "restore\n");
        write_bundle(c, "error", "criu failed: type NOTIFY errno 0\n");
        container_start(c, c->init, on_answer, &a);
        RUN_UNTIL(a.calls == 2);
        ck_assert_int_eq(a.code, TTRPC_UNKNOWN);
        ck_assert_msg(strstr(a.message, "OCI runtime restore failed: criu failed"), "%s", a.message);
        ck_assert_int_eq(c->init->state, PROCESS_CREATED);
        ck_assert_int_eq(c->init->pid, 0);
        write_bundle(c, "fail", "");
        container_start(c, c->init, on_answer, &a);
        RUN_UNTIL(a.calls == 3);
        ck_assert_int_eq(a.code, 0);
        ck_assert_int_eq(a.pid, pid);
        ck_assert(called("restore"));
        ck_assert(called(image));
        ck_assert_int_eq(c->init->state, PROCESS_RUNNING);
        kill(pid, SIGKILL);
        RUN_UNTIL(process_exited(c->init));
        ck_assert_str_eq(fx.events, "start:r1 exit:r1");
}
END_TEST

/* A restore is not created and started in one step, nor from a relative path: refused,
 * nothing left. */
START_TEST(test_create_restore_refused) {
        struct answered a = {0};
        create_from("r2", CONTAINER_CREATE_AND_START, "/nonexistent/images", &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        ck_assert_str_eq(a.message, "a restore cannot be created and started in one step");
        a.calls = 0;
        create_from("r2", CONTAINER_CREATE, "images", &a);
        ck_assert_int_eq(a.code, TTRPC_INVALID_ARGUMENT);
        ck_assert_msg(strstr(a.message, "checkpoint must be an absolute path"), "%s", a.message);
        ck_assert(!called("run --detach") && !called("create --bundle"));
        ck_assert_uint_eq(container_count(&fx.shim), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("container");
        TCase *tc = tcase_create("exits");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_failed_start_holds_then_releases_init);
        tcase_add_test(tc, test_exec_started_during_init_death_exits_first);
        tcase_add_test(tc, test_exit_during_start_waits_for_it);
        tcase_add_test(tc, test_running_exec_grace);
        tcase_add_test(tc, test_delete_after_exit);
        tcase_add_test(tc, test_teardown_after_exits);
        tcase_add_test(tc, test_teardown_waits_for_quiet);
        tcase_add_test(tc, test_delete_created_reports_exit_first);
        tcase_add_test(tc, test_delete_running_refused);
        tcase_add_test(tc, test_kill_one_process);
        tcase_add_test(tc, test_kill_all_through_runtime);
        tcase_add_test(tc, test_pause_resume);
        tcase_add_test(tc, test_update);
        tcase_add_test(tc, test_pids);
        tcase_add_test(tc, test_start_init);
        tcase_add_test(tc, test_exec_start);
        tcase_add_test(tc, test_exec_start_fails);
        tcase_add_test(tc, test_create);
        tcase_add_test(tc, test_create_and_start);
        tcase_add_test(tc, test_create_fails);
        tcase_add_test(tc, test_create_restore);
        tcase_add_test(tc, test_create_restore_refused);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
