/* SPDX-License-Identifier: Apache-2.0 */
/* containerd.task.v2.Task (and v3, the same messages under containerd 2.x's name):
 * decode a request, act on a container/process, encode the reply. Runtime calls are asynchronous; a handler keeps its ttrpc call and answers
 * from the runtime's completion, so a slow call (or a Wait) never holds up others. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cgroup.h"
#include "events.h"
#include "events.pb-c.h"
#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "mount.h"
#include "proto-check.h"
#include "reaper.h"
#include "runc-options.pb-c.h"
#include "runtime-options.h"
#include "runtime.h"
#include "shim.h"
#include "spec.h"
#include "standalone.h"
#include "stdio-relay.h"
#include "task-service.h"
#include "task.pb-c.h"
#include "timeutil.h"
#include "ttrpc.h"

/* What containerd 2.x calls when `start` answered bootstrap version 3 (launch.c): the same
 * methods and messages as v2, under a new package name. */
#define EXIT_DRAIN_DEADLINE_S 2.0
#define EXEC_GRACE_S 2.0

/* ------------------------------------------------------------------------------------ */
/* containers                                                                           */

static struct container *container_ref(struct container *c) {
        c->refs++;
        return c;
}

static void container_unref(struct container *c) {
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
        free(c);
}

static void container_remove(struct container *c) {
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

static struct container *container_find(struct shim *s, const char *id) {
        for (struct container *c = s->containers; c; c = c->next)
                if (strcmp(c->id, id) == 0)
                        return c;
        return NULL;
}

static struct process *exec_find(struct container *c, const char *exec_id) {
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

size_t task_service_n_containers(const struct shim *s) {
        size_t n = 0;
        for (struct container *c = s->containers; c; c = c->next)
                n++;
        return n;
}

/* Look up the container (created) and the process a request names. Answers the call
 * with the error and returns -1 when there is none. */
static int resolve(struct shim *s, struct ttrpc_call *call, const char *id, const char *exec_id,
                   struct container **ret_c, struct process **ret_p) {
        if (!identifier_is_valid(id)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid container id \"%.80s\"", id ? id : "");
                return -1;
        }
        struct container *c = container_find(s, id);
        if (!c || !c->created) {
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "container %s not created", id);
                return -1;
        }
        struct process *p = c->init;
        if (exec_id && *exec_id) {
                if (!identifier_is_valid(exec_id)) {
                        ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid exec id \"%.80s\"", exec_id);
                        return -1;
                }
                p = exec_find(c, exec_id);
                if (!p) {
                        ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "process does not exist %s", exec_id);
                        return -1;
                }
        }
        *ret_c = c;
        if (ret_p)
                *ret_p = p;
        return 0;
}

/* ------------------------------------------------------------------------------------ */
/* exits                                                                                */

static void publish(struct shim *s, const char *topic, const char *type_url, const ProtobufCMessage *msg) {
        int r = events_publish(s->events, topic, type_url, msg);
        if (r < 0)
                log_error_errno(r, "cannot queue %s event: %m", topic);
}

static void reply_wait(struct ttrpc_call *call, const struct process *p) {
        Nanoshim__Task__WaitResponse resp = NANOSHIM__TASK__WAIT_RESPONSE__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &p->exited_at);
        resp.exit_status = (uint32_t)p->exit_status;
        resp.exited_at = &ts;
        ttrpc_call_reply(call, &resp.base);
}

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

static void delete_continue(struct process *p);
static int write_bundle_file(struct container *c, const char *name, const char *data, bool durable);
static void on_oom(void *userdata) {
        struct container *c = userdata;
        c->oom_killed = true;
        log_warn("%s: OOM kill in the container", c->id);
        Nanoshim__Events__TaskOOM ev = NANOSHIM__EVENTS__TASK_OOM__INIT;
        ev.container_id = c->id;
        publish(c->shim, "/tasks/oom", "containerd.events.TaskOOM", &ev.base);
}

enum exit_event { EXIT_EV_REAPED, EXIT_EV_DRAINED, EXIT_EV_START_FAILED, EXIT_EV_CHECK };
static void exit_step(struct process *p, enum exit_event ev);
static void early_teardown(struct container *c);
static void delete_with_runtime(struct container *c, struct ttrpc_call *call);

static void on_exec_grace(struct ev_loop *loop, ev_timer *w, int revents) {
        struct container *c = w->data;
        log_warn("%s: exec processes still running after the init exited, reporting the init's exit", c->id);
        c->exec_grace_expired = true;
        if (c->init)
                exit_step(c->init, EXIT_EV_CHECK);
}

/* Its wait status is known (whether or not the exit is reported yet). */
static bool process_reaped(const struct process *p) {
        return p->exit >= EXIT_REAPED && p->exit <= EXIT_REPORTED;
}

static void answer_waiters(struct process *p) {
        while (p->waiters) {
                struct waiter *w = p->waiters;
                p->waiters = w->next;
                reply_wait(w->call, p);
                free(w);
        }
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
        /* Persist first, publish second: the delete action answers from this record if we
         * die before containerd has seen the exit. */
        if (p->is_init) {
                char rec[96];
                snprintf(rec, sizeof rec, "%d %lld %ld %d\n", p->exit_status, (long long)p->exited_at.tv_sec,
                         (long)p->exited_at.tv_nsec, c->oom_killed ? 1 : 0);
                int wr = write_bundle_file(c, "init.exit", rec, true);
                if (wr < 0)
                        log_warn_errno(wr, "%s: cannot record the exit in the bundle: %m", c->id);
        }

        Nanoshim__Events__TaskExit ev = NANOSHIM__EVENTS__TASK_EXIT__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &p->exited_at);
        ev.container_id = c->id;
        ev.id = p->id;
        ev.pid = (uint32_t)p->pid;
        ev.exit_status = (uint32_t)p->exit_status;
        ev.exited_at = &ts;
        publish(s, "/tasks/exit", "containerd.events.TaskExit", &ev.base);
        answer_waiters(p);
        if (!p->is_init && c->init)
                exit_step(c->init, EXIT_EV_CHECK); /* the init may wait for this exec */
        if (p->is_init && c->early_delete_ok) {
                events_send_now(s->events); /* the exit event goes out before the teardown */
                early_teardown(c);
        }
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
        if (c->init)
                exit_step(c->init, EXIT_EV_CHECK);
        container_unref(c);
}

