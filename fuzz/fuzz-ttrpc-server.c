/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the ttrpc server's connection layer fed from a real socket.
 *
 * One server listens on an abstract unix socket for the whole run. Each input is sent
 * by a fresh client connection, whose write side is then shut; the loop runs until the
 * server has dropped the connection. The dispatcher answers by the method's first
 * byte: echo the payload, an error, "unknown method", or not yet (those calls are
 * answered after the connection is gone, the orphaned-call path). Every answer the
 * server wrote must be a well-formed response frame on an odd stream. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "fuzz.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

#define MAX_PENDING 4096

static struct ev_loop *loop;
static struct ttrpc_server *server;
static struct sockaddr_un addr;
static socklen_t addr_len;
static struct ttrpc_call *pending[MAX_PENDING];
static size_t n_pending;

static void dispatch(struct ttrpc_call *call, void *userdata) {
        FUZZ_ASSERT(call->service && call->method && call->stream_id % 2 == 1);
        FUZZ_ASSERT(call->payload_len == 0 || call->payload);
        for (size_t i = 0; i < call->n_metadata; i++)
                FUZZ_ASSERT(ttrpc_call_metadata(call, call->metadata[i].key));
        switch (call->method[0] % 4) {
        case 0:
                ttrpc_call_reply_bytes(call, call->payload, call->payload_len);
                break;
        case 1:
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "%s/%s: not found", call->service, call->method);
                break;
        case 2:
                ttrpc_call_reply_unknown_method(call);
                break;
        default:
                if (n_pending < MAX_PENDING)
                        pending[n_pending++] = call;
                else
                        ttrpc_call_reply(call, NULL);
        }
}

static void setup(void) {
        loop = ev_loop_new(EVFLAG_AUTO);
        FUZZ_ASSERT(loop);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_ASSERT(fd >= 0);
        addr.sun_family = AF_UNIX;
        /* Abstract name: nothing on disk to clean up. */
        int n = snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "nanoshim-fuzz-ttrpc-%d", (int)getpid());
        addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        FUZZ_ASSERT(bind(fd, (struct sockaddr *)&addr, addr_len) == 0);
        FUZZ_ASSERT(listen(fd, 16) == 0);
        FUZZ_ASSERT(ttrpc_server_new(loop, fd, dispatch, NULL, NULL, &server) == 0);
}

/* Read what the server answered so far (non-blocking); false at EOF. */
static bool drain_answers(int fd, struct ttrpc_decoder *d) {
        uint8_t buf[65536];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0)
                        return false;
                if (n < 0) {
                        FUZZ_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET);
                        return errno != ECONNRESET;
                }
                size_t off = 0;
                while (off < (size_t)n) {
                        size_t used = 0;
                        enum ttrpc_frame_kind kind;
                        struct ttrpc_header h;
                        uint8_t *data = NULL;
                        FUZZ_ASSERT(ttrpc_decoder_feed(d, buf + off, (size_t)n - off, &used, &kind, &h, &data) == 0);
                        off += used;
                        if (kind == TTRPC_FRAME_NONE)
                                continue;
                        /* The server only ever writes responses within the size limit. */
                        FUZZ_ASSERT(kind == TTRPC_FRAME_OK && h.type == TTRPC_TYPE_RESPONSE);
                        Nanoshim__Ttrpc__Response *resp = nanoshim__ttrpc__response__unpack(NULL, h.length, data);
                        FUZZ_ASSERT(resp);
                        nanoshim__ttrpc__response__free_unpacked(resp, NULL);
                        free(data);
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!loop)
                setup();
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_ASSERT(fd >= 0);
        FUZZ_ASSERT(connect(fd, (struct sockaddr *)&addr, addr_len) == 0);
        /* The input fits the socket buffer (-max_len), so the write does not wait on the server. */
        size_t off = 0;
        while (off < size) {
                ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
                FUZZ_ASSERT(n > 0);
                off += (size_t)n;
        }
        FUZZ_ASSERT(shutdown(fd, SHUT_WR) == 0);

        struct ttrpc_decoder d;
        ttrpc_decoder_init(&d, 0);
        /* Accept, read everything, see EOF, close: a few loop rounds. */
        bool open = true;
        for (int round = 0; round < 10000; round++) {
                ev_run(loop, EVRUN_NOWAIT);
                open = drain_answers(fd, &d);
                if (!open && ttrpc_server_n_connections(server) == 0)
                        break;
        }
        FUZZ_ASSERT(!open && ttrpc_server_n_connections(server) == 0);
        ttrpc_decoder_done(&d);
        close(fd);

        /* Answers to a connection that is gone are dropped, and free the call. */
        for (size_t i = 0; i < n_pending; i++) {
                FUZZ_ASSERT(ttrpc_call_is_orphaned(pending[i]));
                ttrpc_call_reply(pending[i], NULL);
        }
        n_pending = 0;
        return 0;
}
