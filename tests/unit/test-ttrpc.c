/* SPDX-License-Identifier: Apache-2.0 */
/* ttrpc: the frame codec alone, then a server and clients over real unix sockets in one loop. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "task.pb-c.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

/* ---- codec ---- */

START_TEST(test_header_round_trip) {
        struct ttrpc_header h = { .length = 0x01020304, .stream_id = 0xa0b0c0d1, .type = 2, .flags = 0x80 };
        uint8_t b[TTRPC_HEADER_SIZE];
        ttrpc_header_encode(&h, b);
        static const uint8_t want[] = { 0x01, 0x02, 0x03, 0x04, 0xa0, 0xb0, 0xc0, 0xd1, 0x02, 0x80 };
        ck_assert_mem_eq(b, want, sizeof want);
        struct ttrpc_header back;
        ttrpc_header_decode(b, &back);
        ck_assert_uint_eq(back.length, h.length);
        ck_assert_uint_eq(back.stream_id, h.stream_id);
        ck_assert_uint_eq(back.type, h.type);
        ck_assert_uint_eq(back.flags, h.flags);
        ck_assert_str_eq(ttrpc_code_to_string(TTRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
        ck_assert_str_eq(ttrpc_code_to_string(99), "UNKNOWN");
}
END_TEST

/* Two frames back to back: sid 3 with 5 data bytes, then an empty sid 5 response. */
static const uint8_t two_frames[] = {
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 'h', 'e', 'l', 'l', 'o',
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x02, 0x00,
};

struct got_frame {
        enum ttrpc_frame_kind kind;
        struct ttrpc_header h;
        uint8_t *data;
};

/* Feeds buf in the given pieces, collecting frame events. Returns the number collected. */
static size_t feed_all(struct ttrpc_decoder *d, const uint8_t *buf, size_t len, size_t piece, struct got_frame *out,
                       size_t max_out) {
        size_t n = 0, off = 0;
        while (off < len) {
                size_t end = MIN(len, off + piece);
                while (off < end) {
                        size_t used = 0;
                        struct got_frame g = { 0 };
                        ck_assert_int_eq(ttrpc_decoder_feed(d, buf + off, end - off, &used, &g.kind, &g.h, &g.data), 0);
                        ck_assert_uint_le(used, end - off);
                        off += used;
                        if (g.kind != TTRPC_FRAME_NONE) {
                                ck_assert_uint_lt(n, max_out);
                                out[n++] = g;
                        } else
                                ck_assert_uint_eq(off, end); /* NONE only when the input is used up */
                }
        }
        return n;
}

static void check_two_frames(struct got_frame *g, size_t n) {
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(g[0].kind, TTRPC_FRAME_OK);
        ck_assert_uint_eq(g[0].h.length, 5);
        ck_assert_uint_eq(g[0].h.stream_id, 3);
        ck_assert_uint_eq(g[0].h.type, TTRPC_TYPE_REQUEST);
        ck_assert_mem_eq(g[0].data, "hello", 5);
        ck_assert_int_eq(g[1].kind, TTRPC_FRAME_OK);
        ck_assert_uint_eq(g[1].h.length, 0);
        ck_assert_uint_eq(g[1].h.stream_id, 5);
        ck_assert_uint_eq(g[1].h.type, TTRPC_TYPE_RESPONSE);
        free(g[0].data);
        free(g[1].data);
}

START_TEST(test_decoder_every_split) {
        for (size_t split = 0; split <= sizeof two_frames; split++) {
                struct ttrpc_decoder d;
                ttrpc_decoder_init(&d, TTRPC_MAX_MESSAGE);
                struct got_frame g[4];
                size_t n = feed_all(&d, two_frames, split, sizeof two_frames, g, 4);
                n += feed_all(&d, two_frames + split, sizeof two_frames - split, sizeof two_frames, g + n, 4 - n);
                check_two_frames(g, n);
                ck_assert_ptr_null(d.data);
                ttrpc_decoder_done(&d);
        }
        /* and one byte at a time */
        struct ttrpc_decoder d;
        ttrpc_decoder_init(&d, TTRPC_MAX_MESSAGE);
        struct got_frame g[4];
        check_two_frames(g, feed_all(&d, two_frames, sizeof two_frames, 1, g, 4));
        ttrpc_decoder_done(&d);
}
END_TEST

START_TEST(test_decoder_truncated) {
        for (size_t len = 0; len < 15; len++) { /* anything short of the first whole frame */
                struct ttrpc_decoder d;
                ttrpc_decoder_init(&d, TTRPC_MAX_MESSAGE);
                struct got_frame g[2];
                ck_assert_uint_eq(feed_all(&d, two_frames, len, len + 1, g, 2), 0);
                ttrpc_decoder_done(&d); /* frees a partial buffer (ASan checks) */
                ck_assert_ptr_null(d.data);
        }
}
END_TEST

START_TEST(test_decoder_oversize) {
        /* A 4 GiB header: must be refused from the header, with nothing allocated. */
        static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x07, 0x01, 0x00, 'x', 'y' };
        struct ttrpc_decoder d;
        ttrpc_decoder_init(&d, TTRPC_MAX_MESSAGE);
        size_t used = 0;
        enum ttrpc_frame_kind kind;
        struct ttrpc_header h;
        uint8_t *data = (uint8_t *)1;
        ck_assert_int_eq(ttrpc_decoder_feed(&d, huge, sizeof huge, &used, &kind, &h, &data), 0);
        ck_assert_int_eq(kind, TTRPC_FRAME_OVERSIZE);
        ck_assert_uint_eq(used, TTRPC_HEADER_SIZE);
        ck_assert_uint_eq(h.length, 0xffffffffu);
        ck_assert_uint_eq(h.stream_id, 7);
        ck_assert_ptr_null(data);
        ck_assert_ptr_null(d.data);
        ck_assert_uint_eq(d.skip, 0xffffffffu);
        ck_assert_int_eq(ttrpc_decoder_feed(&d, huge + used, sizeof huge - used, &used, &kind, &h, &data), 0);
        ck_assert_int_eq(kind, TTRPC_FRAME_NONE); /* silently discarded */
        ck_assert_uint_eq(used, 2);
        ck_assert_uint_eq(d.skip, 0xffffffffu - 2);
        ck_assert_ptr_null(d.data);
        ttrpc_decoder_done(&d);

        /* A small cap so the skip completes: oversize(len 9), 9 bytes skipped, then a frame. */
        static const uint8_t seq[] = { 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x09, 0x01, 0x00, '1', '2', '3', '4',
                                       '5',  '6',  '7',  '8',  '9',  0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0b,
                                       0x01, 0x00, 'o',  'k' };
        for (size_t piece = 1; piece <= sizeof seq; piece++) {
                ttrpc_decoder_init(&d, 8);
                struct got_frame g[4];
                size_t n = feed_all(&d, seq, sizeof seq, piece, g, 4);
                ck_assert_uint_eq(n, 2);
                ck_assert_int_eq(g[0].kind, TTRPC_FRAME_OVERSIZE);
                ck_assert_uint_eq(g[0].h.length, 9);
                ck_assert_uint_eq(g[0].h.stream_id, 9);
                ck_assert_ptr_null(g[0].data);
                ck_assert_int_eq(g[1].kind, TTRPC_FRAME_OK);
                ck_assert_uint_eq(g[1].h.stream_id, 11);
                ck_assert_uint_eq(g[1].h.length, 2);
                ck_assert_mem_eq(g[1].data, "ok", 2);
                ck_assert_uint_eq(d.skip, 0);
                free(g[1].data);
                ttrpc_decoder_done(&d);
        }
}
END_TEST

START_TEST(test_decoder_garbage_payload) {
        /* The codec does not look into data; the envelope decode is what rejects it. */
        static const uint8_t f[] = { 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff };
        struct ttrpc_decoder d;
        ttrpc_decoder_init(&d, TTRPC_MAX_MESSAGE);
        struct got_frame g[2];
        ck_assert_uint_eq(feed_all(&d, f, sizeof f, sizeof f, g, 2), 1);
        ck_assert_int_eq(g[0].kind, TTRPC_FRAME_OK);
        ck_assert_ptr_null(nanoshim__ttrpc__request__unpack(NULL, g[0].h.length, g[0].data));
        free(g[0].data);
        ttrpc_decoder_done(&d);
}
END_TEST

/* The worked frames of the reference, 4.6, decoded from the wire bytes. */
static const uint8_t connect_request_frame[] = {
        0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x0a, 0x17, 'c', 'o', 'n', 't', 'a', 'i',
        'n',  'e',  'r',  'd',  '.',  't',  'a',  's',  'k',  '.',  'v',  '2',  '.', 'T', 'a', 's', 'k', 0x12,
        0x07, 'C',  'o',  'n',  'n',  'e',  'c',  't',  0x1a, 0x08, 0x0a, 0x06, 't', 'r', '-', 'r', 'm', '1',
};
static const uint8_t connect_response_frame[] = { 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x02,
                                                  0x00, 0x12, 0x06, 0x08, 0xba, 0x4e, 0x10, 0xeb, 0x4e };
static const uint8_t empty_success_frame[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00 };
static const uint8_t create_response_frame[] = { 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01,
                                                 0x02, 0x00, 0x12, 0x03, 0x08, 0xeb, 0x4e };
static const uint8_t exec_dup_frame[] = { 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x1d, 0x02, 0x00, 0x0a, 0x1a,
                                          0x08, 0x06, 0x12, 0x16, 'i',  'd',  ' ',  'd',  'u',  'p',  ':',  ' ',
                                          'a',  'l',  'r',  'e',  'a',  'd',  'y',  ' ',  'e',  'x',  'i',  's',
                                          't',  's' };

static uint8_t *decode_one(const uint8_t *buf, size_t len, struct ttrpc_header *h) {
        struct ttrpc_decoder d;
        ttrpc_decoder_init(&d, TTRPC_MAX_MESSAGE);
        struct got_frame g[2];
        ck_assert_uint_eq(feed_all(&d, buf, len, len, g, 2), 1);
        ck_assert_int_eq(g[0].kind, TTRPC_FRAME_OK);
        ck_assert_uint_eq(g[0].h.length, len - TTRPC_HEADER_SIZE);
        ck_assert_uint_eq(g[0].h.flags, 0);
        ttrpc_decoder_done(&d);
        *h = g[0].h;
        return g[0].data;
}

START_TEST(test_worked_frames_decode) {
        struct ttrpc_header h;
        uint8_t *data = decode_one(connect_request_frame, sizeof connect_request_frame, &h);
        ck_assert_uint_eq(h.length, 44);
        ck_assert_uint_eq(h.stream_id, 3);
        ck_assert_uint_eq(h.type, TTRPC_TYPE_REQUEST);
        Nanoshim__Ttrpc__Request *req = nanoshim__ttrpc__request__unpack(NULL, h.length, data);
        ck_assert_ptr_nonnull(req);
        ck_assert_str_eq(req->service, "containerd.task.v2.Task");
        ck_assert_str_eq(req->method, "Connect");
        Nanoshim__Task__ConnectRequest *cr = nanoshim__task__connect_request__unpack(NULL, req->payload.len,
                                                                                     req->payload.data);
        ck_assert_ptr_nonnull(cr);
        ck_assert_str_eq(cr->id, "tr-rm1");
        nanoshim__task__connect_request__free_unpacked(cr, NULL);
        nanoshim__ttrpc__request__free_unpacked(req, NULL);
        free(data);

        data = decode_one(connect_response_frame, sizeof connect_response_frame, &h);
        ck_assert_uint_eq(h.stream_id, 3);
        ck_assert_uint_eq(h.type, TTRPC_TYPE_RESPONSE);
        Nanoshim__Ttrpc__Response *resp = nanoshim__ttrpc__response__unpack(NULL, h.length, data);
        ck_assert_ptr_nonnull(resp);
        ck_assert_ptr_null(resp->status);
        Nanoshim__Task__ConnectResponse *cresp =
                nanoshim__task__connect_response__unpack(NULL, resp->payload.len, resp->payload.data);
        ck_assert_uint_eq(cresp->shim_pid, 10042);
        ck_assert_uint_eq(cresp->task_pid, 10091);
        nanoshim__task__connect_response__free_unpacked(cresp, NULL);
        nanoshim__ttrpc__response__free_unpacked(resp, NULL);
        free(data);

        data = decode_one(empty_success_frame, sizeof empty_success_frame, &h);
        ck_assert_uint_eq(h.stream_id, 1);
        ck_assert_uint_eq(h.length, 0);
        free(data);

        data = decode_one(create_response_frame, sizeof create_response_frame, &h);
        ck_assert_uint_eq(h.stream_id, 1);
        resp = nanoshim__ttrpc__response__unpack(NULL, h.length, data);
        Nanoshim__Task__CreateTaskResponse *ct =
                nanoshim__task__create_task_response__unpack(NULL, resp->payload.len, resp->payload.data);
        ck_assert_uint_eq(ct->pid, 10091);
        nanoshim__task__create_task_response__free_unpacked(ct, NULL);
        nanoshim__ttrpc__response__free_unpacked(resp, NULL);
        free(data);

        data = decode_one(exec_dup_frame, sizeof exec_dup_frame, &h);
        ck_assert_uint_eq(h.stream_id, 0x1d);
        resp = nanoshim__ttrpc__response__unpack(NULL, h.length, data);
        ck_assert_ptr_nonnull(resp->status);
        ck_assert_int_eq(resp->status->code, TTRPC_ALREADY_EXISTS);
        ck_assert_str_eq(resp->status->message, "id dup: already exists");
        nanoshim__ttrpc__response__free_unpacked(resp, NULL);
        free(data);
}
END_TEST

/* @@CONN_TESTS@@ */

int main(void) {
        Suite *s = suite_create("ttrpc");
        TCase *tc = tcase_create("codec");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_header_round_trip);
        tcase_add_test(tc, test_decoder_every_split);
        tcase_add_test(tc, test_decoder_truncated);
        tcase_add_test(tc, test_decoder_oversize);
        tcase_add_test(tc, test_decoder_garbage_payload);
        tcase_add_test(tc, test_worked_frames_decode);
        suite_add_tcase(s, tc);
        /* @@CONN_TCASE@@ */
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