static void on_process_exit(pid_t pid, int wait_status, void *userdata) {
        struct process *p = userdata;
        struct container *c = p->container;
        p->exit_status = exit_status_from_wait(wait_status);
        p->exited_at = now_realtime();
        log_debug("%s: pid %d of %s reaped, status %d", c->id, (int)pid, p->id, p->exit_status);
        exit_step(p, EXIT_EV_REAPED);
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

/* ------------------------------------------------------------------------------------ */
/* operation contexts                                                                   */

struct op {
        struct container *c;
        struct process *p;
        struct ttrpc_call *call;
        bool pause; /* Pause (else Resume) */
        bool run_now; /* Create: create and start in one runtime execution */
        char *tmp_path;
        void *req; /* unpacked request kept for the completion (Create) */
};

static struct op *op_new(struct container *c, struct process *p, struct ttrpc_call *call) {
        struct op *o = calloc(1, sizeof *o);
        if (!o)
                return NULL;
        o->c = c ? container_ref(c) : NULL;
        o->p = p;
        o->call = call;
        return o;
}

static void op_free(struct op *o) {
        if (!o)
                return;
        if (o->tmp_path) {
                unlink(o->tmp_path);
                free(o->tmp_path);
        }
        if (o->req)
                nanoshim__task__create_task_request__free_unpacked(o->req, NULL);
        container_unref(o->c);
        free(o);
}

static const char *runtime_error_text(const struct runtime_result *res) {
        return res->error && *res->error ? res->error : "unknown error";
}

/* ------------------------------------------------------------------------------------ */
/* Create                                                                               */

static int apply_options(struct container *c, const Nanoshim__Types__Any *opts, char **ret_error) {
        if (!opts)
                return 0;
        struct runtime_options o;
        int r = runtime_options_decode(opts->type_url, opts->value.data, opts->value.len, &o, ret_error);
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
        runtime_options_done(&o);
        return r;
}

static void create_fail(struct op *o, int code, const char *fmt, ...) _printf_(3, 4);
static void create_fail(struct op *o, int code, const char *fmt, ...) {
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
        ttrpc_call_reply_error(o->call, code, "%s", msg);
        op_free(o);
}

static void on_create_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct container *c = o->c;
        struct process *p = c->init;
        Nanoshim__Task__CreateTaskRequest *req = o->req;
        if (res->exit_status != 0) {
                create_fail(o, TTRPC_UNKNOWN, "OCI runtime create failed: %s", runtime_error_text(res));
                return;
        }
        int r;
        if (p->terminal && (r = stdio_console_receive(p->io)) < 0) {
                create_fail(o, TTRPC_UNKNOWN, "failed to receive the console from the runtime: %s", strerror(-r));
                return;
        }
        _cleanup_free_ char *pidfile = NULL;
        if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return;
        }
        r = read_pid_file_at(AT_FDCWD, pidfile, &p->pid);
        if (r < 0) {
                create_fail(o, TTRPC_UNKNOWN, "failed to read the init's pid file %s: %s", pidfile, strerror(-r));
                return;
        }
        /* Inside the completion: an exit that already happened is in the reaper's stash. */
        r = reaper_watch(c->shim->reaper, p->pid, on_process_exit, p);
        if (r < 0) {
                create_fail(o, TTRPC_INTERNAL, "cannot watch pid %d: %s", (int)p->pid, strerror(-r));
                return;
        }
        if (p->io && (r = stdio_start(p->io)) < 0)
                log_warn_errno(r, "%s: stdio relay failed to start: %m", c->id);
        c->created = true;
        if (cgroup_oom_watch_new(c->shim->loop, p->pid, on_oom, c, &c->oom) < 0)
                c->oom = NULL;
        log_info("%s: created, init pid %d", c->id, (int)p->pid);

        Nanoshim__Events__TaskIO tio = NANOSHIM__EVENTS__TASK_IO__INIT;
        tio.stdin = req->stdin;
        tio.stdout = req->stdout;
        tio.stderr = req->stderr;
        tio.terminal = req->terminal;
        Nanoshim__Events__TaskCreate ev = NANOSHIM__EVENTS__TASK_CREATE__INIT;
        ev.container_id = c->id;
        ev.bundle = c->bundle;
        ev.n_rootfs = req->n_rootfs;
        ev.rootfs = req->rootfs;
        ev.io = &tio;
        ev.checkpoint = req->checkpoint;
        ev.pid = (uint32_t)p->pid;
        publish(c->shim, "/tasks/create", "containerd.events.TaskCreate", &ev.base);
        if (o->run_now) {
                (void)process_transition(p, PROCESS_RUNNING);
                Nanoshim__Events__TaskStart sev = NANOSHIM__EVENTS__TASK_START__INIT;
                sev.container_id = c->id;
                sev.pid = (uint32_t)p->pid;
                publish(c->shim, "/tasks/start", "containerd.events.TaskStart", &sev.base);
        }

        Nanoshim__Task__CreateTaskResponse resp = NANOSHIM__TASK__CREATE_TASK_RESPONSE__INIT;
        resp.pid = (uint32_t)p->pid;
        ttrpc_call_reply(o->call, &resp.base);
        op_free(o);
}

/* Write a file of the bundle atomically; name is a single path component. */
/* durable: fsync'd before the rename (the exit record must survive a crash); the others
 * only matter while the host is up. */
