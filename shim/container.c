/* SPDX-License-Identifier: Apache-2.0 */
/* Containers and their processes: the registry, the exit pipeline, the teardown. */
#include "container.h"
#include "container-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cgroup.h"
#include "fd-util.h"
#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "mount.h"
#include "reaper.h"
#include "runtime-options.h"
#include "runtime.h"
#include "shim.h"
#include "spec.h"
#include "status-code.h"
#include "stdio-relay.h"

#define EXIT_DRAIN_DEADLINE_S 2.0
#define EXEC_GRACE_S 2.0

static struct container_answer answer_of(const struct process *p) {
        return (struct container_answer){.pid = p->pid, .exit_status = p->exit_status, .exited_at = p->exited_at};
}

static struct timespec now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return ts;
}

static void emit(struct container *c, enum container_event ev, const struct process *p) {
        if (c->hooks && c->hooks->event)
                c->hooks->event(c, ev, p);
}

char *join_path(const char *dir, const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return NULL;
        return p;
}

int container_write_bundle_file(struct container *c, const char *name, const char *data) {
        _cleanup_close_ int dfd = open(c->bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        return write_file_replace_at(dfd, name, data, strlen(data), 0600);
}

/* ------------------------------------------------------------------------------------ */
/* the registry                                                                         */

static void on_exec_grace(struct ev_loop *loop, ev_timer *w, int revents);

struct container *container_new(struct shim *s, const char *id, const char *bundle,
                                 const struct container_hooks *hooks) {
        struct container *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->shim = s;
        c->hooks = hooks;
        c->refs = 1;
        ev_timer_init(&c->exec_grace, on_exec_grace, 0, 0);
        c->exec_grace.data = c;
        c->id = strdup(id);
        c->bundle = strdup(bundle);
        c->rt_binary = strdup(s->runtime_binary ? s->runtime_binary : "runc");
        c->rt_root = s->runtime_root ? strdup(s->runtime_root) : NULL;
        c->rt_log = join_path(bundle, "log.json");
        c->init = process_new(c, id, true);
        c->next = s->containers;
        s->containers = c; /* reserved: a second Create of the id is refused */
        if (!c->id || !c->bundle || !c->rt_binary || (s->runtime_root && !c->rt_root) || !c->rt_log || !c->init) {
                container_remove(c);
                return NULL;
        }
        return c;
}

const char *container_id(const struct container *c) {
        return c->id;
}

const char *container_bundle(const struct container *c) {
        return c->bundle;
}

struct shim *container_shim(const struct container *c) {
        return c->shim;
}

struct process *container_init(const struct container *c) {
        return c->init;
}

bool container_is_created(const struct container *c) {
        return c->created;
}

bool container_early_teardown_ok(const struct container *c) {
        return c->early_delete_ok;
}

struct container *container_ref(struct container *c) {
        c->refs++;
        return c;
}

void container_unref(struct container *c) {
        if (!c || --c->refs > 0)
                return;
        ev_timer_stop(c->shim->loop, &c->exec_grace);
        while (c->execs) {
                struct process *p = c->execs;
                c->execs = p->next;
                reaper_unwatch(c->shim->reaper, p->pid);
                process_free(p);
        }
        if (c->init)
                reaper_unwatch(c->shim->reaper, c->init->pid);
        process_free(c->init);
        cgroup_oom_watch_free(c->oom);
        runtime_free(c->rt);
        free(c->id);
        free(c->bundle);
        free(c->rt_binary);
        free(c->rt_root);
        free(c->rt_log);
        free(c->rootfs_target);
        free(c->criu_path);
        free(c->criu_work_path);
        free(c->restore_from);
        free(c);
}

void container_remove(struct container *c) {
        if (c->removed)
                return;
        struct container **pp = &c->shim->containers;
        while (*pp && *pp != c)
                pp = &(*pp)->next;
        if (*pp)
                *pp = c->next;
        c->removed = true;
        container_unref(c);
}

struct container *container_find(struct shim *s, const char *id) {
        for (struct container *c = s->containers; c; c = c->next)
                if (strcmp(c->id, id) == 0)
                        return c;
        return NULL;
}

struct process *container_find_exec(struct container *c, const char *exec_id) {
        for (struct process *p = c->execs; p; p = p->next)
                if (strcmp(p->id, exec_id) == 0)
                        return p;
        return NULL;
}

static void exec_unlink(struct container *c, struct process *p) {
        struct process **pp = &c->execs;
        while (*pp && *pp != p)
                pp = &(*pp)->next;
        if (*pp)
                *pp = p->next;
}

size_t container_count(const struct shim *s) {
        size_t n = 0;
        for (struct container *c = s->containers; c; c = c->next)
                n++;
        return n;
}

void container_forget_all(struct shim *s) {
        ev_timer_stop(s->loop, &s->teardown_quiet);
        ev_idle_stop(s->loop, &s->teardown_idle);
        while (s->containers) {
                struct container *c = s->containers;
                s->containers = c->next;
                c->removed = true;
                if (c->unmount_pid > 0) {
                        /* the unmounting child finishes on its own; its watch held a reference */
                        reaper_unwatch(s->reaper, c->unmount_pid);
                        c->unmount_pid = 0;
                        container_unref(c);
                }
                container_unref(c);
        }
}

/* ------------------------------------------------------------------------------------ */
/* the exit pipeline                                                                    */

enum exit_event { EXIT_EV_REAPED, EXIT_EV_DRAINED, EXIT_EV_START_FAILED, EXIT_EV_CHECK };
static void exit_step(struct process *p, enum exit_event ev);
static void early_teardown(struct container *c, bool urgent);
static void teardown_queue(struct container *c);
static void delete_continue(struct process *p);

/* What an init's exit still waits for among the container's execs: one being started
 * (its start event, and its exit if it started, come first: no grace), or one started
 * and not yet reported (bounded by the grace timer). */
enum exec_wait { EXECS_DONE, EXECS_RUNNING, EXECS_STARTING };
static enum exec_wait execs_pending(const struct container *c) {
        enum exec_wait w = EXECS_DONE;
        for (const struct process *e = c->execs; e; e = e->next) {
                if (e->starting)
                        return EXECS_STARTING;
                if (e->pid > 0 && e->exit != EXIT_REPORTED)
                        w = EXECS_RUNNING;
        }
        return w;
}

static void on_oom(void *userdata) {
        struct container *c = userdata;
        c->oom_killed = true;
        log_warn("%s: OOM kill in the container", c->id);
        emit(c, CONTAINER_EVENT_OOM, NULL);
}

int container_watch_oom(struct container *c) {
        return cgroup_oom_watch_new(c->shim->loop, c->init->pid, on_oom, c, &c->oom);
}

static void on_exec_grace(struct ev_loop *loop, ev_timer *w, int revents) {
        struct container *c = w->data;
        log_warn("%s: exec processes still running after the init exited, reporting the init's exit", c->id);
        c->exec_grace_expired = true;
        if (c->init)
                exit_step(c->init, EXIT_EV_CHECK);
}

bool process_reaped(const struct process *p) {
        return p->exit >= EXIT_REAPED && p->exit <= EXIT_REPORTED;
}

bool process_exited(const struct process *p) {
        return p->exit == EXIT_REPORTED;
}

static void answer_waiters(struct process *p) {
        struct container_answer a = answer_of(p);
        while (p->waiters) {
                struct waiter *w = p->waiters;
                p->waiters = w->next;
                answer_send(&w->answer, 0, NULL, &a);
                free(w);
        }
}

int process_wait(struct process *p, container_answer_fn fn, void *ud) {
        if (p->exit == EXIT_REPORTED || p->exit == EXIT_NEVER) {
                struct container_answer a = answer_of(p);
                fn(ud, 0, NULL, &a);
                return 0;
        }
        struct waiter *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->answer = (struct answer){fn, ud};
        w->next = p->waiters;
        p->waiters = w;
        return 0;
}

/* The one place an exit becomes visible: state, event, waiters (exit_step() reached
 * EXIT_REPORTED). */
static void exit_report(struct process *p) {
        struct container *c = p->container;
        struct shim *s = c->shim;
        ev_timer_stop(s->loop, &c->exec_grace);
        /* An OOM kill that caused this exit is announced before it (the eventfd may lag). */
        bool oom = false;
        if (p->is_init && c->oom && cgroup_oom_check_final(c->oom, &oom) == 0 && oom)
                on_oom(c);

        if (p->state != PROCESS_STOPPED)
                (void)process_transition(p, PROCESS_STOPPED);
        log_info("%s: process %s (pid %d) exited with status %d", c->id, p->id, (int)p->pid, p->exit_status);
        /* Record first, publish second: the delete action answers from this record if we
         * die before containerd has seen the exit (a write and a rename survive us; no
         * fsync: a host crash takes the containers with it). */
        if (p->is_init) {
                char rec[96];
                snprintf(rec, sizeof rec, "%d %lld %ld %d\n", p->exit_status, (long long)p->exited_at.tv_sec,
                         (long)p->exited_at.tv_nsec, c->oom_killed ? 1 : 0);
                int wr = container_write_bundle_file(c, "init.exit", rec);
                if (wr < 0)
                        log_warn_errno(wr, "%s: cannot record the exit in the bundle: %m", c->id);
        }
        emit(c, CONTAINER_EVENT_EXIT, p);
        answer_waiters(p);
        if (!p->is_init && c->init)
                exit_step(c->init, EXIT_EV_CHECK); /* the init may wait for this exec */
        if (p->is_init && c->early_delete_ok)
                teardown_queue(c);
        delete_continue(p);
}

/* The next stage of p's exit pipeline given what just happened, or p->exit itself
 * when it must wait (the table in docs/design.md). */
static enum exit_stage exit_next(struct process *p, enum exit_event ev) {
        struct container *c = p->container;
        switch (p->exit) {
        case EXIT_RUNNING:
                return ev == EXIT_EV_REAPED        ? EXIT_REAPED
                       : ev == EXIT_EV_START_FAILED ? EXIT_NEVER
                                                    : EXIT_RUNNING;
        case EXIT_REAPED:
                return ev == EXIT_EV_DRAINED ? EXIT_DRAINED : EXIT_REAPED;
        case EXIT_DRAINED:
                if (p->starting || (p->is_init && c->killing_all))
                        return EXIT_DRAINED;
                return p->is_init ? EXIT_AWAITING_EXECS : EXIT_REPORTED;
        case EXIT_AWAITING_EXECS: {
                enum exec_wait w = execs_pending(c);
                if (w == EXECS_DONE || (w == EXECS_RUNNING && c->exec_grace_expired))
                        return EXIT_REPORTED;
                if (w == EXECS_RUNNING && !ev_is_active(&c->exec_grace)) {
                        ev_timer_set(&c->exec_grace, EXEC_GRACE_S, 0);
                        ev_timer_start(c->shim->loop, &c->exec_grace);
                }
                return EXIT_AWAITING_EXECS;
        }
        default:
                return p->exit; /* REPORTED and NEVER are final */
        }
}

/* Every transition of the exit pipeline goes through here: ev happened to p (or
 * EXIT_EV_CHECK: something it may wait for changed); move as far as it can go. */
static void exit_step(struct process *p, enum exit_event ev) {
        for (;;) {
                enum exit_stage next = exit_next(p, ev);
                if (next == p->exit)
                        return;
                log_debug("%s: exit of %s: %s -> %s", p->container->id, p->id, exit_stage_to_string(p->exit),
                          exit_stage_to_string(next));
                p->exit = next;
                if (next == EXIT_REPORTED) {
                        exit_report(p);
                        return;
                }
                if (next == EXIT_NEVER) {
                        /* as runc-v2: Wait answers status 0, no exit time; the init
                         * may have waited for this start */
                        answer_waiters(p);
                        if (p->container->init)
                                exit_step(p->container->init, EXIT_EV_CHECK);
                        return;
                }
                ev = EXIT_EV_CHECK;
        }
}

static void on_drained(struct stdio *io, void *userdata) {
        exit_step(userdata, EXIT_EV_DRAINED);
}

static void on_kill_all_done(const struct runtime_result *res, void *userdata) {
        struct container *c = userdata;
        if (res->exit_status != 0)
                log_debug("%s: kill --all after the init's exit: %s", c->id, res->error ? res->error : "failed");
        c->killing_all = false;
        c->killed_all = res->exit_status == 0;
        if (c->init)
                exit_step(c->init, EXIT_EV_CHECK);
        container_unref(c);
}

struct start_op;
static void fifo_start_step(struct start_op *o, bool final);

static void on_process_exit(pid_t pid, int wait_status, void *userdata) {
        struct process *p = userdata;
        struct container *c = p->container;
        p->exit_status = exit_status_from_wait(wait_status);
        p->exited_at = now_realtime();
        log_debug("%s: pid %d of %s reaped, status %d", c->id, (int)pid, p->id, p->exit_status);
        exit_step(p, EXIT_EV_REAPED);
        if (p->is_init && c->fifo_start)
                fifo_start_step(c->fifo_start, true);
        /* Without a private pid namespace the init's death does not take the rest of the
         * container with it: do what the kernel would have done. */
        if (p->is_init && !c->private_pidns && c->rt) {
                /* The exit is reported once this is done (as runc-v2 does): a Delete must
                 * not meet it, `runc kill --all` freezes the cgroup meanwhile and `runc
                 * delete` would find the container "paused". */
                container_ref(c);
                c->killing_all = runtime_kill(c->rt, c->id, SIGKILL, true, on_kill_all_done, c) == 0;
                if (!c->killing_all)
                        container_unref(c);
        }
        if (p->io)
                stdio_drain(p->io, EXIT_DRAIN_DEADLINE_S, on_drained, p);
        else
                on_drained(NULL, p);
}

int process_watch(struct process *p, pid_t pid) {
        p->pid = pid;
        /* an exit that already happened is in the reaper's stash: it comes now */
        return reaper_watch(p->container->shim->reaper, pid, on_process_exit, p);
}

void process_start_begin(struct process *p) {
        p->starting = p->busy = true;
}

/* An exec whose start failed never ran: as with runc-v2, no exit event, ever (the
 * init's exit stays the container's last, and Docker takes 127/126 from the Start
 * error); it stays "created" with pid 0, and Wait answers status 0 with no exit time
 * (an outstanding one at once). */
void process_start_end(struct process *p, bool started) {
        struct container *c = p->container;
        p->starting = p->busy = false;
        if (!started && !p->is_init) {
                p->pid = 0;
                p->io = stdio_free(p->io);
                exit_step(p, EXIT_EV_START_FAILED);
                return;
        }
        exit_step(p, EXIT_EV_CHECK); /* an exit that came during the start goes out now, after it */
        if (!p->is_init && c->init)
                exit_step(c->init, EXIT_EV_CHECK); /* it waited for this start; now for the exit */
}

/* ------------------------------------------------------------------------------------ */
/* delete and the early teardown                                                        */

static void delete_with_runtime(struct container *c, struct answer a);

static void delete_finish_init(struct container *c, struct answer a) {
        struct process *p = c->init;
        (void)process_transition(p, PROCESS_DELETED);
        p->io = stdio_free(p->io);
        for (struct process *e = c->execs; e; e = e->next)
                e->io = stdio_free(e->io);
        if (c->rootfs_target) {
                int r = unmount_all(c->rootfs_target);
                if (r < 0)
                        log_warn_errno(r, "%s: cannot unmount %s: %m", c->id, c->rootfs_target);
        }
        emit(c, CONTAINER_EVENT_DELETE, p);
        struct container_answer ans = answer_of(p);
        answer_send(&a, 0, NULL, &ans);
        log_info("%s: deleted", c->id);
        container_remove(c);
}

/* The init's Delete of a created container waits for the init's exit (runc delete
 * killed it) so that the exit is reported before the delete. */
static void delete_continue(struct process *p) {
        if (!p->is_init || !p->delete_answer.fn || p->exit != EXIT_REPORTED)
                return;
        struct answer a = p->delete_answer;
        p->delete_answer.fn = NULL;
        delete_finish_init(p->container, a);
}

/* The init of a container with its own PID namespace has exited and its exit has been
 * published: nothing of it runs any more, and what containerd's Delete would still do
 * (the runtime's delete: state and cgroups; the rootfs unmount) is started now, so that
 * Delete answers at once, or as soon as both are done. The runtime's state is removed in
 * place when the adapter knows it (runtime_delete_stopped_in_place(): no `runc delete`,
 * whose Go start-up took 5-11 ms of every teardown), else by the runtime's delete; the
 * unmount runs in a child (an overlay's unmount writes back its upper layer). Not for a
 * container with poststop hooks (they run at `runc delete`, which OCI ties to the delete
 * operation, and may look at the rootfs), nor one without its own PID namespace
 * (processes may be left that Delete must kill), nor while a runtime call (pause) is
 * still running for the init: then all at Delete. */
static void early_teardown_check(struct container *c) {
        if (c->early_delete == EARLY_DELETE_RUNNING || c->unmount_pid > 0 || !c->early_delete_waiter.fn)
                return;
        struct answer a = c->early_delete_waiter;
        c->early_delete_waiter.fn = NULL;
        c->init->busy = false;
        if (c->early_delete == EARLY_DELETE_DONE)
                delete_finish_init(c, a);
        else
                delete_with_runtime(c, a);
}

static const char *runtime_error_text(const struct runtime_result *res) {
        return res->error && *res->error ? res->error : "unknown error";
}

static void on_early_deleted(const struct runtime_result *res, void *userdata) {
        struct container *c = userdata;
        bool ok = res->exit_status == 0 || runtime_error_not_exist(res->error);
        c->early_delete = ok ? EARLY_DELETE_DONE : EARLY_DELETE_FAILED;
        if (!ok)
                log_warn("%s: runtime delete after the exit failed (%s); Delete will retry", c->id,
                         runtime_error_text(res));
        early_teardown_check(c);
        container_unref(c);
}

/* The runtime's own delete, started now; Delete waits for it if it comes first. */
static void early_runtime_delete(struct container *c) {
        if (runtime_delete(c->rt, c->id, false, on_early_deleted, container_ref(c)) == 0)
                c->early_delete = EARLY_DELETE_RUNNING;
        else
                container_unref(c);
}

/* What the teardown child reports in its exit status (bits). */
#define TEARDOWN_UNMOUNT_FAILED 1 /* Delete tries again */
#define TEARDOWN_STATE_LEFT 2     /* not removed in place: the runtime's delete must run */

static void on_teardown_child_exit(pid_t pid, int wait_status, void *userdata) {
        (void)pid;
        struct container *c = userdata;
        int st = exit_status_from_wait(wait_status);
        bool killed = !WIFEXITED(wait_status);
        c->unmount_pid = 0;
        if (c->rootfs_target && (killed || (st & TEARDOWN_UNMOUNT_FAILED))) /* delete_finish_init() tries again */
                log_warn("%s: cannot unmount %s%s", c->id, c->rootfs_target,
                         killed ? ": the unmounting process was killed" : "");
        else if (c->rootfs_target) {
                free(c->rootfs_target); /* nothing of ours is mounted any more */
                c->rootfs_target = NULL;
        }
        if (c->early_delete == EARLY_DELETE_IN_CHILD) {
                c->early_delete = EARLY_DELETE_NONE;
                if (killed || (st & TEARDOWN_STATE_LEFT))
                        early_runtime_delete(c);
                else
                        c->early_delete = EARLY_DELETE_DONE;
        }
        early_teardown_check(c);
        container_unref(c);
}

/* runc's state and cgroups removed in place (runtime_delete_stopped_in_place()); false
 * (the log says why): the runtime's own delete must run. */
static bool state_removed_in_place(struct container *c) {
        _cleanup_free_ char *why = NULL;
        int r = runtime_delete_stopped_in_place(c->rt, c->id, c->init->pid, &why);
        if (r < 0) {
                log_debug("%s: running the runtime's delete: %s", c->id, why ? why : strerror(-r));
                return false;
        }
        log_debug("%s: the runtime's state and cgroups removed in place", c->id);
        return true;
}

/* The teardown's work, in a child. Unless a Delete waits for it (urgent), at SCHED_IDLE:
 * it runs when no one else wants the CPU. The loop never waits for it; a Delete that
 * does raises it to SCHED_OTHER. Only this process changes the child's policy, so a
 * raise is never undone by the child lowering itself late. */
static pid_t teardown_child_spawn(struct container *c, bool state_in_place, bool urgent) {
        pid_t pid = fork_signals_blocked();
        if (pid > 0 && !urgent) {
                struct sched_param sp = {0};
                (void)sched_setscheduler(pid, SCHED_IDLE, &sp);
        }
        if (pid != 0)
                return pid;
        /* none of the daemon's sockets, FIFOs or pipes: a client must see them close
         * when the daemon goes, not when this child gets its turn */
        close_all_fds_except(NULL, 0);
        int code = 0;
        if (c->rootfs_target && unmount_all(c->rootfs_target) < 0)
                code |= TEARDOWN_UNMOUNT_FAILED;
        if (state_in_place && !state_removed_in_place(c))
                code |= TEARDOWN_STATE_LEFT;
        _exit(code);
}

static void early_teardown(struct container *c, bool urgent) {
        struct process *p = c->init;
        if (!c->early_delete_ok || c->early_delete != EARLY_DELETE_NONE || !c->rt || !p || p->busy ||
            p->delete_answer.fn || c->unmount_pid > 0)
                return;
        /* (the OOM counter was read before the exit event: the cgroup may go) */
        _cleanup_free_ char *why = NULL;
        bool in_place = runtime_delete_in_place_possible(c->rt, &why) == 0;
        if (!in_place) {
                log_debug("%s: running the runtime's delete: %s", c->id, why);
                early_runtime_delete(c);
        }
        if (!in_place && !c->rootfs_target)
                return;
        if (urgent && in_place && !c->rootfs_target) {
                /* A Delete waits and there is nothing to unmount (Docker mounts the rootfs
                 * itself): a dozen rmdir and unlink calls, done here rather than behind a
                 * fork and the child's exit. */
                if (state_removed_in_place(c))
                        c->early_delete = EARLY_DELETE_DONE;
                else
                        early_runtime_delete(c);
                return;
        }
        pid_t pid = teardown_child_spawn(c, in_place, urgent);
        if (pid < 0) {
                log_warn_errno((int)pid, "%s: cannot start the teardown: %m", c->id);
                if (in_place)
                        early_runtime_delete(c); /* and Delete unmounts */
                return;
        }
        if (reaper_watch(c->shim->reaper, pid, on_teardown_child_exit, container_ref(c)) < 0) {
                container_unref(c);
                return; /* reaped as an orphan: Delete runs the runtime's delete and unmounts */
        }
        c->unmount_pid = pid;
        if (in_place)
                c->early_delete = EARLY_DELETE_IN_CHILD;
}

/* The teardown after an init's exit waits until no exit came for TEARDOWN_QUIET_S and
 * then until the loop has nothing else to do: the exits that come with it (a pod's
 * containers killed at once, or a whole node's) are reaped, stamped and published
 * first, each not behind the previous one's unmount and state removal. Nor does a
 * teardown run in the middle of such a burst: an unmount and a cgroup's removal take
 * the kernel's global mount and cgroup locks, which the dying containers of every
 * other shim need too (at SCHED_IDLE, a child preempted while holding one held them all
 * back). A one-container shim sees no other exit, so the wait is long enough for a
 * host-wide burst to be over (1000 containers killed at once die within ~0.6-2 s
 * here). A Delete that comes before runs it at once, as runc-v2's runs `runc delete`. */
#define TEARDOWN_QUIET_S 2.0

static void on_teardown_idle(struct ev_loop *loop, ev_idle *w, int revents) {
        (void)revents;
        struct shim *s = w->data;
        ev_idle_stop(loop, w);
        for (struct container *c = s->containers; c; c = c->next)
                if (c->teardown_queued) {
                        c->teardown_queued = false;
                        early_teardown(c, false);
                }
}

static void on_teardown_quiet(struct ev_loop *loop, ev_timer *w, int revents) {
        (void)revents;
        struct shim *s = w->data;
        ev_timer_stop(loop, w);
        if (ev_is_active(&s->teardown_idle))
                return;
        ev_idle_init(&s->teardown_idle, on_teardown_idle);
        s->teardown_idle.data = s;
        ev_idle_start(loop, &s->teardown_idle);
}

static void teardown_queue(struct container *c) {
        struct shim *s = c->shim;
        c->teardown_queued = true;
        if (ev_is_active(&s->teardown_idle))
                return; /* already past the quiet wait */
        if (!ev_is_active(&s->teardown_quiet))
                ev_timer_init(&s->teardown_quiet, on_teardown_quiet, 0., TEARDOWN_QUIET_S);
        s->teardown_quiet.data = s;
        ev_timer_again(s->loop, &s->teardown_quiet); /* (each exit starts the wait again) */
}

static void teardown_now(struct container *c) {
        if (!c->teardown_queued)
                return;
        c->teardown_queued = false;
        early_teardown(c, true);
}

struct delete_op {
        struct container *c;
        struct answer a;
};

static void on_delete_done(const struct runtime_result *res, void *userdata) {
        struct delete_op *d = userdata;
        struct container *c = d->c;
        struct process *p = c->init;
        struct answer a = d->a;
        free(d);
        p->busy = false;
        if (res->exit_status != 0 && !runtime_error_not_exist(res->error)) {
                char msg[4200];
                snprintf(msg, sizeof msg, "failed to delete task: %s", runtime_error_text(res));
                answer_send(&a, TTRPC_UNKNOWN, msg, NULL);
        } else if (p->exit != EXIT_REPORTED) {
                /* A created container: runc delete killed its init; report that exit first. */
                p->delete_answer = a;
                if (p->pid <= 0) {
                        /* Never had a process: nothing will exit. */
                        p->exit_status = 0;
                        p->exited_at = now_realtime();
                        exit_step(p, EXIT_EV_REAPED);
                        exit_step(p, EXIT_EV_DRAINED);
                } else
                        exit_step(p, EXIT_EV_CHECK); /* the exit is reported when it arrives */
        } else
                delete_finish_init(c, a);
        container_unref(c);
}

static void delete_with_runtime(struct container *c, struct answer a) {
        struct process *p = c->init;
        struct delete_op *d = calloc(1, sizeof *d);
        p->busy = true;
        /* A created container's init is still waiting in runc init: force it down. */
        int r = d ? runtime_delete(c->rt, c->id, p->exit != EXIT_REPORTED, on_delete_done, d) : -ENOMEM;
        if (r < 0) {
                p->busy = false;
                free(d);
                char msg[256];
                snprintf(msg, sizeof msg, "failed to delete task: %s", strerror(-r));
                answer_send(&a, TTRPC_UNKNOWN, msg, NULL);
                return;
        }
        d->c = container_ref(c);
        d->a = a;
}

static void delete_exec(struct container *c, struct process *p, struct answer a) {
        if (p->busy || (p->state != PROCESS_CREATED && p->exit != EXIT_REPORTED)) {
                answer_send(&a, TTRPC_UNKNOWN, "cannot delete a running process", NULL);
                return;
        }
        struct container_answer ans = answer_of(p);
        answer_send(&a, 0, NULL, &ans);
        exec_unlink(c, p);
        if (p->pid > 0) {
                char name[IDENTIFIER_MAX + 8];
                snprintf(name, sizeof name, "%s.pid", p->id);
                _cleanup_free_ char *path = join_path(c->bundle, name);
                if (path)
                        unlink(path);
                reaper_unwatch(c->shim->reaper, p->pid);
        }
        process_free(p);
        /* The init may have been waiting for this exec's exit to be reported. */
        if (c->init)
                exit_step(c->init, EXIT_EV_CHECK);
}

void container_delete(struct container *c, struct process *p, container_answer_fn fn, void *ud) {
        struct answer a = {fn, ud};
        if (!p->is_init) {
                delete_exec(c, p, a);
                return;
        }
        if (p->busy || p->delete_answer.fn || (p->state != PROCESS_CREATED && p->exit != EXIT_REPORTED)) {
                answer_send(&a, TTRPC_UNKNOWN, "cannot delete a running process", NULL);
                return;
        }
        teardown_now(c);
        if (p->exit == EXIT_REPORTED && (c->early_delete == EARLY_DELETE_RUNNING || c->unmount_pid > 0)) {
                if (c->unmount_pid > 0) { /* someone waits for it now: no longer SCHED_IDLE */
                        struct sched_param sp = {0};
                        (void)sched_setscheduler(c->unmount_pid, SCHED_OTHER, &sp);
                }
                p->busy = true;
                c->early_delete_waiter = a; /* see early_teardown_check() */
                return;
        }
        if (p->exit == EXIT_REPORTED && c->early_delete == EARLY_DELETE_DONE) {
                delete_finish_init(c, a); /* the runtime's state went at the exit */
                return;
        }
        delete_with_runtime(c, a);
}

/* ------------------------------------------------------------------------------------ */
/* kill, pause and resume, update, pids                                                 */

/* A runtime call answered through a callback. */
struct call_op {
        struct container *c;
        struct answer a;
        container_pids_fn pids_fn; /* Pids: the answer with the list */
        bool pause;                /* Pause (else Resume) */
};

static struct call_op *call_op_new(struct container *c, container_answer_fn fn, void *ud) {
        struct call_op *o = calloc(1, sizeof *o);
        if (!o)
                return NULL;
        o->c = container_ref(c);
        o->a = (struct answer){fn, ud};
        return o;
}

static void call_op_free(struct call_op *o) {
        container_unref(o->c);
        free(o);
}

static void answer_fmt(container_answer_fn fn, void *ud, int code, const char *fmt, ...) _printf_(4, 5);
static void answer_fmt(container_answer_fn fn, void *ud, int code, const char *fmt, ...) {
        char msg[4200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fn(ud, code, msg, NULL);
}

/* The runtime's result: OK, or its own text after prefix. */
static void call_op_finish(struct call_op *o, const struct runtime_result *res, const char *prefix) {
        if (res->exit_status != 0)
                answer_fmt(o->a.fn, o->a.ud, TTRPC_UNKNOWN, "%s%s", prefix, runtime_error_text(res));
        else
                answer_send(&o->a, 0, NULL, NULL);
        call_op_free(o);
}

static void on_kill_done(const struct runtime_result *res, void *userdata) {
        struct call_op *o = userdata;
        const char *e = runtime_error_text(res);
        if (res->exit_status != 0 && runtime_error_not_running(e))
                answer_send(&o->a, TTRPC_NOT_FOUND, "process already finished", NULL);
        else if (res->exit_status != 0 && runtime_error_not_exist(e))
                answer_fmt(o->a.fn, o->a.ud, TTRPC_NOT_FOUND, "no such container: %s", e);
        else {
                call_op_finish(o, res, "");
                return;
        }
        call_op_free(o);
}

void container_kill(struct container *c, struct process *p, unsigned signal, bool all, container_answer_fn fn,
                    void *ud) {
        if (signal == 0 || signal >= 65) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "invalid signal %u", signal);
                return;
        }
        if (p->is_init && all && process_exited(p) && (c->private_pidns || c->killed_all)) {
                /* the init's exit took the whole PID namespace, or our `kill --all` after
                 * it took the rest of the cgroup: nothing is left to signal (and the
                 * runtime may have forgotten the container already). containerd asks
                 * this of every task it deletes (WithProcessKill). */
                fn(ud, TTRPC_NOT_FOUND, "process already finished", NULL);
                return;
        }
        if (p->is_init && all) {
                struct call_op *o = call_op_new(c, fn, ud);
                int r = o ? runtime_kill(c->rt, c->id, (int)signal, true, on_kill_done, o) : -ENOMEM;
                if (r < 0) {
                        answer_fmt(fn, ud, TTRPC_UNKNOWN, "kill failed: %s", strerror(-r));
                        if (o)
                                call_op_free(o);
                }
                return;
        }
        /* One process: signalled directly, as `runc kill` would, without a runtime exec
         * (~15 ms of Go start-up). The pid cannot have been reused: it is our child (the
         * init and execs are re-parented to us, the subreaper) and not reaped yet. */
        if (p->pid <= 0 && !process_reaped(p))
                fn(ud, TTRPC_FAILED_PRECONDITION, "process not created: failed precondition", NULL); /* runc-v2's words */
        else if (process_reaped(p))
                fn(ud, TTRPC_NOT_FOUND, "process already finished", NULL);
        else if (kill(p->pid, (int)signal) < 0)
                fn(ud, errno == ESRCH ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN,
                   errno == ESRCH ? "process already finished" : strerror(errno), NULL);
        else
                fn(ud, 0, NULL, NULL);
}

