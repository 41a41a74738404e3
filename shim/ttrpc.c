/* SPDX-License-Identifier: Apache-2.0 */
/* ttrpc connections on libev: the server (containerd -> shim, Task service) and the
 * client (shim -> containerd, events Forward). Both share one connection object: a
 * non-blocking unix socket, an incremental frame decoder and a bounded output queue.
 *
 * Lifetime: a connection is reference counted. The server's list holds one reference,
 * each outstanding call one, the client one, and the read callback one while it runs
 * (dispatch may free the server or the client under it). Closing a connection closes
 * the fd at once; the object lives on until its last reference goes, so answering a
 * call whose peer is gone just frees the call. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

/* Answers queued for a peer that does not read: beyond this the peer is cut off. Room
 * for a few maximal frames, so one large legitimate answer never trips it. */
#define TTRPC_OUTQ_MAX (4 * (size_t)(TTRPC_MAX_MESSAGE + TTRPC_HEADER_SIZE))
/* Requests being served on one connection at once; more get RESOURCE_EXHAUSTED. */
#define TTRPC_MAX_CALLS 1024
/* One recv() per wakeup, into the stack: requests and replies are a few hundred bytes to
 * a few KiB, a bigger frame just takes more wakeups (the decoder gathers it). A larger
 * buffer would push every handler called from here that much deeper into the stack,
 * pages each shim then keeps for its whole life. */
#define TTRPC_READ_CHUNK 4096

struct outbuf {
        struct outbuf *next;
        size_t len;
        size_t off;
        uint8_t data[];
};

struct ttrpc_conn {
        struct ev_loop *loop;
        unsigned refs;
        int fd;
        bool closed;
        bool connecting; /* client: non-blocking connect still in progress */
        int write_error; /* a send failed; closed from the loop, not under the caller */
        ev_io io_read;
        ev_io io_write;
        struct ttrpc_decoder dec;
        struct outbuf *out_head, *out_tail;
        size_t out_bytes;

        /* exactly one of these while open */
        struct ttrpc_server *server;
        struct ttrpc_client *client;
        struct ttrpc_conn *prev, *next; /* in server->conns */

        size_t n_calls;
        pid_t peer_pid;
        uid_t peer_uid;
        gid_t peer_gid;
};

struct ttrpc_server {
        struct ev_loop *loop;
        int listen_fd;
        ev_io io_accept;
        ev_timer accept_retry; /* after EMFILE & co: pause instead of spinning */
        bool listening;
        ttrpc_dispatch_fn dispatch;
        ttrpc_peer_ok_fn peer_ok;
        void *userdata;
        struct ttrpc_conn *conns;
        size_t n_conns;
};

struct server_call {
        struct ttrpc_call pub;
        Nanoshim__Ttrpc__Request *req;
        struct ttrpc_kv *md;
};

struct client_call {
        struct client_call *prev, *next;
        struct ttrpc_client *client;
        uint32_t stream_id;
        ev_timer timer;
        ttrpc_client_done_fn done;
        void *userdata;
};

struct ttrpc_client {
        struct ev_loop *loop;
        unsigned refs;
        bool closed;
        bool freed;
        struct ttrpc_conn *conn;
        uint32_t next_stream_id;
        struct client_call *calls;
        void (*on_close)(struct ttrpc_client *, void *);
        void *on_close_userdata;
};

static void on_conn_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_conn_write(struct ev_loop *loop, ev_io *w, int revents);
static void client_closed(struct ttrpc_client *c);
static void client_unref(struct ttrpc_client *c);

/* ---- connection object ---- */

