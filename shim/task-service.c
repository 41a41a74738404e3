/* SPDX-License-Identifier: Apache-2.0 */
/* The task API, containerd.task.v2.Task and containerd.task.v3.Task (containerd 2.x's
 * name for the same methods and messages, used when `start` answered bootstrap version
 * 3, launch.c): one table of methods; each request is decoded once, a handler
 * translates it to the container API (container.c) and the answer back. Runtime calls
 * are asynchronous; a handler keeps its ttrpc call and answers from the completion, so
 * a slow call (or a Wait) never holds up others. */
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
#include "container.h"
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

/* ------------------------------------------------------------------------------------ */
/* containers                                                                           */

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
                p = container_find_exec(c, exec_id);
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

/* The container's own events (container.c): exit, OOM, delete. */
static void on_container_event(struct container *c, enum container_event ev, const struct process *p) {
        Nanoshim__Types__Timestamp ts;
        switch (ev) {
        case CONTAINER_EVENT_EXIT: {
                Nanoshim__Events__TaskExit e = NANOSHIM__EVENTS__TASK_EXIT__INIT;
                timestamp_set(&ts, &p->exited_at);
                e.container_id = c->id;
                e.id = p->id;
                e.pid = (uint32_t)p->pid;
                e.exit_status = (uint32_t)p->exit_status;
                e.exited_at = &ts;
                publish(c->shim, "/tasks/exit", "containerd.events.TaskExit", &e.base);
                if (p->is_init && c->early_delete_ok)
                        events_send_now(c->shim->events); /* out before the early teardown */
                break;
        }
        case CONTAINER_EVENT_OOM: {
                Nanoshim__Events__TaskOOM e = NANOSHIM__EVENTS__TASK_OOM__INIT;
                e.container_id = c->id;
                publish(c->shim, "/tasks/oom", "containerd.events.TaskOOM", &e.base);
                break;
        }
        case CONTAINER_EVENT_DELETE: {
                Nanoshim__Events__TaskDelete e = NANOSHIM__EVENTS__TASK_DELETE__INIT;
                timestamp_set(&ts, &p->exited_at);
                e.container_id = c->id;
                e.pid = (uint32_t)p->pid;
                e.exit_status = (uint32_t)p->exit_status;
                e.exited_at = &ts;
                publish(c->shim, "/tasks/delete", "containerd.events.TaskDelete", &e.base);
                break;
        }
        }
}

static const struct container_hooks hooks = {.event = on_container_event};

/* Answers of the container API to a call: an error, or Wait's / Delete's reply. */
static bool answer_error(struct ttrpc_call *call, int code, const char *message) {
        if (code == 0)
                return false;
        ttrpc_call_reply_error(call, code, "%s", message ? message : "failed");
        return true;
}

static void answer_wait(void *ud, int code, const char *message, const struct container_answer *a) {
        if (answer_error(ud, code, message))
                return;
        Nanoshim__Task__WaitResponse resp = NANOSHIM__TASK__WAIT_RESPONSE__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &a->exited_at);
        resp.exit_status = (uint32_t)a->exit_status;
        resp.exited_at = &ts;
        ttrpc_call_reply(ud, &resp.base);
}

static void answer_delete(void *ud, int code, const char *message, const struct container_answer *a) {
        if (answer_error(ud, code, message))
                return;
        Nanoshim__Task__DeleteResponse resp = NANOSHIM__TASK__DELETE_RESPONSE__INIT;
        Nanoshim__Types__Timestamp ts;
        timestamp_set(&ts, &a->exited_at);
        resp.pid = (uint32_t)a->pid;
        resp.exit_status = (uint32_t)a->exit_status;
        resp.exited_at = &ts;
        ttrpc_call_reply(ud, &resp.base);
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
        c->criu_path = TAKE_PTR(o.criu_path);
        c->criu_work_path = TAKE_PTR(o.criu_work_path);
        c->restore_from = TAKE_PTR(o.criu_image_path); /* a checkpoint in the request comes first */
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

static void create_succeeded(struct op *o);
static int restore_prepare(struct op *o, const char *checkpoint, char **ret_error);
static void restore_start(struct op *o);

static void on_create_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct container *c = o->c;
        struct process *p = c->init;
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
        r = process_watch(p, p->pid);
        if (r < 0) {
                create_fail(o, TTRPC_INTERNAL, "cannot watch pid %d: %s", (int)p->pid, strerror(-r));
                return;
        }
        if (p->io && (r = stdio_start(p->io)) < 0)
                log_warn_errno(r, "%s: stdio relay failed to start: %m", c->id);
        if (container_watch_oom(c) < 0)
                c->oom = NULL;
        create_succeeded(o);
}