static void on_pause_resume_done(const struct runtime_result *res, void *userdata) {
        struct call_op *o = userdata;
        struct container *c = o->c;
        c->pausing = false;
        c->init->busy = false;
        if (res->exit_status == 0) {
                if (!process_exited(c->init))
                        (void)process_transition(c->init, o->pause ? PROCESS_PAUSED : PROCESS_RUNNING);
                emit(c, o->pause ? CONTAINER_EVENT_PAUSED : CONTAINER_EVENT_RESUMED, NULL);
        }
        call_op_finish(o, res, "");
}

void container_pause(struct container *c, bool pause, container_answer_fn fn, void *ud) {
        struct process *p = c->init;
        enum process_state want = pause ? PROCESS_RUNNING : PROCESS_PAUSED;
        if (p->busy || process_exited(p) || p->state != want) {
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "cannot %s a %s container", pause ? "pause" : "resume",
                           process_exited(p) ? "stopped" : process_state_to_string(p->state));
                return;
        }
        struct call_op *o = call_op_new(c, fn, ud);
        if (!o) {
                fn(ud, TTRPC_INTERNAL, "out of memory", NULL);
                return;
        }
        o->pause = pause;
        p->busy = true;
        c->pausing = pause;
        int r = pause ? runtime_pause(c->rt, c->id, on_pause_resume_done, o)
                      : runtime_resume(c->rt, c->id, on_pause_resume_done, o);
        if (r < 0) {
                p->busy = false;
                c->pausing = false;
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "%s failed: %s", pause ? "pause" : "resume", strerror(-r));
                call_op_free(o);
        }
}