static int write_bundle_file(struct container *c, const char *name, const char *data, bool durable) {
        _cleanup_close_ int dfd = open(c->bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        return durable ? write_file_atomic_at(dfd, name, data, strlen(data), 0600)
                       : write_file_replace_at(dfd, name, data, strlen(data), 0600);
}

static char *join_path(const char *dir, const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return NULL;
        return p;
}

static int setup_stdio(struct container *c, struct process *p, char **ret_error) {
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

static int container_runtime_new(struct container *c) {
        struct runtime_config cfg = {
                .binary = c->rt_binary,
                .root = c->rt_root,
                .log_path = c->rt_log,
                .systemd_cgroup = c->systemd_cgroup,
        };
        return runtime_new(c->shim->loop, c->shim->reaper, &cfg, &c->rt);
}

static bool dup_or_null(char **dst, const char *src) {
        *dst = strdup(src ? src : "");
        return *dst != NULL;
}

static void handle_create(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__CreateTaskRequest *req = (Nanoshim__Task__CreateTaskRequest *)*msg;
        if (!identifier_is_valid(req->id)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid container id \"%.80s\"", req->id);
                return;
        }
        if (container_find(s, req->id)) {
                ttrpc_call_reply_error(call, TTRPC_ALREADY_EXISTS, "container %s: already exists", req->id);
                return;
        }
        if (!path_is_normal_absolute(req->bundle, 4000)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "bundle must be an absolute path, got \"%.200s\"",
                                       req->bundle ? req->bundle : "");
                return;
        }
        if (req->checkpoint && *req->checkpoint) {
                ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "restore from a checkpoint is not supported by nanoshim");
                return;
        }

        struct container *c = calloc(1, sizeof *c);
        if (!c) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                return;
        }
        c->shim = s;
        c->refs = 1;
        ev_timer_init(&c->exec_grace, on_exec_grace, 0, 0);
        c->exec_grace.data = c;
        c->id = strdup(req->id);
        c->bundle = strdup(req->bundle);
        c->rt_binary = strdup(s->runtime_binary);
        c->rt_root = strdup(s->runtime_root);
        c->rt_log = join_path(req->bundle, "log.json");
        c->init = process_new(c, req->id, true);
        c->next = s->containers;
        s->containers = c; /* reserved: a second Create of the id is refused */
        struct op *o = op_new(c, c->init, call);
        if (!o) {
                container_remove(c);
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                return;
        }
        o->req = req; /* the request is the operation's now: the completion reads it */
        *msg = NULL;
        if (!c->id || !c->bundle || !c->rt_binary || !c->rt_root || !c->rt_log || !c->init) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return;
        }
        struct process *p = c->init;
        p->terminal = req->terminal;
        if (!dup_or_null(&p->stdin_path, req->stdin) || !dup_or_null(&p->stdout_path, req->stdout) ||
            !dup_or_null(&p->stderr_path, req->stderr)) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return;
        }

        _cleanup_free_ char *err = NULL;
        int r;
        if ((r = apply_options(c, req->options, &err)) < 0) {
                create_fail(o, r == -ENOMEM ? TTRPC_INTERNAL : TTRPC_INVALID_ARGUMENT, "%s",
                            err ? err : r == -ENOMEM ? "out of memory" : "bad options");
                return;
        }

        /* The `delete` action runs without us: leave it the runtime we used. */
        json_t *saved = json_pack("{s:s, s:s}", "binary_name", c->rt_binary, "root", c->rt_root);
        _cleanup_free_ char *saved_text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
        json_decref(saved);
        if (!saved_text || (r = write_bundle_file(c, "options.json", saved_text, false)) < 0)
                log_warn("%s: cannot write options.json, the delete action will use defaults", c->id);

        /* What the runtime will be asked to do decides how exits are cleaned up. */
        struct oci_config cfg;
        _cleanup_free_ char *cfg_path = join_path(c->bundle, "config.json");
        r = cfg_path ? oci_config_load(AT_FDCWD, cfg_path, &cfg, &err) : -ENOMEM;
        if (r < 0) {
                create_fail(o, TTRPC_INVALID_ARGUMENT, "%s", err ? err : strerror(-r)); /* names the file */
                return;
        }
        c->private_pidns = cfg.private_pid_namespace;
        c->early_delete_ok = cfg.private_pid_namespace && !cfg.has_poststop_hooks;
        oci_config_done(&cfg);

        if (req->n_rootfs > 0) {
                c->rootfs_target = join_path(c->bundle, "rootfs");
                if (!c->rootfs_target) {
                        create_fail(o, TTRPC_INTERNAL, "out of memory");
                        return;
                }
                if (mkdir(c->rootfs_target, 0711) < 0 && errno != EEXIST) {
                        create_fail(o, TTRPC_UNKNOWN, "cannot create %s: %s", c->rootfs_target, strerror(errno));
                        return;
                }
                /* Mounting follows a symlink planted there: only a real directory will do. */
                struct stat st;
                if (lstat(c->rootfs_target, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        free(c->rootfs_target);
                        c->rootfs_target = NULL; /* nothing of ours is mounted */
                        create_fail(o, TTRPC_INVALID_ARGUMENT, "%s/rootfs must be a directory, not a symlink or file",
                                    req->bundle);
                        return;
                }
                struct mount_spec *ms = calloc(req->n_rootfs, sizeof *ms);
                if (!ms) {
                        create_fail(o, TTRPC_INTERNAL, "out of memory");
                        return;
                }
                for (size_t i = 0; i < req->n_rootfs; i++)
                        ms[i] = (struct mount_spec){req->rootfs[i]->type, req->rootfs[i]->source,
                                                    req->rootfs[i]->options, req->rootfs[i]->n_options};
                free(err);
                err = NULL;
                r = mount_all(ms, req->n_rootfs, c->rootfs_target, &err);
                free(ms);
                if (r < 0) {
                        free(c->rootfs_target);
                        c->rootfs_target = NULL; /* nothing of ours is mounted */
                        create_fail(o, TTRPC_UNKNOWN, "%s", err ? err : strerror(-r));
                        return;
                }
        }

        free(err);
        err = NULL;
        r = setup_stdio(c, p, &err);
        if (r < 0) {
                create_fail(o, TTRPC_INVALID_ARGUMENT, "stdio: %s", err ? err : strerror(-r));
                return;
        }
        const char *console = NULL;
        if (p->terminal && (r = stdio_console_socket(p->io, &console)) < 0) {
                create_fail(o, TTRPC_INTERNAL, "cannot create the console socket: %s", strerror(-r));
                return;
        }
        r = container_runtime_new(c);
        if (r < 0) {
                create_fail(o, TTRPC_INTERNAL, "cannot set up the runtime: %s", strerror(-r));
                return;
        }
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
        /* A standalone launch asks for create and start at once: `run --detach`, one
         * runtime execution instead of two. */
        const char *run_now = ttrpc_call_metadata(call, STANDALONE_RUN_METADATA);
        o->run_now = run_now && strcmp(run_now, "true") == 0;
        r = !pidfile      ? -ENOMEM
            : o->run_now ? runtime_run(c->rt, &co, on_create_done, o)
                         : runtime_create(c->rt, &co, on_create_done, o);
        if (r < 0)
                create_fail(o, TTRPC_UNKNOWN, "OCI runtime create failed: %s", strerror(-r));
}

/* ------------------------------------------------------------------------------------ */
/* Start                                                                                */