static struct ttrpc_conn *conn_new(struct ev_loop *loop, int fd) {
        struct ttrpc_conn *conn = calloc(1, sizeof *conn);
        if (!conn)
                return NULL;
        conn->loop = loop;
        conn->refs = 1;
        conn->fd = fd;
        conn->peer_pid = -1;
        conn->peer_uid = (uid_t)-1;
        conn->peer_gid = (gid_t)-1;
        ttrpc_decoder_init(&conn->dec, TTRPC_MAX_MESSAGE);
        ev_io_init(&conn->io_read, on_conn_read, fd, EV_READ);
        ev_io_init(&conn->io_write, on_conn_write, fd, EV_WRITE);
        conn->io_read.data = conn;
        conn->io_write.data = conn;
        return conn;
}

static void conn_drop_output(struct ttrpc_conn *conn) {
        while (conn->out_head) {
                struct outbuf *b = conn->out_head;
                conn->out_head = b->next;
                free(b);
        }
        conn->out_tail = NULL;
        conn->out_bytes = 0;
}

/* Stops I/O and closes the fd; the object stays until its last reference. */
static void conn_shutdown(struct ttrpc_conn *conn) {
        if (conn->closed)
                return;
        conn->closed = true;
        ev_io_stop(conn->loop, &conn->io_read);
        ev_io_stop(conn->loop, &conn->io_write);
        ev_clear_pending(conn->loop, &conn->io_read);
        ev_clear_pending(conn->loop, &conn->io_write);
        conn->fd = safe_close(conn->fd);
        conn_drop_output(conn);
        ttrpc_decoder_done(&conn->dec);
}

static struct ttrpc_conn *conn_ref(struct ttrpc_conn *conn) {
        conn->refs++;
        return conn;
}

static void conn_unref(struct ttrpc_conn *conn) {
        if (!conn || --conn->refs > 0)
                return;
        conn_shutdown(conn);
        free(conn);
}

static void server_unlink_conn(struct ttrpc_server *s, struct ttrpc_conn *conn) {
        if (conn->prev)
                conn->prev->next = conn->next;
        else
                s->conns = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        conn->prev = conn->next = NULL;
        conn->server = NULL;
        s->n_conns--;
}

/* The connection ended (EOF, error, refused, or queue overflow). For the server this
 * orphans outstanding calls; for the client it fails them and runs on_close. */
static void conn_close(struct ttrpc_conn *conn) {
        if (conn->closed)
                return;
        conn_shutdown(conn);
        if (conn->server) {
                server_unlink_conn(conn->server, conn);
                conn_unref(conn); /* the server list's reference */
        } else if (conn->client)
                client_closed(conn->client);
}

/* Writes what the socket takes. 0 (all written or would block) or -errno. */
static int conn_flush(struct ttrpc_conn *conn) {
        while (conn->out_head) {
                struct outbuf *b = conn->out_head;
                ssize_t n = send(conn->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                ev_io_start(conn->loop, &conn->io_write);
                                return 0;
                        }
                        return -errno;
                }
                b->off += (size_t)n;
                conn->out_bytes -= (size_t)n;
                if (b->off < b->len)
                        continue;
                conn->out_head = b->next;
                if (!conn->out_head)
                        conn->out_tail = NULL;
                free(b);
        }
        ev_io_stop(conn->loop, &conn->io_write);
        return 0;
}

/* Packs header + envelope into one buffer and queues it. Never blocks and never closes
 * the connection under the caller: a failed write is handled from the loop. */
static int conn_send(struct ttrpc_conn *conn, uint32_t stream_id, uint8_t type, const ProtobufCMessage *env) {
        if (conn->closed)
                return -ENOTCONN;

        size_t len = protobuf_c_message_get_packed_size(env);
        if (len > TTRPC_MAX_MESSAGE)
                return -EMSGSIZE;
        if (conn->out_bytes + TTRPC_HEADER_SIZE + len > TTRPC_OUTQ_MAX)
                return -ENOBUFS;

        struct outbuf *b = malloc(sizeof *b + TTRPC_HEADER_SIZE + len);
        if (!b)
                return -ENOMEM;
        struct ttrpc_header h = { .length = (uint32_t)len, .stream_id = stream_id, .type = type };
        ttrpc_header_encode(&h, b->data);
        protobuf_c_message_pack(env, b->data + TTRPC_HEADER_SIZE);
        b->next = NULL;
        b->len = TTRPC_HEADER_SIZE + len;
        b->off = 0;
        if (conn->out_tail)
                conn->out_tail->next = b;
        else
                conn->out_head = b;
        conn->out_tail = b;
        conn->out_bytes += b->len;

        if (conn->connecting || conn->write_error)
                return 0; /* the write watcher takes over */
        int r = conn_flush(conn);
        if (r < 0) {
                conn->write_error = r;
                ev_io_start(conn->loop, &conn->io_write);
                ev_feed_event(conn->loop, &conn->io_write, EV_WRITE);
        }
        return 0;
}

