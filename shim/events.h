/* SPDX-License-Identifier: Apache-2.0 */
/* The ordered outbox of task events, forwarded to containerd (or any receiver) over
 * ttrpc `containerd.services.events.ttrpc.v1.Events/Forward`.
 *
 * Events with the same key (the container) go one at a time, in production order;
 * those of different containers go concurrently (up to 16 in flight on the one
 * connection). An event leaves the outbox only when the receiver acknowledged it; a
 * failed send is retried, first at once on a fresh connection, then with capped
 * exponential backoff -- nothing is dropped while the shim lives (containerd's own
 * publisher drops after 5 tries). */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
#define EVENTS_FORWARD_TIMEOUT_NS (5LL * 1000 * 1000 * 1000)

struct events;

/* address: unix socket path (or "unix://path"); NULL or "" = no receiver: events are
 * counted and discarded. */
int events_new(struct ev_loop *loop, const char *address, const char *namespace, struct events **ret);
struct events *events_free(struct events *ev);

/* Queue one event. key: the container it is about (NULL: events without one are
 * ordered among themselves); topic e.g. "/tasks/exit"; type_url e.g.
 * "containerd.events.TaskExit". */
int events_publish(struct events *ev, const char *key, const char *topic, const char *type_url,
                   const ProtobufCMessage *msg);

/* Send what may go now instead of at the loop's next iteration: before work that
 * would hold the loop (never from inside events_publish() or an events callback). */
void events_send_now(struct events *ev);
/* Callback once the outbox is empty (now or later), or at the deadline. For shutdown. */
void events_flush(struct events *ev, double deadline_s, void (*fn)(void *userdata), void *userdata);

