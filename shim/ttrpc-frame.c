/* SPDX-License-Identifier: Apache-2.0 */
/* ttrpc frame codec: the 10-byte big-endian header and an incremental decoder.
 * Pure code, no I/O: what the connection layer and the fuzz target share. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ttrpc.h"

static const char *const code_names[] = {
        [TTRPC_OK] = "OK",
        [TTRPC_CANCELLED] = "CANCELLED",
        [TTRPC_UNKNOWN] = "UNKNOWN",
        [TTRPC_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [TTRPC_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [TTRPC_NOT_FOUND] = "NOT_FOUND",
        [TTRPC_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [TTRPC_PERMISSION_DENIED] = "PERMISSION_DENIED",
        [TTRPC_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
        [TTRPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [TTRPC_ABORTED] = "ABORTED",
        [TTRPC_OUT_OF_RANGE] = "OUT_OF_RANGE",
        [TTRPC_UNIMPLEMENTED] = "UNIMPLEMENTED",
        [TTRPC_INTERNAL] = "INTERNAL",
        [TTRPC_UNAVAILABLE] = "UNAVAILABLE",
};

const char *ttrpc_code_to_string(int code) {
        if (code < 0 || (size_t)code >= ELEMENTSOF(code_names) || !code_names[code])
                return "UNKNOWN";
        return code_names[code];
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE]) {
        put_be32(out, h->length);
        put_be32(out + 4, h->stream_id);
        out[8] = h->type;
        out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *ret) {
        ret->length = get_be32(in);
        ret->stream_id = get_be32(in + 4);
        ret->type = in[8];
        ret->flags = in[9];
}

void ttrpc_decoder_init(struct ttrpc_decoder *d, uint32_t max) {
        *d = (struct ttrpc_decoder){ .max = max ? max : TTRPC_MAX_MESSAGE };
}

void ttrpc_decoder_done(struct ttrpc_decoder *d) {
        free(d->data);
        d->data = NULL;
        d->data_len = 0;
        d->hdr_len = 0;
        d->skip = 0;
}

int ttrpc_decoder_feed(struct ttrpc_decoder *d, const uint8_t *buf, size_t len, size_t *consumed,
                       enum ttrpc_frame_kind *ret_kind, struct ttrpc_header *ret_header,
                       uint8_t **ret_data) {
        size_t off = 0;

        while (off < len || (d->hdr_len == TTRPC_HEADER_SIZE && d->data_len == d->cur.length)) {
                if (d->skip > 0) {
                        /* The rest of an oversize frame: thrown away as it arrives. */
                        size_t n = MIN((size_t)d->skip, len - off);
                        d->skip -= (uint32_t)n;
                        off += n;
                        continue;
                }

                if (d->hdr_len < TTRPC_HEADER_SIZE) {
                        size_t n = MIN(TTRPC_HEADER_SIZE - d->hdr_len, len - off);
                        memcpy(d->hdr + d->hdr_len, buf + off, n);
                        d->hdr_len += n;
                        off += n;
                        if (d->hdr_len < TTRPC_HEADER_SIZE)
                                continue;

                        ttrpc_header_decode(d->hdr, &d->cur);
                        d->data_len = 0;
                        if (d->cur.length > d->max) {
                                /* Decided from the header alone: nothing is allocated. */
                                d->skip = d->cur.length;
                                d->hdr_len = 0;
                                *consumed = off;
                                *ret_kind = TTRPC_FRAME_OVERSIZE;
                                *ret_header = d->cur;
                                *ret_data = NULL;
                                return 0;
                        }
                        if (d->cur.length > 0) {
                                d->data = malloc(d->cur.length);
                                if (!d->data) {
                                        d->hdr_len = 0;
                                        /* Keep the stream in sync: treat the data as skipped. */
                                        d->skip = d->cur.length;
                                        *consumed = off;
                                        return -ENOMEM;
                                }
                        }
                        continue; /* a zero-length frame completes right away */
                }

                if (d->data_len < d->cur.length) {
                        size_t n = MIN((size_t)d->cur.length - d->data_len, len - off);
                        memcpy(d->data + d->data_len, buf + off, n);
                        d->data_len += n;
                        off += n;
                        if (d->data_len < d->cur.length)
                                continue;
                }

                /* Header complete and all data in: one frame. */
                *consumed = off;
                *ret_kind = TTRPC_FRAME_OK;
                *ret_header = d->cur;
                *ret_data = TAKE_PTR(d->data);
                d->hdr_len = 0;
                d->data_len = 0;
                return 0;
        }

        *consumed = off;
        *ret_kind = TTRPC_FRAME_NONE;
        return 0;
}