static int conn_send_status(struct ttrpc_conn *conn, uint32_t stream_id, int code, const char *message) {
        Nanoshim__Ttrpc__Status st = NANOSHIM__TTRPC__STATUS__INIT;
        Nanoshim__Ttrpc__Response resp = NANOSHIM__TTRPC__RESPONSE__INIT;
        st.code = code;
        st.message = (char *)message;
        resp.status = &st;
        return conn_send(conn, stream_id, TTRPC_TYPE_RESPONSE, &resp.base);
}

static void on_conn_write(struct ev_loop *loop, ev_io *w, int revents) {
        struct ttrpc_conn *conn = w->data;

        if (conn->closed)
                return;
        if (conn->connecting) {
                int err = 0;
                socklen_t sl = sizeof err;
                if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                        err = errno;
                if (err != 0) {
                        log_debug_errno(-err, "ttrpc: connect failed: %m");
                        conn_close(conn);
                        return;
                }
                conn->connecting = false;
                ev_io_start(loop, &conn->io_read);
        }
        int r = conn->write_error;
        if (r == 0)
                r = conn_flush(conn);
        if (r < 0) {
                log_debug_errno(r, "ttrpc: write failed, closing connection: %m");
                conn_close(conn);
        }
}

static void server_handle_frame(struct ttrpc_conn *conn, enum ttrpc_frame_kind kind,
                                const struct ttrpc_header *h, uint8_t *data);
static void client_handle_frame(struct ttrpc_client *c, enum ttrpc_frame_kind kind,
                                const struct ttrpc_header *h, uint8_t *data);

static void on_conn_read(struct ev_loop *loop, ev_io *w, int revents) {
        struct ttrpc_conn *conn = w->data;
        uint8_t buf[TTRPC_READ_CHUNK];

        ssize_t n = recv(conn->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                        return;
                log_debug_errno(-errno, "ttrpc: read failed, closing connection: %m");
                conn_close(conn);
                return;
        }
        if (n == 0) {
                conn_close(conn);
                return;
        }

        /* Handlers may close the connection, free the server or free the client. */
        conn_ref(conn);
        struct ttrpc_client *c = conn->client;
        if (c)
                c->refs++;

        size_t off = 0;
        while (off < (size_t)n && !conn->closed) {
                size_t used = 0;
                enum ttrpc_frame_kind kind;
                struct ttrpc_header h;
                uint8_t *data = NULL;
                int r = ttrpc_decoder_feed(&conn->dec, buf + off, (size_t)n - off, &used, &kind, &h, &data);
                off += used;
                if (r < 0) {
                        log_debug_errno(r, "ttrpc: cannot buffer frame, closing connection: %m");
                        conn_close(conn);
                        break;
                }
                if (kind == TTRPC_FRAME_NONE)
                        continue;
                if (conn->server)
                        server_handle_frame(conn, kind, &h, data);
                else if (c && !c->freed)
                        client_handle_frame(c, kind, &h, data);
                else
                        free(data);
        }

        if (c)
                client_unref(c);
        conn_unref(conn);
}

/* ---- server ---- */

static struct server_call *server_call_of(const struct ttrpc_call *call) {
        return call->internal;
}

