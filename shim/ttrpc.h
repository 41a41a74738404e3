/* SPDX-License-Identifier: Apache-2.0 */
/* ttrpc (v1.1 wire format) over non-blocking unix sockets on libev.
 *
 * Frame: 10-byte header {u32 length, u32 stream_id, u8 type, u8 flags}, big-endian,
 * then `length` bytes (a ttrpc Request or Response message). Data larger than
 * TTRPC_MAX_MESSAGE is never allocated: it is skipped and the stream answered with
 * RESOURCE_EXHAUSTED; the connection stays up.
 *
 * Server: every decoded request goes to one dispatch function as a struct ttrpc_call;
 * the handler answers now or later (ttrpc_call_reply*), in any order, any number in
 * flight per connection. Client: calls with their own odd stream ids, completions in
 * any order. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "status-code.h"

#define TTRPC_HEADER_SIZE 10
#define TTRPC_MAX_MESSAGE (4u << 20)
#define TTRPC_TYPE_REQUEST 0x01
#define TTRPC_TYPE_RESPONSE 0x02

const char *ttrpc_code_to_string(int code);

/* ---- frame codec (pure, no I/O) ---- */
struct ttrpc_header {
        uint32_t length;
        uint32_t stream_id;
        uint8_t type;
        uint8_t flags;
};
void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_SIZE]);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], struct ttrpc_header *ret);

/* Incremental decoder: feed bytes as they arrive, take frames out. */
struct ttrpc_decoder {
        uint8_t hdr[TTRPC_HEADER_SIZE];
        size_t hdr_len;
        struct ttrpc_header cur;
        uint8_t *data;  /* allocated only once the header said length <= max */
        size_t data_len;
        uint32_t skip;  /* bytes of an oversize frame still to discard */
        uint32_t max;   /* TTRPC_MAX_MESSAGE unless a test sets less */
};
enum ttrpc_frame_kind {
        TTRPC_FRAME_NONE,     /* need more bytes */
        TTRPC_FRAME_OK,       /* a whole frame: header + data (owned by the caller, free()) */
        TTRPC_FRAME_OVERSIZE, /* header of a frame too large; its data is being skipped */
};
void ttrpc_decoder_init(struct ttrpc_decoder *d, uint32_t max);
void ttrpc_decoder_done(struct ttrpc_decoder *d);
/* Consumes up to len bytes from buf (*consumed says how many) and stops at the end of
 * the first frame event. Call again with the rest. -ENOMEM on allocation failure. */
int ttrpc_decoder_feed(struct ttrpc_decoder *d, const uint8_t *buf, size_t len, size_t *consumed,
                       enum ttrpc_frame_kind *ret_kind, struct ttrpc_header *ret_header,
                       uint8_t **ret_data);

/* ---- connections ---- */
struct ttrpc_conn;
struct ttrpc_server;
struct ttrpc_client;

struct ttrpc_kv {
        const char *key;
        const char *value;
};

/* One request being served. The strings and payload stay valid until the call is
 * answered. If the connection is gone by then, the answer is dropped silently. */
struct ttrpc_call {
        struct ttrpc_conn *conn;
        uint32_t stream_id;
        const char *service;
        const char *method;
        const uint8_t *payload;
        size_t payload_len;
        int64_t timeout_nano;
        size_t n_metadata;
        const struct ttrpc_kv *metadata;
        pid_t peer_pid;
        uid_t peer_uid;
        void *internal;
};
/* Look up a metadata value by key, NULL if absent. */
const char *ttrpc_call_metadata(const struct ttrpc_call *call, const char *key);
/* Answer and free the call. msg may be NULL for an empty payload (google.protobuf.Empty). */
void ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *msg);
void ttrpc_call_reply_bytes(struct ttrpc_call *call, const uint8_t *payload, size_t len);
void ttrpc_call_reply_error(struct ttrpc_call *call, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* One-line answers for dispatchers: UNIMPLEMENTED "service <service>" / "method <method>",
 * as the Go ttrpc server words them. */
void ttrpc_call_reply_unknown_service(struct ttrpc_call *call);
void ttrpc_call_reply_unknown_method(struct ttrpc_call *call);
/* True if the connection the call came on has closed (the answer would be dropped). */
bool ttrpc_call_is_orphaned(const struct ttrpc_call *call);

/* Handler for every decoded request. Unknown service/method: answer
 * ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, ...). */
typedef void (*ttrpc_dispatch_fn)(struct ttrpc_call *call, void *userdata);
/* Decides whether an accepted peer may talk to us (SO_PEERCRED); NULL =
 * ttrpc_peer_same_user(). */
typedef bool (*ttrpc_peer_ok_fn)(pid_t pid, uid_t uid, gid_t gid, void *userdata);
/* ttrpc's same-user rule (UnixSocketRequireSameUser): the peer's uid AND gid are our
 * effective uid and gid; root with another gid is refused too. */
bool ttrpc_peer_same_user(pid_t pid, uid_t uid, gid_t gid, void *userdata);

/* Serve on an already listening socket (ownership of listen_fd moves to the server). */
int ttrpc_server_new(struct ev_loop *loop, int listen_fd, ttrpc_dispatch_fn dispatch,
                     ttrpc_peer_ok_fn peer_ok, void *userdata, struct ttrpc_server **ret);
/* Closes the listener and every connection; outstanding calls become orphaned. */
struct ttrpc_server *ttrpc_server_free(struct ttrpc_server *s);
size_t ttrpc_server_n_connections(const struct ttrpc_server *s);
/* Stop accepting (keep serving existing connections). */
void ttrpc_server_stop_listening(struct ttrpc_server *s);

/* Client: code 0 = OK (resp/resp_len = the response payload, valid during the callback);
 * otherwise a gRPC code with message (connection errors: TTRPC_UNAVAILABLE). */
typedef void (*ttrpc_client_done_fn)(int code, const char *message, const uint8_t *resp, size_t resp_len,
                                     void *userdata);
/* Connect to a unix socket path (non-blocking; a "unix://" prefix is stripped). */
int ttrpc_client_connect(struct ev_loop *loop, const char *path, struct ttrpc_client **ret);
/* Called once when the connection closes (after failing outstanding calls). */
void ttrpc_client_on_close(struct ttrpc_client *c, void (*fn)(struct ttrpc_client *, void *), void *userdata);
int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
                      const ProtobufCMessage *msg, int64_t timeout_nano, const struct ttrpc_kv *metadata,
                      size_t n_metadata, ttrpc_client_done_fn done, void *userdata);
int ttrpc_client_call_bytes(struct ttrpc_client *c, const char *service, const char *method,
                            const uint8_t *payload, size_t len, int64_t timeout_nano,
                            const struct ttrpc_kv *metadata, size_t n_metadata, ttrpc_client_done_fn done,
                            void *userdata);
bool ttrpc_client_is_closed(const struct ttrpc_client *c);
/* Fails outstanding calls with TTRPC_CANCELLED (their callbacks run) and frees. */
struct ttrpc_client *ttrpc_client_free(struct ttrpc_client *c);
