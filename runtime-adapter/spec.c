/* SPDX-License-Identifier: Apache-2.0 */
#include "spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "file-util.h"
#include "log.h"
#include "macro.h"

#define SPEC_MAX_STRINGS 4096
#define SPEC_MAX_STRING (1u << 20)

/* jansson parses recursively without a depth limit of its own that we control:
 * refuse deep nesting before parsing (brackets outside strings). */
static bool nesting_ok(const char *s, size_t len) {
        int depth = 0;
        bool in_str = false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = false;
                } else if (c == '"')
                        in_str = true;
                else if (c == '{' || c == '[') {
                        if (++depth > SPEC_MAX_DEPTH)
                                return false;
                } else if (c == '}' || c == ']')
                        depth--;
        }
        return true;
}

json_t *spec_json_load(const char *json, size_t len, const char *what, char **ret_error) {
        if (len > SPEC_MAX_FILE_SIZE) {
                error_setf(ret_error, "%s: larger than %u bytes", what, SPEC_MAX_FILE_SIZE);
                return NULL;
        }
        if (!nesting_ok(json, len)) {
                error_setf(ret_error, "%s: nested deeper than %d levels", what, SPEC_MAX_DEPTH);
                return NULL;
        }
        json_error_t e;
        json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                error_setf(ret_error, "%s: invalid JSON at line %d column %d: %s", what, e.line, e.column, e.text);
                return NULL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                error_setf(ret_error, "%s: must be a JSON object", what);
                return NULL;
        }
        return j;
}

