/* SPDX-License-Identifier: Apache-2.0 */
/* The fields of a container and its processes: for container.c, process.c (the state
 * machine) and their unit tests (tests/unit/test-container.c, test-shim.c) only; every
 * other module goes through container.h. */
#pragma once

#include "container.h"
#include "process.h"

struct start_op;

struct waiter {
        struct waiter *next;
        struct answer answer;
};

struct process {
        struct process *next;  /* in the container's exec list */
        struct container *container;
        char *id;              /* container id for the init, exec id for an exec */
        bool is_init;
        enum process_state state;
        pid_t pid;
        char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        struct stdio *io;
        char *spec_json;       /* exec: the OCI process JSON to hand to the runtime */

        /* The exit pipeline (docs/design.md, "Exits"): exit_step() in container.c is the
         * only writer of `exit`. */
        enum exit_stage exit;
        int exit_status;
        struct timespec exited_at;
        bool starting;         /* a start is in flight: its event must precede the exit's */
        bool busy;             /* a runtime call for this process is in flight */
        struct waiter *waiters;
        struct answer delete_answer; /* init: a Delete waiting for the exit to be reported */
};

struct container {
        struct container *next;
        struct shim *shim;
        const struct container_hooks *hooks;
        unsigned refs;
        char *id;
        char *bundle;
        bool created;         /* false while Create runs */
        bool removed;         /* out of the table; freed at the last unref */
        struct runtime *rt;
        char *rt_binary, *rt_root, *rt_log;
        bool no_pivot, no_new_keyring, systemd_cgroup;
        uid_t io_uid;
        gid_t io_gid;
        char *rootfs_target;  /* set when we mounted the rootfs */
        bool private_pidns;
        bool killing_all;     /* `runtime kill --all` after the init's exit is running */
        bool killed_all;      /* ... and it succeeded: nothing of the container is left */
        /* The runtime's state is removed, and the rootfs unmounted, as soon as the init
         * has exited, not at Delete: see early_teardown() in container.c. */
        bool early_delete_ok;
        bool start_in_place_ok; /* no poststart hooks: see start_in_place() */
        enum {
                EARLY_DELETE_NONE,
                EARLY_DELETE_IN_CHILD, /* in place, by the teardown child */
                EARLY_DELETE_RUNNING,  /* the runtime's delete */
                EARLY_DELETE_DONE,
                EARLY_DELETE_FAILED
        } early_delete;
        bool teardown_queued; /* it waits for the loop to go idle (or for Delete) */
        pid_t unmount_pid;    /* the teardown child (rootfs unmount, runc's state), while it runs */
        struct answer early_delete_waiter; /* a Delete that came while they ran */
        struct process *init;
        struct process *execs;
        struct cgroup_oom_watch *oom;
        bool oom_killed;      /* an OOM kill was seen (the exit record's flag) */
        bool pausing;
        struct ev_timer exec_grace; /* init exit waits this long for exec exits to go first */
        bool exec_grace_expired;
        /* Checkpoint/restore: the runtime options' criu binary, work path and images to
         * restore from; restore_from is set by a Create with a checkpoint and used by
         * the Start that restores (container.c, "checkpoint and restore"). */
        char *criu_path, *criu_work_path;
        char *restore_from;
        /* The init's start done in place (runc's exec fifo read here, no `runc start`):
         * the start waiting for the fifo, which the init's exit also completes. */
        struct start_op *fifo_start;
};