static void start_succeeded(struct op *o) {
        struct process *p = o->p;
        struct container *c = o->c;
        if (p->state == PROCESS_CREATED)
                (void)process_transition(p, PROCESS_RUNNING);
        if (p->is_init) {
                Nanoshim__Events__TaskStart ev = NANOSHIM__EVENTS__TASK_START__INIT;
                ev.container_id = c->id;
                ev.pid = (uint32_t)p->pid;
                publish(c->shim, "/tasks/start", "containerd.events.TaskStart", &ev.base);
        } else {
                Nanoshim__Events__TaskExecStarted ev = NANOSHIM__EVENTS__TASK_EXEC_STARTED__INIT;
                ev.container_id = c->id;
                ev.exec_id = p->id;
                ev.pid = (uint32_t)p->pid;
                publish(c->shim, "/tasks/exec-started", "containerd.events.TaskExecStarted", &ev.base);
        }
        Nanoshim__Task__StartResponse resp = NANOSHIM__TASK__START_RESPONSE__INIT;
        resp.pid = (uint32_t)p->pid;
        ttrpc_call_reply(o->call, &resp.base);
        p->starting = false;
        p->busy = false;
        exit_step(p, EXIT_EV_CHECK); /* an exit that came during the start goes out now, after it */
        if (!p->is_init && c->init)
                exit_step(c->init, EXIT_EV_CHECK); /* it waited for this start; now for the exit */
}

static void on_start_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct process *p = o->p;
        if (res->exit_status != 0) {
                p->starting = false;
                p->busy = false;
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime start failed: %s", runtime_error_text(res));
                exit_step(p, EXIT_EV_CHECK);
                op_free(o);
                return;
        }
        start_succeeded(o);
        op_free(o);
}

/* An exec whose start failed never ran: as with runc-v2, no exit event, ever (the
 * init's exit stays the container's last, and Docker takes 127/126 from the Start
 * error); it stays "created" with pid 0, and Wait answers status 0 with no exit time
 * (an outstanding one at once). The init's exit may have been waiting for this start. */
static void exec_failed(struct process *p) {
        p->pid = 0;
        p->starting = false;
        p->busy = false;
        p->io = stdio_free(p->io);
        exit_step(p, EXIT_EV_START_FAILED);
}

static void on_exec_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct process *p = o->p;
        struct container *c = o->c;
        if (res->exit_status != 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", runtime_error_text(res));
                exec_failed(p);
                op_free(o);
                return;
        }
        int r;
        if (p->terminal && (r = stdio_console_receive(p->io)) < 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "failed to receive the exec console: %s", strerror(-r));
                exec_failed(p);
                op_free(o);
                return;
        }
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "%s/%s.pid", c->bundle, p->id) < 0 || (r = read_pid_file_at(AT_FDCWD, name, &p->pid)) < 0 ||
            (r = reaper_watch(c->shim->reaper, p->pid, on_process_exit, p)) < 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "cannot learn the exec's pid from %s", name ? name : "?");
                exec_failed(p);
                op_free(o);
                return;
        }
        if (p->io && (r = stdio_start(p->io)) < 0)
                log_warn_errno(r, "%s: exec %s stdio relay failed to start: %m", c->id, p->id);
        start_succeeded(o);
        op_free(o);
}

static void start_exec(struct shim *s, struct ttrpc_call *call, struct container *c, struct process *p) {
        if (c->init->state != PROCESS_RUNNING && c->init->state != PROCESS_CREATED) {
                ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "cannot exec in a %s container",
                                       process_state_to_string(c->init->state));
                return;
        }
        struct op *o = op_new(c, p, call);
        if (!o) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                return;
        }
        _cleanup_free_ char *err = NULL;
        int r = setup_stdio(c, p, &err);
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "stdio: %s", err ? err : strerror(-r));
                op_free(o);
                return;
        }
        const char *console = NULL;
        if (p->terminal && (r = stdio_console_socket(p->io, &console)) < 0) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "cannot create the console socket: %s", strerror(-r));
                p->io = stdio_free(p->io);
                op_free(o);
                return;
        }
        /* The exec id is a checked identifier, so these names stay inside the bundle. */
        _cleanup_free_ char *pidfile = NULL;
        char spec_name[IDENTIFIER_MAX + 32];
        snprintf(spec_name, sizeof spec_name, ".%s-process.json", p->id);
        if (asprintf(&o->tmp_path, "%s/%s", c->bundle, spec_name) < 0)
                o->tmp_path = NULL;
        if (asprintf(&pidfile, "%s/%s.pid", c->bundle, p->id) < 0)
                pidfile = NULL;
        if (!o->tmp_path || !pidfile || (r = write_bundle_file(c, spec_name, p->spec_json, false)) < 0) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "cannot write the exec's process spec");
                p->io = stdio_free(p->io);
                op_free(o);
                return;
        }
        struct runtime_exec_opts eo = {
                .id = c->id,
                .process_file = o->tmp_path,
                .pid_file = pidfile,
                .console_socket = console,
                .detach = true,
                .stdio = {-1, -1, -1},
        };
        if (p->io && !p->terminal)
                stdio_child_fds(p->io, eo.stdio);
        p->starting = p->busy = true;
        r = runtime_exec(c->rt, &eo, on_exec_done, o);
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", strerror(-r));
                exec_failed(p);
                op_free(o);
        }
}

static void handle_start(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__StartRequest *req = (Nanoshim__Task__StartRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                if (p->exit == EXIT_NEVER)
                        ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "exec %s: its start failed already",
                                               p->id);
                else if (p->state != PROCESS_CREATED || p->busy || p->exit == EXIT_REPORTED)
                        ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot start a %s process",
                                               (p->exit == EXIT_REPORTED) ? "stopped" : process_state_to_string(p->state));
                else if (!p->is_init)
                        start_exec(s, call, c, p);
                else {
                        struct op *o = op_new(c, p, call);
                        p->starting = p->busy = true;
                        int r = o ? runtime_start(c->rt, c->id, on_start_done, o) : -ENOMEM;
                        if (r < 0) {
                                p->starting = p->busy = false;
                                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "OCI runtime start failed: %s", strerror(-r));
                                op_free(o);
                        }
                }
        }
}

/* ------------------------------------------------------------------------------------ */
/* State, Wait, Connect, Pids                                                           */

