/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon: one event loop, one reaper, the task service on a ttrpc server, the
 * events outbox, and the containers it supervises. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>


struct reaper;
struct ttrpc_server;
struct events;
struct runtime;
struct cgroup_oom_watch;
struct shim;
struct ttrpc_call;
struct container;

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
        ev_timer teardown_quiet; /* container.c: early teardowns once exits stop coming... */
        ev_idle teardown_idle;   /* ...and the loop is idle */
        void (*forget_all)(struct shim *s);
        void (*dispatch)(struct ttrpc_call *call, void *shim);
        bool exiting;
        ev_signal sig_term, sig_int;
};

int shim_new(struct ev_loop *loop, const struct shim_config *cfg, struct shim **ret);
/* After ev_run returned: flush events (bounded), remove the socket, free. */
int shim_finish(struct shim *s);
/* Leave the loop once events are flushed. */
void shim_exit(struct shim *s);

