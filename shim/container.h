/* SPDX-License-Identifier: Apache-2.0 */
/* A container and its processes: the registry, the exit pipeline (docs/design.md,
 * "Exits") and the teardown. No protobuf and no ttrpc here: answers go through a
 * callback with a status code (0, or a gRPC code of ttrpc.h) and a message; events go
 * through the hooks the task service sets. Unit-tested without a socket or root
 * (tests/unit/test-container.c). */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "process.h"

struct shim;
struct runtime;
struct cgroup_oom_watch;

enum container_event {
        CONTAINER_EVENT_EXIT,
        CONTAINER_EVENT_OOM,
        CONTAINER_EVENT_DELETE,
        CONTAINER_EVENT_PAUSED,
        CONTAINER_EVENT_RESUMED,
        CONTAINER_EVENT_EXEC_ADDED,
        CONTAINER_EVENT_START, /* the init's or an exec's: p says which */
};
struct container_hooks {
        /* p: the process that exited (EXIT), was added (EXEC_ADDED) or started
         * (START), the init (DELETE), NULL (OOM, PAUSED, RESUMED). After the
         * init's EXIT hook returns, the early teardown may start (long work). */
        void (*event)(struct container *c, enum container_event ev, const struct process *p);
};

/* A container: its registry entry, runtime, mounts, init and execs. Opaque: the
 * fields are container.c's (container-internal.h, for it and its unit test). */
struct container;

/* What other modules read of a container. */
const char *container_id(const struct container *c);
const char *container_bundle(const struct container *c);
struct shim *container_shim(const struct container *c);
struct process *container_init(const struct container *c);
/* Create has answered (until then the id is only reserved). */
bool container_is_created(const struct container *c);
/* The teardown starts at the init's exit (docs/design.md, "Exits"): its exit event
 * must go out before. */
bool container_early_teardown_ok(const struct container *c);

/* ---- the registry ---- */

/* A new container (and its init process), registered under id at once so that a second
 * Create of the id is refused; NULL when out of memory. Its runtime binary and root are
 * the shim's defaults until changed. */
struct container *container_new(struct shim *s, const char *id, const char *bundle,
                                 const struct container_hooks *hooks);
struct container *container_ref(struct container *c);
void container_unref(struct container *c);
/* Out of the registry (the registry's reference is dropped). */
void container_remove(struct container *c);
struct container *container_find(struct shim *s, const char *id);
struct process *container_find_exec(struct container *c, const char *exec_id);
size_t container_count(const struct shim *s);
/* At the shim's exit: every container forgotten. */
void container_forget_all(struct shim *s);

/* ---- processes and their exits ---- */

/* The OOM watch of the container's cgroup (the init's pid known). */
int container_watch_oom(struct container *c);

/* pid is the process's: its exit goes through the exit pipeline. */
int process_watch(struct process *p, pid_t pid);
/* A Start of p goes to the runtime / came back. A failed exec start ends p for good
 * (exit stage NEVER: no exit event; Wait answers 0). */
void process_start_begin(struct process *p);
void process_start_end(struct process *p, bool started);
/* Whether p's wait status is known / its exit reported. */
bool process_reaped(const struct process *p);
bool process_exited(const struct process *p);
/* Answer when p's exit is reported (at once if it is, or if p never started). */
int process_wait(struct process *p, container_answer_fn fn, void *ud);

/* ---- delete ---- */

/* Delete p (the init: the container, once its exit is reported and its runtime state
 * gone; an exec: at once). The answer carries pid, status and exit time. */
void container_delete(struct container *c, struct process *p, container_answer_fn fn, void *ud);

/* ---- create ---- */

/* A process's stdio as containerd names it (paths or URIs; NULL or "": none). */
struct container_stdio {
        const char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
};

/* How the init comes to be. The caller asks for one of the first two; a checkpoint (the
 * request's, or the runtime options' CriuImagePath) makes a CONTAINER_CREATE a
 * CONTAINER_RESTORE. */