static void on_update_done(const struct runtime_result *res, void *userdata) {
        call_op_finish(userdata, res, "failed to update resources: ");
}

void container_update(struct container *c, const char *resources, size_t len, container_answer_fn fn, void *ud) {
        if (process_exited(c->init)) {
                fn(ud, TTRPC_UNKNOWN, "container is stopped", NULL);
                return;
        }
        if (!resources) {
                fn(ud, TTRPC_INVALID_ARGUMENT, "no resources given", NULL);
                return;
        }
        /* Validate it is a JSON object before handing it to the runtime. */
        json_t *j = json_loadb(resources, len, 0, NULL);
        bool ok = j && json_is_object(j);
        json_decref(j);
        _cleanup_free_ char *json = ok ? strndup(resources, len) : NULL;
        if (!json) {
                fn(ud, TTRPC_INVALID_ARGUMENT, "resources must be a JSON LinuxResources object", NULL);
                return;
        }
        struct call_op *o = call_op_new(c, fn, ud);
        int r = o ? runtime_update(c->rt, c->id, json, on_update_done, o) : -ENOMEM;
        if (r < 0) {
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "failed to update resources: %s", strerror(-r));
                if (o)
                        call_op_free(o);
        }
}

static void on_ps_done(const struct runtime_result *res, void *userdata) {
        struct call_op *o = userdata;
        container_pids_fn fn = o->pids_fn;
        void *ud = o->a.ud;
        _cleanup_free_ pid_t *pids = NULL;
        _cleanup_free_ struct container_pid *list = NULL;
        size_t n = 0;
        if (res->exit_status != 0) {
                char msg[4200];
                snprintf(msg, sizeof msg, "failed to list processes: %s", runtime_error_text(res));
                fn(ud, TTRPC_UNKNOWN, msg, NULL, 0);
        } else if (runtime_parse_ps(res->out, res->out_len, &pids, &n) < 0)
                fn(ud, TTRPC_UNKNOWN, "cannot parse the runtime's process list", NULL, 0);
        else if (!(list = calloc(n ? n : 1, sizeof *list)))
                fn(ud, TTRPC_INTERNAL, "out of memory", NULL, 0);
        else {
                for (size_t i = 0; i < n; i++) {
                        list[i].pid = pids[i];
                        for (const struct process *e = o->c->execs; e; e = e->next)
                                if (e->pid > 0 && e->pid == pids[i]) {
                                        list[i].exec_id = e->id;
                                        break;
                                }
                }
                fn(ud, 0, NULL, list, n);
        }
        call_op_free(o);
}

