/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "cli.h"

/* Drop the entries of LD_LIBRARY_PATH that are not absolute paths (an empty one is the
 * current directory), before anything is started. */
void launch_clean_library_path(void);
/* containerd's `start`: bind (or find) the socket, write ./address, spawn the daemon,
 * print the address (bare, or as bootstrap JSON: see launch_bootstrap_version). */
int launch_start(const struct shim_args *a);
/* The bootstrap version `start` answers the containerd whose binary is PUBLISH_BINARY:
 * 0 (a bare address: 1.6, no $MAX_SHIM_VERSION), 3 (containerd 2.x: task API v3) or 2. */
int launch_bootstrap_version(const char *publish_binary);
/* containerd's `delete`: clean up after a daemon that is gone, print a DeleteResponse. */
int launch_delete(const struct shim_args *a);
/* The daemon itself; returns when it has shut down. */
int launch_daemon(const struct shim_args *a);

/* /run/containerd/s/<sha256(address/ns/group)>, as containerd-shim-runc-v2 names it. */
int launch_socket_path(const char *address, const char *ns, const char *group, char **ret);
/* Bind+listen a unix socket at path (parent dir 0700, socket 0600). If a live shim
 * already listens there, *ret_existing = true and no fd. */
int launch_listen(const char *path, bool *ret_existing, int *ret_fd);