enum container_create_mode {
        CONTAINER_CREATE,           /* the runtime's create; Start runs it */
        CONTAINER_CREATE_AND_START, /* the runtime's run: create and start at once */
        CONTAINER_RESTORE,          /* bundle, rootfs and stdio now (pid 0); Start runs the runtime's restore */
};
struct mount_spec;
struct container_create_params {
        const char *id, *bundle;
        struct container_stdio io;
        /* the runtime options as sent (runtime-options.h); type NULL: none */
        const char *options_type_url;
        const uint8_t *options;
        size_t options_len;
        const struct mount_spec *rootfs; /* mounted on <bundle>/rootfs */
        size_t n_rootfs;
        enum container_create_mode mode;
        const char *checkpoint; /* images to restore from; NULL or "": none (see the mode) */
};
/* Create the container: registered at once (a second Create of the id is refused),
 * configured from the bundle and params, its rootfs mounted, the runtime's create (or
 * run). The answer carries the init's pid; on failure nothing of it is left. params is
 * read only during the call. */
void container_create(struct shim *s, const struct container_create_params *params,
                      const struct container_hooks *hooks, container_answer_fn fn, void *ud);

/* ---- exec and start ---- */

/* Add exec exec_id (not started) with the OCI process JSON spec of spec_len bytes;
 * EXEC_ADDED event. */
void container_exec(struct container *c, const char *exec_id, const char *spec, size_t spec_len,
                    const struct container_stdio *io, container_answer_fn fn, void *ud);
/* Start p (the init, or an exec: its stdio, then the runtime's exec). On success the
 * START event, then the answer with the pid; an exec whose start failed never exits
 * (process_start_end()). */
void container_start(struct container *c, struct process *p, container_answer_fn fn, void *ud);

/* ---- kill, pause and resume, update, pids ---- */

/* Signal p directly; with all (p the init), every process of the container through the
 * runtime. "process already finished" (NOT_FOUND) when there is nothing to signal. */
void container_kill(struct container *c, struct process *p, unsigned signal, bool all, container_answer_fn fn,
                    void *ud);
/* Pause (pause true) or resume the container; PAUSED / RESUMED event on success. */
void container_pause(struct container *c, bool pause, container_answer_fn fn, void *ud);
/* Hand the runtime new resources: a JSON LinuxResources object of len bytes. */
void container_update(struct container *c, const char *resources, size_t len, container_answer_fn fn, void *ud);
/* The container's processes, as the runtime lists them; exec_id set for our execs. */
struct container_pid {
        pid_t pid;
        const char *exec_id; /* NULL: not one of the execs (the init, or its children) */
};
typedef void (*container_pids_fn)(void *ud, int code, const char *message, const struct container_pid *pids, size_t n);
void container_pids(struct container *c, container_pids_fn fn, void *ud);

/* ---- checkpoint ---- */

/* A checkpoint of the container (containerd.runc.v1.CheckpointOptions, translated). */
struct container_checkpoint_opts {
        const char *image_path; /* where the images go: an absolute path */
        const char *work_path;  /* NULL or "": the runtime options' CriuWorkPath, else <bundle>/criu-work */
        bool exit;              /* the container stops after the dump (else it runs on) */
        bool open_tcp, external_unix_sockets, terminal, file_locks;
        const char *const *empty_namespaces;
        size_t n_empty_namespaces;
        const char *cgroups_mode; /* NULL: the runtime's default */
};
/* Checkpoint the running (or paused) container through the runtime (CRIU). The init's
 * stdio from outside the container is declared external and kept with the images, for
 * a restore to hand its own in its place. opts is read only during the call. */
void container_checkpoint(struct container *c, const struct container_checkpoint_opts *opts, container_answer_fn fn,
                          void *ud);

/* ---- stdio ---- */

void process_close_stdin(struct process *p);
/* The terminal's size; -ESRCH once p's exit is reported. */
int process_resize(struct process *p, unsigned width, unsigned height);

/* ---- helpers ---- */

/* Write a file of the bundle atomically; name is a single path component. */
int container_write_bundle_file(struct container *c, const char *name, const char *data);
char *join_path(const char *dir, const char *name);
