/* SPDX-License-Identifier: Apache-2.0 */
#include "events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "events.pb-c.h"
#include "log.h"
#include "macro.h"
#include "timeutil.h"
#include "ttrpc.h"
#include "types.pb-c.h"

#define RETRY_MIN_S 0.05
#define RETRY_MAX_S 5.0
#define EVENTS_IDLE_CLOSE_S 2.0 /* seconds without an event before the connection is dropped */
#define EVENTS_MAX_IN_FLIGHT 16
#define EVENTS_SCAN_MAX 64 /* queued events looked at for one that may go */

struct event_item {
        struct event_item *next;
        struct events *ev;
        char *key;        /* the container: its events go one at a time, in order */
        char *topic;
        uint8_t *payload; /* packed ForwardRequest */
        size_t len;
        bool in_flight;
};

struct events {
        struct ev_loop *loop;
        char *address;
        char *namespace;
        struct ttrpc_client *client;
        struct event_item *head, *tail;
        size_t n_pending;
        size_t n_in_flight;
        bool reconnect;      /* drop the client before the next try */
        bool closing;
        unsigned failures;
        ev_timer retry;
        /* Sends are started from the loop, never from inside publish: at the start of the
         * next loop iteration (a prepare watcher; an idle watcher would wait for a quiet
         * loop, which a busy shim may not have for milliseconds). */
        ev_prepare kick_prepare;
        void (*flush_fn)(void *);
        void *flush_ud;
        ev_timer flush_timer;
        ev_timer idle_close;  /* the connection is dropped once nothing was sent for a while */
};

static void item_free(struct event_item *it) {
        if (!it)
                return;
        free(it->key);
        free(it->topic);
        free(it->payload);
        free(it);
}

static void flush_done(struct events *ev) {
        if (!ev->flush_fn)
                return;
        void (*fn)(void *) = ev->flush_fn;
        ev->flush_fn = NULL;
        ev_timer_stop(ev->loop, &ev->flush_timer);
        fn(ev->flush_ud);
}

static void kick(struct events *ev) {
        if (ev->n_in_flight < EVENTS_MAX_IN_FLIGHT && ev->head && !ev_is_active(&ev->retry))
                ev_prepare_start(ev->loop, &ev->kick_prepare);
}

static void schedule_retry(struct events *ev) {
        ev->failures++;
        double delay = RETRY_MIN_S;
        for (unsigned i = 1; i < ev->failures && delay < RETRY_MAX_S; i++)
                delay *= 2;
        if (delay > RETRY_MAX_S)
                delay = RETRY_MAX_S;
        /* The first failure on an established connection is retried at once on a new one
         * (the receiver restarted); later ones wait. */
        if (ev->failures == 1)
                delay = 0;
        ev_timer_set(&ev->retry, delay, 0);
        ev_timer_start(ev->loop, &ev->retry);
}

static void item_unlink(struct events *ev, struct event_item *it) {
        struct event_item **pp = &ev->head, *prev = NULL;
        while (*pp && *pp != it) {
                prev = *pp;
                pp = &(*pp)->next;
        }
        if (!*pp)
                return;
        *pp = it->next;
        if (ev->tail == it)
                ev->tail = prev;
        ev->n_pending--;
}

static void on_forward_done(int code, const char *message, const uint8_t *resp, size_t resp_len, void *userdata) {
        struct event_item *it = userdata;
        struct events *ev = it->ev;
        it->in_flight = false;
        ev->n_in_flight--;
        if (ev->closing)
                return;
        if (code != 0) {
                if (ev->failures == 0 || log_get_max_level() >= LOG_LEVEL_DEBUG)
                        log_warn("events: forwarding %s failed (code %d: %s), will retry", it->topic, code,
                                 message ? message : "");
                if (code == TTRPC_UNAVAILABLE || code == TTRPC_CANCELLED || code == TTRPC_DEADLINE_EXCEEDED ||
                    (ev->client && ttrpc_client_is_closed(ev->client)))
                        ev->reconnect = true;
                /* (the other calls of a broken connection fail with it: one retry for all) */
                if (!ev_is_active(&ev->retry))
                        schedule_retry(ev);
                return;
        }
        item_unlink(ev, it);
        log_debug("events: %s delivered", it->topic);
        item_free(it);
        ev->failures = 0;
        if (ev->head)
                kick(ev);
        else {
                /* An idle shim holds no connection (one fd less at rest); events come in
                 * bursts (create, start...), so wait a little before closing. */
                ev_timer_set(&ev->idle_close, EVENTS_IDLE_CLOSE_S, 0);
                ev_timer_start(ev->loop, &ev->idle_close);
                flush_done(ev);
        }
}

