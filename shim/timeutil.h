/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "types.pb-c.h"

/* Go's zero time.Time as a protobuf Timestamp: what containerd sends for "not exited". */
#define GO_ZERO_TIME_SECONDS (-62135596800LL)

static inline struct timespec now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return ts;
}

/* Fill a Timestamp; an unset time (tv_sec == 0 && tv_nsec == 0) becomes Go's zero time. */
static inline void timestamp_set(Nanoshim__Types__Timestamp *t, const struct timespec *ts) {
        nanoshim__types__timestamp__init(t);
        if (!ts || (ts->tv_sec == 0 && ts->tv_nsec == 0)) {
                t->seconds = GO_ZERO_TIME_SECONDS;
                return;
        }
        t->seconds = ts->tv_sec;
        t->nanos = (int32_t)ts->tv_nsec;
}