static void strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* An array of strings -> NULL-terminated vector. Absent: empty vector (unless required). */
static int get_strv(json_t *obj, const char *key, const char *path, bool required, char ***ret, size_t *ret_n,
                    char **ret_error) {
        json_t *a = json_object_get(obj, key);
        if (!a || json_is_null(a)) {
                if (required)
                        return error_setf(ret_error, "%s: must be a non-empty array of strings", path);
                *ret = calloc(1, sizeof(char *));
                *ret_n = 0;
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_is_array(a) || (required && json_array_size(a) == 0))
                return error_setf(ret_error, "%s: must be %sarray of strings", path, required ? "a non-empty " : "an ");
        size_t n = json_array_size(a);
        if (n > SPEC_MAX_STRINGS)
                return error_setf(ret_error, "%s: more than %d entries", path, SPEC_MAX_STRINGS);
        char **v = calloc(n + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(a, i);
                if (!json_is_string(s) || json_string_length(s) > SPEC_MAX_STRING ||
                    strlen(json_string_value(s)) != json_string_length(s)) {
                        strv_free(v, i);
                        return error_setf(ret_error, "%s[%zu]: must be a string without NUL bytes", path, i);
                }
                v[i] = strdup(json_string_value(s));
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int get_u32(json_t *obj, const char *key, const char *path, bool required, uint32_t *ret, char **ret_error) {
        json_t *v = json_object_get(obj, key);
        if (!v) {
                if (required)
                        return error_setf(ret_error, "%s: missing", path);
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
                return error_setf(ret_error, "%s: must be an integer from 0 to %u", path, UINT32_MAX);
        *ret = (uint32_t)json_integer_value(v);
        return 0;
}

static int get_u64(json_t *v, const char *path, uint64_t *ret, char **ret_error) {
        /* jansson keeps integers as signed 64-bit; larger values fail to parse already */
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return error_setf(ret_error, "%s: must be a non-negative integer", path);
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

static int get_bool(json_t *obj, const char *key, const char *path, bool *ret, char **ret_error) {
        json_t *v = json_object_get(obj, key);
        if (!v)
                return 0;
        if (!json_is_boolean(v))
                return error_setf(ret_error, "%s: must be true or false", path);
        *ret = json_is_true(v);
        return 0;
}

void oci_process_done(struct oci_process *p) {
        strv_free(p->args, p->n_args);
        strv_free(p->env, p->n_env);
        free(p->cwd);
        free(p->additional_gids);
        for (size_t i = 0; i < p->n_rlimits; i++)
                free(p->rlimits[i].type);
        free(p->rlimits);
        *p = (struct oci_process){0};
}

static int process_from_json(json_t *j, const char *prefix, struct oci_process *ret, char **ret_error) {
        struct oci_process p = {0};
        char path[128];
        int r;
#define P(name) (snprintf(path, sizeof path, "%s%s", prefix, name), path)
        if ((r = get_bool(j, "terminal", P("terminal"), &p.terminal, ret_error)) < 0 ||
            (r = get_strv(j, "args", P("args"), true, &p.args, &p.n_args, ret_error)) < 0 ||
            (r = get_strv(j, "env", P("env"), false, &p.env, &p.n_env, ret_error)) < 0 ||
            (r = get_bool(j, "noNewPrivileges", P("noNewPrivileges"), &p.no_new_privileges, ret_error)) < 0)
                goto fail;
        json_t *cwd = json_object_get(j, "cwd");
        if (!json_is_string(cwd) || json_string_value(cwd)[0] != '/') {
                r = error_setf(ret_error, "%s: must be an absolute path", P("cwd"));
                goto fail;
        }
        if (!(p.cwd = strdup(json_string_value(cwd)))) {
                r = -ENOMEM;
                goto fail;
        }
        json_t *user = json_object_get(j, "user");
        if (user) {
                if (!json_is_object(user)) {
                        r = error_setf(ret_error, "%s: must be an object", P("user"));
                        goto fail;
                }
                if ((r = get_u32(user, "uid", P("user.uid"), false, &p.uid, ret_error)) < 0 ||
                    (r = get_u32(user, "gid", P("user.gid"), false, &p.gid, ret_error)) < 0)
                        goto fail;
                json_t *g = json_object_get(user, "additionalGids");
                if (g && !json_is_null(g)) {
                        if (!json_is_array(g) || json_array_size(g) > SPEC_MAX_STRINGS) {
                                r = error_setf(ret_error, "%s: must be an array of integers", P("user.additionalGids"));
                                goto fail;
                        }
                        p.n_additional_gids = json_array_size(g);
                        p.additional_gids = calloc(p.n_additional_gids + 1, sizeof *p.additional_gids);
                        if (!p.additional_gids) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        for (size_t i = 0; i < p.n_additional_gids; i++) {
                                json_t *v = json_array_get(g, i);
                                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                                    json_integer_value(v) > UINT32_MAX) {
                                        r = error_setf(ret_error, "%s[%zu]: must be an integer from 0 to %u",
                                                 P("user.additionalGids"), i, UINT32_MAX);
                                        goto fail;
                                }
                                p.additional_gids[i] = (uint32_t)json_integer_value(v);
                        }
                }
        }
        json_t *rl = json_object_get(j, "rlimits");
        if (rl && !json_is_null(rl)) {
                if (!json_is_array(rl) || json_array_size(rl) > 64) {
                        r = error_setf(ret_error, "%s: must be an array of at most 64 objects", P("rlimits"));
                        goto fail;
                }
                p.rlimits = calloc(json_array_size(rl) + 1, sizeof *p.rlimits);
                if (!p.rlimits) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (size_t i = 0; i < json_array_size(rl); i++) {
                        json_t *o = json_array_get(rl, i);
                        json_t *type = json_object_get(o, "type");
                        snprintf(path, sizeof path, "%srlimits[%zu]", prefix, i);
                        if (!json_is_object(o) || !json_is_string(type) ||
                            strncmp(json_string_value(type), "RLIMIT_", 7) != 0) {
                                r = error_setf(ret_error, "%s: needs a type \"RLIMIT_*\"", path);
                                goto fail;
                        }
                        struct oci_rlimit *l = &p.rlimits[p.n_rlimits];
                        if ((r = get_u64(json_object_get(o, "hard"), path, &l->hard, ret_error)) < 0 ||
                            (r = get_u64(json_object_get(o, "soft"), path, &l->soft, ret_error)) < 0)
                                goto fail;
                        if (!(l->type = strdup(json_string_value(type)))) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        p.n_rlimits++;
                }
        }
        json_t *cs = json_object_get(j, "consoleSize");
        if (cs && !json_is_null(cs)) {
                uint32_t h = 0, w = 0;
                if (!json_is_object(cs) || (r = get_u32(cs, "height", P("consoleSize.height"), true, &h, ret_error)) < 0 ||
                    (r = get_u32(cs, "width", P("consoleSize.width"), true, &w, ret_error)) < 0) {
                        if (!json_is_object(cs))
                                r = error_setf(ret_error, "%s: must be an object", P("consoleSize"));
                        goto fail;
                }
                p.console_height = h;
                p.console_width = w;
        }
#undef P
        *ret = p;
        return 0;
fail:
        oci_process_done(&p);
        return r;
}

int oci_process_parse(const char *json, size_t len, struct oci_process *ret, char **ret_error) {
        json_t *j = spec_json_load(json, len, "process", ret_error);
        if (!j)
                return -EINVAL;
        int r = process_from_json(j, "process.", ret, ret_error);
        json_decref(j);
        return r;
}

void oci_config_done(struct oci_config *c) {
        free(c->root_path);
        free(c->hostname);
        if (c->has_process)
                oci_process_done(&c->process);
        free(c->cgroups_path);
        strv_free(c->annotation_keys, c->n_annotations);
        strv_free(c->annotation_values, c->n_annotations);
        *c = (struct oci_config){0};
}

int oci_config_parse(const char *json, size_t len, struct oci_config *ret, char **ret_error) {
        json_t *j = spec_json_load(json, len, "config.json", ret_error);
        if (!j)
                return -EINVAL;
        struct oci_config c = {0};
        int r;
        json_t *root = json_object_get(j, "root");
        if (root) {
                json_t *path = json_object_get(root, "path");
                if (!json_is_object(root) || !json_is_string(path) || !*json_string_value(path)) {
                        r = error_setf(ret_error, "root.path: must be a non-empty string");
                        goto fail;
                }
                if (!(c.root_path = strdup(json_string_value(path)))) {
                        r = -ENOMEM;
                        goto fail;
                }
                if ((r = get_bool(root, "readonly", "root.readonly", &c.root_readonly, ret_error)) < 0)
                        goto fail;
        }
        json_t *hn = json_object_get(j, "hostname");
        if (hn) {
                if (!json_is_string(hn)) {
                        r = error_setf(ret_error, "hostname: must be a string");
                        goto fail;
                }
                if (!(c.hostname = strdup(json_string_value(hn)))) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        json_t *proc = json_object_get(j, "process");
        if (proc) {
                if (!json_is_object(proc)) {
                        r = error_setf(ret_error, "process: must be an object");
                        goto fail;
                }
                if ((r = process_from_json(proc, "process.", &c.process, ret_error)) < 0)
                        goto fail;
                c.has_process = true;
        }
        json_t *lnx = json_object_get(j, "linux");
        if (lnx) {
                if (!json_is_object(lnx)) {
                        r = error_setf(ret_error, "linux: must be an object");
                        goto fail;
                }
                json_t *ns = json_object_get(lnx, "namespaces");
                if (ns && !json_is_null(ns)) {
                        if (!json_is_array(ns)) {
                                r = error_setf(ret_error, "linux.namespaces: must be an array");
                                goto fail;
                        }
                        for (size_t i = 0; i < json_array_size(ns); i++) {
                                json_t *o = json_array_get(ns, i);
                                json_t *type = json_object_get(o, "type"), *p = json_object_get(o, "path");
                                if (!json_is_object(o) || !json_is_string(type) || (p && !json_is_string(p))) {
                                        r = error_setf(ret_error, "linux.namespaces[%zu]: needs a string type (and path)", i);
                                        goto fail;
                                }
                                if (strcmp(json_string_value(type), "pid") == 0 && (!p || !*json_string_value(p)))
                                        c.private_pid_namespace = true;
                        }
                }
                json_t *cg = json_object_get(lnx, "cgroupsPath");
                if (cg) {
                        if (!json_is_string(cg)) {
                                r = error_setf(ret_error, "linux.cgroupsPath: must be a string");
                                goto fail;
                        }
                        if (!(c.cgroups_path = strdup(json_string_value(cg)))) {
                                r = -ENOMEM;
                                goto fail;
                        }
                }
        }
        json_t *hooks = json_object_get(j, "hooks");
        if (hooks && !json_is_null(hooks)) {
                json_t *post = json_object_get(hooks, "poststop"), *poststart = json_object_get(hooks, "poststart");
                if (!json_is_object(hooks) || (post && !json_is_null(post) && !json_is_array(post)) ||
                    (poststart && !json_is_null(poststart) && !json_is_array(poststart))) {
                        r = error_setf(ret_error, "hooks: must be an object of arrays");
                        goto fail;
                }
                c.has_poststop_hooks = json_array_size(post) > 0;
                c.has_poststart_hooks = json_array_size(poststart) > 0;
        }
        json_t *ann = json_object_get(j, "annotations");
        if (ann && !json_is_null(ann)) {
                if (!json_is_object(ann) || json_object_size(ann) > SPEC_MAX_STRINGS) {
                        r = error_setf(ret_error, "annotations: must be an object of strings");
                        goto fail;
                }
                size_t n = json_object_size(ann);
                c.annotation_keys = calloc(n + 1, sizeof(char *));
                c.annotation_values = calloc(n + 1, sizeof(char *));
                if (!c.annotation_keys || !c.annotation_values) {
                        r = -ENOMEM;
                        goto fail;
                }
                const char *k;
                json_t *v;
                json_object_foreach(ann, k, v) {
                        if (!json_is_string(v)) {
                                r = error_setf(ret_error, "annotations.%.100s: must be a string", k);
                                goto fail;
                        }
                        c.annotation_keys[c.n_annotations] = strdup(k);
                        c.annotation_values[c.n_annotations] = strdup(json_string_value(v));
                        c.n_annotations++;
                        if (!c.annotation_keys[c.n_annotations - 1] || !c.annotation_values[c.n_annotations - 1]) {
                                r = -ENOMEM;
                                goto fail;
                        }
                }
        }
        json_decref(j);
        *ret = c;
        return 0;
fail:
        json_decref(j);
        oci_config_done(&c);
        return r;
}

const char *oci_config_annotation(const struct oci_config *c, const char *key) {
        for (size_t i = 0; i < c->n_annotations; i++)
                if (strcmp(c->annotation_keys[i], key) == 0)
                        return c->annotation_values[i];
        return NULL;
}

/* Read a spec file (size capped, no symlink in the last component); the error names it. */
static int read_spec_file(int dirfd, const char *path, char **ret_buf, size_t *ret_len, char **ret_error) {
        int r = read_file_at(dirfd, path, SPEC_MAX_FILE_SIZE, ret_buf, ret_len);
        if (r < 0)
                error_setf(ret_error, "cannot read %s: %s", path, strerror(-r));
        return r;
}

/* A parse error of the file at path: prefixed with the path, so that every error of a
 * load names the file. */
static int name_file(int r, const char *path, char **ret_error) {
        if (r < 0 && ret_error && *ret_error) {
                char *named = NULL;
                if (asprintf(&named, "%s: %s", path, *ret_error) >= 0) {
                        free(*ret_error);
                        *ret_error = named;
                }
        }
        return r;
}

int oci_config_load(int dirfd, const char *path, struct oci_config *ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_spec_file(dirfd, path, &buf, &len, ret_error);
        return r < 0 ? r : name_file(oci_config_parse(buf, len, ret, ret_error), path, ret_error);
}

int oci_process_load(int dirfd, const char *path, struct oci_process *ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_spec_file(dirfd, path, &buf, &len, ret_error);
        return r < 0 ? r : name_file(oci_process_parse(buf, len, ret, ret_error), path, ret_error);
}