/* The container exists (its init created, or its restore prepared): TaskCreate, and the
 * reply. */
static void create_succeeded(struct op *o) {
        struct container *c = o->c;
        struct process *p = c->init;
        Nanoshim__Task__CreateTaskRequest *req = o->req;
        c->created = true;
        log_info("%s: created, init pid %d%s", c->id, (int)p->pid, c->restore_from ? " (restore at start)" : "");

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
                .criu = c->criu_path,
        };
        return runtime_new(c->shim->loop, c->shim->reaper, &cfg, &c->rt);
}

static bool dup_or_null(char **dst, const char *src) {
        *dst = strdup(src ? src : "");
        return *dst != NULL;
}

/* Create, step 1: the init's stdio paths, the runtime options, what the bundle's
 * config.json implies for the exit. false: answered with the error. */
static bool create_configure(struct op *o) {
        struct container *c = o->c;
        Nanoshim__Task__CreateTaskRequest *req = o->req;
        struct process *p = c->init;
        p->terminal = req->terminal;
        if (!dup_or_null(&p->stdin_path, req->stdin) || !dup_or_null(&p->stdout_path, req->stdout) ||
            !dup_or_null(&p->stderr_path, req->stderr)) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return false;
        }

        _cleanup_free_ char *err = NULL;
        int r;
        if ((r = apply_options(c, req->options, &err)) < 0) {
                create_fail(o, r == -ENOMEM ? TTRPC_INTERNAL : TTRPC_INVALID_ARGUMENT, "%s",
                            err ? err : r == -ENOMEM ? "out of memory" : "bad options");
                return false;
        }
        free(err);
        err = NULL;
        if (restore_prepare(o, req->checkpoint, &err) < 0) {
                create_fail(o, TTRPC_INVALID_ARGUMENT, "%s", err ? err : "bad checkpoint");
                return false;
        }

        /* The `delete` action runs without us: leave it the runtime we used. */
        json_t *saved = json_pack("{s:s, s:s}", "binary_name", c->rt_binary, "root", c->rt_root);
        _cleanup_free_ char *saved_text = saved ? json_dumps(saved, JSON_COMPACT) : NULL;
        json_decref(saved);
        if (!saved_text || (r = container_write_bundle_file(c, "options.json", saved_text, false)) < 0)
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
        oci_config_done(&cfg);
        return true;
}

/* Create, step 2: the rootfs mounts of the request, on <bundle>/rootfs. */
static bool create_mount_rootfs(struct op *o) {
        struct container *c = o->c;
        Nanoshim__Task__CreateTaskRequest *req = o->req;
        if (req->n_rootfs == 0)
                return true;
        _cleanup_free_ char *err = NULL;
        int r;
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
                            req->bundle);
                return false;
        }
        struct mount_spec *ms = calloc(req->n_rootfs, sizeof *ms);
        if (!ms) {
                create_fail(o, TTRPC_INTERNAL, "out of memory");
                return false;
        }
        for (size_t i = 0; i < req->n_rootfs; i++)
                ms[i] = (struct mount_spec){req->rootfs[i]->type, req->rootfs[i]->source,
                                            req->rootfs[i]->options, req->rootfs[i]->n_options};
        r = mount_all(ms, req->n_rootfs, c->rootfs_target, &err);
        free(ms);
        if (r < 0) {
                free(c->rootfs_target);
                c->rootfs_target = NULL; /* nothing of ours is mounted */
                create_fail(o, TTRPC_UNKNOWN, "%s", err ? err : strerror(-r));
                return false;
        }
        return true;
}