void container_pids(struct container *c, container_pids_fn fn, void *ud) {
        struct call_op *o = call_op_new(c, NULL, ud);
        if (o)
                o->pids_fn = fn;
        int r = o ? runtime_ps(c->rt, c->id, on_ps_done, o) : -ENOMEM;
        if (r < 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "failed to list processes: %s", strerror(-r));
                fn(ud, TTRPC_UNKNOWN, msg, NULL, 0);
                if (o)
                        call_op_free(o);
        }
}

/* ------------------------------------------------------------------------------------ */
/* exec and start                                                                       */

static int container_stdio_new(struct container *c, struct process *p, char **ret_error) {
        struct stdio_config cfg = {
                .stdin_uri = p->stdin_path,
                .stdout_uri = p->stdout_path,
                .stderr_uri = p->stderr_path,
                .terminal = p->terminal,
                /* the init of a container with its own PID namespace: its exit ends every
                 * process that could hold its stdio, so the FIFOs can be its own */
                .direct = p->is_init && c->private_pidns,
                .io_uid = c->io_uid,
                .io_gid = c->io_gid,
                .container_id = c->id,
                .namespace = c->shim->namespace,
                .reaper = c->shim->reaper,
        };
        return stdio_new(c->shim->loop, &cfg, &p->io, ret_error);
}