static Nanoshim__Types__Status process_status(const struct process *p) {
        struct container *c = p->container;
        if (p->exit == EXIT_REPORTED || p->state == PROCESS_STOPPED || p->state == PROCESS_DELETED)
                return NANOSHIM__TYPES__STATUS__STOPPED;
        if (p->state == PROCESS_CREATED)
                return NANOSHIM__TYPES__STATUS__CREATED;
        if (c->pausing)
                return NANOSHIM__TYPES__STATUS__PAUSING;
        if (c->init->state == PROCESS_PAUSED)
                return NANOSHIM__TYPES__STATUS__PAUSED;
        return NANOSHIM__TYPES__STATUS__RUNNING;
}

static void handle_state(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__StateRequest *req = (Nanoshim__Task__StateRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                Nanoshim__Task__StateResponse resp = NANOSHIM__TASK__STATE_RESPONSE__INIT;
                Nanoshim__Types__Timestamp ts;
                struct timespec none = {0};
                timestamp_set(&ts, (p->exit == EXIT_REPORTED) ? &p->exited_at : &none);
                resp.id = p->id;
                resp.bundle = c->bundle;
                resp.pid = (uint32_t)p->pid;
                resp.status = process_status(p);
                resp.stdin = p->stdin_path;
                resp.stdout = p->stdout_path;
                resp.stderr = p->stderr_path;
                resp.terminal = p->terminal;
                resp.exit_status = (p->exit == EXIT_REPORTED) ? (uint32_t)p->exit_status : 0;
                resp.exited_at = &ts;
                ttrpc_call_reply(call, &resp.base);
        }
}

static void handle_wait(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__WaitRequest *req = (Nanoshim__Task__WaitRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                if (p->exit == EXIT_REPORTED || p->exit == EXIT_NEVER)
                        reply_wait(call, p);
                else {
                        struct waiter *w = calloc(1, sizeof *w);
                        if (!w)
                                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                        else {
                                w->call = call;
                                w->next = p->waiters;
                                p->waiters = w;
                        }
                }
        }
}

static void handle_connect(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__ConnectRequest *req = (Nanoshim__Task__ConnectRequest *)*msg;
        Nanoshim__Task__ConnectResponse resp = NANOSHIM__TASK__CONNECT_RESPONSE__INIT;
        resp.shim_pid = (uint32_t)getpid();
        struct container *c = req->id ? container_find(s, req->id) : NULL;
        if (c && c->created)
                resp.task_pid = (uint32_t)c->init->pid;
        ttrpc_call_reply(call, &resp.base);
}

static void on_ps_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        pid_t *pids = NULL;
        size_t n = 0;
        if (res->exit_status != 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "failed to list processes: %s", runtime_error_text(res));
                op_free(o);
                return;
        }
        int r = runtime_parse_ps(res->out, res->out_len, &pids, &n);
        if (r < 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "cannot parse the runtime's process list");
                op_free(o);
                return;
        }
        Nanoshim__Types__ProcessInfo *infos = calloc(n ? n : 1, sizeof *infos);
        Nanoshim__Types__ProcessInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
        Nanoshim__Types__Any *anys = calloc(n ? n : 1, sizeof *anys);
        Nanoshim__Runcopts__ProcessDetails *details = calloc(n ? n : 1, sizeof *details);
        uint8_t **bufs = calloc(n ? n : 1, sizeof *bufs);
        if (!infos || !ptrs || !anys || !details || !bufs) {
                ttrpc_call_reply_error(o->call, TTRPC_INTERNAL, "out of memory");
                n = 0;
        } else {
                for (size_t i = 0; i < n; i++) {
                        nanoshim__types__process_info__init(&infos[i]);
                        infos[i].pid = (uint32_t)pids[i];
                        ptrs[i] = &infos[i];
                        for (struct process *e = o->c->execs; e; e = e->next) {
                                if (e->pid != pids[i] || e->pid <= 0)
                                        continue;
                                nanoshim__runcopts__process_details__init(&details[i]);
                                details[i].exec_id = e->id;
                                size_t len = nanoshim__runcopts__process_details__get_packed_size(&details[i]);
                                bufs[i] = malloc(len ? len : 1);
                                if (!bufs[i])
                                        break;
                                nanoshim__runcopts__process_details__pack(&details[i], bufs[i]);
                                nanoshim__types__any__init(&anys[i]);
                                anys[i].type_url = (char *)"containerd.runc.v1.ProcessDetails";
                                anys[i].value.data = bufs[i];
                                anys[i].value.len = len;
                                infos[i].info = &anys[i];
                                break;
                        }
                }
                Nanoshim__Task__PidsResponse resp = NANOSHIM__TASK__PIDS_RESPONSE__INIT;
                resp.n_processes = n;
                resp.processes = ptrs;
                ttrpc_call_reply(o->call, &resp.base);
        }
        for (size_t i = 0; bufs && i < n; i++)
                free(bufs[i]);
        free(bufs);
        free(details);
        free(anys);
        free(ptrs);
        free(infos);
        free(pids);
        op_free(o);
}

static void handle_pids(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__PidsRequest *req = (Nanoshim__Task__PidsRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0) {
                struct op *o = op_new(c, c->init, call);
                int r = o ? runtime_ps(c->rt, c->id, on_ps_done, o) : -ENOMEM;
                if (r < 0) {
                        ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "failed to list processes: %s", strerror(-r));
                        op_free(o);
                }
        }
}

/* ------------------------------------------------------------------------------------ */
/* Kill                                                                                 */

static void on_kill_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        if (res->exit_status == 0)
                ttrpc_call_reply(o->call, NULL);
        else {
                const char *e = runtime_error_text(res);
                if (runtime_error_not_running(e))
                        ttrpc_call_reply_error(o->call, TTRPC_NOT_FOUND, "process already finished");
                else if (runtime_error_not_exist(e))
                        ttrpc_call_reply_error(o->call, TTRPC_NOT_FOUND, "no such container: %s", e);
                else
                        ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "%s", e);
        }
        op_free(o);
}

