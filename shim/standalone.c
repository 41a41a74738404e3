/* SPDX-License-Identifier: Apache-2.0 */
/* Standalone launch from <bundle>/process.json (see standalone.h). */
#include "standalone.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file-util.h"
#include "ids.h"
#include "log.h"
#include "macro.h"
#include "runc-options.pb-c.h"
#include "runtime-options.h"
#include "task-service.h"
#include "task.pb-c.h"
#include "ttrpc.h"

#define LAUNCH_TIMEOUT_NS (120LL * 1000000000LL)

void standalone_done(struct standalone_launch *l) {
        free(l->id);
        free(l->stdin_path);
        free(l->stdout_path);
        free(l->stderr_path);
        free(l->runtime);
        free(l->runtime_root);
        free(l->events_address);
        *l = (struct standalone_launch){0};
}

enum kind { KIND_STRING, KIND_BOOL };
struct key {
        const char *name;
        enum kind kind;
        size_t offset;
};
#define STR_KEY(n, field) {n, KIND_STRING, offsetof(struct standalone_launch, field)}
#define BOOL_KEY(n, field) {n, KIND_BOOL, offsetof(struct standalone_launch, field)}
static const struct key keys[] = {
        STR_KEY("id", id),
        STR_KEY("stdin", stdin_path),
        STR_KEY("stdout", stdout_path),
        STR_KEY("stderr", stderr_path),
        BOOL_KEY("terminal", terminal),
        STR_KEY("runtime", runtime),
        STR_KEY("runtime_root", runtime_root),
        BOOL_KEY("systemd_cgroup", systemd_cgroup),
        BOOL_KEY("no_pivot_root", no_pivot_root),
        BOOL_KEY("no_new_keyring", no_new_keyring),
        STR_KEY("events_address", events_address),
        BOOL_KEY("start", start),
};

