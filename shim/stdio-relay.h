/* SPDX-License-Identifier: Apache-2.0 */
/* (Named stdio-relay.h, not stdio.h: with -Ishim a "stdio.h" would shadow <stdio.h>.) */
/* One process's stdio: the client's FIFOs (or file://, binary:// URIs) on one side,
 * the container's pipes or pty master on the other, relayed by the event loop without
 * ever blocking it.
 *
 * Lifecycle (non-terminal):
 *   stdio_new()            parse URIs, open the client's ends without blocking (8.2 of
 *                          the reference: keep-alive handles), make the pipes
 *   stdio_child_fds()      the fds to give the runtime as 0,1,2 (-1 = /dev/null)
 *   stdio_start()          after the runtime call: close the child ends, relay
 *   stdio_close_stdin()    CloseIO: drop our keep-alive writer on the stdin FIFO
 *   stdio_drain()          after the exit: callback once stdout/stderr reached EOF
 *                          (or the deadline passed: a grandchild may hold the pipe)
 *   stdio_free()
 * Terminal: stdio_console_socket() before the runtime call (path for --console-socket),
 * stdio_console_receive() after it (gets the pty master), then stdio_start().
 *
 * Buffers are bounded (one fixed buffer per stream; splice where the kernel allows):
 * a reader that stops reading stalls the container's writes, never the loop, never
 * memory. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

struct stdio;
struct reaper;

struct stdio_config {
        const char *stdin_uri;  /* "" or NULL: none */
        const char *stdout_uri; /* FIFO path, "fifo://path", "file:///abs", "binary:///abs?k=v" */
        const char *stderr_uri;
        bool terminal;
        /* Non-terminal stdout (FIFO or file) and FIFO stdin are handed to the container
         * itself: no pipe, no relay, no copy (stderr stays relayed: the runtime writes its
         * own failure there, which must not reach the client). Only for a process whose exit ends every
         * process that could hold them (a container init with its own PID namespace):
         * otherwise a survivor could keep the client's FIFO open past the exit, which the
         * relay's drain deadline cuts off. The shim keeps its keep-alive ends. */
        bool direct;
        uid_t io_uid; /* owner of the container's pipe ends */
        gid_t io_gid;
        /* For binary:// loggers: their environment. */
        const char *container_id;
        const char *namespace;
        /* binary:// loggers are child processes: their exits go through the reaper. */
        struct reaper *reaper;
        /* A logger still running when its stdio is freed gets SIGTERM, then SIGKILL this
         * many seconds later if it is still there (0: LOGGER_KILL_S, runc-v2's 12 s). */
        double logger_kill_s;
};

#define LOGGER_KILL_S 12.0

/* ret_error (malloc'd) says what is wrong with a bad URI or path. */
int stdio_new(struct ev_loop *loop, const struct stdio_config *cfg, struct stdio **ret, char **ret_error);
struct stdio *stdio_free(struct stdio *s);
/* At the shim's exit: every logger told to stop that is still running gets SIGKILL now
 * (nobody would be left to enforce its deadline). */
void stdio_kill_lingering_loggers(void);

/* Non-terminal: the child's stdin/stdout/stderr ends (-1: give it /dev/null). Borrowed. */
void stdio_child_fds(const struct stdio *s, int ret_fds[3]);

/* Terminal: a fresh console socket in a private 0700 temp dir. Returns the path (owned
 * by s). */
int stdio_console_socket(struct stdio *s, const char **ret_path);
/* Terminal: after the runtime returned, take the pty master it sent (SCM_RIGHTS). */
int stdio_console_receive(struct stdio *s);
int stdio_resize(struct stdio *s, unsigned width, unsigned height);

/* Close the child ends we still hold and start relaying. */
int stdio_start(struct stdio *s);
/* binary:// logger: callback once it signalled ready (wrote a byte to fd 5 or closed
 * it); for other schemes, deferred to the loop at once. */
int stdio_wait_ready(struct stdio *s, void (*fn)(struct stdio *s, int r, void *ud), void *ud);

void stdio_close_stdin(struct stdio *s);

/* Callback once every output stream reached EOF and was written out, or after
 * deadline_s seconds (remaining data is dropped then). Runs from the loop, never from
 * inside this call. */
typedef void (*stdio_drained_fn)(struct stdio *s, void *userdata);
void stdio_drain(struct stdio *s, double deadline_s, stdio_drained_fn fn, void *userdata);

/* Parse a stdio URI. scheme: "fifo" (also bare paths, taken verbatim), "file", "binary"
 * (path and query percent-decoded). For binary, args = the query's keys and values in
 * order, NULL-terminated; an empty value adds no argument (runc-v2: "?--debug" gives
 * "--debug"). Errors: "unknown STDIO scheme X", relative paths. */
enum stdio_scheme { STDIO_NONE, STDIO_FIFO, STDIO_FILE, STDIO_BINARY };
struct stdio_uri {
        enum stdio_scheme scheme;
        char *path;
        char **args; /* binary only: query keys and (non-empty) values in order */
        size_t n_args;
};
int stdio_uri_parse(const char *uri, struct stdio_uri *ret, char **ret_error);
void stdio_uri_done(struct stdio_uri *u);
