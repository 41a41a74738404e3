/* SPDX-License-Identifier: Apache-2.0 */
#include "reaper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "memtrim.h"

/* Bounds memory if a held operation overlaps an orphan storm: the oldest stashed exits
 * are dropped first; by then their pid has been re-used or they were orphans. */
#define REAPER_STASH_MAX 4096

struct reaper_entry {
        pid_t pid;
        reaper_fn fn;
        void *userdata;
        bool fired;  /* exit known: deliver from the idle watcher */
        int status;
};

struct stashed_exit {
        pid_t pid;
        int status;
};

struct reaper {
        struct ev_loop *loop;
        ev_child child;
        ev_idle deliver;      /* delivers exits found in the stash at watch time */
        struct reaper_entry *entries;
        size_t n_entries, cap_entries;
        struct stashed_exit *stash;
        size_t n_stash, cap_stash;
        unsigned holds;
        size_t n_reaped, n_orphans;
};

static struct reaper_entry *find_entry(struct reaper *r, pid_t pid) {
        for (size_t i = 0; i < r->n_entries; i++)
                if (r->entries[i].pid == pid)
                        return &r->entries[i];
        return NULL;
}

static void remove_entry(struct reaper *r, struct reaper_entry *e) {
        size_t i = (size_t)(e - r->entries);
        r->entries[i] = r->entries[--r->n_entries];
}

static void stash_exit(struct reaper *r, pid_t pid, int status) {
        if (r->n_stash == REAPER_STASH_MAX) {
                memmove(r->stash, r->stash + 1, (REAPER_STASH_MAX - 1) * sizeof *r->stash);
                r->n_stash--;
        }
        if (r->n_stash == r->cap_stash) {
                size_t ncap = r->cap_stash ? r->cap_stash * 2 : 16;
                struct stashed_exit *n = realloc(r->stash, ncap * sizeof *n);
                if (!n) {
                        log_warn("reaper: out of memory, exit of %d not kept", (int)pid);
                        return;
                }
                r->stash = n;
                r->cap_stash = ncap;
        }
        r->stash[r->n_stash++] = (struct stashed_exit){pid, status};
}

static void fire(struct reaper *r, struct reaper_entry *e, int status) {
        struct reaper_entry copy = *e;
        remove_entry(r, e); /* before the call: the owner may watch again */
        copy.fn(copy.pid, status, copy.userdata);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents) {
        struct reaper *r = w->data;
        pid_t pid = w->rpid;
        int status = w->rstatus;
        if (!WIFEXITED(status) && !WIFSIGNALED(status))
                return; /* stopped/continued: not an exit */
        r->n_reaped++;
        memtrim_soon(); /* whoever waited for it is about to free what it held */
        struct reaper_entry *e = find_entry(r, pid);
        if (e) {
                fire(r, e, status);
                return;
        }
        if (r->holds > 0)
                stash_exit(r, pid, status);
        else
                r->n_orphans++;
}

static void on_deliver(struct ev_loop *loop, ev_idle *w, int revents) {
        struct reaper *r = w->data;
        ev_idle_stop(loop, w);
        /* Restart scanning after every call: callbacks may change the table. */
        for (bool again = true; again;) {
                again = false;
                for (size_t i = 0; i < r->n_entries; i++)
                        if (r->entries[i].fired) {
                                fire(r, &r->entries[i], r->entries[i].status);
                                again = true;
                                break;
                        }
        }
}

int reaper_new(struct ev_loop *loop, struct reaper **ret) {
        if (!ev_is_default_loop(loop))
                return -EINVAL;
        struct reaper *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->loop = loop;
        ev_child_init(&r->child, on_child, 0, 0);
        r->child.data = r;
        ev_child_start(loop, &r->child);
        ev_idle_init(&r->deliver, on_deliver);
        r->deliver.data = r;
        *ret = r;
        return 0;
}

struct reaper *reaper_free(struct reaper *r) {
        if (!r)
                return NULL;
        ev_child_stop(r->loop, &r->child);
        ev_idle_stop(r->loop, &r->deliver);
        free(r->entries);
        free(r->stash);
        free(r);
        return NULL;
}

int reaper_watch(struct reaper *r, pid_t pid, reaper_fn fn, void *userdata) {
        if (pid <= 0 || !fn)
                return -EINVAL;
        if (find_entry(r, pid))
                return -EEXIST;
        if (r->n_entries == r->cap_entries) {
                size_t ncap = r->cap_entries ? r->cap_entries * 2 : 8;
                struct reaper_entry *n = realloc(r->entries, ncap * sizeof *n);
                if (!n)
                        return -ENOMEM;
                r->entries = n;
                r->cap_entries = ncap;
        }
        struct reaper_entry *e = &r->entries[r->n_entries++];
        *e = (struct reaper_entry){.pid = pid, .fn = fn, .userdata = userdata};
        for (size_t i = 0; i < r->n_stash; i++)
                if (r->stash[i].pid == pid) {
                        e->fired = true;
                        e->status = r->stash[i].status;
                        r->stash[i] = r->stash[--r->n_stash];
                        ev_idle_start(r->loop, &r->deliver);
                        break;
                }
        return 0;
}

void reaper_unwatch(struct reaper *r, pid_t pid) {
        struct reaper_entry *e = find_entry(r, pid);
        if (e)
                remove_entry(r, e);
}

void reaper_hold(struct reaper *r) {
        r->holds++;
}

void reaper_release(struct reaper *r) {
        if (r->holds > 0 && --r->holds == 0) {
                r->n_orphans += r->n_stash;
                r->n_stash = 0;
        }
}

size_t reaper_n_reaped(const struct reaper *r) {
        return r->n_reaped;
}
size_t reaper_n_orphans(const struct reaper *r) {
        return r->n_orphans;
}
size_t reaper_n_stashed(const struct reaper *r) {
        return r->n_stash;
}

pid_t fork_signals_blocked(void) {
        sigset_t all, saved;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &saved);
        pid_t pid = fork();
        if (pid == 0)
                return 0;
        int e = errno;
        sigprocmask(SIG_SETMASK, &saved, NULL);
        return pid < 0 ? -e : pid;
}

void child_reset_signals(void) {
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
}