/* p's stdio relay and, for a terminal, the console socket the runtime sends it on
 * (*ret_console; ret_console NULL: none yet, a restore makes it at Start). 0, or a
 * status code with the message in msg (nothing left open). */
static int process_stdio_open(struct process *p, const char **ret_console, char *msg, size_t msg_size) {
        _cleanup_free_ char *err = NULL;
        int r = container_stdio_new(p->container, p, &err);
        if (r < 0) {
                snprintf(msg, msg_size, "stdio: %s", err ? err : strerror(-r));
                return TTRPC_INVALID_ARGUMENT;
        }
        if (!ret_console)
                return 0;
        *ret_console = NULL;
        if (p->terminal && (r = stdio_console_socket(p->io, ret_console)) < 0) {
                snprintf(msg, msg_size, "cannot create the console socket: %s", strerror(-r));
                p->io = stdio_free(p->io);
                return TTRPC_INTERNAL;
        }
        return 0;
}

static int process_set_stdio(struct process *p, const struct container_stdio *io) {
        p->terminal = io->terminal;
        p->stdin_path = strdup(io->stdin_path ? io->stdin_path : "");
        p->stdout_path = strdup(io->stdout_path ? io->stdout_path : "");
        p->stderr_path = strdup(io->stderr_path ? io->stderr_path : "");
        return p->stdin_path && p->stdout_path && p->stderr_path ? 0 : -ENOMEM;
}

void container_exec(struct container *c, const char *exec_id, const char *spec, size_t spec_len,
                    const struct container_stdio *io, container_answer_fn fn, void *ud) {
        if (!identifier_is_valid(exec_id)) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "invalid exec id \"%.80s\"", exec_id ? exec_id : "");
                return;
        }
        if (container_find_exec(c, exec_id) || strcmp(exec_id, c->id) == 0) {
                answer_fmt(fn, ud, TTRPC_ALREADY_EXISTS, "id %s: already exists", exec_id);
                return;
        }
        if (process_exited(c->init) || c->init->state == PROCESS_STOPPED || c->init->state == PROCESS_DELETED) {
                fn(ud, TTRPC_FAILED_PRECONDITION, "cannot exec in a stopped state", NULL);
                return;
        }
        if (!spec) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "exec %s: no process spec", exec_id);
                return;
        }
        _cleanup_free_ char *err = NULL;
        struct oci_process op;
        int r = oci_process_parse(spec, spec_len, &op, &err);
        if (r < 0) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "exec %s: invalid process spec: %s", exec_id,
                           err ? err : strerror(-r));
                return;
        }
        oci_process_done(&op);
        /* The runtime gets the spec as sent, with `terminal` as the request says. */
        json_t *j = json_loadb(spec, spec_len, 0, NULL);
        if (!j || json_object_set_new(j, "terminal", json_boolean(io->terminal)) < 0) {
                json_decref(j);
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "exec %s: invalid process spec", exec_id);
                return;
        }
        struct process *p = process_new(c, exec_id, false);
        if (p)
                p->spec_json = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!p || !p->spec_json || process_set_stdio(p, io) < 0) {
                process_free(p);
                fn(ud, TTRPC_INTERNAL, "out of memory", NULL);
                return;
        }
        p->next = c->execs;
        c->execs = p;
        emit(c, CONTAINER_EVENT_EXEC_ADDED, p);
        fn(ud, 0, NULL, NULL);
}

struct start_op {
        struct container *c;
        struct process *p;
        struct answer a;
        char *spec_path; /* exec: the process spec written for the runtime */
        char *pid_file;  /* exec: where the runtime writes its pid */
        ev_io fifo;      /* init, started in place: runc's exec fifo (fd -1 otherwise) */
};

/* An in-place start's fifo watch ends (read, failed, or the start is dropped). */
static void fifo_start_close(struct start_op *o) {
        if (o->fifo.fd < 0)
                return;
        ev_io_stop(o->c->shim->loop, &o->fifo);
        close(o->fifo.fd);
        o->fifo.fd = -1;
        o->c->fifo_start = NULL;
}

static void start_op_free(struct start_op *o) {
        fifo_start_close(o);
        if (o->spec_path) {
                unlink(o->spec_path);
                free(o->spec_path);
        }
        free(o->pid_file);
        container_unref(o->c);
        free(o);
}

/* The start is over: the start event, the answer (with the pid), then the exit
 * pipeline may go on. */
static void start_finish(struct start_op *o, int code, const char *fmt, ...) _printf_(3, 4);
static void start_finish(struct start_op *o, int code, const char *fmt, ...) {
        struct process *p = o->p;
        if (code != 0) {
                char msg[4200];
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(msg, sizeof msg, fmt, ap);
                va_end(ap);
                answer_send(&o->a, code, msg, NULL);
                process_start_end(p, false);
        } else {
                if (p->state == PROCESS_CREATED)
                        (void)process_transition(p, PROCESS_RUNNING);
                emit(o->c, CONTAINER_EVENT_START, p);
                struct container_answer ans = {.pid = p->pid};
                answer_send(&o->a, 0, NULL, &ans);
                process_start_end(p, true);
        }
        start_op_free(o);
}

static void on_start_done(const struct runtime_result *res, void *userdata) {
        struct start_op *o = userdata;
        if (res->exit_status != 0)
                start_finish(o, TTRPC_UNKNOWN, "OCI runtime start failed: %s", runtime_error_text(res));
        else
                start_finish(o, 0, NULL);
}

/* The init's start in place: runc's exec fifo is read once `runc init` has written to
 * it, or once the init has exited (final: whatever it wrote before dying is still in
 * the fifo, else runc's "container process is already dead"). */
static void fifo_start_step(struct start_op *o, bool final) {
        _cleanup_free_ char *err = NULL;
        int r = runtime_start_in_place_finish(o->c->rt, o->c->id, o->fifo.fd, &err);
        if (r == -EAGAIN && !final)
                return;
        fifo_start_close(o); /* before the answer: a client that counts our fds then sees none */
        if (r < 0)
                start_finish(o, TTRPC_UNKNOWN, "OCI runtime start failed: %s",
                             r == -EAGAIN ? "container process is already dead" : err);
        else
                start_finish(o, 0, NULL);
}

static void on_exec_fifo(struct ev_loop *loop, ev_io *w, int revents) {
        (void)loop;
        (void)revents;
        fifo_start_step(w->data, false);
}

/* True when the start goes on in place (see runtime_start_in_place()); false: the
 * runtime's start must run. */
static bool start_in_place(struct start_op *o) {
        struct container *c = o->c;
        _cleanup_free_ char *why = NULL;
        int fd = !c->start_in_place_ok    ? (error_setf(&why, "poststart hooks"), -EOPNOTSUPP)
                 : process_reaped(o->p) ? -ESRCH
                                        : runtime_start_in_place(c->rt, c->id, &why);
        if (fd < 0) {
                log_debug("%s: running the runtime's start: %s", c->id, why ? why : strerror(-fd));
                return false;
        }
        log_debug("%s: starting in place (runc's exec fifo)", c->id);
        ev_io_init(&o->fifo, on_exec_fifo, fd, EV_READ);
        o->fifo.data = o;
        ev_io_start(c->shim->loop, &o->fifo);
        c->fifo_start = o;
        return true;
}

/* The runtime created p: its console (terminal), its pid from pid_file, its exit
 * watched, its stdio relayed. 0, or a status code with the message in msg. */
static int process_spawned(struct process *p, const char *pid_file, char *msg, size_t msg_size) {
        struct container *c = p->container;
        int r;
        if (p->terminal && (r = stdio_console_receive(p->io)) < 0) {
                snprintf(msg, msg_size, "failed to receive the console from the runtime: %s", strerror(-r));
                return TTRPC_UNKNOWN;
        }
        if ((r = read_pid_file_at(AT_FDCWD, pid_file, &p->pid)) < 0) {
                snprintf(msg, msg_size, "failed to read the pid file %s: %s", pid_file, strerror(-r));
                return TTRPC_UNKNOWN;
        }
        /* Inside the completion: an exit that already happened is in the reaper's stash. */
        if ((r = process_watch(p, p->pid)) < 0) {
                snprintf(msg, msg_size, "cannot watch pid %d: %s", (int)p->pid, strerror(-r));
                return TTRPC_INTERNAL;
        }
        if (p->io && (r = stdio_start(p->io)) < 0)
                log_warn_errno(r, "%s: stdio relay of %s failed to start: %m", c->id, p->id);
        return 0;
}