static void handle_kill(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__KillRequest *req = (Nanoshim__Task__KillRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) < 0)
                goto out;
        if (req->signal == 0 || req->signal >= 65) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid signal %u", req->signal);
                goto out;
        }
        if (p->is_init && req->all && p->exit == EXIT_REPORTED && c->private_pidns) {
                /* the init's exit took the whole PID namespace: nothing is left to signal
                 * (and the runtime may have forgotten the container already) */
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "process already finished");
                goto out;
        }
        if (p->is_init && req->all) {
                struct op *o = op_new(c, p, call);
                int r = o ? runtime_kill(c->rt, c->id, (int)req->signal, req->all, on_kill_done, o) : -ENOMEM;
                if (r < 0) {
                        ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "kill failed: %s", strerror(-r));
                        op_free(o);
                }
                goto out;
        }
        /* One process: signalled directly, as `runc kill` would, without a runtime exec
         * (~15 ms of Go start-up). The pid cannot have been reused: it is our child (the
         * init and execs are re-parented to us, the subreaper) and not reaped yet. */
        if (p->pid <= 0 && !process_reaped(p))
                ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "process not created: failed precondition"); /* runc-v2's words */
        else if (process_reaped(p))
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "process already finished");
        else if (kill(p->pid, (int)req->signal) < 0)
                ttrpc_call_reply_error(call, errno == ESRCH ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN, "%s",
                                       errno == ESRCH ? "process already finished" : strerror(errno));
        else
                ttrpc_call_reply(call, NULL);
out:;
}

/* ------------------------------------------------------------------------------------ */
/* Delete                                                                               */

static void reply_delete(struct ttrpc_call *call, const struct process *p) {
        Nanoshim__Task__DeleteResponse resp = NANOSHIM__TASK__DELETE_RESPONSE__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &p->exited_at);
        resp.pid = (uint32_t)p->pid;
        resp.exit_status = (uint32_t)p->exit_status;
        resp.exited_at = &ts;
        ttrpc_call_reply(call, &resp.base);
}

static void delete_finish_init(struct container *c, struct ttrpc_call *call) {
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
        Nanoshim__Events__TaskDelete ev = NANOSHIM__EVENTS__TASK_DELETE__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &p->exited_at);
        ev.container_id = c->id;
        ev.pid = (uint32_t)p->pid;
        ev.exit_status = (uint32_t)p->exit_status;
        ev.exited_at = &ts;
        publish(c->shim, "/tasks/delete", "containerd.events.TaskDelete", &ev.base);
        reply_delete(call, p);
        log_info("%s: deleted", c->id);
        container_remove(c);
}

/* The init's Delete of a created container waits for the init's exit (runc delete
 * killed it) so that the exit is reported before the delete. */
static void delete_continue(struct process *p) {
        if (!p->is_init || !p->delete_call || p->exit != EXIT_REPORTED)
                return;
        struct ttrpc_call *call = TAKE_PTR(p->delete_call);
        delete_finish_init(p->container, call);
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
        if (c->early_delete == EARLY_DELETE_RUNNING || c->unmount_pid > 0)
                return;
        struct ttrpc_call *call = TAKE_PTR(c->early_delete_waiter);
        if (!call)
                return;
        c->init->busy = false;
        if (c->early_delete == EARLY_DELETE_DONE)
                delete_finish_init(c, call);
        else
                delete_with_runtime(c, call);
}

static void on_early_deleted(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct container *c = o->c;
        bool ok = res->exit_status == 0 || runtime_error_not_exist(res->error);
        c->early_delete = ok ? EARLY_DELETE_DONE : EARLY_DELETE_FAILED;
        if (!ok)
                log_warn("%s: runtime delete after the exit failed (%s); Delete will retry", c->id,
                         runtime_error_text(res));
        early_teardown_check(c);
        op_free(o);
}

static void early_runtime_delete(struct container *c) {
        struct process *p = c->init;
        _cleanup_free_ char *why = NULL;
        int r = runtime_delete_stopped_in_place(c->rt, c->id, p->pid, &why);
        if (r == 0) {
                log_debug("%s: the runtime's state and cgroups removed in place", c->id);
                c->early_delete = EARLY_DELETE_DONE;
                return;
        }
        log_debug("%s: running the runtime's delete: %s", c->id, why ? why : strerror(-r));
        struct op *o = op_new(c, p, NULL);
        if (o && runtime_delete(c->rt, c->id, false, on_early_deleted, o) == 0)
                c->early_delete = EARLY_DELETE_RUNNING;
        else
                op_free(o);
}

static void on_unmounted(pid_t pid, int wait_status, void *userdata) {
        struct container *c = userdata;
        int st = exit_status_from_wait(wait_status);
        c->unmount_pid = 0;
        if (st != 0) /* delete_finish_init() tries again */
                log_warn("%s: cannot unmount %s: %s", c->id, c->rootfs_target,
                         st < 128 ? strerror(st) : "the unmounting process was killed");
        else {
                free(c->rootfs_target); /* nothing of ours is mounted any more */
                c->rootfs_target = NULL;
        }
        early_teardown_check(c);
        container_unref(c);
}

static void early_unmount(struct container *c) {
        if (!c->rootfs_target || c->unmount_pid > 0)
                return;
        pid_t pid = unmount_all_spawn(c->rootfs_target);
        if (pid < 0) {
                log_warn_errno((int)pid, "%s: cannot start unmounting the rootfs: %m", c->id);
                return;
        }
        if (reaper_watch(c->shim->reaper, pid, on_unmounted, container_ref(c)) < 0) {
                container_unref(c);
                return; /* reaped as an orphan; Delete unmounts */
        }
        c->unmount_pid = pid;
}

static void early_teardown(struct container *c) {
        struct process *p = c->init;
        if (!c->early_delete_ok || c->early_delete != EARLY_DELETE_NONE || !c->rt || !p || p->busy ||
            p->delete_call)
                return;
        /* (the OOM counter was read before the exit event: the cgroup may go) */
        early_unmount(c); /* the longer of the two, in a child: first */
        early_runtime_delete(c);
}

static void on_delete_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct container *c = o->c;
        struct process *p = c->init;
        if (res->exit_status != 0 && !runtime_error_not_exist(res->error)) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "failed to delete task: %s", runtime_error_text(res));
                p->busy = false;
                op_free(o);
                return;
        }
        p->busy = false;
        if (p->exit != EXIT_REPORTED) {
                /* A created container: runc delete killed its init; report that exit first. */
                p->delete_call = o->call;
                op_free(o);
                if (p->pid <= 0) {
                        /* Never had a process: nothing will exit. */
                        p->exit_status = 0;
                        p->exited_at = now_realtime();
                        exit_step(p, EXIT_EV_REAPED);
                        exit_step(p, EXIT_EV_DRAINED);
                } else
                        exit_step(p, EXIT_EV_CHECK); /* the exit is reported when it arrives */
                return;
        }
        struct ttrpc_call *call = o->call;
        op_free(o);
        delete_finish_init(c, call);
}