static void server_call_free(struct server_call *sc) {
        if (!sc)
                return;
        struct ttrpc_conn *conn = sc->pub.conn;
        if (sc->req)
                nanoshim__ttrpc__request__free_unpacked(sc->req, NULL);
        free(sc->md);
        free(sc);
        if (conn) {
                conn->n_calls--;
                conn_unref(conn);
        }
}

const char *ttrpc_call_metadata(const struct ttrpc_call *call, const char *key) {
        for (size_t i = 0; i < call->n_metadata; i++)
                if (strcmp(call->metadata[i].key, key) == 0)
                        return call->metadata[i].value;
        return NULL;
}

bool ttrpc_call_is_orphaned(const struct ttrpc_call *call) {
        return call->conn->closed;
}

static void call_send_and_free(struct ttrpc_call *call, const ProtobufCMessage *resp) {
        struct server_call *sc = server_call_of(call);
        struct ttrpc_conn *conn = call->conn;

        if (!conn->closed) {
                int r = conn_send(conn, call->stream_id, TTRPC_TYPE_RESPONSE, resp);
                if (r == -EMSGSIZE) {
                        /* Our answer is larger than any peer accepts: say so instead. */
                        char msg[96];
                        snprintf(msg, sizeof msg, "message length %zu exceed maximum message size of %u",
                                 protobuf_c_message_get_packed_size(resp), TTRPC_MAX_MESSAGE);
                        r = conn_send_status(conn, call->stream_id, TTRPC_RESOURCE_EXHAUSTED, msg);
                }
                if (r == -ENOBUFS) {
                        log_debug("ttrpc: peer does not read its answers, closing connection");
                        conn_close(conn);
                } else if (r < 0)
                        log_debug_errno(r, "ttrpc: cannot answer stream %u: %m", call->stream_id);
        }
        server_call_free(sc);
}

void ttrpc_call_reply_bytes(struct ttrpc_call *call, const uint8_t *payload, size_t len) {
        Nanoshim__Ttrpc__Response resp = NANOSHIM__TTRPC__RESPONSE__INIT;
        resp.payload.data = (uint8_t *)payload;
        resp.payload.len = payload ? len : 0;
        call_send_and_free(call, &resp.base);
}

void ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *msg) {
        if (!msg) {
                ttrpc_call_reply_bytes(call, NULL, 0);
                return;
        }
        size_t len = protobuf_c_message_get_packed_size(msg);
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
                ttrpc_call_reply_error(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        protobuf_c_message_pack(msg, buf);
        ttrpc_call_reply_bytes(call, buf, len);
}

void ttrpc_call_reply_error(struct ttrpc_call *call, int code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);

        Nanoshim__Ttrpc__Status st = NANOSHIM__TTRPC__STATUS__INIT;
        Nanoshim__Ttrpc__Response resp = NANOSHIM__TTRPC__RESPONSE__INIT;
        /* code 0 would read as success on the other side */
        st.code = code != TTRPC_OK ? code : TTRPC_UNKNOWN;
        st.message = msg ? msg : (char *)"";
        resp.status = &st;
        call_send_and_free(call, &resp.base);
}

void ttrpc_call_reply_unknown_service(struct ttrpc_call *call) {
        ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "service %s", call->service);
}

void ttrpc_call_reply_unknown_method(struct ttrpc_call *call) {
        ttrpc_call_reply_error(call, TTRPC_UNIMPLEMENTED, "method %s", call->method);
}

/* A status the ttrpc layer itself answers with. A peer that keeps sending bad frames but
 * reads none of our answers is cut off here, as in call_send_and_free(). */
static void server_send_status(struct ttrpc_conn *conn, uint32_t stream_id, int code, const char *message) {
        int r = conn_send_status(conn, stream_id, code, message);
        if (r == -ENOBUFS) {
                log_debug("ttrpc: peer does not read its answers, closing connection");
                conn_close(conn);
        } else if (r < 0)
                log_debug_errno(r, "ttrpc: cannot answer stream %u: %m", stream_id);
}