static void on_exec_done(const struct runtime_result *res, void *userdata) {
        struct start_op *o = userdata;
        char msg[4200];
        if (res->exit_status != 0) {
                start_finish(o, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", runtime_error_text(res));
                return;
        }
        int code = process_spawned(o->p, o->pid_file, msg, sizeof msg);
        start_finish(o, code, "%s", msg);
}

/* An exec's start: its stdio, its process spec in the bundle, the runtime's exec.
 * Errors here are answered before the start began (no start_end). */
static void start_exec(struct start_op *o) {
        struct container *c = o->c;
        struct process *p = o->p;
        const char *console;
        char msg[4200];
        int r, code = process_stdio_open(p, &console, msg, sizeof msg);
        if (code != 0) {
                answer_send(&o->a, code, msg, NULL);
                start_op_free(o);
                return;
        }
        /* The exec id is a checked identifier, so these names stay inside the bundle. */
        char spec_name[IDENTIFIER_MAX + 32], pid_name[IDENTIFIER_MAX + 8];
        snprintf(spec_name, sizeof spec_name, ".%s-process.json", p->id);
        snprintf(pid_name, sizeof pid_name, "%s.pid", p->id);
        o->spec_path = join_path(c->bundle, spec_name);
        o->pid_file = join_path(c->bundle, pid_name);
        if (!o->spec_path || !o->pid_file || container_write_bundle_file(c, spec_name, p->spec_json) < 0) {
                answer_send(&o->a, TTRPC_INTERNAL, "cannot write the exec's process spec", NULL);
                p->io = stdio_free(p->io);
                start_op_free(o);
                return;
        }
        struct runtime_exec_opts eo = {
                .id = c->id,
                .process_file = o->spec_path,
                .pid_file = o->pid_file,
                .console_socket = console,
                .detach = true,
                .stdio = {-1, -1, -1},
        };
        if (p->io && !p->terminal)
                stdio_child_fds(p->io, eo.stdio);
        process_start_begin(p);
        r = runtime_exec(c->rt, &eo, on_exec_done, o);
        if (r < 0)
                start_finish(o, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", strerror(-r));
}

static void restore_start(struct start_op *o);

void container_start(struct container *c, struct process *p, container_answer_fn fn, void *ud) {
        if (p->exit == EXIT_NEVER) {
                answer_fmt(fn, ud, TTRPC_FAILED_PRECONDITION, "exec %s: its start failed already", p->id);
                return;
        }
        if (p->state != PROCESS_CREATED || p->busy || process_exited(p)) {
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "cannot start a %s process",
                           process_exited(p) ? "stopped" : process_state_to_string(p->state));
                return;
        }
        if (!p->is_init && c->init->state != PROCESS_RUNNING && c->init->state != PROCESS_CREATED) {
                answer_fmt(fn, ud, TTRPC_FAILED_PRECONDITION, "cannot exec in a %s container",
                           process_state_to_string(c->init->state));
                return;
        }
        struct start_op *o = calloc(1, sizeof *o);
        if (!o) {
                fn(ud, TTRPC_INTERNAL, "out of memory", NULL);
                return;
        }
        *o = (struct start_op){.c = container_ref(c), .p = p, .a = {fn, ud}};
        o->fifo.fd = -1;
        if (!p->is_init) {
                start_exec(o);
                return;
        }
        process_start_begin(p);
        if (c->restore_from) {
                restore_start(o); /* a Create with a checkpoint: answers itself */
                return;
        }
        if (start_in_place(o))
                return;
        int r = runtime_start(c->rt, c->id, on_start_done, o);
        if (r < 0)
                start_finish(o, TTRPC_UNKNOWN, "OCI runtime start failed: %s", strerror(-r));
}

/* ------------------------------------------------------------------------------------ */
/* create                                                                               */

struct create_op {
        struct container *c;
        struct answer a;
        enum container_create_mode mode;
};

static void create_fail(struct create_op *o, int code, const char *fmt, ...) _printf_(3, 4);
static void create_fail(struct create_op *o, int code, const char *fmt, ...) {
        char msg[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        struct container *c = o->c;
        log_warn("%s: create failed: %s", c->id, msg);
        if (c->init) {
                c->init->io = stdio_free(c->init->io);
                if (c->init->pid > 0)
                        reaper_unwatch(c->shim->reaper, c->init->pid);
        }
        if (c->rootfs_target)
                unmount_all(c->rootfs_target);
        container_remove(c);
        answer_send(&o->a, code, msg, NULL);
        container_unref(c);
        free(o);
}

static int apply_options(struct container *c, const struct container_create_params *params, char **ret_error) {
        if (!params->options_type_url)
                return 0;
        struct runtime_options o;
        int r = runtime_options_decode(params->options_type_url, params->options, params->options_len, &o, ret_error);
        if (r < 0)
                return r;
        c->no_pivot = o.no_pivot_root;
        c->no_new_keyring = o.no_new_keyring;
        c->systemd_cgroup = o.systemd_cgroup;
        c->io_uid = o.io_uid;
        c->io_gid = o.io_gid;
        if (o.binary_name) {
                free(c->rt_binary);
                c->rt_binary = TAKE_PTR(o.binary_name);
        }
        r = 0;
        if (o.root) {
                /* as runc-v2: <Root>/<namespace>, so that two namespaces (Docker's and
                 * Kubernetes' on one host) holding the same container id do not share
                 * the runtime's state directory */
                free(c->rt_root);
                if (asprintf(&c->rt_root, "%s/%s", o.root, c->shim->namespace) < 0) {
                        c->rt_root = NULL;
                        r = -ENOMEM;
                }
        }
        c->criu_path = TAKE_PTR(o.criu_path);
        c->criu_work_path = TAKE_PTR(o.criu_work_path);
        c->restore_from = TAKE_PTR(o.criu_image_path); /* a checkpoint in the request comes first */
        runtime_options_done(&o);
        return r;
}

static void create_succeeded(struct create_op *o);
static int restore_prepare(struct create_op *o, const char *checkpoint, char **ret_error);

static void on_create_done(const struct runtime_result *res, void *userdata) {
        struct create_op *o = userdata;
        struct container *c = o->c;
        struct process *p = c->init;
        if (res->exit_status != 0) {
                create_fail(o, TTRPC_UNKNOWN, "OCI runtime create failed: %s", runtime_error_text(res));
                return;
        }
        _cleanup_free_ char *pidfile = join_path(c->bundle, "init.pid");
        char msg[4200];
        int code = pidfile ? process_spawned(p, pidfile, msg, sizeof msg) : TTRPC_INTERNAL;
        if (code != 0) {
                create_fail(o, code, "%s", pidfile ? msg : "out of memory");
                return;
        }
        if (container_watch_oom(c) < 0)
                c->oom = NULL;
        create_succeeded(o);
}

/* The container exists (its init created, or its restore prepared): the answer. */
static void create_succeeded(struct create_op *o) {
        struct container *c = o->c;
        struct process *p = c->init;
        c->created = true;
        log_info("%s: created, init pid %d%s", c->id, (int)p->pid, c->restore_from ? " (restore at start)" : "");
        if (o->mode == CONTAINER_CREATE_AND_START)
                (void)process_transition(p, PROCESS_RUNNING);
        struct container_answer ans = {.pid = p->pid};
        answer_send(&o->a, 0, NULL, &ans);
        container_unref(c);
        free(o);
}

static int container_runtime_new(struct container *c) {
        struct runtime_config cfg = {
                .binary = c->rt_binary,
                .root = c->rt_root,
                .log_path = c->rt_log,
                .systemd_cgroup = c->systemd_cgroup,
                .criu = c->criu_path,
        };
        return runtime_new(c->shim->loop, c->shim->reaper, &cfg, &c->rt);
}

/* Create, step 1: the init's stdio paths, the runtime options, what the bundle's
 * config.json implies for the exit. false: answered with the error. */
static bool create_configure(struct create_op *o, const struct container_create_params *params) {
        struct container *c = o->c;
        if (process_set_stdio(c->init, &params->io) < 0) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return false;
        }
        _cleanup_free_ char *err = NULL;
        int r;
        if ((r = apply_options(c, params, &err)) < 0) {
                create_fail(o, r == -ENOMEM ? TTRPC_INTERNAL : TTRPC_INVALID_ARGUMENT, "%s",
                            err ? err : r == -ENOMEM ? "out of memory" : "bad options");
                return false;
        }
        free(err);
        err = NULL;
        if (restore_prepare(o, params->checkpoint, &err) < 0) {
                create_fail(o, TTRPC_INVALID_ARGUMENT, "%s", err ? err : "bad checkpoint");
                return false;
        }

        /* The `delete` action runs without us: leave it the runtime we used. */
        json_t *saved = json_pack("{s:s, s:s}", "binary_name", c->rt_binary, "root", c->rt_root);
        _cleanup_free_ char *saved_text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
        json_decref(saved);
        if (!saved_text || (r = container_write_bundle_file(c, "options.json", saved_text)) < 0)
                log_warn("%s: cannot write options.json, the delete action will use defaults", c->id);

        /* What the runtime will be asked to do decides how exits are cleaned up. */
        struct oci_config cfg;
        _cleanup_free_ char *cfg_path = join_path(c->bundle, "config.json");
        r = cfg_path ? oci_config_load(AT_FDCWD, cfg_path, &cfg, &err) : -ENOMEM;
        if (r < 0) {
                create_fail(o, TTRPC_INVALID_ARGUMENT, "%s", err ? err : strerror(-r)); /* names the file */
                return false;
        }
        c->private_pidns = cfg.private_pid_namespace;
        c->early_delete_ok = cfg.private_pid_namespace && !cfg.has_poststop_hooks;
        c->start_in_place_ok = !cfg.has_poststart_hooks;
        oci_config_done(&cfg);
        return true;
}

/* Create, step 2: the rootfs mounts of the request, on <bundle>/rootfs. */
static bool create_mount_rootfs(struct create_op *o, const struct container_create_params *params) {
        struct container *c = o->c;
        if (params->n_rootfs == 0)
                return true;
        _cleanup_free_ char *err = NULL;
        c->rootfs_target = join_path(c->bundle, "rootfs");
        if (!c->rootfs_target) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return false;
        }
        if (mkdir(c->rootfs_target, 0711) < 0 && errno != EEXIST) {
                create_fail(o, TTRPC_UNKNOWN, "cannot create %s: %s", c->rootfs_target, strerror(errno));
                return false;
        }
        /* Mounting follows a symlink planted there: only a real directory will do. */
        struct stat st;
        if (lstat(c->rootfs_target, &st) < 0 || !S_ISDIR(st.st_mode)) {
                free(c->rootfs_target);
                c->rootfs_target = NULL; /* nothing of ours is mounted */
                create_fail(o, TTRPC_INVALID_ARGUMENT, "%s/rootfs must be a directory, not a symlink or file",
                            params->bundle);
                return false;
        }
        int r = mount_all(params->rootfs, params->n_rootfs, c->rootfs_target, &err);
        if (r < 0) {
                free(c->rootfs_target);
                c->rootfs_target = NULL; /* nothing of ours is mounted */
                create_fail(o, TTRPC_UNKNOWN, "%s", err ? err : strerror(-r));
                return false;
        }
        return true;
}