static void on_idle_close(struct ev_loop *loop, ev_timer *w, int revents) {
        struct events *ev = w->data;
        if (ev->n_in_flight == 0 && !ev->head)
                ev->client = ttrpc_client_free(ev->client);
}

/* Whether an event queued before it has the same key (then it waits for that one). */
static bool key_waits(const struct events *ev, const struct event_item *it) {
        for (const struct event_item *e = ev->head; e && e != it; e = e->next)
                if ((!e->key && !it->key) || (e->key && it->key && strcmp(e->key, it->key) == 0))
                        return true;
        return false;
}

/* Sends what may go: the first queued event of each key (container) that has none in
 * flight, up to EVENTS_MAX_IN_FLIGHT at once. One container's events keep their order
 * (containerd's ttrpc server runs concurrent calls in any order); different containers'
 * do not wait for each other: a pod's containers killed at once have their exits
 * forwarded together, not one round trip after the other. */
static void send_ready(struct events *ev) {
        if (!ev->head)
                return;
        ev_timer_stop(ev->loop, &ev->idle_close);
        if (!ev->address) {
                /* No receiver configured: nothing to deliver to (and nothing in flight). */
                while (ev->head) {
                        struct event_item *it = ev->head;
                        ev->head = it->next;
                        item_free(it);
                        ev->n_pending--;
                }
                ev->tail = NULL;
                flush_done(ev);
                return;
        }
        if (ev->client && (ev->reconnect || ttrpc_client_is_closed(ev->client))) {
                if (ev->n_in_flight > 0)
                        return; /* the old connection's calls end first (each one's end kicks) */
                ev->client = ttrpc_client_free(ev->client);
        }
        ev->reconnect = false;
        if (!ev->client) {
                int r = ttrpc_client_connect(ev->loop, ev->address, &ev->client);
                if (r < 0) {
                        if (ev->failures == 0)
                                log_warn_errno(r, "events: cannot connect to '%s', will retry: %m", ev->address);
                        schedule_retry(ev);
                        return;
                }
        }
        struct ttrpc_kv md = {"containerd-namespace-ttrpc", ev->namespace};
        size_t scanned = 0;
        for (struct event_item *it = ev->head; it && ev->n_in_flight < EVENTS_MAX_IN_FLIGHT && scanned < EVENTS_SCAN_MAX;
             it = it->next, scanned++) {
                if (it->in_flight || key_waits(ev, it))
                        continue;
                int r = ttrpc_client_call_bytes(ev->client, EVENTS_SERVICE, "Forward", it->payload, it->len,
                                                EVENTS_FORWARD_TIMEOUT_NS, &md, 1, on_forward_done, it);
                if (r < 0) {
                        ev->reconnect = true;
                        if (!ev_is_active(&ev->retry))
                                schedule_retry(ev);
                        return;
                }
                it->in_flight = true;
                ev->n_in_flight++;
        }
}

static void on_kick(struct ev_loop *loop, ev_prepare *w, int revents) {
        struct events *ev = w->data;
        ev_prepare_stop(loop, w);
        send_ready(ev);
}

void events_send_now(struct events *ev) {
        if (!ev_is_active(&ev->kick_prepare))
                return; /* nothing waiting to go, or in flight, or waiting for a retry */
        ev_prepare_stop(ev->loop, &ev->kick_prepare);
        send_ready(ev);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents) {
        struct events *ev = w->data;
        send_ready(ev);
}

static void on_flush_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
        struct events *ev = w->data;
        if (ev->n_pending)
                log_warn("events: %zu event(s) not delivered at shutdown", ev->n_pending);
        flush_done(ev);
}