static void delete_exec(struct ttrpc_call *call, struct container *c, struct process *p) {
        if (p->busy || (p->state != PROCESS_CREATED && p->exit != EXIT_REPORTED)) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot delete a running process");
                return;
        }
        reply_delete(call, p);
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

static void delete_with_runtime(struct container *c, struct ttrpc_call *call) {
        struct process *p = c->init;
        struct op *o = op_new(c, p, call);
        p->busy = true;
        /* A created container's init is still waiting in runc init: force it down. */
        int r = o ? runtime_delete(c->rt, c->id, p->exit != EXIT_REPORTED, on_delete_done, o) : -ENOMEM;
        if (r < 0) {
                p->busy = false;
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "failed to delete task: %s", strerror(-r));
                op_free(o);
        }
}

static void handle_delete(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__DeleteRequest *req = (Nanoshim__Task__DeleteRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) < 0)
                goto out;
        if (!p->is_init) {
                delete_exec(call, c, p);
                goto out;
        }
        if (p->busy || p->delete_call || (p->state != PROCESS_CREATED && p->exit != EXIT_REPORTED)) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot delete a running process");
                goto out;
        }
        if (p->exit == EXIT_REPORTED && (c->early_delete == EARLY_DELETE_RUNNING || c->unmount_pid > 0)) {
                p->busy = true;
                c->early_delete_waiter = call; /* see early_teardown_check() */
                goto out;
        }
        if (p->exit == EXIT_REPORTED && c->early_delete == EARLY_DELETE_DONE) {
                delete_finish_init(c, call); /* the runtime's state went at the exit */
                goto out;
        }
        delete_with_runtime(c, call);
out:;
}

/* ------------------------------------------------------------------------------------ */
/* Exec                                                                                 */

static void handle_exec(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__ExecProcessRequest *req = (Nanoshim__Task__ExecProcessRequest *)*msg;
        struct container *c;
        _cleanup_free_ char *err = NULL;
        json_t *spec = NULL;
        if (resolve(s, call, req->id, NULL, &c, NULL) < 0)
                goto out;
        if (!identifier_is_valid(req->exec_id)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid exec id \"%.80s\"", req->exec_id);
                goto out;
        }
        if (exec_find(c, req->exec_id) || strcmp(req->exec_id, c->id) == 0) {
                ttrpc_call_reply_error(call, TTRPC_ALREADY_EXISTS, "id %s: already exists", req->exec_id);
                goto out;
        }
        if (c->init->exit == EXIT_REPORTED || c->init->state == PROCESS_STOPPED || c->init->state == PROCESS_DELETED) {
                ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "cannot exec in a stopped state");
                goto out;
        }
        if (!req->spec || !req->spec->value.data) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "exec %s: no process spec", req->exec_id);
                goto out;
        }
        struct oci_process op;
        int r = oci_process_parse((const char *)req->spec->value.data, req->spec->value.len, &op, &err);
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "exec %s: invalid process spec: %s", req->exec_id,
                                       err ? err : strerror(-r));
                goto out;
        }
        oci_process_done(&op);
        /* The runtime gets the spec as sent, with `terminal` as the request says. */
        spec = json_loadb((const char *)req->spec->value.data, req->spec->value.len, 0, NULL);
        if (!spec || json_object_set_new(spec, "terminal", json_boolean(req->terminal)) < 0) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "exec %s: invalid process spec", req->exec_id);
                goto out;
        }
        struct process *p = process_new(c, req->exec_id, false);
        if (!p || !(p->spec_json = json_dumps(spec, JSON_COMPACT)) || !dup_or_null(&p->stdin_path, req->stdin) ||
            !dup_or_null(&p->stdout_path, req->stdout) || !dup_or_null(&p->stderr_path, req->stderr)) {
                process_free(p);
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                goto out;
        }
        p->terminal = req->terminal;
        p->next = c->execs;
        c->execs = p;
        Nanoshim__Events__TaskExecAdded ev = NANOSHIM__EVENTS__TASK_EXEC_ADDED__INIT;
        ev.container_id = c->id;
        ev.exec_id = p->id;
        publish(s, "/tasks/exec-added", "containerd.events.TaskExecAdded", &ev.base);
        ttrpc_call_reply(call, NULL);
out:
        json_decref(spec);
}

/* ------------------------------------------------------------------------------------ */
/* Pause, Resume, Update, Stats                                                         */

static void on_pause_resume_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct container *c = o->c;
        bool pause = o->pause;
        c->pausing = false;
        c->init->busy = false;
        if (res->exit_status != 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "%s", runtime_error_text(res));
                op_free(o);
                return;
        }
        if (c->init->exit != EXIT_REPORTED)
                (void)process_transition(c->init, pause ? PROCESS_PAUSED : PROCESS_RUNNING);
        if (pause) {
                Nanoshim__Events__TaskPaused ev = NANOSHIM__EVENTS__TASK_PAUSED__INIT;
                ev.container_id = c->id;
                publish(c->shim, "/tasks/paused", "containerd.events.TaskPaused", &ev.base);
        } else {
                Nanoshim__Events__TaskResumed ev = NANOSHIM__EVENTS__TASK_RESUMED__INIT;
                ev.container_id = c->id;
                publish(c->shim, "/tasks/resumed", "containerd.events.TaskResumed", &ev.base);
        }
        ttrpc_call_reply(o->call, NULL);
        op_free(o);
}

static void pause_resume(struct shim *s, struct ttrpc_call *call, const char *id, bool pause) {
        struct container *c;
        if (resolve(s, call, id, NULL, &c, NULL) < 0)
                return;
        struct process *p = c->init;
        enum process_state want = pause ? PROCESS_RUNNING : PROCESS_PAUSED;
        if (p->busy || p->exit == EXIT_REPORTED || p->state != want) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot %s a %s container", pause ? "pause" : "resume",
                                       (p->exit == EXIT_REPORTED) ? "stopped" : process_state_to_string(p->state));
                return;
        }
        struct op *o = op_new(c, p, call);
        if (!o) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
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
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "%s failed: %s", pause ? "pause" : "resume", strerror(-r));
                op_free(o);
        }
}

static void handle_pause(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__PauseRequest *req = (Nanoshim__Task__PauseRequest *)*msg;
        pause_resume(s, call, req->id, true);
}