/* Create, step 3: the init's stdio, then the runtime call that makes the init: its
 * create, or its run (create and start at once). */
static void create_spawn(struct create_op *o) {
        struct container *c = o->c;
        const char *console = NULL;
        char msg[4200];
        bool restore = o->mode == CONTAINER_RESTORE;
        int r, code = process_stdio_open(c->init, restore ? NULL : &console, msg, sizeof msg);
        if (code == 0 && (r = container_runtime_new(c)) < 0) {
                code = TTRPC_INTERNAL;
                snprintf(msg, sizeof msg, "cannot set up the runtime: %s", strerror(-r));
        }
        if (code != 0) {
                create_fail(o, code, "%s", msg);
                return;
        }
        if (restore) {
                create_succeeded(o); /* the runtime restores at Start */
                return;
        }
        struct process *p = c->init;
        _cleanup_free_ char *pidfile = join_path(c->bundle, "init.pid");
        struct runtime_create_opts co = {
                .id = c->id,
                .bundle = c->bundle,
                .pid_file = pidfile,
                .console_socket = console,
                .no_pivot = c->no_pivot,
                .no_new_keyring = c->no_new_keyring,
                .stdio = {-1, -1, -1},
        };
        if (p->io && !p->terminal)
                stdio_child_fds(p->io, co.stdio);
        switch (o->mode) {
        case CONTAINER_CREATE:
                r = pidfile ? runtime_create(c->rt, &co, on_create_done, o) : -ENOMEM;
                break;
        case CONTAINER_CREATE_AND_START:
                r = pidfile ? runtime_run(c->rt, &co, on_create_done, o) : -ENOMEM;
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                create_fail(o, TTRPC_UNKNOWN, "OCI runtime create failed: %s", strerror(-r));
}

void container_create(struct shim *s, const struct container_create_params *params,
                      const struct container_hooks *hooks, container_answer_fn fn, void *ud) {
        if (!identifier_is_valid(params->id)) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "invalid container id \"%.80s\"", params->id ? params->id : "");
                return;
        }
        if (container_find(s, params->id)) {
                answer_fmt(fn, ud, TTRPC_ALREADY_EXISTS, "container %s: already exists", params->id);
                return;
        }
        if (!path_is_normal_absolute(params->bundle, 4000)) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "bundle must be an absolute path, got \"%.200s\"",
                           params->bundle ? params->bundle : "");
                return;
        }
        struct container *c = container_new(s, params->id, params->bundle, hooks);
        struct create_op *o = c ? calloc(1, sizeof *o) : NULL;
        if (!o) {
                if (c)
                        container_remove(c);
                fn(ud, TTRPC_INTERNAL, "out of memory", NULL);
                return;
        }
        *o = (struct create_op){.c = container_ref(c), .a = {fn, ud}, .mode = params->mode};
        if (create_configure(o, params) && create_mount_rootfs(o, params))
                create_spawn(o);
}

/* ------------------------------------------------------------------------------------ */
/* checkpoint and restore                                                               */
/*
 * Checkpoint: `runc checkpoint` (CRIU) of the running container into the image path.
 * Restore, as with runc-v2: a Create with a checkpoint (or the runtime options'
 * CriuImagePath) sets up the bundle, rootfs and stdio and answers pid 0
 * (CONTAINER_RESTORE); the Start runs `runc restore --detach` with the stdio a create
 * would get, then the lifecycle is a normal one.
 *
 * The stdio the shim hands to a container's init directly (the client's FIFO or file,
 * stdio-relay.c's "direct" mode) lives outside the container's mount namespace, where
 * CRIU cannot dump it by itself: it is declared external for the dump (`external
 * file[mnt_id:inode]`, in a CRIU configuration file runc's criu reads through
 * CRIU_CONFIG_FILE), the keys are kept in the images (CHECKPOINT_STDIO_FILE), and the
 * restore hands the new stdio in their place (`inherit-fd fd[N]:file[...]`). Pipes
 * (relayed stdio) are runc's own business: it maps them to the restore's stdio. */

#define CHECKPOINT_STDIO_FILE "nanoshim-stdio"
#define CRIU_KEY_MAX 64

static char *criu_work_dir(const struct container *c, const char *requested) {
        if (requested && *requested)
                return strdup(requested);
        if (c->criu_work_path)
                return strdup(c->criu_work_path);
        return join_path(c->bundle, "criu-work");
}

static int mkdir_if_missing(const char *path) {
        return mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* Whether mount mnt_id is one of pid's mount namespace. */
static bool mount_in_ns(pid_t pid, int mnt_id) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return true; /* unknown: leave it to CRIU */
        bool found = false;
        char *line = NULL;
        size_t cap = 0;
        while (!found && getline(&line, &cap, f) > 0) {
                const char *p = line;
                uint64_t id;
                found = scan_u64(&p, 10, INT_MAX, &id) == 0 && id == (uint64_t)mnt_id;
        }
        free(line);
        fclose(f);
        return found;
}

/* The CRIU key ("file[<mnt_id>:<inode>]", hex) of pid's fd if it is a file or FIFO from
 * outside pid's mount namespace; 0 with keys[0] = 0 if it is not. */
static int stdio_external_key(pid_t pid, int fd, char key[CRIU_KEY_MAX]) {
        char path[64], link[64];
        key[0] = 0;
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
        struct stat st;
        if (stat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
                return 0;
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0 && (link[0] != '/')) /* "pipe:[...]": runc's */
                return 0;
        snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
        _cleanup_free_ char *info = NULL;
        size_t len;
        int r = read_file_at(AT_FDCWD, path, 16384, &info, &len);
        if (r < 0)
                return r;
        const char *m = strstr(info, "\nmnt_id:");
        if (!m)
                return -EINVAL;
        m += strlen("\nmnt_id:");
        uint64_t mnt_id;
        if (scan_u64(&m, 10, INT_MAX, &mnt_id) < 0)
                return -EINVAL;
        if (mount_in_ns(pid, (int)mnt_id))
                return 0;
        snprintf(key, CRIU_KEY_MAX, "file[%x:%llx]", (unsigned)mnt_id, (unsigned long long)st.st_ino);
        return 0;
}

/* For a dump of init: the CRIU configuration declaring its outside stdio external (in
 * conf_dir, the container's bundle: CRIU's work directory may be the checkpoint's own,
 * which the client then archives, as containerd's CRI does), and the keys kept with
 * the images. *ret_config: the file, or NULL if none. */