static void server_handle_frame(struct ttrpc_conn *conn, enum ttrpc_frame_kind kind,
                                const struct ttrpc_header *h, uint8_t *data) {
        _cleanup_free_ _unused_ uint8_t *owned = data;
        struct ttrpc_server *s = conn->server;
        char msg[96];

        if (kind == TTRPC_FRAME_OVERSIZE) {
                snprintf(msg, sizeof msg, "message length %u exceed maximum message size of %u", h->length,
                         TTRPC_MAX_MESSAGE);
                server_send_status(conn, h->stream_id, TTRPC_RESOURCE_EXHAUSTED, msg);
                return;
        }
        if (h->type != TTRPC_TYPE_REQUEST)
                return; /* unknown frame types are ignored (ttrpc forward compatibility) */

        Nanoshim__Ttrpc__Request *req = nanoshim__ttrpc__request__unpack(NULL, h->length, data);
        if (!req) {
                server_send_status(conn, h->stream_id, TTRPC_INVALID_ARGUMENT,
                                       "unmarshal request error: cannot decode ttrpc.Request");
                return;
        }
        if (h->stream_id % 2 != 1) {
                nanoshim__ttrpc__request__free_unpacked(req, NULL);
                server_send_status(conn, h->stream_id, TTRPC_INVALID_ARGUMENT,
                                       "StreamID must be odd for client initiated streams");
                return;
        }
        if (conn->n_calls >= TTRPC_MAX_CALLS) {
                nanoshim__ttrpc__request__free_unpacked(req, NULL);
                server_send_status(conn, h->stream_id, TTRPC_RESOURCE_EXHAUSTED,
                                       "too many requests in flight on this connection");
                return;
        }

        struct server_call *sc = calloc(1, sizeof *sc);
        struct ttrpc_kv *md = req->n_metadata > 0 ? calloc(req->n_metadata, sizeof *md) : NULL;
        if (!sc || (req->n_metadata > 0 && !md)) {
                free(sc);
                free(md);
                nanoshim__ttrpc__request__free_unpacked(req, NULL);
                server_send_status(conn, h->stream_id, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        for (size_t i = 0; i < req->n_metadata; i++)
                md[i] = (struct ttrpc_kv){ req->metadata[i]->key, req->metadata[i]->value };

        sc->req = req;
        sc->md = md;
        sc->pub = (struct ttrpc_call){
                .conn = conn_ref(conn),
                .stream_id = h->stream_id,
                .service = req->service,
                .method = req->method,
                .payload = req->payload.data,
                .payload_len = req->payload.len,
                .timeout_nano = req->timeout_nano,
                .n_metadata = req->n_metadata,
                .metadata = md,
                .peer_pid = conn->peer_pid,
                .peer_uid = conn->peer_uid,
                .internal = sc,
        };
        conn->n_calls++;
        s->dispatch(&sc->pub, s->userdata);
}

bool ttrpc_peer_same_user(pid_t pid, uid_t uid, gid_t gid, void *userdata) {
        return uid == geteuid() && gid == getegid();
}

static void server_accept_one(struct ttrpc_server *s, int fd) {
        _cleanup_close_ int cfd = fd;
        struct ucred cred;
        socklen_t sl = sizeof cred;

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0) {
                log_debug_errno(-errno, "ttrpc: SO_PEERCRED failed, refusing peer: %m");
                return;
        }
        ttrpc_peer_ok_fn ok = s->peer_ok ? s->peer_ok : ttrpc_peer_same_user;
        if (!ok(cred.pid, cred.uid, cred.gid, s->userdata)) {
                log_debug("ttrpc: refusing peer pid=%d uid=%u gid=%u", (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid);
                return;
        }

        struct ttrpc_conn *conn = conn_new(s->loop, cfd);
        if (!conn)
                return;
        take_fd(&cfd);
        conn->peer_pid = cred.pid;
        conn->peer_uid = cred.uid;
        conn->peer_gid = cred.gid;
        conn->server = s;
        conn->next = s->conns;
        if (s->conns)
                s->conns->prev = conn;
        s->conns = conn;
        s->n_conns++;
        ev_io_start(s->loop, &conn->io_read);
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents) {
        struct ttrpc_server *s = w->data;
        if (s->listening)
                ev_io_start(loop, &s->io_accept);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
        struct ttrpc_server *s = w->data;

        for (int i = 0; i < 64; i++) {
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        /* EMFILE, ENOBUFS...: back off rather than spin on a ready listener. */
                        log_debug_errno(-errno, "ttrpc: accept failed, pausing: %m");
                        ev_io_stop(loop, &s->io_accept);
                        ev_timer_stop(loop, &s->accept_retry);
                        ev_timer_set(&s->accept_retry, 0.1, 0.);
                        ev_timer_start(loop, &s->accept_retry);
                        return;
                }
                server_accept_one(s, fd);
        }
}

int ttrpc_server_new(struct ev_loop *loop, int listen_fd, ttrpc_dispatch_fn dispatch,
                     ttrpc_peer_ok_fn peer_ok, void *userdata, struct ttrpc_server **ret) {
        _cleanup_close_ int fd = listen_fd;

        if (!loop || listen_fd < 0 || !dispatch || !ret)
                return -EINVAL;
        int r = fd_set_nonblock(fd, true);
        if (r < 0)
                return r;
        r = fd_set_cloexec(fd, true);
        if (r < 0)
                return r;

        struct ttrpc_server *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->listen_fd = take_fd(&fd);
        s->dispatch = dispatch;
        s->peer_ok = peer_ok;
        s->userdata = userdata;
        ev_io_init(&s->io_accept, on_accept, s->listen_fd, EV_READ);
        s->io_accept.data = s;
        ev_timer_init(&s->accept_retry, on_accept_retry, 0.1, 0.);
        s->accept_retry.data = s;
        s->listening = true;
        ev_io_start(loop, &s->io_accept);
        *ret = s;
        return 0;
}

void ttrpc_server_stop_listening(struct ttrpc_server *s) {
        if (!s || !s->listening)
                return;
        s->listening = false;
        ev_io_stop(s->loop, &s->io_accept);
        ev_timer_stop(s->loop, &s->accept_retry);
        s->listen_fd = close_keep_std(s->listen_fd); /* the daemon's is on stdin */
}

size_t ttrpc_server_n_connections(const struct ttrpc_server *s) {
        return s ? s->n_conns : 0;
}

struct ttrpc_server *ttrpc_server_free(struct ttrpc_server *s) {
        if (!s)
                return NULL;
        ttrpc_server_stop_listening(s);
        while (s->conns)
                conn_close(s->conns);
        free(s);
        return NULL;
}

/* ---- client ---- */

static void client_call_unlink(struct ttrpc_client *c, struct client_call *cc) {
        if (cc->prev)
                cc->prev->next = cc->next;
        else
                c->calls = cc->next;
        if (cc->next)
                cc->next->prev = cc->prev;
        cc->prev = cc->next = NULL;
        ev_timer_stop(c->loop, &cc->timer);
}

/* Unlinks, runs the callback, frees. The callback may do anything with the client. */
static void client_call_complete(struct ttrpc_client *c, struct client_call *cc, int code, const char *message,
                                 const uint8_t *resp, size_t resp_len) {
        client_call_unlink(c, cc);
        ttrpc_client_done_fn done = cc->done;
        void *userdata = cc->userdata;
        free(cc);
        if (done)
                done(code, message, resp, resp_len, userdata);
}

static void client_fail_all(struct ttrpc_client *c, int code, const char *message) {
        while (c->calls)
                client_call_complete(c, c->calls, code, message, NULL, 0);
}

static void client_closed(struct ttrpc_client *c) {
        if (c->closed)
                return;
        c->closed = true;
        c->refs++;
        client_fail_all(c, TTRPC_UNAVAILABLE, "ttrpc: closed");
        if (c->on_close && !c->freed)
                c->on_close(c, c->on_close_userdata);
        client_unref(c);
}

static struct client_call *client_find_call(struct ttrpc_client *c, uint32_t stream_id) {
        for (struct client_call *cc = c->calls; cc; cc = cc->next)
                if (cc->stream_id == stream_id)
                        return cc;
        return NULL;
}

static void client_handle_frame(struct ttrpc_client *c, enum ttrpc_frame_kind kind,
                                const struct ttrpc_header *h, uint8_t *data) {
        _cleanup_free_ _unused_ uint8_t *owned = data;

        if (h->type != TTRPC_TYPE_RESPONSE && kind != TTRPC_FRAME_OVERSIZE)
                return;
        struct client_call *cc = client_find_call(c, h->stream_id);
        if (!cc)
                return; /* timed out already, or never ours */

        if (kind == TTRPC_FRAME_OVERSIZE) {
                char msg[96];
                snprintf(msg, sizeof msg, "message length %u exceed maximum message size of %u", h->length,
                         TTRPC_MAX_MESSAGE);
                client_call_complete(c, cc, TTRPC_RESOURCE_EXHAUSTED, msg, NULL, 0);
                return;
        }

        Nanoshim__Ttrpc__Response *resp = nanoshim__ttrpc__response__unpack(NULL, h->length, data);
        if (!resp) {
                client_call_complete(c, cc, TTRPC_INTERNAL, "ttrpc: cannot decode response", NULL, 0);
                return;
        }
        if (resp->status && resp->status->code != TTRPC_OK)
                client_call_complete(c, cc, resp->status->code, resp->status->message, NULL, 0);
        else
                client_call_complete(c, cc, TTRPC_OK, NULL, resp->payload.data, resp->payload.len);
        nanoshim__ttrpc__response__free_unpacked(resp, NULL);
}

static void on_call_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
        struct client_call *cc = w->data;
        struct ttrpc_client *c = cc->client;
        c->refs++;
        client_call_complete(c, cc, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded", NULL, 0);
        client_unref(c);
}

int ttrpc_client_connect(struct ev_loop *loop, const char *path, struct ttrpc_client **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (!loop || !path || !ret)
                return -EINVAL;
        if (strncmp(path, "unix://", 7) == 0)
                path += 7;
        size_t plen = strlen(path);
        if (plen == 0 || plen >= sizeof sa.sun_path)
                return -EINVAL;
        memcpy(sa.sun_path, path, plen);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        bool pending = false;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                if (errno != EINPROGRESS)
                        return -errno; /* incl. EAGAIN: listener backlog full, caller retries */
                pending = true;
        }

        struct ttrpc_client *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        struct ttrpc_conn *conn = conn_new(loop, fd);
        if (!conn) {
                free(c);
                return -ENOMEM;
        }
        take_fd(&fd);
        c->loop = loop;
        c->refs = 1;
        c->conn = conn;
        c->next_stream_id = 1;
        conn->client = c;
        conn->connecting = pending;
        if (pending)
                ev_io_start(loop, &conn->io_write);
        else
                ev_io_start(loop, &conn->io_read);
        *ret = c;
        return 0;
}

