/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the parsers of what the OCI runtime and the bundle give us.
 *
 * Input: byte 0 picks the parser, the rest is its text (not NUL-terminated: every
 * parser takes a length). config.json and process.json (oci_*_parse), `runc state`
 * and `runc ps --format json` output, and the runtime's JSON log. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "runtime.h"
#include "spec.h"

static void check_process(const struct oci_process *p) {
        FUZZ_ASSERT(p->n_args >= 1 && p->args && !p->args[p->n_args]);
        for (size_t i = 0; i < p->n_args; i++)
                FUZZ_ASSERT(p->args[i]);
        FUZZ_ASSERT(p->env && !p->env[p->n_env]);
        FUZZ_ASSERT(p->cwd && p->cwd[0] == '/');
        FUZZ_ASSERT(p->n_additional_gids == 0 || p->additional_gids);
        for (size_t i = 0; i < p->n_rlimits; i++)
                FUZZ_ASSERT(p->rlimits[i].type && strncmp(p->rlimits[i].type, "RLIMIT_", 7) == 0);
}

static void fuzz_config(const char *text, size_t len) {
        struct oci_config c;
        char *err = NULL;
        if (oci_config_parse(text, len, &c, &err) < 0) {
                free(err);
                return;
        }
        FUZZ_ASSERT(!err);
        FUZZ_ASSERT(!c.root_path || *c.root_path);
        if (c.has_process)
                check_process(&c.process);
        for (size_t i = 0; i < c.n_annotations; i++)
                FUZZ_ASSERT(oci_config_annotation(&c, c.annotation_keys[i]));
        FUZZ_ASSERT(!c.annotation_keys || !c.annotation_keys[c.n_annotations]);
        oci_config_done(&c);
}

static void fuzz_process(const char *text, size_t len) {
        struct oci_process p;
        char *err = NULL;
        if (oci_process_parse(text, len, &p, &err) < 0) {
                free(err);
                return;
        }
        FUZZ_ASSERT(!err);
        check_process(&p);
        oci_process_done(&p);
}

static void fuzz_state(const char *text, size_t len) {
        struct runtime_state s;
        if (runtime_parse_state(text, len, &s) < 0)
                return;
        FUZZ_ASSERT(s.id && s.status && s.bundle && s.pid >= 0);
        runtime_state_done(&s);
}

static void fuzz_ps(const char *text, size_t len) {
        pid_t *pids = NULL;
        size_t n = 0;
        if (runtime_parse_ps(text, len, &pids, &n) < 0)
                return;
        FUZZ_ASSERT(n == 0 || pids);
        for (size_t i = 0; i < n; i++)
                FUZZ_ASSERT(pids[i] > 0);
        free(pids);
}

static void fuzz_log(const char *text, size_t len) {
        free(runtime_log_last_error(text, len));
}

static void (*const parsers[])(const char *text, size_t len) = {
        fuzz_config, fuzz_process, fuzz_state, fuzz_ps, fuzz_log,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        size_t sel = data[0] % (sizeof parsers / sizeof parsers[0]);
        /* An exact-size copy: ASan sees any read past the length. */
        char *text = malloc(size - 1 ? size - 1 : 1);
        FUZZ_ASSERT(text);
        memcpy(text, data + 1, size - 1);
        parsers[sel](text, size - 1);
        free(text);
        return 0;
}
