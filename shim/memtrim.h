/* SPDX-License-Identifier: Apache-2.0 */
/* Gives the heap's free pages back to the kernel once the daemon has been quiet for a
 * moment. malloc keeps what a request burst freed (the parsed config.json, protobuf
 * messages, runtime output) resident; a shim lives as long as its pod, idle nearly all
 * of that time, so the pages would stay private and dirty for no use. */
#pragma once

#include <ev.h>

/* Enables trimming on this loop (the daemon only; elsewhere memtrim_soon() does nothing). */
void memtrim_init(struct ev_loop *loop);
/* Something happened that allocated and freed: trim once nothing else has happened for
 * MEMTRIM_QUIET_S. Cheap: restarts a timer. */
void memtrim_soon(void);
/* Stops the timer (before the loop goes away). */
void memtrim_stop(void);
