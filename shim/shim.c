/* SPDX-License-Identifier: Apache-2.0 */
#include "shim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "events.h"
#include "log.h"
#include "macro.h"
#include "memtrim.h"
#include "reaper.h"
#include "stdio-relay.h"
#include "ttrpc.h"

#define SHUTDOWN_FLUSH_DEADLINE_S 5.0

static void on_flushed(void *userdata) {
        struct shim *s = userdata;
        ev_break(s->loop, EVBREAK_ALL);
}

void shim_exit(struct shim *s) {
        if (s->exiting)
                return;
        s->exiting = true;
        log_info("shutting down");
        if (s->server)
                ttrpc_server_stop_listening(s->server);
        /* The socket goes at once, so that a new start does not connect to a dying shim. */
        if (s->socket_path)
                unlink(s->socket_path);
        events_flush(s->events, SHUTDOWN_FLUSH_DEADLINE_S, on_flushed, s);
}

static void on_terminate(struct ev_loop *loop, ev_signal *w, int revents) {
        struct shim *s = w->data;
        log_info("received signal %d", w->signum);
        shim_exit(s);
}

static void shim_dispatch(struct ttrpc_call *call, void *userdata) {
        struct shim *s = userdata;
        s->dispatch(call, s);
}

static void on_never(struct ev_loop *loop, ev_periodic *w, int revents) {
        (void)loop, (void)w, (void)revents;
}

/* With no timer pending, libev still wakes the loop every 59.7 s (MAX_BLOCKTIME) to
 * notice a jump of the wall clock, which only periodic watchers care about; unless it
 * holds a timerfd that the kernel fires on a clock change (TFD_TIMER_CANCEL_ON_SET).
 * It creates that fd with the first periodic watcher started, and keeps it. A shim is
 * idle nearly all its life, on a node of hundreds: one periodic watcher, started and
 * stopped, lets an idle loop sleep until something happens (one fd; the listening
 * socket on stdin pays for it). */
static void loop_sleep_until_woken(struct ev_loop *loop) {
        ev_periodic p;
        ev_periodic_init(&p, on_never, ev_now(loop) + 86400., 0., NULL);
        ev_periodic_start(loop, &p);
        ev_periodic_stop(loop, &p);
}

int shim_new(struct ev_loop *loop, const struct shim_config *cfg, struct shim **ret) {
        struct shim *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->forget_all = cfg->forget_all;
        s->namespace = strdup(cfg->namespace ? cfg->namespace : "default");
        s->runtime_binary = strdup(cfg->runtime_binary ? cfg->runtime_binary : "runc");
        if (cfg->runtime_root)
                s->runtime_root = strdup(cfg->runtime_root);
        else if (asprintf(&s->runtime_root, "/run/containerd/runc/%s", s->namespace ? s->namespace : "") < 0)
                s->runtime_root = NULL;
        s->socket_path = cfg->socket_path ? strdup(cfg->socket_path) : NULL;
        s->state_dir = cfg->state_dir ? strdup(cfg->state_dir) : NULL;
        int r = -ENOMEM;
        if (!s->namespace || !s->runtime_binary || !s->runtime_root || (cfg->socket_path && !s->socket_path) ||
            (cfg->state_dir && !s->state_dir))
                goto fail;

        /* Orphans of our containers come to us, so that every exit is seen and reaped. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                r = log_error_errno(errno, "cannot become a child subreaper: %m");
                goto fail;
        }
        /* Client FIFOs and the log FIFO may lose their readers: a write error, not a death. */
        signal(SIGPIPE, SIG_IGN);

        r = reaper_new(loop, &s->reaper);
        if (r < 0)
                goto fail;
        r = events_new(loop, cfg->events_address, s->namespace, &s->events);
        if (r < 0)
                goto fail;
        s->dispatch = cfg->dispatch;
        r = ttrpc_server_new(loop, cfg->listen_fd, shim_dispatch, NULL /* same user */, s, &s->server);
        if (r < 0)
                goto fail;
        ev_signal_init(&s->sig_term, on_terminate, SIGTERM);
        s->sig_term.data = s;
        ev_signal_start(loop, &s->sig_term);
        ev_signal_init(&s->sig_int, on_terminate, SIGINT);
        s->sig_int.data = s;
        ev_signal_start(loop, &s->sig_int);
        memtrim_init(loop);
        loop_sleep_until_woken(loop);
        *ret = s;
        return 0;
fail:
        shim_finish(s);
        return r;
}

int shim_finish(struct shim *s) {
        if (!s)
                return 0;
        if (s->socket_path)
                unlink(s->socket_path);
        ev_signal_stop(s->loop, &s->sig_term);
        ev_signal_stop(s->loop, &s->sig_int);
        memtrim_stop();
        s->server = ttrpc_server_free(s->server);
        if (s->forget_all)
                s->forget_all(s);
        stdio_kill_lingering_loggers(); /* (needs the reaper) */
        s->events = events_free(s->events);
        s->reaper = reaper_free(s->reaper);
        free(s->namespace);
        free(s->socket_path);
        free(s->runtime_binary);
        free(s->runtime_root);
        free(s->state_dir);
        free(s);
        return 0;
}
