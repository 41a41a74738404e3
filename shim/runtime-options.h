/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime options a container is created with: containerd.runc.v1.Options, or
 * runtimeoptions.v1.Options naming a TOML file with the same keys (what containerd's
 * CRI plugin sends to shims other than runc-v2). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"
#define RUNTIME_OPTIONS_TYPE "runtimeoptions.v1.Options"
#define RUNTIME_OPTIONS_FILE_MAX (64 * 1024)

struct runtime_options {
        char *binary_name;
        char *root;
        bool systemd_cgroup;
        bool no_pivot_root;
        bool no_new_keyring;
        uint32_t io_uid, io_gid;
        char *shim_cgroup;
        char *criu_path;       /* criu binary for checkpoint/restore (runc 1.1's --criu) */
        char *criu_image_path; /* Create: restore from these images */
        char *criu_work_path;  /* CRIU's work files and logs for checkpoint/restore */
};

/* Decode an options Any (type_url + value). Unknown types, undecodable messages, bad
 * config files and unknown keys are errors with a message in *ret_error (malloc'd). */
int runtime_options_decode(const char *type_url, const uint8_t *value, size_t len, struct runtime_options *ret,
                           char **ret_error);
/* Parse the TOML subset of a runtime config file: `Key = value` lines (strings in
 * double quotes, true/false, integers), comments, and an optional [section] header. */
int runtime_options_parse_toml(const char *text, size_t len, struct runtime_options *ret, char **ret_error);
void runtime_options_done(struct runtime_options *o);
