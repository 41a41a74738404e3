/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: decoding every containerd.task.v2 request and the payloads inside
 * them that the service reads.
 *
 * Input: byte 0 picks the decoder (see `targets`), the rest is its input. Each request
 * message is unpacked, re-encoded and freed, and what the service does with its fields
 * before touching the system runs on them too: identifier checks, the rootfs mount
 * options of Create, the runtime options Any of Create, the OCI process spec Any of Exec. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ids.h"
#include "mount.h"
#include "runc-options.pb-c.h"
#include "runtime-options.h"
#include "spec.h"
#include "task.pb-c.h"

static void check_options_any(const Nanoshim__Types__Any *any) {
        if (!any)
                return;
        /* runtimeoptions.v1.Options names a file that the shim reads: decode only, and
         * the file's parser gets fuzzed on its own (the TOML target below). */
        if (any->type_url && strcmp(any->type_url, RUNTIME_OPTIONS_TYPE) == 0)
                return;
        struct runtime_options o;
        char *err = NULL;
        if (runtime_options_decode(any->type_url, any->value.data, any->value.len, &o, &err) == 0) {
                FUZZ_ASSERT(!err);
                runtime_options_done(&o);
        } else
                free(err);
}

static void check_process_spec(const uint8_t *json, size_t len) {
        struct oci_process p;
        char *err = NULL;
        if (oci_process_parse((const char *)json, len, &p, &err) == 0) {
                FUZZ_ASSERT(p.n_args >= 1 && p.args && p.args[0] && !p.args[p.n_args]);
                FUZZ_ASSERT(p.env && !p.env[p.n_env]);
                FUZZ_ASSERT(p.cwd && p.cwd[0] == '/');
                oci_process_done(&p);
        } else
                free(err);
}

static void check_create(const ProtobufCMessage *m) {
        const Nanoshim__Task__CreateTaskRequest *req = (const Nanoshim__Task__CreateTaskRequest *)m;
        (void)identifier_is_valid(req->id);
        for (size_t i = 0; i < req->n_rootfs; i++) {
                struct mount_flags f;
                if (mount_parse_options(req->rootfs[i]->options, req->rootfs[i]->n_options, &f) == 0) {
                        FUZZ_ASSERT(f.data && strlen(f.data) <= 65536);
                        free(f.data);
                }
        }
        check_options_any(req->options);
}

static void check_exec(const ProtobufCMessage *m) {
        const Nanoshim__Task__ExecProcessRequest *req = (const Nanoshim__Task__ExecProcessRequest *)m;
        (void)identifier_is_valid(req->id);
        (void)identifier_is_valid(req->exec_id);
        if (req->spec && req->spec->value.data)
                check_process_spec(req->spec->value.data, req->spec->value.len);
}

static void check_ids(const ProtobufCMessage *m) {
        /* Every other request starts with `string id = 1` (and most `exec_id = 2`). */
        const ProtobufCMessageDescriptor *d = m->descriptor;
        for (unsigned i = 0; i < d->n_fields; i++)
                if (d->fields[i].type == PROTOBUF_C_TYPE_STRING && d->fields[i].label != PROTOBUF_C_LABEL_REPEATED &&
                    (strcmp(d->fields[i].name, "id") == 0 || strcmp(d->fields[i].name, "exec_id") == 0))
                        (void)identifier_is_valid(*(char *const *)((const char *)m + d->fields[i].offset));
}

struct message_target {
        const ProtobufCMessageDescriptor *desc;
        void (*check)(const ProtobufCMessage *m);
};

static const struct message_target messages[] = {
        { &nanoshim__task__create_task_request__descriptor, check_create },
        { &nanoshim__task__delete_request__descriptor, check_ids },
        { &nanoshim__task__exec_process_request__descriptor, check_exec },
        { &nanoshim__task__resize_pty_request__descriptor, check_ids },
        { &nanoshim__task__state_request__descriptor, check_ids },
        { &nanoshim__task__kill_request__descriptor, check_ids },
        { &nanoshim__task__close_iorequest__descriptor, check_ids },
        { &nanoshim__task__pids_request__descriptor, check_ids },
        { &nanoshim__task__checkpoint_task_request__descriptor, check_ids },
        { &nanoshim__task__update_task_request__descriptor, check_ids },
        { &nanoshim__task__start_request__descriptor, check_ids },
        { &nanoshim__task__wait_request__descriptor, check_ids },
        { &nanoshim__task__stats_request__descriptor, check_ids },
        { &nanoshim__task__connect_request__descriptor, check_ids },
        { &nanoshim__task__shutdown_request__descriptor, check_ids },
        { &nanoshim__task__pause_request__descriptor, check_ids },
        { &nanoshim__task__resume_request__descriptor, check_ids },
        /* The Any payloads, as bare messages. */
        { &nanoshim__runcopts__options__descriptor, NULL },
        { &nanoshim__runcopts__runtime_options__descriptor, NULL },
};
#define N_MESSAGES (sizeof messages / sizeof messages[0])

/* Selectors past the messages: the byte-level payload decoders. */
enum {
        SEL_RUNC_OPTIONS_ANY = N_MESSAGES, /* runtime_options_decode(containerd.runc.v1.Options) */
        SEL_PROCESS_SPEC,                  /* Exec's spec Any value: an OCI Process in JSON */
        SEL_RUNTIME_TOML,                  /* the file runtimeoptions.v1.Options names */
        SEL_COUNT,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        unsigned sel = data[0] % SEL_COUNT;
        data++;
        size--;
        if (sel < N_MESSAGES) {
                const struct message_target *t = &messages[sel];
                ProtobufCMessage *m = protobuf_c_message_unpack(t->desc, NULL, size, data);
                if (!m)
                        return 0;
                FUZZ_ASSERT(protobuf_c_message_check(m));
                if (t->check)
                        t->check(m);
                fuzz_protobuf_roundtrip(m);
                protobuf_c_message_free_unpacked(m, NULL);
                return 0;
        }
        switch (sel) {
        case SEL_RUNC_OPTIONS_ANY: {
                Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
                any.type_url = (char *)RUNC_OPTIONS_TYPE;
                any.value.data = (uint8_t *)data;
                any.value.len = size;
                check_options_any(&any);
                break;
        }
        case SEL_PROCESS_SPEC:
                check_process_spec(data, size);
                break;
        case SEL_RUNTIME_TOML: {
                struct runtime_options o;
                char *err = NULL;
                if (runtime_options_parse_toml((const char *)data, size, &o, &err) == 0)
                        runtime_options_done(&o);
                else
                        free(err);
                break;
        }
        default:
                abort();
        }
        return 0;
}