/* Create, step 3: the init's stdio, then the runtime's create (or run). */
static void create_spawn(struct op *o) {
        struct container *c = o->c;
        struct process *p = c->init;
        _cleanup_free_ char *err = NULL;
        int r = setup_stdio(c, p, &err);
        if (r < 0) {
                create_fail(o, TTRPC_INVALID_ARGUMENT, "stdio: %s", err ? err : strerror(-r));
                return;
        }
        r = container_runtime_new(c);
        if (r < 0) {
                create_fail(o, TTRPC_INTERNAL, "cannot set up the runtime: %s", strerror(-r));
                return;
        }
        if (c->restore_from) {
                create_succeeded(o); /* the runtime restores at Start */
                return;
        }
        const char *console = NULL;
        if (p->terminal && (r = stdio_console_socket(p->io, &console)) < 0) {
                create_fail(o, TTRPC_INTERNAL, "cannot create the console socket: %s", strerror(-r));
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
        const char *run_now = ttrpc_call_metadata(o->call, STANDALONE_RUN_METADATA);
        o->run_now = run_now && strcmp(run_now, "true") == 0;
        r = !pidfile      ? -ENOMEM
            : o->run_now ? runtime_run(c->rt, &co, on_create_done, o)
                         : runtime_create(c->rt, &co, on_create_done, o);
        if (r < 0)
                create_fail(o, TTRPC_UNKNOWN, "OCI runtime create failed: %s", strerror(-r));
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

        struct container *c = container_new(s, req->id, req->bundle, &hooks);
        struct op *o = c ? op_new(c, c->init, call) : NULL;
        if (!o) {
                if (c)
                        container_remove(c);
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                return;
        }
        o->req = req; /* the request is the operation's now: the completion reads it */
        *msg = NULL;
        if (create_configure(o) && create_mount_rootfs(o))
                create_spawn(o);
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
        process_start_end(p, true);
}

static void on_start_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct process *p = o->p;
        if (res->exit_status != 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime start failed: %s", runtime_error_text(res));
                process_start_end(p, false);
                op_free(o);
                return;
        }
        start_succeeded(o);
        op_free(o);
}

static void on_exec_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct process *p = o->p;
        struct container *c = o->c;
        if (res->exit_status != 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", runtime_error_text(res));
                process_start_end(p, false);
                op_free(o);
                return;
        }
        int r;
        if (p->terminal && (r = stdio_console_receive(p->io)) < 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "failed to receive the exec console: %s", strerror(-r));
                process_start_end(p, false);
                op_free(o);
                return;
        }
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "%s/%s.pid", c->bundle, p->id) < 0 || (r = read_pid_file_at(AT_FDCWD, name, &p->pid)) < 0 ||
            (r = process_watch(p, p->pid)) < 0) {
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "cannot learn the exec's pid from %s", name ? name : "?");
                process_start_end(p, false);
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
        if (!o->tmp_path || !pidfile || (r = container_write_bundle_file(c, spec_name, p->spec_json, false)) < 0) {
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
        process_start_begin(p);
        r = runtime_exec(c->rt, &eo, on_exec_done, o);
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", strerror(-r));
                process_start_end(p, false);
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
                else if (p->state != PROCESS_CREATED || p->busy || process_exited(p))
                        ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot start a %s process",
                                               process_exited(p) ? "stopped" : process_state_to_string(p->state));
                else if (!p->is_init)
                        start_exec(s, call, c, p);
                else {
                        struct op *o = op_new(c, p, call);
                        process_start_begin(p);
                        int r = !o ? -ENOMEM : 0;
                        if (o && c->restore_from)
                                restore_start(o); /* answers itself */
                        else if (o)
                                r = runtime_start(c->rt, c->id, on_start_done, o);
                        if (r < 0) {
                                process_start_end(p, false);
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
        if (process_exited(p) || p->state == PROCESS_STOPPED || p->state == PROCESS_DELETED)
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
                timestamp_set(&ts, process_exited(p) ? &p->exited_at : &none);
                resp.id = p->id;
                resp.bundle = c->bundle;
                resp.pid = (uint32_t)p->pid;
                resp.status = process_status(p);
                resp.stdin = p->stdin_path;
                resp.stdout = p->stdout_path;
                resp.stderr = p->stderr_path;
                resp.terminal = p->terminal;
                resp.exit_status = process_exited(p) ? (uint32_t)p->exit_status : 0;
                resp.exited_at = &ts;
                ttrpc_call_reply(call, &resp.base);
        }
}

