/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon: one event loop, one reaper, the task service on a ttrpc server, the
 * events outbox, and the containers it supervises. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

#include "process.h"

struct reaper;
struct ttrpc_server;
struct events;
struct runtime;
struct cgroup_oom_watch;
struct shim;
struct ttrpc_call;

struct shim_config {
        const char *namespace;        /* containerd namespace ("default") */
        const char *events_address;   /* TTRPC_ADDRESS; NULL = no events receiver */
        const char *socket_path;      /* our socket (removed at exit); may be NULL */
        int listen_fd;                /* listening socket to serve (ownership moves) */
        const char *runtime_binary;   /* default "runc" */
        const char *runtime_root;     /* default "/run/containerd/runc/<ns>" */
        const char *state_dir;        /* where exit records are kept (0700); may be NULL */
        bool debug;
        /* The service on the socket: its dispatch function (called with the shim as
         * userdata) and what forgets its containers at the end (shim_finish()). */
        void (*dispatch)(struct ttrpc_call *call, void *shim);
        void (*forget_all)(struct shim *s);
};

struct container {
        struct container *next;
        struct shim *shim;
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
        /* The runtime's state is removed, and the rootfs unmounted, as soon as the init
         * has exited, not at Delete: see early_runtime_delete() in service.c. */
        bool early_delete_ok;
        enum { EARLY_DELETE_NONE, EARLY_DELETE_RUNNING, EARLY_DELETE_DONE, EARLY_DELETE_FAILED } early_delete;
        pid_t unmount_pid;    /* the child unmounting the rootfs, while it runs */
        struct ttrpc_call *early_delete_waiter; /* a Delete that came while they ran */
        struct process *init;
        struct process *execs;
        struct cgroup_oom_watch *oom;
        bool oom_killed;      /* an OOM kill was seen (the exit record's flag) */
        bool pausing;
        struct ev_timer exec_grace; /* init exit waits this long for exec exits to go first */
        bool exec_grace_expired;
};

struct shim {
        struct ev_loop *loop;
        struct reaper *reaper;
        struct ttrpc_server *server;
        struct events *events;
        char *namespace;
        char *socket_path;
        char *runtime_binary;
        char *runtime_root;
        char *state_dir;
        struct container *containers;
        void (*forget_all)(struct shim *s);
        bool exiting;
        ev_signal sig_term, sig_int;
};

int shim_new(struct ev_loop *loop, const struct shim_config *cfg, struct shim **ret);
/* After ev_run returned: flush events (bounded), remove the socket, free. */
int shim_finish(struct shim *s);
/* Leave the loop once events are flushed. */
void shim_exit(struct shim *s);