static void handle_resume(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__ResumeRequest *req = (Nanoshim__Task__ResumeRequest *)*msg;
        pause_resume(s, call, req->id, false);
}

static void on_update_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        if (res->exit_status != 0)
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "failed to update resources: %s", runtime_error_text(res));
        else
                ttrpc_call_reply(o->call, NULL);
        op_free(o);
}

static void handle_update(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__UpdateTaskRequest *req = (Nanoshim__Task__UpdateTaskRequest *)*msg;
        struct container *c;
        _cleanup_free_ char *json = NULL;
        if (resolve(s, call, req->id, NULL, &c, NULL) < 0)
                goto out;
        if (c->init->exit == EXIT_REPORTED) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "container is stopped");
                goto out;
        }
        if (!req->resources || !req->resources->value.data) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "no resources given");
                goto out;
        }
        /* Validate it is a JSON object before handing it to the runtime. */
        json_t *j = json_loadb((const char *)req->resources->value.data, req->resources->value.len, 0, NULL);
        bool ok = j && json_is_object(j);
        json_decref(j);
        if (!ok || !(json = strndup((const char *)req->resources->value.data, req->resources->value.len))) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "resources must be a JSON LinuxResources object");
                goto out;
        }
        struct op *o = op_new(c, c->init, call);
        int r = o ? runtime_update(c->rt, c->id, json, on_update_done, o) : -ENOMEM;
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "failed to update resources: %s", strerror(-r));
                op_free(o);
        }
out:;
}

static void handle_stats(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__StatsRequest *req = (Nanoshim__Task__StatsRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0) {
                uint8_t *buf = NULL;
                size_t len = 0;
                const char *type_url = NULL;
                int r = process_reaped(c->init) ? -ESRCH : cgroup_stats_collect(NULL, NULL, c->init->pid, &buf, &len, &type_url);
                if (r < 0)
                        ttrpc_call_reply_error(call, r == -ESRCH ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN,
                                               "cannot collect metrics of %s: %s", c->id,
                                               r == -ESRCH ? "process already finished" : strerror(-r));
                else {
                        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
                        any.type_url = (char *)type_url;
                        any.value.data = buf;
                        any.value.len = len;
                        Nanoshim__Task__StatsResponse resp = NANOSHIM__TASK__STATS_RESPONSE__INIT;
                        resp.stats = &any;
                        ttrpc_call_reply(call, &resp.base);
                }
                free(buf);
        }
}

/* ------------------------------------------------------------------------------------ */
/* CloseIO, ResizePty, Shutdown                                                         */

static void handle_close_io(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__CloseIORequest *req = (Nanoshim__Task__CloseIORequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                if (req->stdin && p->io)
                        stdio_close_stdin(p->io);
                ttrpc_call_reply(call, NULL);
        }
}

static void handle_resize_pty(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__ResizePtyRequest *req = (Nanoshim__Task__ResizePtyRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                int r = (p->exit == EXIT_REPORTED) ? -ESRCH : p->io ? stdio_resize(p->io, req->width, req->height) : 0;
                if (r == -ESRCH)
                        ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot resize a stopped container");
                else if (r < 0)
                        ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "resize failed: %s", strerror(-r));
                else
                        ttrpc_call_reply(call, NULL);
        }
}

static void handle_shutdown(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        ttrpc_call_reply(call, NULL);
        if (s->containers == NULL)
                shim_exit(s);
        else
                log_debug("shutdown requested, %zu container(s) still managed: staying", task_service_n_containers(s));
}

/* ------------------------------------------------------------------------------------ */
/* dispatch                                                                             */

/* A handler gets its request decoded; the dispatcher frees it after the handler
 * returns, unless the handler took it (set *msg to NULL: Create keeps it for its
 * completion). */
struct method {
        const char *name;
        void (*fn)(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg);
        const ProtobufCMessageDescriptor *request;
};

#define M(name, fn, req) {name, fn, &nanoshim__task__##req##__descriptor}
static const struct method methods[] = {
        M("State", handle_state, state_request),
        M("Create", handle_create, create_task_request),
        M("Start", handle_start, start_request),
        M("Delete", handle_delete, delete_request),
        M("Pids", handle_pids, pids_request),
        M("Pause", handle_pause, pause_request),
        M("Resume", handle_resume, resume_request),
        M("Kill", handle_kill, kill_request),
        M("Exec", handle_exec, exec_process_request),
        M("ResizePty", handle_resize_pty, resize_pty_request),
        M("CloseIO", handle_close_io, close_iorequest),
        M("Update", handle_update, update_task_request),
        M("Wait", handle_wait, wait_request),
        M("Stats", handle_stats, stats_request),
        M("Connect", handle_connect, connect_request),
        M("Shutdown", handle_shutdown, shutdown_request),
};
#undef M

void task_service_dispatch(struct ttrpc_call *call, void *userdata) {
        struct shim *s = userdata;
        if (!call->service || (strcmp(call->service, TASK_SERVICE_V2) != 0 && strcmp(call->service, TASK_SERVICE_V3) != 0)) {
                ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "service %s", call->service ? call->service : "");
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (call->method && strcmp(call->method, methods[i].name) == 0) {
                        log_debug("%s %s", call->service, call->method);
                        /* protobuf-c would cut a string at a NUL: "ok\0/../x" must not become "ok" */
                        const char *field = NULL;
                        int r = proto_check_strings(methods[i].request, call->payload, call->payload_len, &field);
                        if (r == -EILSEQ) {
                                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "%s: field %s holds a NUL byte",
                                                       call->method, field);
                                return;
                        }
                        if (r < 0) {
                                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "cannot decode %s request",
                                                       call->method);
                                return;
                        }
                        ProtobufCMessage *msg = protobuf_c_message_unpack(methods[i].request, NULL,
                                                                          call->payload_len, call->payload);
                        if (!msg) {
                                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "cannot decode %s request",
                                                       call->method);
                                return;
                        }
                        methods[i].fn(s, call, &msg);
                        if (msg)
                                protobuf_c_message_free_unpacked(msg, NULL);
                        return;
                }
        if (call->method && strcmp(call->method, "Checkpoint") == 0) {
                ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "checkpoint is not supported by nanoshim");
                return;
        }
        ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "method %s", call->method ? call->method : "");
}

void task_service_forget_all(struct shim *s) {
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