static void handle_wait(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__WaitRequest *req = (Nanoshim__Task__WaitRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                if (process_wait(p, answer_wait, call) < 0)
                        ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
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
        if (p->is_init && req->all && process_exited(p) && c->private_pidns) {
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

static void handle_delete(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__DeleteRequest *req = (Nanoshim__Task__DeleteRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0)
                container_delete(c, p, answer_delete, call);
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
        if (container_find_exec(c, req->exec_id) || strcmp(req->exec_id, c->id) == 0) {
                ttrpc_call_reply_error(call, TTRPC_ALREADY_EXISTS, "id %s: already exists", req->exec_id);
                goto out;
        }
        if (process_exited(c->init) || c->init->state == PROCESS_STOPPED || c->init->state == PROCESS_DELETED) {
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
        if (!process_exited(c->init))
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
        if (p->busy || process_exited(p) || p->state != want) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot %s a %s container", pause ? "pause" : "resume",
                                       process_exited(p) ? "stopped" : process_state_to_string(p->state));
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
        if (process_exited(c->init)) {
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
                int r = process_exited(p) ? -ESRCH : p->io ? stdio_resize(p->io, req->width, req->height) : 0;
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
                log_debug("shutdown requested, %zu container(s) still managed: staying", container_count(s));
}

/* ------------------------------------------------------------------------------------ */
/* Checkpoint and restore                                                               */
/*
 * Checkpoint: `runc checkpoint` (CRIU) of the running container into the request's path
 * (or the options' image path). Restore, as with runc-v2: a Create with a checkpoint (or
 * the runtime options' CriuImagePath) sets up the bundle, rootfs and stdio and answers
 * pid 0; the Start runs `runc restore --detach` with the stdio a create would get, then
 * the lifecycle is a normal one.
 *
 * The stdio the shim hands to a container's init directly (the client's FIFO or file,
 * stdio-relay.c's "direct" mode) lives outside the container's mount namespace, where
 * CRIU cannot dump it by itself: it is declared external for the dump (`external
 * file[mnt_id:inode]`, in a CRIU configuration file runc's criu reads through
 * CRIU_CONFIG_FILE), the keys are kept in the images (CHECKPOINT_STDIO_FILE), and the
 * restore hands the new stdio in their place (`inherit-fd fd[N]:file[...]`). Pipes
 * (relayed stdio) are runc's own business: it maps them to the restore's stdio. */

#define CHECKPOINT_OPTIONS_TYPE "containerd.runc.v1.CheckpointOptions"
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
        int id;
        char *line = NULL;
        size_t cap = 0;
        while (!found && getline(&line, &cap, f) > 0)
                found = sscanf(line, "%d ", &id) == 1 && id == mnt_id;
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
        int mnt_id;
        if (!m || sscanf(m + 8, "%d", &mnt_id) != 1)
                return -EINVAL;
        if (mount_in_ns(pid, mnt_id))
                return 0;
        snprintf(key, CRIU_KEY_MAX, "file[%x:%llx]", (unsigned)mnt_id, (unsigned long long)st.st_ino);
        return 0;
}

/* For a dump of init: the CRIU configuration declaring its outside stdio external (in
 * work), and the keys kept with the images. *ret_config: the file, or NULL if none. */
static int checkpoint_stdio(struct process *init, const char *image, const char *work, char **ret_config) {
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
        _cleanup_close_ int wdir = open(work, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (r < 0 || wdir < 0 || (r = write_file_replace_at(wdir, "nanoshim-dump.conf", conf, strlen(conf), 0600)) < 0)
                return r < 0 ? r : -errno;
        *ret_config = join_path(work, "nanoshim-dump.conf");
        return *ret_config ? 0 : -ENOMEM;
}

/* The CRIU configuration for a restore from image: each external stdio fd of the dump
 * inherited from the restore's own fd of that number. The images' file is data: only
 * "<0-2> file[<hex>:<hex>]" lines are accepted. *ret_config: NULL if none is needed. */
static int restore_stdio(const char *image, const char *work, char **ret_config, char **ret_error) {
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
                unsigned fd, mnt;
                unsigned long long ino;
                int end = -1;
                if (n >= 3 || strspn(line, "0123456789abcdef file[:]") != strlen(line) ||
                    sscanf(line, "%u file[%x:%llx]%n", &fd, &mnt, &ino, &end) != 3 || end != (int)strlen(line) ||
                    fd > 2)
                        return error_setf(ret_error, "%s: bad line \"%.80s\"", path, line);
                snprintf(conf + strlen(conf), sizeof conf - strlen(conf), "inherit-fd fd[%u]:file[%x:%llx]\n", fd,
                         mnt, ino);
                n++;
        }
        if (n == 0)
                return 0;
        _cleanup_close_ int wdir = open(work, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (wdir < 0 || (r = write_file_replace_at(wdir, "nanoshim-restore.conf", conf, strlen(conf), 0600)) < 0)
                return error_setf(ret_error, "cannot write the CRIU configuration in %s: %s", work,
                                  strerror(wdir < 0 ? errno : -r));
        *ret_config = join_path(work, "nanoshim-restore.conf");
        return *ret_config ? 0 : -ENOMEM;
}

struct checkpoint_op {
        struct op *op;
        char *image;
};

static void on_checkpoint_done(const struct runtime_result *res, void *userdata) {
        struct checkpoint_op *k = userdata;
        struct op *o = k->op;
        struct container *c = o->c;
        if (res->exit_status != 0)
                ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime checkpoint failed: %s",
                                       runtime_error_text(res));
        else {
                log_info("%s: checkpointed into %s", c->id, k->image);
                /* containerd 1.6 and 2.1 publish none for a task checkpoint (nor does
                 * runc-v2): this is the only one */
                Nanoshim__Events__TaskCheckpointed ev = NANOSHIM__EVENTS__TASK_CHECKPOINTED__INIT;
                ev.container_id = c->id;
                ev.checkpoint = k->image;
                publish(c->shim, "/tasks/checkpointed", "containerd.events.TaskCheckpointed", &ev.base);
                ttrpc_call_reply(o->call, NULL);
        }
        free(k->image);
        free(k);
        op_free(o);
}

static void handle_checkpoint(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__CheckpointTaskRequest *req = (Nanoshim__Task__CheckpointTaskRequest *)*msg;
        Nanoshim__Runcopts__CheckpointOptions *opts = NULL;
        struct checkpoint_op *k = NULL;
        _cleanup_free_ char *work = NULL, *criu_config = NULL;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, NULL, &c, &p) < 0)
                goto out;
        if (process_exited(p) || (p->state != PROCESS_RUNNING && p->state != PROCESS_PAUSED) || p->busy) {
                ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "cannot checkpoint a %s container",
                                       process_exited(p) ? "stopped" : p->busy ? "busy" : process_state_to_string(p->state));
                goto out;
        }
        if (req->options && req->options->type_url && *req->options->type_url) {
                if (strcmp(req->options->type_url, CHECKPOINT_OPTIONS_TYPE) != 0) {
                        ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT,
                                               "unsupported checkpoint options type \"%.200s\" (nanoshim understands %s)",
                                               req->options->type_url, CHECKPOINT_OPTIONS_TYPE);
                        goto out;
                }
                opts = nanoshim__runcopts__checkpoint_options__unpack(NULL, req->options->value.len,
                                                                      req->options->value.data);
                if (!opts) {
                        ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "cannot decode %s", CHECKPOINT_OPTIONS_TYPE);
                        goto out;
                }
        }
        const char *image = opts && opts->image_path && *opts->image_path ? opts->image_path : req->path;
        if (!path_is_normal_absolute(image, 4000)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT,
                                       "checkpoint path must be an absolute path, got \"%.200s\"", image ? image : "");
                goto out;
        }
        work = criu_work_dir(c, opts ? opts->work_path : NULL);
        if (work && !path_is_normal_absolute(work, 4000)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "criu work path must be absolute, got \"%.200s\"",
                                       work);
                goto out;
        }
        int r = !work ? -ENOMEM : mkdir_if_missing(image);
        if (r < 0 || (r = mkdir_if_missing(work)) < 0) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot create the checkpoint directories: %s", strerror(-r));
                goto out;
        }
        r = checkpoint_stdio(p, image, work, &criu_config);
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot describe the container's stdio to CRIU: %s",
                                       strerror(-r));
                goto out;
        }
        /* a NULL-terminated copy of the namespaces, as the adapter takes them */
        const char *empty_ns[17] = {NULL};
        if (opts && opts->n_empty_namespaces >= ELEMENTSOF(empty_ns)) {
                ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "too many empty namespaces (%zu)",
                                       opts->n_empty_namespaces);
                goto out;
        }
        for (size_t i = 0; opts && i < opts->n_empty_namespaces; i++)
                empty_ns[i] = opts->empty_namespaces[i];
        struct runtime_checkpoint_opts co = {
                .id = c->id,
                .image_path = image,
                .work_path = work,
                .leave_running = !(opts && opts->exit),
                .tcp_established = opts && opts->open_tcp,
                .ext_unix_sk = opts && opts->external_unix_sockets,
                .shell_job = opts && opts->terminal,
                .file_locks = opts && opts->file_locks,
                .empty_ns = empty_ns,
                .manage_cgroups_mode = opts ? opts->cgroups_mode : NULL,
                .criu_config = criu_config,
        };
        k = calloc(1, sizeof *k);
        if (!k || !(k->image = strdup(image)) || !(k->op = op_new(c, p, call))) {
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                goto out;
        }
        r = runtime_checkpoint(c->rt, &co, on_checkpoint_done, k);
        if (r < 0) {
                ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "OCI runtime checkpoint failed: %s", strerror(-r));
                goto out;
        }
        k = NULL; /* the completion's */
