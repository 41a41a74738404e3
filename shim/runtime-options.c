/* SPDX-License-Identifier: Apache-2.0 */
#include "runtime-options.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "runc-options.pb-c.h"

void runtime_options_done(struct runtime_options *o) {
        free(o->binary_name);
        free(o->root);
        free(o->shim_cgroup);
        free(o->criu_path);
        free(o->criu_image_path);
        free(o->criu_work_path);
        *o = (struct runtime_options){0};
}

static char *trim(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = 0;
        return s;
}

/* A TOML basic string: "..." with \" \\ \n \t escapes; nothing may follow but a comment. */
static int parse_string(const char *v, char **ret) {
        if (*v != '"')
                return -EINVAL;
        size_t n = strlen(v);
        _cleanup_free_ char *out = malloc(n);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        const char *p = v + 1;
        for (; *p && *p != '"'; p++) {
                if (*p == '\\') {
                        p++;
                        char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                        if (c != '"' && c != '\\' && c != '\n' && c != '\t')
                                return -EINVAL;
                        out[o++] = c;
                } else
                        out[o++] = *p;
        }
        if (*p != '"')
                return -EINVAL;
        p++;
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p && *p != '#')
                return -EINVAL;
        out[o] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        if (strncmp(v, "true", 4) == 0 && (!v[4] || v[4] == ' ' || v[4] == '#'))
                *ret = true;
        else if (strncmp(v, "false", 5) == 0 && (!v[5] || v[5] == ' ' || v[5] == '#'))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_u32(const char *v, uint32_t *ret) {
        if (*v < '0' || *v > '9')
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        while (*end == ' ' || *end == '\t')
                end++;
        if (errno || x > UINT32_MAX || (*end && *end != '#'))
                return -EINVAL;
        *ret = (uint32_t)x;
        return 0;
}

int runtime_options_parse_toml(const char *text, size_t len, struct runtime_options *ret, char **ret_error) {
        struct runtime_options o = {0};
        _cleanup_free_ char *buf = strndup(text, len);
        if (!buf)
                return -ENOMEM;
        if (strlen(buf) != len) {
                runtime_options_done(&o);
                return error_setf(ret_error, "runtime config: contains a NUL byte");
        }
        unsigned lineno = 0;
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                lineno++;
                char *l = trim(line);
                if (!*l || *l == '#' || *l == '[')
                        continue; /* comments; section headers ([options]) are accepted */
                char *eq = strchr(l, '=');
                if (!eq) {
                        runtime_options_done(&o);
                        return error_setf(ret_error, "runtime config line %u: expected Key = value", lineno);
                }
                *eq = 0;
                char *key = trim(l), *val = trim(eq + 1);
                int r = 0;
                char **str = NULL;
                if (strcmp(key, "BinaryName") == 0)
                        str = &o.binary_name;
                else if (strcmp(key, "Root") == 0)
                        str = &o.root;
                else if (strcmp(key, "ShimCgroup") == 0)
                        str = &o.shim_cgroup;
                else if (strcmp(key, "SystemdCgroup") == 0)
                        r = parse_bool(val, &o.systemd_cgroup);
                else if (strcmp(key, "NoPivotRoot") == 0)
                        r = parse_bool(val, &o.no_pivot_root);
                else if (strcmp(key, "NoNewKeyring") == 0)
                        r = parse_bool(val, &o.no_new_keyring);
                else if (strcmp(key, "IoUid") == 0)
                        r = parse_u32(val, &o.io_uid);
                else if (strcmp(key, "IoGid") == 0)
                        r = parse_u32(val, &o.io_gid);
                else if (strcmp(key, "CriuPath") == 0)
                        str = &o.criu_path;
                else if (strcmp(key, "CriuImagePath") == 0)
                        str = &o.criu_image_path;
                else if (strcmp(key, "CriuWorkPath") == 0)
                        str = &o.criu_work_path;
                else {
                        runtime_options_done(&o);
                        return error_setf(ret_error, "runtime config line %u: unknown option \"%.64s\"", lineno, key);
                }
                if (str) {
                        free(*str);
                        *str = NULL;
                        r = parse_string(val, str);
                }
                if (r < 0) {
                        runtime_options_done(&o);
                        return error_setf(ret_error, "runtime config line %u: bad value for %s", lineno, key);
                }
        }
        *ret = o;
        return 0;
}

static char *dup_nonempty(const char *s) {
        return s && *s ? strdup(s) : NULL;
}

int runtime_options_decode(const char *type_url, const uint8_t *value, size_t len, struct runtime_options *ret,
                           char **ret_error) {
        struct runtime_options o = {0};
        if (!type_url || !*type_url) {
                *ret = o;
                return 0;
        }
        if (strcmp(type_url, RUNC_OPTIONS_TYPE) == 0) {
                Nanoshim__Runcopts__Options *m = nanoshim__runcopts__options__unpack(NULL, len, value);
                if (!m)
                        return error_setf(ret_error, "cannot decode %s", RUNC_OPTIONS_TYPE);
                o.binary_name = dup_nonempty(m->binary_name);
                o.root = dup_nonempty(m->root);
                o.shim_cgroup = dup_nonempty(m->shim_cgroup);
                o.criu_path = dup_nonempty(m->criu_path);
                o.criu_image_path = dup_nonempty(m->criu_image_path);
                o.criu_work_path = dup_nonempty(m->criu_work_path);
                o.systemd_cgroup = m->systemd_cgroup;
                o.no_pivot_root = m->no_pivot_root;
                o.no_new_keyring = m->no_new_keyring;
                o.io_uid = m->io_uid;
                o.io_gid = m->io_gid;
                nanoshim__runcopts__options__free_unpacked(m, NULL);
                *ret = o;
                return 0;
        }
        if (strcmp(type_url, RUNTIME_OPTIONS_TYPE) == 0) {
                Nanoshim__Runcopts__RuntimeOptions *m = nanoshim__runcopts__runtime_options__unpack(NULL, len, value);
                if (!m)
                        return error_setf(ret_error, "cannot decode %s", RUNTIME_OPTIONS_TYPE);
                int r = 0;
                if (m->config_path && *m->config_path) {
                        _cleanup_free_ char *text = NULL;
                        size_t tlen = 0;
                        r = read_file_at(AT_FDCWD, m->config_path, RUNTIME_OPTIONS_FILE_MAX, &text, &tlen);
                        if (r < 0)
                                r = error_setf(ret_error, "cannot read runtime config %.200s: %s", m->config_path,
                                              strerror(-r));
                        else
                                r = runtime_options_parse_toml(text, tlen, &o, ret_error);
                }
                nanoshim__runcopts__runtime_options__free_unpacked(m, NULL);
                if (r < 0)
                        return r;
                *ret = o;
                return 0;
        }
        return error_setf(ret_error, "unsupported runtime options type \"%.200s\" (nanoshim understands %s and %s)",
                         type_url, RUNC_OPTIONS_TYPE, RUNTIME_OPTIONS_TYPE);
}
