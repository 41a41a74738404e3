/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the incremental ttrpc frame decoder and the envelope decode.
 *
 * Input: byte 0 picks the decoder's size limit, byte 1 seeds the chunk splits, the
 * rest is the byte stream as it would arrive on the socket. The stream is fed in
 * pseudo-random chunks (1..n bytes) and the frame events are compared with a one-shot
 * reference parse of the whole stream: how the bytes are split must not change which
 * frames come out. Each whole frame's data is decoded as a ttrpc Request and Response
 * (what the server and the client do with it) and re-encoded. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

/* Limits small enough that fuzzed inputs cross them, plus the real one. */
static const uint32_t limits[] = { TTRPC_MAX_MESSAGE, 0, 1, 16, 64, 255, 4096, 65536 };

struct frame_event {
        enum ttrpc_frame_kind kind;
        struct ttrpc_header h;
        const uint8_t *data; /* into the input, for the reference */
};

/* One-shot parse of the whole stream: the events a correct decoder yields, in order. */
static size_t reference_parse(const uint8_t *buf, size_t len, uint32_t max, struct frame_event *ev, size_t cap) {
        size_t n = 0, off = 0;
        while (len - off >= TTRPC_HEADER_SIZE && n < cap) {
                struct ttrpc_header h;
                ttrpc_header_decode(buf + off, &h);
                off += TTRPC_HEADER_SIZE;
                if (h.length > max) {
                        ev[n++] = (struct frame_event){ TTRPC_FRAME_OVERSIZE, h, NULL };
                        off += h.length < len - off ? h.length : len - off;
                } else if (len - off >= h.length) {
                        ev[n++] = (struct frame_event){ TTRPC_FRAME_OK, h, buf + off };
                        off += h.length;
                } else
                        break;
        }
        return n;
}

static bool header_eq(const struct ttrpc_header *a, const struct ttrpc_header *b) {
        return a->length == b->length && a->stream_id == b->stream_id && a->type == b->type && a->flags == b->flags;
}

static uint32_t xorshift(uint32_t *s) {
        uint32_t x = *s;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *s = x;
}

static void decode_payload(const struct ttrpc_header *h, const uint8_t *data) {
        Nanoshim__Ttrpc__Request *req = nanoshim__ttrpc__request__unpack(NULL, h->length, data);
        if (req) {
                /* What the server reads of it. */
                FUZZ_ASSERT(req->service && req->method);
                FUZZ_ASSERT(req->n_metadata == 0 || req->metadata);
                for (size_t i = 0; i < req->n_metadata; i++)
                        FUZZ_ASSERT(req->metadata[i]->key && req->metadata[i]->value);
                FUZZ_ASSERT(req->payload.len == 0 || req->payload.data);
                fuzz_protobuf_roundtrip(&req->base);
                nanoshim__ttrpc__request__free_unpacked(req, NULL);
        }
        Nanoshim__Ttrpc__Response *resp = nanoshim__ttrpc__response__unpack(NULL, h->length, data);
        if (resp) {
                if (resp->status) {
                        FUZZ_ASSERT(resp->status->message);
                        (void)ttrpc_code_to_string(resp->status->code);
                }
                fuzz_protobuf_roundtrip(&resp->base);
                nanoshim__ttrpc__response__free_unpacked(resp, NULL);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
        if (size < 2)
                return 0;
        uint32_t max = limits[input[0] % (sizeof limits / sizeof limits[0])];
        uint32_t seed = 0x9e3779b9u ^ input[1];
        const uint8_t *buf = input + 2;
        size_t len = size - 2;

        /* A frame takes at least 10 bytes: len / 10 + 1 events at most. */
        size_t cap = len / TTRPC_HEADER_SIZE + 1;
        struct frame_event *want = calloc(cap, sizeof *want);
        FUZZ_ASSERT(want);
        /* ttrpc_decoder_init(0) means the default limit. */
        uint32_t eff_max = max ? max : TTRPC_MAX_MESSAGE;
        size_t n_want = reference_parse(buf, len, eff_max, want, cap);

        struct ttrpc_decoder d;
        ttrpc_decoder_init(&d, max);

        size_t off = 0, n_got = 0;
        while (off < len) {
                size_t chunk = 1 + xorshift(&seed) % 97;
                if (chunk > len - off)
                        chunk = len - off;
                const uint8_t *p = buf + off;
                size_t left = chunk;
                for (;;) {
                        size_t consumed = 0;
                        enum ttrpc_frame_kind kind;
                        struct ttrpc_header h;
                        uint8_t *data = NULL;
                        int r = ttrpc_decoder_feed(&d, p, left, &consumed, &kind, &h, &data);
                        FUZZ_ASSERT(r == 0);
                        FUZZ_ASSERT(consumed <= left);
                        p += consumed;
                        left -= consumed;
                        if (kind == TTRPC_FRAME_NONE) {
                                /* Nothing to report: it must have taken every byte. */
                                FUZZ_ASSERT(left == 0);
                                break;
                        }
                        FUZZ_ASSERT(n_got < n_want);
                        const struct frame_event *w = &want[n_got++];
                        FUZZ_ASSERT(kind == w->kind);
                        FUZZ_ASSERT(header_eq(&h, &w->h));
                        if (kind == TTRPC_FRAME_OK) {
                                FUZZ_ASSERT(h.length <= eff_max);
                                FUZZ_ASSERT(h.length == 0 || data);
                                if (h.length)
                                        FUZZ_ASSERT(memcmp(data, w->data, h.length) == 0);
                                uint8_t hdr[TTRPC_HEADER_SIZE];
                                struct ttrpc_header back;
                                ttrpc_header_encode(&h, hdr);
                                ttrpc_header_decode(hdr, &back);
                                FUZZ_ASSERT(header_eq(&back, &h));
                                decode_payload(&h, data);
                        } else
                                FUZZ_ASSERT(kind == TTRPC_FRAME_OVERSIZE && !data && h.length > eff_max);
                        free(data);
                        if (left == 0)
                                break;
                }
                off += chunk;
        }
        /* A trailing zero-length frame completes with no further bytes. */
        for (;;) {
                size_t consumed = 0;
                enum ttrpc_frame_kind kind;
                struct ttrpc_header h;
                uint8_t *data = NULL;
                FUZZ_ASSERT(ttrpc_decoder_feed(&d, NULL, 0, &consumed, &kind, &h, &data) == 0);
                FUZZ_ASSERT(consumed == 0);
                if (kind == TTRPC_FRAME_NONE)
                        break;
                FUZZ_ASSERT(n_got < n_want && kind == want[n_got].kind);
                n_got++;
                free(data);
        }
        FUZZ_ASSERT(n_got == n_want);
        ttrpc_decoder_done(&d);
        free(want);
        return 0;
}
