/* SPDX-License-Identifier: Apache-2.0 */
/* The one place that reaps children. libev's child watcher (default loop) calls
 * waitpid(-1) for us; every exit is routed to the owner that registered its pid, or,
 * while some operation is "holding" the reaper (a runtime call whose child pids are
 * not known yet), kept in a stash until the owner registers. Orphans are reaped and
 * forgotten. Nothing else in nanoshim calls waitpid(). */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Called once with the raw wait status (decode with exit_status_from_wait()). */
typedef void (*reaper_fn)(pid_t pid, int wait_status, void *userdata);

struct reaper;

/* Needs the default loop (libev delivers SIGCHLD there only). */
int reaper_new(struct ev_loop *loop, struct reaper **ret);
struct reaper *reaper_free(struct reaper *r);

/* Route the exit of pid to fn. If the exit is already stashed, fn runs from the loop
 * soon (never from inside this call). -EEXIST if pid already has an owner. */
int reaper_watch(struct reaper *r, pid_t pid, reaper_fn fn, void *userdata);
/* Forget an owner (the exit will then be treated as an orphan's). */
void reaper_unwatch(struct reaper *r, pid_t pid);

/* While held (counted), exits of unknown pids are stashed; the stash is emptied when
 * the count drops to 0. */
void reaper_hold(struct reaper *r);
void reaper_release(struct reaper *r);

/* fork() with every signal blocked across it, so that no handler of the shim's (libev's)
 * runs in the child before the child has reset them (child_reset_signals()). The
 * parent's mask is back when this returns there; the child returns with everything
 * blocked. The pid, 0 in the child, or -errno. */
pid_t fork_signals_blocked(void);
/* In a child: every disposition back to its default, nothing blocked. Async-signal-safe. */
void child_reset_signals(void);

/* Statistics, for tests and benchmarks. */
size_t reaper_n_reaped(const struct reaper *r);
size_t reaper_n_orphans(const struct reaper *r);
size_t reaper_n_stashed(const struct reaper *r);
