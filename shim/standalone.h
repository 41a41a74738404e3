/* SPDX-License-Identifier: Apache-2.0 */
/* Standalone launch: a container manager other than containerd starts the shim for one
 * bundle with `-launch`; the bundle's process.json says how (stdio, terminal, runtime,
 * events address), and the shim creates -- and unless told otherwise starts -- the
 * container itself, through its own task API, before anyone calls in. The manager then
 * drives it with the same protocol (State, Wait, Kill, Delete, Shutdown...).
 *
 * process.json (unknown keys are refused, so that a typo is not silently ignored):
 *   {"id": "c1",                        container id (default: -id)
 *    "stdin": "", "stdout": "/run/m/c1.out", "stderr": "/run/m/c1.err",   as in Create
 *    "terminal": false,
 *    "runtime": "runc", "runtime_root": "/run/nanoshim/runc", "systemd_cgroup": false,
 *    "no_pivot_root": false, "no_new_keyring": false,
 *    "events_address": "/run/m/events.sock",   default: -events-address / $TTRPC_ADDRESS
 *    "start": true}                     false: create only */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct standalone_launch {
        char *id;
        char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        char *runtime, *runtime_root;
        bool systemd_cgroup, no_pivot_root, no_new_keyring;
        char *events_address;
        bool start;
};

#define STANDALONE_FILE "process.json"
/* ttrpc metadata of a Create that also starts the container (the launch sends it) */
#define STANDALONE_RUN_METADATA "nanoshim-create-and-start"
#define STANDALONE_MAX_SIZE (64u << 10)

/* Parse the JSON text; default_id is used when it names none. Errors: -EINVAL and a
 * message naming the key. */
int standalone_parse(const char *json, size_t len, const char *default_id, struct standalone_launch *ret,
                     char **ret_error);
/* Read <bundle>/process.json (no symlink followed) and parse it. */
int standalone_load(const char *bundle, const char *default_id, struct standalone_launch *ret, char **ret_error);
void standalone_done(struct standalone_launch *l);

/* Create (and start) the container through the shim's own socket: one Create call,
 * which with `start` carries STANDALONE_RUN_METADATA and runs the runtime's `run
 * --detach` (one runtime execution). done(status, ud) runs once: 0 when the container
 * is created (and started), else -errno after the reason was logged (with the
 * runtime's own message). */
int standalone_run(struct ev_loop *loop, const char *socket_path, const char *bundle,
                   const struct standalone_launch *l, void (*done)(int status, void *ud), void *ud);
