/* SPDX-License-Identifier: Apache-2.0 */
#include "memtrim.h"

#include <malloc.h>
#include <stddef.h>

/* Long enough that a container's create/start sequence (requests, runtime exits)
 * trims once at its end, short enough to be done long before anyone looks. */
#define MEMTRIM_QUIET_S 0.5

static struct ev_loop *trim_loop;
static ev_timer trim_timer;

static void on_quiet(struct ev_loop *loop, ev_timer *w, int revents) {
        ev_timer_stop(loop, w);
        malloc_trim(0);
}

void memtrim_init(struct ev_loop *loop) {
        trim_loop = loop;
        ev_timer_init(&trim_timer, on_quiet, 0., MEMTRIM_QUIET_S);
}

void memtrim_soon(void) {
        if (trim_loop)
                ev_timer_again(trim_loop, &trim_timer);
}

void memtrim_stop(void) {
        if (trim_loop)
                ev_timer_stop(trim_loop, &trim_timer);
        trim_loop = NULL;
}
