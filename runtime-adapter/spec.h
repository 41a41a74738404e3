/* SPDX-License-Identifier: Apache-2.0 */
/* OCI runtime spec inputs -> plain C structs, validated. Every malformed input gets a
 * clear message in *ret_error (malloc'd) and -EINVAL; sizes are capped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPEC_MAX_FILE_SIZE (4u << 20) /* config.json / process.json */
#define SPEC_MAX_DEPTH 64

typedef struct json_t json_t;
/* Parse a JSON object of at most SPEC_MAX_FILE_SIZE bytes nested at most SPEC_MAX_DEPTH
 * deep; `what` names it in the error. NULL on failure. */
json_t *spec_json_load(const char *json, size_t len, const char *what, char **ret_error);

struct oci_rlimit {
        char *type; /* "RLIMIT_NOFILE" */
        uint64_t hard, soft;
};

struct oci_process {
        bool terminal;
        char **args;   /* NULL-terminated; at least one element */
        size_t n_args;
        char **env;    /* NULL-terminated (may be empty) */
        size_t n_env;
        char *cwd;     /* absolute */
        uint32_t uid, gid;
        uint32_t *additional_gids;
        size_t n_additional_gids;
        struct oci_rlimit *rlimits;
        size_t n_rlimits;
        unsigned console_width, console_height; /* consoleSize, 0 if absent */
        bool no_new_privileges;
};

struct oci_config {
        char *root_path;  /* root.path as given (relative to the bundle, or absolute) */
        bool root_readonly;
        char *hostname;
        struct oci_process process; /* present only if has_process */
        bool has_process;
        bool private_pid_namespace; /* linux.namespaces has {type:"pid"} without a path */
        char *cgroups_path;         /* linux.cgroupsPath or NULL */
        bool has_poststop_hooks;    /* hooks.poststop is a non-empty array */
        bool has_poststart_hooks;   /* hooks.poststart is a non-empty array */
        char **annotation_keys, **annotation_values;
        size_t n_annotations;
};

/* Parse JSON text of an OCI Process (process.json, or an exec spec). */
int oci_process_parse(const char *json, size_t len, struct oci_process *ret, char **ret_error);
void oci_process_done(struct oci_process *p);
/* Parse JSON text of config.json. */
int oci_config_parse(const char *json, size_t len, struct oci_config *ret, char **ret_error);
void oci_config_done(struct oci_config *c);
/* Look up an annotation; NULL if absent. */
const char *oci_config_annotation(const struct oci_config *c, const char *key);
/* Read and parse a file (size capped, no symlink in the last component); every error
 * names the file. */
int oci_config_load(int dirfd, const char *path, struct oci_config *ret, char **ret_error);
int oci_process_load(int dirfd, const char *path, struct oci_process *ret, char **ret_error);
