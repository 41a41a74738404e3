/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the libFuzzer targets: an assertion that stays on in every build (libFuzzer
 * keeps the input that made it abort) and a protobuf re-encode check. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <protobuf-c/protobuf-c.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                    \
        do {                                                                                 \
                if (!(cond)) {                                                               \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
                                #cond);                                                      \
                        abort();                                                             \
                }                                                                            \
        } while (0)

/* Does the message or one of its submessages keep fields it did not know? */
static inline bool fuzz_protobuf_has_unknown(const ProtobufCMessage *m) {
        if (m->n_unknown_fields)
                return true;
        const ProtobufCMessageDescriptor *d = m->descriptor;
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                if (f->type != PROTOBUF_C_TYPE_MESSAGE)
                        continue;
                const char *member = (const char *)m + f->offset;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
                        ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)member;
                        for (size_t k = 0; k < n; k++)
                                if (fuzz_protobuf_has_unknown(v[k]))
                                        return true;
                } else {
                        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
                        if (sub && fuzz_protobuf_has_unknown(sub))
                                return true;
                }
        }
        return false;
}

/* A decoded message re-encodes to get_packed_size bytes, and that encoding decodes again
 * to the same size. libprotobuf-c keeps unknown fields as they came, including field
 * number 0 written as a long varint, which it then refuses when written short: with
 * unknown fields, the re-decode may fail. */
static inline void fuzz_protobuf_roundtrip(const ProtobufCMessage *m) {
        size_t sz = protobuf_c_message_get_packed_size(m);
        uint8_t *out = malloc(sz ? sz : 1);
        FUZZ_ASSERT(out);
        FUZZ_ASSERT(protobuf_c_message_pack(m, out) == sz);
        ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, sz, out);
        FUZZ_ASSERT(again || fuzz_protobuf_has_unknown(m));
        if (again) {
                FUZZ_ASSERT(protobuf_c_message_get_packed_size(again) == sz);
                protobuf_c_message_free_unpacked(again, NULL);
        }
        free(out);
}