int events_new(struct ev_loop *loop, const char *address, const char *namespace, struct events **ret) {
        struct events *ev = calloc(1, sizeof *ev);
        if (!ev)
                return -ENOMEM;
        ev->loop = loop;
        if (address && *address) {
                if (strncmp(address, "unix://", 7) == 0)
                        address += 7;
                ev->address = strdup(address);
        }
        ev->namespace = strdup(namespace ? namespace : "default");
        if ((address && *address && !ev->address) || !ev->namespace) {
                events_free(ev);
                return -ENOMEM;
        }
        ev_timer_init(&ev->retry, on_retry, 0, 0);
        ev->retry.data = ev;
        ev_prepare_init(&ev->kick_prepare, on_kick);
        ev->kick_prepare.data = ev;
        ev_timer_init(&ev->flush_timer, on_flush_timeout, 0, 0);
        ev->flush_timer.data = ev;
        ev_timer_init(&ev->idle_close, on_idle_close, 0, 0);
        ev->idle_close.data = ev;
        *ret = ev;
        return 0;
}

struct events *events_free(struct events *ev) {
        if (!ev)
                return NULL;
        ev_timer_stop(ev->loop, &ev->retry);
        ev_timer_stop(ev->loop, &ev->flush_timer);
        ev_timer_stop(ev->loop, &ev->idle_close);
        ev_prepare_stop(ev->loop, &ev->kick_prepare);
        /* Freeing the client fails the call in flight: its callback sees `closing`. */
        ev->closing = true;
        ev->flush_fn = NULL;
        ev->client = ttrpc_client_free(ev->client);
        struct event_item *head = TAKE_PTR(ev->head);
        while (head) {
                struct event_item *n = head->next;
                item_free(head);
                head = n;
        }
        free(ev->address);
        free(ev->namespace);
        free(ev);
        return NULL;
}

int events_publish(struct events *ev, const char *key, const char *topic, const char *type_url,
                   const ProtobufCMessage *msg) {
        size_t inner_len = protobuf_c_message_get_packed_size(msg);
        _cleanup_free_ uint8_t *inner = malloc(inner_len ? inner_len : 1);
        if (!inner)
                return -ENOMEM;
        protobuf_c_message_pack(msg, inner);

        Nanoshim__Types__Any any = NANOSHIM__TYPES__ANY__INIT;
        any.type_url = (char *)type_url;
        any.value.data = inner;
        any.value.len = inner_len;
        Nanoshim__Types__Timestamp ts;
        struct timespec now = now_realtime();
        timestamp_set(&ts, &now);
        Nanoshim__Events__Envelope env = NANOSHIM__EVENTS__ENVELOPE__INIT;
        env.timestamp = &ts;
        env.namespace_ = ev->namespace;
        env.topic = (char *)topic;
        env.event = &any;
        Nanoshim__Events__ForwardRequest req = NANOSHIM__EVENTS__FORWARD_REQUEST__INIT;
        req.envelope = &env;

        struct event_item *it = calloc(1, sizeof *it);
        if (!it)
                return -ENOMEM;
        it->len = nanoshim__events__forward_request__get_packed_size(&req);
        it->payload = malloc(it->len);
        it->ev = ev;
        it->topic = strdup(topic);
        it->key = key ? strdup(key) : NULL;
        if (!it->payload || !it->topic || (key && !it->key)) {
                item_free(it);
                return -ENOMEM;
        }
        nanoshim__events__forward_request__pack(&req, it->payload);
        if (ev->tail)
                ev->tail->next = it;
        else
                ev->head = it;
        ev->tail = it;
        ev->n_pending++;
        log_debug("events: queued %s (%zu pending)", topic, ev->n_pending);
        kick(ev);
        return 0;
}

void events_flush(struct events *ev, double deadline_s, void (*fn)(void *userdata), void *userdata) {
        ev->flush_fn = fn;
        ev->flush_ud = userdata;
        if (!ev->head) {
                ev_timer_set(&ev->flush_timer, 0, 0); /* deferred to the loop */
                ev_timer_start(ev->loop, &ev->flush_timer);
                return;
        }
        /* Retry at once rather than after a long backoff. */
        if (ev_is_active(&ev->retry)) {
                ev_timer_stop(ev->loop, &ev->retry);
                kick(ev);
        }
        ev_timer_set(&ev->flush_timer, deadline_s, 0);
        ev_timer_start(ev->loop, &ev->flush_timer);
}
