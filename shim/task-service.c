/* SPDX-License-Identifier: Apache-2.0 */
/* The task API, containerd.task.v2.Task and containerd.task.v3.Task (containerd 2.x's
 * name for the same methods and messages, used when `start` answered bootstrap version
 * 3, launch.c): one table of methods; each request is decoded once, a handler
 * translates it to the container API (container.c) and the answer back. Runtime calls
 * are asynchronous; a handler keeps its ttrpc call and answers from the completion, so
 * a slow call (or a Wait) never holds up others. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "events.h"
#include "events.pb-c.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "memtrim.h"
#include "mount.h"
#include "proto-check.h"
#include "runc-options.pb-c.h"
#include "shim.h"
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
        if (!c || !container_is_created(c)) {
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "container %s not created", id);
                return -1;
        }
        struct process *p = container_init(c);
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

/* (one container's events keep their order; see events.h) */
static void publish(struct shim *s, const char *container_id, const char *topic, const char *type_url,
                    const ProtobufCMessage *msg) {
        int r = events_publish(s->events, container_id, topic, type_url, msg);
        if (r < 0)
                log_error_errno(r, "cannot queue %s event: %m", topic);
}

/* TaskStart of the init (exec_id NULL), TaskExecStarted of an exec. */
static void publish_start(struct shim *s, const char *container_id, const char *exec_id, pid_t pid) {
        Nanoshim__Events__TaskStart ie = NANOSHIM__EVENTS__TASK_START__INIT;
        Nanoshim__Events__TaskExecStarted ee = NANOSHIM__EVENTS__TASK_EXEC_STARTED__INIT;
        ie.container_id = ee.container_id = (char *)container_id;
        ie.pid = ee.pid = (uint32_t)pid;
        ee.exec_id = (char *)exec_id;
        if (!exec_id)
                publish(s, container_id, "/tasks/start", "containerd.events.TaskStart", &ie.base);
        else
                publish(s, container_id, "/tasks/exec-started", "containerd.events.TaskExecStarted", &ee.base);
}