out:
        if (k) {
                op_free(k->op);
                free(k->image);
                free(k);
        }
        if (opts)
                nanoshim__runcopts__checkpoint_options__free_unpacked(opts, NULL);
}

/* Create: a checkpoint to restore from (the request's, else the runtime options'
 * CriuImagePath, already in c->restore_from). */
static int restore_prepare(struct op *o, const char *checkpoint, char **ret_error) {
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
        const char *run_now = ttrpc_call_metadata(o->call, STANDALONE_RUN_METADATA);
        if (run_now && strcmp(run_now, "true") == 0)
                return error_setf(ret_error, "a restore cannot be created and started in one step");
        return 0;
}

static void on_restore_done(const struct runtime_result *res, void *userdata) {
        struct op *o = userdata;
        struct container *c = o->c;
        struct process *p = c->init;
        int r = 0;
        _cleanup_free_ char *pidfile = join_path(c->bundle, "init.pid");
        const char *what = NULL;
        if (res->exit_status != 0)
                what = "restore";
        else if (p->terminal && (r = stdio_console_receive(p->io)) < 0)
                what = "console";
        else if (!pidfile || (r = read_pid_file_at(AT_FDCWD, pidfile, &p->pid)) < 0)
                what = "pid file";
        else if ((r = process_watch(p, p->pid)) < 0)
                what = "watch";
        if (what) {
                /* Nothing runs: the container stays created, for Delete to clean up (runc
                 * removed its own state of the failed restore). */
                p->pid = 0;
                if (res->exit_status != 0)
                        ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime restore failed: %s",
                                               runtime_error_text(res));
                else
                        ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "restore: %s: %s", what, strerror(-r));
                process_start_end(p, false);
                op_free(o);
                return;
        }
        if (p->io && (r = stdio_start(p->io)) < 0)
                log_warn_errno(r, "%s: stdio relay failed to start: %m", c->id);
        if (container_watch_oom(c) < 0)
                c->oom = NULL;
        log_info("%s: restored from %s, init pid %d", c->id, c->restore_from, (int)p->pid);
        free(c->restore_from);
        c->restore_from = NULL;
        start_succeeded(o);
        op_free(o);
}