void ttrpc_client_on_close(struct ttrpc_client *c, void (*fn)(struct ttrpc_client *, void *), void *userdata) {
        c->on_close = fn;
        c->on_close_userdata = userdata;
}

bool ttrpc_client_is_closed(const struct ttrpc_client *c) {
        return !c || c->closed || c->freed;
}

int ttrpc_client_call_bytes(struct ttrpc_client *c, const char *service, const char *method,
                            const uint8_t *payload, size_t len, int64_t timeout_nano,
                            const struct ttrpc_kv *metadata, size_t n_metadata, ttrpc_client_done_fn done,
                            void *userdata) {
        if (!c || !service || !method || (len > 0 && !payload) || (n_metadata > 0 && !metadata))
                return -EINVAL;
        if (c->closed || c->freed)
                return -ENOTCONN;

        Nanoshim__Ttrpc__KeyValue *kv = NULL;
        _cleanup_free_ Nanoshim__Ttrpc__KeyValue **kvp = NULL;
        _cleanup_free_ Nanoshim__Ttrpc__KeyValue *kv_owned = NULL;
        if (n_metadata > 0) {
                kv = kv_owned = calloc(n_metadata, sizeof *kv);
                kvp = calloc(n_metadata, sizeof *kvp);
                if (!kv || !kvp)
                        return -ENOMEM;
                for (size_t i = 0; i < n_metadata; i++) {
                        nanoshim__ttrpc__key_value__init(&kv[i]);
                        kv[i].key = (char *)metadata[i].key;
                        kv[i].value = (char *)metadata[i].value;
                        kvp[i] = &kv[i];
                }
        }

        Nanoshim__Ttrpc__Request req = NANOSHIM__TTRPC__REQUEST__INIT;
        req.service = (char *)service;
        req.method = (char *)method;
        req.payload.data = (uint8_t *)payload;
        req.payload.len = len;
        req.timeout_nano = timeout_nano > 0 ? timeout_nano : 0;
        req.n_metadata = n_metadata;
        req.metadata = kvp;

        struct client_call *cc = calloc(1, sizeof *cc);
        if (!cc)
                return -ENOMEM;
        uint32_t sid = c->next_stream_id;
        int r = conn_send(c->conn, sid, TTRPC_TYPE_REQUEST, &req.base);
        if (r < 0) {
                free(cc);
                return r;
        }
        c->next_stream_id += 2; /* odd ids only; wraps to 1 after 2^32 - 1 */

        cc->client = c;
        cc->stream_id = sid;
        cc->done = done;
        cc->userdata = userdata;
        ev_timer_init(&cc->timer, on_call_timeout, 0., 0.);
        cc->timer.data = cc;
        if (timeout_nano > 0) {
                ev_timer_set(&cc->timer, (ev_tstamp)timeout_nano / 1e9, 0.);
                ev_timer_start(c->loop, &cc->timer);
        }
        cc->next = c->calls;
        if (c->calls)
                c->calls->prev = cc;
        c->calls = cc;
        return 0;
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
                      const ProtobufCMessage *msg, int64_t timeout_nano, const struct ttrpc_kv *metadata,
                      size_t n_metadata, ttrpc_client_done_fn done, void *userdata) {
        if (!msg)
                return ttrpc_client_call_bytes(c, service, method, NULL, 0, timeout_nano, metadata, n_metadata,
                                               done, userdata);
        size_t len = protobuf_c_message_get_packed_size(msg);
        if (len > TTRPC_MAX_MESSAGE)
                return -EMSGSIZE;
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        protobuf_c_message_pack(msg, buf);
        return ttrpc_client_call_bytes(c, service, method, buf, len, timeout_nano, metadata, n_metadata, done,
                                       userdata);
}

static void client_unref(struct ttrpc_client *c) {
        if (!c || --c->refs > 0)
                return;
        struct ttrpc_conn *conn = TAKE_PTR(c->conn);
        if (conn) {
                conn->client = NULL;
                conn_shutdown(conn);
                conn_unref(conn);
        }
        free(c);
}

struct ttrpc_client *ttrpc_client_free(struct ttrpc_client *c) {
        if (!c || c->freed)
                return NULL;
        c->freed = true;
        if (!c->closed) {
                c->closed = true;
                conn_shutdown(c->conn);
        }
        /* Callbacks see a closed client: new calls fail with -ENOTCONN, free is a no-op. */
        client_fail_all(c, TTRPC_CANCELLED, "ttrpc: client closed");
        client_unref(c); /* the user's reference; the memory stays while a callback runs */
        return NULL;
}