static int checkpoint_stdio(struct process *init, const char *image, const char *conf_dir, char **ret_config) {
        char conf[3 * (CRIU_KEY_MAX + 16)] = "", keep[3 * (CRIU_KEY_MAX + 8)] = "";
        *ret_config = NULL;
        for (int fd = 0; fd < 3; fd++) {
                char key[CRIU_KEY_MAX];
                int r = stdio_external_key(init->pid, fd, key);
                if (r < 0)
                        return r;
                if (!key[0])
                        continue;
                snprintf(conf + strlen(conf), sizeof conf - strlen(conf), "external %s\n", key);
                snprintf(keep + strlen(keep), sizeof keep - strlen(keep), "%d %s\n", fd, key);
        }
        _cleanup_close_ int idir = open(image, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (idir < 0)
                return -errno;
        if (!conf[0]) {
                (void)unlinkat(idir, CHECKPOINT_STDIO_FILE, 0); /* from an earlier dump */
                return 0;
        }
        int r = write_file_replace_at(idir, CHECKPOINT_STDIO_FILE, keep, strlen(keep), 0600);
        _cleanup_close_ int wdir = open(conf_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (r < 0 || wdir < 0 || (r = write_file_replace_at(wdir, "nanoshim-dump.conf", conf, strlen(conf), 0600)) < 0)
                return r < 0 ? r : -errno;
        *ret_config = join_path(conf_dir, "nanoshim-dump.conf");
        return *ret_config ? 0 : -ENOMEM;
}

/* "<fd> file[<mnt_id>:<inode>]" (hex in the brackets), fd 0-2: a line of the dump's key file. */
static bool parse_key_line(const char *line, uint64_t *fd, uint64_t *mnt, uint64_t *ino) {
        const char *p = line;
        if (scan_u64(&p, 10, 2, fd) < 0 || strncmp(p, " file[", 6) != 0)
                return false;
        p += 6;
        if (scan_u64(&p, 16, UINT32_MAX, mnt) < 0 || *p++ != ':' || scan_u64(&p, 16, UINT64_MAX, ino) < 0)
                return false;
        return strcmp(p, "]") == 0;
}

/* The CRIU configuration for a restore from image: each external stdio fd of the dump
 * inherited from the restore's own fd of that number. The images' file is data: only
 * "<0-2> file[<hex>:<hex>]" lines are accepted. *ret_config: NULL if none is needed. */
static int restore_stdio(const char *image, const char *conf_dir, char **ret_config, char **ret_error) {
        *ret_config = NULL;
        _cleanup_free_ char *path = join_path(image, CHECKPOINT_STDIO_FILE), *keep = NULL;
        size_t len;
        if (!path)
                return -ENOMEM;
        int r = read_file_at(AT_FDCWD, path, 4096, &keep, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return error_setf(ret_error, "cannot read %s: %s", path, strerror(-r));
        char conf[3 * (CRIU_KEY_MAX + 24)] = "";
        unsigned n = 0;
        char *save = NULL;
        for (char *line = strtok_r(keep, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                uint64_t fd, mnt, ino;
                if (n >= 3 || strspn(line, "0123456789abcdef file[:]") != strlen(line) ||
                    !parse_key_line(line, &fd, &mnt, &ino))
                        return error_setf(ret_error, "%s: bad line \"%.80s\"", path, line);
                snprintf(conf + strlen(conf), sizeof conf - strlen(conf), "inherit-fd fd[%u]:file[%x:%llx]\n",
                         (unsigned)fd, (unsigned)mnt, (unsigned long long)ino);
                n++;
        }
        if (n == 0)
                return 0;
        _cleanup_close_ int wdir = open(conf_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (wdir < 0 || (r = write_file_replace_at(wdir, "nanoshim-restore.conf", conf, strlen(conf), 0600)) < 0)
                return error_setf(ret_error, "cannot write the CRIU configuration in %s: %s", conf_dir,
                                  strerror(wdir < 0 ? errno : -r));
        *ret_config = join_path(conf_dir, "nanoshim-restore.conf");
        return *ret_config ? 0 : -ENOMEM;
}

struct checkpoint_op {
        struct call_op *op;
        char *image;
};

static void on_checkpoint_done(const struct runtime_result *res, void *userdata) {
        struct checkpoint_op *k = userdata;
        if (res->exit_status == 0)
                log_info("%s: checkpointed into %s", k->op->c->id, k->image);
        call_op_finish(k->op, res, "OCI runtime checkpoint failed: ");
        free(k->image);
        free(k);
}

void container_checkpoint(struct container *c, const struct container_checkpoint_opts *opts, container_answer_fn fn,
                          void *ud) {
        struct process *p = c->init;
        if (process_exited(p) || (p->state != PROCESS_RUNNING && p->state != PROCESS_PAUSED) || p->busy) {
                answer_fmt(fn, ud, TTRPC_FAILED_PRECONDITION, "cannot checkpoint a %s container",
                           process_exited(p) ? "stopped" : p->busy ? "busy" : process_state_to_string(p->state));
                return;
        }
        const char *image = opts->image_path;
        if (!path_is_normal_absolute(image, 4000)) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "checkpoint path must be an absolute path, got \"%.200s\"",
                           image ? image : "");
                return;
        }
        _cleanup_free_ char *work = criu_work_dir(c, opts->work_path), *criu_config = NULL;
        if (work && !path_is_normal_absolute(work, 4000)) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "criu work path must be absolute, got \"%.200s\"", work);
                return;
        }
        int r = !work ? -ENOMEM : mkdir_if_missing(image);
        if (r < 0 || (r = mkdir_if_missing(work)) < 0) {
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "cannot create the checkpoint directories: %s", strerror(-r));
                return;
        }
        r = checkpoint_stdio(p, image, c->bundle, &criu_config);
        if (r < 0) {
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "cannot describe the container's stdio to CRIU: %s", strerror(-r));
                return;
        }
        /* a NULL-terminated copy of the namespaces, as the adapter takes them */
        const char *empty_ns[17] = {NULL};
        if (opts->n_empty_namespaces >= ELEMENTSOF(empty_ns)) {
                answer_fmt(fn, ud, TTRPC_INVALID_ARGUMENT, "too many empty namespaces (%zu)", opts->n_empty_namespaces);
                return;
        }
        for (size_t i = 0; i < opts->n_empty_namespaces; i++)
                empty_ns[i] = opts->empty_namespaces[i];
        struct runtime_checkpoint_opts co = {
                .id = c->id,
                .image_path = image,
                .work_path = work,
                .leave_running = !opts->exit,
                .tcp_established = opts->open_tcp,
                .ext_unix_sk = opts->external_unix_sockets,
                .shell_job = opts->terminal,
                .file_locks = opts->file_locks,
                .empty_ns = empty_ns,
                .manage_cgroups_mode = opts->cgroups_mode,
                .criu_config = criu_config,
        };
        struct checkpoint_op *k = calloc(1, sizeof *k);
        if (!k || !(k->image = strdup(image)) || !(k->op = call_op_new(c, fn, ud))) {
                if (k)
                        free(k->image);
                free(k);
                fn(ud, TTRPC_INTERNAL, "out of memory", NULL);
                return;
        }
        r = runtime_checkpoint(c->rt, &co, on_checkpoint_done, k);
        if (r < 0) {
                answer_fmt(fn, ud, TTRPC_UNKNOWN, "OCI runtime checkpoint failed: %s", strerror(-r));
                call_op_free(k->op);
                free(k->image);
                free(k);
        }
}

/* Create: a checkpoint to restore from (the request's, else the runtime options'
 * CriuImagePath, already in c->restore_from) makes the create a restore. */
static int restore_prepare(struct create_op *o, const char *checkpoint, char **ret_error) {
        struct container *c = o->c;
        if (checkpoint && *checkpoint) {
                free(c->restore_from);
                if (!(c->restore_from = strdup(checkpoint)))
                        return error_setf(ret_error, "out of memory");
        }
        if (!c->restore_from)
                return 0;
        if (!path_is_normal_absolute(c->restore_from, 4000))
                return error_setf(ret_error, "checkpoint must be an absolute path, got \"%.200s\"", c->restore_from);
        if (o->mode == CONTAINER_CREATE_AND_START)
                return error_setf(ret_error, "a restore cannot be created and started in one step");
        o->mode = CONTAINER_RESTORE;
        return 0;
}

static void on_restore_done(const struct runtime_result *res, void *userdata) {
        struct start_op *o = userdata;
        struct container *c = o->c;
        struct process *p = c->init;
        if (res->exit_status != 0) {
                /* Nothing runs: the container stays created, for Delete to clean up (runc
                 * removed its own state of the failed restore). */
                start_finish(o, TTRPC_UNKNOWN, "OCI runtime restore failed: %s", runtime_error_text(res));
                return;
        }
        char msg[4200];
        int code = process_spawned(p, o->pid_file, msg, sizeof msg);
        if (code != 0) {
                p->pid = 0;
                start_finish(o, code, "restore: %s", msg);
                return;
        }
        if (container_watch_oom(c) < 0)
                c->oom = NULL;
        log_info("%s: restored from %s, init pid %d", c->id, c->restore_from, (int)p->pid);
        free(c->restore_from);
        c->restore_from = NULL;
        start_finish(o, 0, NULL);
}

/* Start of a container created with a checkpoint: `runc restore`. Answers on every
 * error (the start has begun). */
static void restore_start(struct start_op *o) {
        struct container *c = o->c;
        struct process *p = c->init;
        _cleanup_free_ char *work = criu_work_dir(c, NULL);
        _cleanup_free_ char *criu_config = NULL, *err = NULL;
        const char *console = NULL;
        o->pid_file = join_path(c->bundle, "init.pid");
        int r = !work || !o->pid_file ? -ENOMEM : mkdir_if_missing(work);
        if (r < 0)
                err = strdup(strerror(-r));
        else if ((r = restore_stdio(c->restore_from, c->bundle, &criu_config, &err)) < 0)
                ;
        else if (p->terminal && (r = stdio_console_socket(p->io, &console)) < 0)
                err = strdup("cannot create the console socket");
        else {
                struct runtime_restore_opts ro = {
                        .id = c->id,
                        .bundle = c->bundle,
                        .pid_file = o->pid_file,
                        .console_socket = console,
                        .image_path = c->restore_from,
                        .work_path = work,
                        .no_pivot = c->no_pivot,
                        .criu_config = criu_config,
                        .stdio = {-1, -1, -1},
                };
                if (p->io && !p->terminal)
                        stdio_child_fds(p->io, ro.stdio);
                if (unlink(o->pid_file) < 0 && errno != ENOENT)
                        log_warn("%s: cannot remove an old %s: %s", c->id, o->pid_file, strerror(errno));
                r = runtime_restore(c->rt, &ro, on_restore_done, o);
                if (r == 0)
                        return;
                err = strdup(strerror(-r));
        }
        start_finish(o, TTRPC_UNKNOWN, "OCI runtime restore failed: %s", err ? err : strerror(-r));
}

/* ------------------------------------------------------------------------------------ */
/* what the task API shows                                                              */

void process_get_info(const struct process *p, struct process_info *ret) {
        const struct container *c = p->container;
        enum process_status st = PROCESS_STATUS_RUNNING;
        if (process_exited(p) || p->state == PROCESS_STOPPED || p->state == PROCESS_DELETED)
                st = PROCESS_STATUS_STOPPED;
        else if (p->state == PROCESS_CREATED)
                st = PROCESS_STATUS_CREATED;
        else if (c->pausing)
                st = PROCESS_STATUS_PAUSING;
        else if (c->init->state == PROCESS_PAUSED)
                st = PROCESS_STATUS_PAUSED;
        *ret = (struct process_info){
                .id = p->id,
                .is_init = p->is_init,
                .pid = p->pid,
                .status = st,
                .stdin_path = p->stdin_path,
                .stdout_path = p->stdout_path,
                .stderr_path = p->stderr_path,
                .terminal = p->terminal,
                .exited = process_exited(p),
                .exit_status = p->exit_status,
                .exited_at = p->exited_at,
        };
}

pid_t process_pid(const struct process *p) {
        return p->pid;
}

void process_close_stdin(struct process *p) {
        if (p->io)
                stdio_close_stdin(p->io);
}

int process_resize(struct process *p, unsigned width, unsigned height) {
        if (process_exited(p))
                return -ESRCH;
        return p->io ? stdio_resize(p->io, width, height) : 0;
}