/* Start of a container created with a checkpoint: `runc restore`. Answers the call
 * itself on every error. */
static void restore_start(struct op *o) {
        struct container *c = o->c;
        struct process *p = c->init;
        _cleanup_free_ char *work = criu_work_dir(c, NULL), *pidfile = join_path(c->bundle, "init.pid");
        _cleanup_free_ char *criu_config = NULL, *err = NULL;
        const char *console = NULL;
        int r = !work || !pidfile ? -ENOMEM : mkdir_if_missing(work);
        if (r < 0)
                err = strdup(strerror(-r));
        else if ((r = restore_stdio(c->restore_from, work, &criu_config, &err)) < 0)
                ;
        else if (p->terminal && (r = stdio_console_socket(p->io, &console)) < 0)
                err = strdup("cannot create the console socket");
        else {
                struct runtime_restore_opts ro = {
                        .id = c->id,
                        .bundle = c->bundle,
                        .pid_file = pidfile,
                        .console_socket = console,
                        .image_path = c->restore_from,
                        .work_path = work,
                        .no_pivot = c->no_pivot,
                        .criu_config = criu_config,
                        .stdio = {-1, -1, -1},
                };
                if (p->io && !p->terminal)
                        stdio_child_fds(p->io, ro.stdio);
                if (unlink(pidfile) < 0 && errno != ENOENT)
                        log_warn("%s: cannot remove an old %s: %s", c->id, pidfile, strerror(errno));
                r = runtime_restore(c->rt, &ro, on_restore_done, o);
                if (r == 0)
                        return;
                err = strdup(strerror(-r));
        }
        ttrpc_call_reply_error(o->call, TTRPC_UNKNOWN, "OCI runtime restore failed: %s", err ? err : strerror(-r));
        process_start_end(p, false);
        op_free(o);
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
        M("Checkpoint", handle_checkpoint, checkpoint_task_request),
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
        ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "method %s", call->method ? call->method : "");
}