int standalone_parse(const char *json, size_t len, const char *default_id, struct standalone_launch *ret,
                     char **ret_error) {
        if (len > STANDALONE_MAX_SIZE)
                return error_setf(ret_error, "%s: larger than %u bytes", STANDALONE_FILE, STANDALONE_MAX_SIZE);
        json_error_t e;
        json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return error_setf(ret_error, "%s: invalid JSON at line %d column %d: %s", STANDALONE_FILE, e.line,
                                    e.column, e.text);
        struct standalone_launch l = {.start = true};
        int r = 0;
        if (!json_is_object(j)) {
                r = error_setf(ret_error, "%s: must be a JSON object", STANDALONE_FILE);
                goto out;
        }
        const char *name;
        json_t *v;
        json_object_foreach(j, name, v) {
                const struct key *k = NULL;
                for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                        if (strcmp(keys[i].name, name) == 0)
                                k = &keys[i];
                if (!k) {
                        r = error_setf(ret_error, "%s: unknown key \"%.100s\"", STANDALONE_FILE, name);
                        goto out;
                }
                void *field = (char *)&l + k->offset;
                if (k->kind == KIND_BOOL) {
                        if (!json_is_boolean(v)) {
                                r = error_setf(ret_error, "%s: %s must be true or false", STANDALONE_FILE, name);
                                goto out;
                        }
                        *(bool *)field = json_is_true(v);
                } else {
                        if (!json_is_string(v) || json_string_length(v) > 4096 ||
                            strlen(json_string_value(v)) != json_string_length(v)) {
                                r = error_setf(ret_error, "%s: %s must be a string (at most 4096 bytes)",
                                                 STANDALONE_FILE, name);
                                goto out;
                        }
                        char **s = field;
                        free(*s);
                        if (!(*s = strdup(json_string_value(v)))) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
        if (!l.id && default_id && !(l.id = strdup(default_id))) {
                r = -ENOMEM;
                goto out;
        }
        if (!l.id || !identifier_is_valid(l.id)) {
                r = error_setf(ret_error, "%s: id \"%.80s\" is missing or not a valid container id", STANDALONE_FILE,
                                 l.id ? l.id : "");
                goto out;
        }
out:
        json_decref(j);
        if (r < 0)
                standalone_done(&l);
        else
                *ret = l;
        return r;
}

int standalone_load(const char *bundle, const char *default_id, struct standalone_launch *ret, char **ret_error) {
        _cleanup_close_ int dfd = open(bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (dfd < 0)
                return error_setf(ret_error, "cannot open the bundle %s: %s", bundle, strerror(errno));
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_file_at(dfd, STANDALONE_FILE, STANDALONE_MAX_SIZE, &buf, &len);
        if (r < 0) {
                error_setf(ret_error, "cannot read %s/%s: %s", bundle, STANDALONE_FILE, strerror(-r));
                return r;
        }
        return standalone_parse(buf, len, default_id, ret, ret_error);
}

/* ---- running it through our own socket ----------------------------------------------- */

struct run {
        struct ttrpc_client *client;
        char *id;
        bool start;
        void (*done)(int status, void *ud);
        void *ud;
};

static void run_finish(struct run *run, int status) {
        run->done(status, run->ud);
        /* Freed from its own callback is fine: the client completes the call first. */
        ttrpc_client_free(run->client);
        free(run->id);
        free(run);
}

static void on_created(int code, const char *message, const uint8_t *resp, size_t resp_len, void *ud) {
        struct run *run = ud;
        if (code != 0) {
                log_error("launch: create of %s failed: %s", run->id, message);
                run_finish(run, -EIO);
                return;
        }
        log_info("launch: %s %s", run->id, run->start ? "created and started" : "created");
        run_finish(run, 0);
}

int standalone_run(struct ev_loop *loop, const char *socket_path, const char *bundle,
                   const struct standalone_launch *l, void (*done)(int status, void *ud), void *ud) {
        struct run *run = calloc(1, sizeof *run);
        if (!run || !(run->id = strdup(l->id))) {
                free(run);
                return -ENOMEM;
        }
        run->start = l->start;
        run->done = done;
        run->ud = ud;
        int r = ttrpc_client_connect(loop, socket_path, &run->client);
        if (r < 0) {
                free(run->id);
                free(run);
                return r;
        }

        Nanoshim__Runcopts__Options opts = NANOSHIM__RUNCOPTS__OPTIONS__INIT;
        opts.binary_name = l->runtime ? l->runtime : "";
        opts.root = l->runtime_root ? l->runtime_root : "";
        opts.systemd_cgroup = l->systemd_cgroup;
        opts.no_pivot_root = l->no_pivot_root;
        opts.no_new_keyring = l->no_new_keyring;
        uint8_t *packed = malloc(nanoshim__runcopts__options__get_packed_size(&opts) + 1);
        if (!packed) {
                ttrpc_client_free(run->client);
                free(run->id);
                free(run);
                return -ENOMEM;
        }
        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
        any.type_url = RUNC_OPTIONS_TYPE;
        any.value.len = nanoshim__runcopts__options__pack(&opts, packed);
        any.value.data = packed;

        Nanoshim__Task__CreateTaskRequest req = NANOSHIM__TASK__CREATE_TASK_REQUEST__INIT;
        req.id = l->id;
        req.bundle = (char *)bundle;
        req.terminal = l->terminal;
        req.stdin = l->stdin_path ? l->stdin_path : "";
        req.stdout = l->stdout_path ? l->stdout_path : "";
        req.stderr = l->stderr_path ? l->stderr_path : "";
        req.options = &any;
        /* Create and start in one call (and one runtime execution) when both are wanted. */
        struct ttrpc_kv md = {STANDALONE_RUN_METADATA, "true"};
        r = ttrpc_client_call(run->client, TASK_SERVICE_V2, "Create", &req.base, LAUNCH_TIMEOUT_NS, l->start ? &md : NULL,
                              l->start ? 1 : 0, on_created, run);
        free(packed);
        if (r < 0) {
                ttrpc_client_free(run->client);
                free(run->id);
                free(run);
        }
        return r;
}