/* The container's own events (container.c): exit, OOM, delete. */
static void on_container_event(struct container *c, enum container_event ev, const struct process *p) {
        Nanoshim__Types__Timestamp ts;
        char *id = (char *)container_id(c); /* (protobuf-c's fields are not const) */
        struct shim *sh = container_shim(c);
        struct process_info pi = {0};
        if (p)
                process_get_info(p, &pi);
        switch (ev) {
        case CONTAINER_EVENT_EXIT: {
                Nanoshim__Events__TaskExit e = NANOSHIM__EVENTS__TASK_EXIT__INIT;
                timestamp_set(&ts, &pi.exited_at);
                e.container_id = id;
                e.id = (char *)pi.id;
                e.pid = (uint32_t)pi.pid;
                e.exit_status = (uint32_t)pi.exit_status;
                e.exited_at = &ts;
                publish(sh, id, "/tasks/exit", "containerd.events.TaskExit", &e.base);
                if (pi.is_init && container_early_teardown_ok(c))
                        events_send_now(sh->events); /* out before the early teardown */
                break;
        }
        case CONTAINER_EVENT_OOM: {
                Nanoshim__Events__TaskOOM e = NANOSHIM__EVENTS__TASK_OOM__INIT;
                e.container_id = id;
                publish(sh, id, "/tasks/oom", "containerd.events.TaskOOM", &e.base);
                break;
        }
        case CONTAINER_EVENT_DELETE: {
                Nanoshim__Events__TaskDelete e = NANOSHIM__EVENTS__TASK_DELETE__INIT;
                timestamp_set(&ts, &pi.exited_at);
                e.container_id = id;
                e.pid = (uint32_t)pi.pid;
                e.exit_status = (uint32_t)pi.exit_status;
                e.exited_at = &ts;
                publish(sh, id, "/tasks/delete", "containerd.events.TaskDelete", &e.base);
                break;
        }
        case CONTAINER_EVENT_EXEC_ADDED: {
                Nanoshim__Events__TaskExecAdded e = NANOSHIM__EVENTS__TASK_EXEC_ADDED__INIT;
                e.container_id = id;
                e.exec_id = (char *)pi.id;
                publish(sh, id, "/tasks/exec-added", "containerd.events.TaskExecAdded", &e.base);
                break;
        }
        case CONTAINER_EVENT_START:
                publish_start(sh, id, pi.is_init ? NULL : pi.id, pi.pid);
                break;
        case CONTAINER_EVENT_PAUSED:
        case CONTAINER_EVENT_RESUMED: {
                Nanoshim__Events__TaskPaused pe = NANOSHIM__EVENTS__TASK_PAUSED__INIT;
                Nanoshim__Events__TaskResumed re = NANOSHIM__EVENTS__TASK_RESUMED__INIT;
                pe.container_id = re.container_id = id;
                if (ev == CONTAINER_EVENT_PAUSED)
                        publish(sh, id, "/tasks/paused", "containerd.events.TaskPaused", &pe.base);
                else
                        publish(sh, id, "/tasks/resumed", "containerd.events.TaskResumed", &re.base);
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

static void answer_empty(void *ud, int code, const char *message, const struct container_answer *a) {
        if (!answer_error(ud, code, message))
                ttrpc_call_reply(ud, NULL);
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
/* Create                                                                               */

/* A Create in flight: the request is kept (the dispatcher gave it up) for the
 * TaskCreate event of the answer. */
struct create_call {
        struct shim *shim;
        struct ttrpc_call *call;
        Nanoshim__Task__CreateTaskRequest *req;
        bool run_now;
};

static void answer_create(void *ud, int code, const char *message, const struct container_answer *a) {
        struct create_call *cc = ud;
        Nanoshim__Task__CreateTaskRequest *req = cc->req;
        if (!answer_error(cc->call, code, message)) {
                struct shim *s = cc->shim;
                Nanoshim__Events__TaskIO tio = NANOSHIM__EVENTS__TASK_IO__INIT;
                tio.stdin = req->stdin;
                tio.stdout = req->stdout;
                tio.stderr = req->stderr;
                tio.terminal = req->terminal;
                Nanoshim__Events__TaskCreate ev = NANOSHIM__EVENTS__TASK_CREATE__INIT;
                ev.container_id = req->id;
                ev.bundle = req->bundle;
                ev.n_rootfs = req->n_rootfs;
                ev.rootfs = req->rootfs;
                ev.io = &tio;
                ev.checkpoint = req->checkpoint;
                ev.pid = (uint32_t)a->pid;
                publish(s, req->id, "/tasks/create", "containerd.events.TaskCreate", &ev.base);
                if (cc->run_now)
                        publish_start(s, req->id, NULL, a->pid);
                Nanoshim__Task__CreateTaskResponse resp = NANOSHIM__TASK__CREATE_TASK_RESPONSE__INIT;
                resp.pid = (uint32_t)a->pid;
                ttrpc_call_reply(cc->call, &resp.base);
        }
        nanoshim__task__create_task_request__free_unpacked(req, NULL);
        free(cc);
}

static void handle_create(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__CreateTaskRequest *req = (Nanoshim__Task__CreateTaskRequest *)*msg;
        struct create_call *cc = calloc(1, sizeof *cc);
        _cleanup_free_ struct mount_spec *ms = calloc(req->n_rootfs ? req->n_rootfs : 1, sizeof *ms);
        if (!cc || !ms) {
                free(cc);
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
                return;
        }
        for (size_t i = 0; i < req->n_rootfs; i++)
                ms[i] = (struct mount_spec){req->rootfs[i]->type, req->rootfs[i]->source, req->rootfs[i]->options,
                                            req->rootfs[i]->n_options};
        /* A standalone launch asks for create and start at once: `run --detach`, one
         * runtime execution instead of two. */
        const char *run_now = ttrpc_call_metadata(call, STANDALONE_RUN_METADATA);
        struct container_create_params params = {
                .id = req->id,
                .bundle = req->bundle,
                .io = {req->stdin, req->stdout, req->stderr, req->terminal},
                .options_type_url = req->options ? req->options->type_url : NULL,
                .options = req->options ? req->options->value.data : NULL,
                .options_len = req->options ? req->options->value.len : 0,
                .rootfs = ms,
                .n_rootfs = req->n_rootfs,
                .mode = run_now && strcmp(run_now, "true") == 0 ? CONTAINER_CREATE_AND_START : CONTAINER_CREATE,
                .checkpoint = req->checkpoint, /* a restore at Start (container.c decides) */
        };
        *cc = (struct create_call){s, call, req, params.mode == CONTAINER_CREATE_AND_START};
        *msg = NULL; /* the request is the answer's now */
        container_create(s, &params, &hooks, answer_create, cc);
}

/* ------------------------------------------------------------------------------------ */
/* Start                                                                                */

static void answer_start(void *ud, int code, const char *message, const struct container_answer *a) {
        if (answer_error(ud, code, message))
                return;
        Nanoshim__Task__StartResponse resp = NANOSHIM__TASK__START_RESPONSE__INIT;
        resp.pid = (uint32_t)a->pid;
        ttrpc_call_reply(ud, &resp.base);
}

static void handle_start(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__StartRequest *req = (Nanoshim__Task__StartRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0)
                container_start(c, p, answer_start, call);
}

/* ------------------------------------------------------------------------------------ */
/* State, Wait, Connect, Pids                                                           */

static const Nanoshim__Types__Status status_of[] = {
        [PROCESS_STATUS_CREATED] = NANOSHIM__TYPES__STATUS__CREATED,
        [PROCESS_STATUS_RUNNING] = NANOSHIM__TYPES__STATUS__RUNNING,
        [PROCESS_STATUS_PAUSING] = NANOSHIM__TYPES__STATUS__PAUSING,
        [PROCESS_STATUS_PAUSED] = NANOSHIM__TYPES__STATUS__PAUSED,
        [PROCESS_STATUS_STOPPED] = NANOSHIM__TYPES__STATUS__STOPPED,
};

static void handle_state(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__StateRequest *req = (Nanoshim__Task__StateRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                Nanoshim__Task__StateResponse resp = NANOSHIM__TASK__STATE_RESPONSE__INIT;
                Nanoshim__Types__Timestamp ts;
                struct process_info pi;
                process_get_info(p, &pi);
                struct timespec none = {0};
                timestamp_set(&ts, pi.exited ? &pi.exited_at : &none);
                resp.id = (char *)pi.id;
                resp.bundle = (char *)container_bundle(c);
                resp.pid = (uint32_t)pi.pid;
                resp.status = status_of[pi.status];
                resp.stdin = (char *)pi.stdin_path;
                resp.stdout = (char *)pi.stdout_path;
                resp.stderr = (char *)pi.stderr_path;
                resp.terminal = pi.terminal;
                resp.exit_status = pi.exited ? (uint32_t)pi.exit_status : 0;
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
        if (c && container_is_created(c))
                resp.task_pid = (uint32_t)process_pid(container_init(c));
        ttrpc_call_reply(call, &resp.base);
}

/* One ProcessInfo of Pids: the pid, and for an exec its id as a runc ProcessDetails. */
struct pid_info {
        Nanoshim__Types__ProcessInfo info;
        Nanoshim__Types__Any any;
        uint8_t *buf;
};

static void answer_pids(void *ud, int code, const char *message, const struct container_pid *pids, size_t n) {
        if (answer_error(ud, code, message))
                return;
        struct pid_info *infos = calloc(n ? n : 1, sizeof *infos);
        Nanoshim__Types__ProcessInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
        bool ok = infos && ptrs;
        for (size_t i = 0; ok && i < n; i++) {
                nanoshim__types__process_info__init(&infos[i].info);
                infos[i].info.pid = (uint32_t)pids[i].pid;
                ptrs[i] = &infos[i].info;
                if (!pids[i].exec_id)
                        continue;
                Nanoshim__Runcopts__ProcessDetails details = NANOSHIM__RUNCOPTS__PROCESS_DETAILS__INIT;
                details.exec_id = (char *)pids[i].exec_id;
                size_t len = nanoshim__runcopts__process_details__get_packed_size(&details);
                ok = (infos[i].buf = malloc(len ? len : 1)) != NULL;
                if (!ok)
                        break;
                nanoshim__runcopts__process_details__pack(&details, infos[i].buf);
                nanoshim__types__any__init(&infos[i].any);
                infos[i].any.type_url = (char *)"containerd.runc.v1.ProcessDetails";
                infos[i].any.value.data = infos[i].buf;
                infos[i].any.value.len = len;
                infos[i].info.info = &infos[i].any;
        }
        if (ok) {
                Nanoshim__Task__PidsResponse resp = NANOSHIM__TASK__PIDS_RESPONSE__INIT;
                resp.n_processes = n;
                resp.processes = ptrs;
                ttrpc_call_reply(ud, &resp.base);
        } else
                ttrpc_call_reply_error(ud, TTRPC_INTERNAL, "out of memory");
        for (size_t i = 0; infos && i < n; i++)
                free(infos[i].buf);
        free(infos);
        free(ptrs);
}

static void handle_pids(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__PidsRequest *req = (Nanoshim__Task__PidsRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0)
                container_pids(c, answer_pids, call);
}

/* ------------------------------------------------------------------------------------ */
/* Kill                                                                                 */

static void handle_kill(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__KillRequest *req = (Nanoshim__Task__KillRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0)
                container_kill(c, p, req->signal, req->all, answer_empty, call);
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
        if (resolve(s, call, req->id, NULL, &c, NULL) < 0)
                return;
        struct container_stdio io = {req->stdin, req->stdout, req->stderr, req->terminal};
        const Nanoshim__Types__Any *spec = req->spec;
        container_exec(c, req->exec_id, spec && spec->value.data ? (const char *)spec->value.data : NULL,
                       spec ? spec->value.len : 0, &io, answer_empty, call);
}

/* ------------------------------------------------------------------------------------ */
/* Pause, Resume, Update, Stats                                                         */

static void handle_pause(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__PauseRequest *req = (Nanoshim__Task__PauseRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0)
                container_pause(c, true, answer_empty, call);
}

static void handle_resume(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__ResumeRequest *req = (Nanoshim__Task__ResumeRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0)
                container_pause(c, false, answer_empty, call);
}

static void handle_update(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__UpdateTaskRequest *req = (Nanoshim__Task__UpdateTaskRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0) {
                const Nanoshim__Types__Any *res = req->resources;
                container_update(c, res && res->value.data ? (const char *)res->value.data : NULL,
                                 res ? res->value.len : 0, answer_empty, call);
        }
}

static void handle_stats(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__StatsRequest *req = (Nanoshim__Task__StatsRequest *)*msg;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) == 0) {
                uint8_t *buf = NULL;
                size_t len = 0;
                const char *type_url = NULL;
                struct process *init = container_init(c);
                int r = process_reaped(init) ? -ESRCH
                                              : cgroup_stats_collect(NULL, NULL, process_pid(init), &buf, &len, &type_url);
                if (r < 0)
                        ttrpc_call_reply_error(call, r == -ESRCH ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN,
                                               "cannot collect metrics of %s: %s", container_id(c),
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
                if (req->stdin)
                        process_close_stdin(p);
                ttrpc_call_reply(call, NULL);
        }
}

static void handle_resize_pty(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__ResizePtyRequest *req = (Nanoshim__Task__ResizePtyRequest *)*msg;
        struct container *c;
        struct process *p;
        if (resolve(s, call, req->id, req->exec_id, &c, &p) == 0) {
                int r = process_resize(p, req->width, req->height);
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
/* Checkpoint                                                                           */

#define CHECKPOINT_OPTIONS_TYPE "containerd.runc.v1.CheckpointOptions"

/* A Checkpoint in flight: what its event names. */
struct checkpoint_call {
        struct shim *shim;
        struct ttrpc_call *call;
        char *id, *image;
};

static void answer_checkpoint(void *ud, int code, const char *message, const struct container_answer *a) {
        struct checkpoint_call *k = ud;
        if (!answer_error(k->call, code, message)) {
                /* containerd 1.6 and 2.1 publish none for a task checkpoint (nor does
                 * runc-v2): this is the only one */
                Nanoshim__Events__TaskCheckpointed ev = NANOSHIM__EVENTS__TASK_CHECKPOINTED__INIT;
                ev.container_id = k->id;
                ev.checkpoint = k->image;
                publish(k->shim, k->id, "/tasks/checkpointed", "containerd.events.TaskCheckpointed", &ev.base);
                ttrpc_call_reply(k->call, NULL);
        }
        free(k->id);
        free(k->image);
        free(k);
}

static void handle_checkpoint(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg) {
        Nanoshim__Task__CheckpointTaskRequest *req = (Nanoshim__Task__CheckpointTaskRequest *)*msg;
        Nanoshim__Runcopts__CheckpointOptions *opts = NULL;
        struct container *c;
        if (resolve(s, call, req->id, NULL, &c, NULL) < 0)
                return;
        if (req->options && req->options->type_url && *req->options->type_url) {
                if (strcmp(req->options->type_url, CHECKPOINT_OPTIONS_TYPE) != 0) {
                        ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT,
                                               "unsupported checkpoint options type \"%.200s\" (nanoshim understands %s)",
                                               req->options->type_url, CHECKPOINT_OPTIONS_TYPE);
                        return;
                }
                opts = nanoshim__runcopts__checkpoint_options__unpack(NULL, req->options->value.len,
                                                                      req->options->value.data);
                if (!opts) {
                        ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "cannot decode %s", CHECKPOINT_OPTIONS_TYPE);
                        return;
                }
        }
        struct container_checkpoint_opts co = {
                .image_path = opts && opts->image_path && *opts->image_path ? opts->image_path : req->path,
        };
        if (opts) {
                co.work_path = opts->work_path;
                co.exit = opts->exit;
                co.open_tcp = opts->open_tcp;
                co.external_unix_sockets = opts->external_unix_sockets;
                co.terminal = opts->terminal;
                co.file_locks = opts->file_locks;
                co.empty_namespaces = (const char *const *)opts->empty_namespaces;
                co.n_empty_namespaces = opts->n_empty_namespaces;
                co.cgroups_mode = opts->cgroups_mode;
        }
        struct checkpoint_call *k = calloc(1, sizeof *k);
        if (!k || !(k->id = strdup(req->id)) || !(k->image = strdup(co.image_path ? co.image_path : ""))) {
                if (k)
                        free(k->id);
                free(k);
                ttrpc_call_reply_error(call, TTRPC_INTERNAL, "out of memory");
        } else {
                k->shim = s;
                k->call = call;
                container_checkpoint(c, &co, answer_checkpoint, k);
        }
        if (opts)
                nanoshim__runcopts__checkpoint_options__free_unpacked(opts, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* dispatch                                                                             */

/* A handler gets its request decoded; the dispatcher frees it after the handler
 * returns, unless the handler took it (set *msg to NULL: Create keeps it for its
 * completion).
 * trim: the call changes what the shim holds (a container, a process, its stdio), so
 * the heap is trimmed once the shim is quiet again (memtrim). A query (State, Pids,
 * Stats, Wait, Connect) frees what it allocated into the same few heap pages each time;
 * a trim after it would only have them faulted back at the next poll, and would wake
 * an idle shim 0.5 s after every `ctr task ls` or kubelet stats poll. */
struct method {
        const char *name;
        void (*fn)(struct shim *s, struct ttrpc_call *call, ProtobufCMessage **msg);
        const ProtobufCMessageDescriptor *request;
        bool trim;
};

#define M(name, fn, req, trim) {name, fn, &nanoshim__task__##req##__descriptor, trim}
static const struct method methods[] = {
        M("State", handle_state, state_request, false),
        M("Create", handle_create, create_task_request, true),
        M("Start", handle_start, start_request, true),
        M("Delete", handle_delete, delete_request, true),
        M("Pids", handle_pids, pids_request, false),
        M("Pause", handle_pause, pause_request, true),
        M("Resume", handle_resume, resume_request, true),
        M("Kill", handle_kill, kill_request, true),
        M("Exec", handle_exec, exec_process_request, true),
        M("ResizePty", handle_resize_pty, resize_pty_request, false),
        M("CloseIO", handle_close_io, close_iorequest, true),
        M("Update", handle_update, update_task_request, true),
        M("Wait", handle_wait, wait_request, false),
        M("Stats", handle_stats, stats_request, false),
        M("Connect", handle_connect, connect_request, false),
        M("Shutdown", handle_shutdown, shutdown_request, true),
        M("Checkpoint", handle_checkpoint, checkpoint_task_request, true),
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
                        if (methods[i].trim)
                                memtrim_soon();
                        methods[i].fn(s, call, &msg);
                        if (msg)
                                protobuf_c_message_free_unpacked(msg, NULL);
                        return;
                }
        ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "method %s", call->method ? call->method : "");
}

