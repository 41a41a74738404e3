/* SPDX-License-Identifier: Apache-2.0 */
/* Command line of containerd-shim-nanoshim-v2: Go flag syntax as containerd uses it
 * (-flag value, --flag value, -flag=value, --flag=value; flags stop at the action). */
#pragma once

#include <stdbool.h>

enum shim_action { ACTION_DAEMON, ACTION_START, ACTION_DELETE, ACTION_VERSION, ACTION_HELP };

struct shim_args {
        enum shim_action action;
        const char *namespace;
        const char *address;        /* containerd's gRPC socket (hash input) */
        const char *publish_binary;
        const char *id;
        const char *bundle;
        const char *socket;         /* daemon: serve here (bind it unless listen_fd is given) */
        int listen_fd;              /* daemon: inherited listening socket, -1 if none */
        const char *runtime;        /* default runtime binary (runc) */
        const char *runtime_root;
        const char *events_address; /* default: $TTRPC_ADDRESS */
        bool debug;
        bool launch;                /* daemon: create (and start) the bundle's container from its process.json */
};

/* 0 on success; -EINVAL with a message on stderr for bad usage. */
int cli_parse(int argc, char **argv, struct shim_args *ret);
void cli_usage(const char *prog, bool to_stderr);
