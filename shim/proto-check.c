/* SPDX-License-Identifier: Apache-2.0 */
#include "proto-check.h"

#include <errno.h>
#include <string.h>

#define MAX_DEPTH 32

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*p >= end)
                        return -EINVAL;
                uint8_t b = *(*p)++;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EINVAL;
}

static int check(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, unsigned depth,
                 const char **ret_field) {
        if (depth > MAX_DEPTH)
                return -EINVAL;
        while (p < end) {
                uint64_t key, n;
                if (read_varint(&p, end, &key) < 0)
                        return -EINVAL;
                switch (key & 7) {
                case 0: /* varint */
                        if (read_varint(&p, end, &n) < 0)
                                return -EINVAL;
                        break;
                case 1: /* 64-bit */
                        if (end - p < 8)
                                return -EINVAL;
                        p += 8;
                        break;
                case 5: /* 32-bit */
                        if (end - p < 4)
                                return -EINVAL;
                        p += 4;
                        break;
                case 2: { /* length-delimited */
                        if (read_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
                                return -EINVAL;
                        uint64_t number = key >> 3;
                        const ProtobufCFieldDescriptor *f =
                                number <= UINT32_MAX && desc ? protobuf_c_message_descriptor_get_field(desc, (unsigned)number)
                                                             : NULL;
                        if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, n)) {
                                if (ret_field)
                                        *ret_field = f->name;
                                return -EILSEQ;
                        }
                        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                                int r = check(f->descriptor, p, p + n, depth + 1, ret_field);
                                if (r < 0)
                                        return r;
                        }
                        p += n;
                        break;
                }
                default: /* groups (3, 4) and invalid types */
                        return -EINVAL;
                }
        }
        return 0;
}

int proto_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        const char **ret_field) {
        if (len == 0)
                return 0;
        if (!data)
                return -EINVAL;
        return check(desc, data, data + len, 0, ret_field);
}
