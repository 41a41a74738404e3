/* SPDX-License-Identifier: Apache-2.0 */
/* One process of a container (its init, or an exec) and its state machine. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct container;
struct stdio;

/* An answer to a request: code 0, or a gRPC status code (ttrpc.h) with a message; and
 * what a reply carries besides (Wait, Delete). */
struct container_answer {
        pid_t pid;
        int exit_status;
        struct timespec exited_at; /* {0, 0}: none (Go's zero time on the wire) */
};
typedef void (*container_answer_fn)(void *ud, int code, const char *message, const struct container_answer *a);
struct answer {
        container_answer_fn fn; /* NULL: nobody waits */
        void *ud;
};
/* Answer and forget: a->fn is NULL afterwards. */
void answer_send(struct answer *a, int code, const char *message, const struct container_answer *ans);

enum process_state {
        PROCESS_CREATED,
        PROCESS_RUNNING,
        PROCESS_PAUSED,
        PROCESS_STOPPED,
        PROCESS_DELETED,
        _PROCESS_STATE_MAX,
};
const char *process_state_to_string(enum process_state s);

/* Where a process is on its way from running to its reported exit. In this order; a
 * stage is left only when what it waits for is done:
 *   RUNNING          not exited (or not started yet)
 *   REAPED           the wait status is known; its output is still being drained
 *   DRAINED          output drained; waiting for its start event to be queued (a Start
 *                    in flight) and, for an init without its own PID namespace, for the
 *                    `runtime kill --all` of the rest of the container
 *   AWAITING_EXECS   init only: waiting while an exec's Start is in flight, and for
 *                    every started exec's exit to be reported (2 s grace for those)
 *   REPORTED         state STOPPED, /tasks/exit queued, Wait answered (final)
 *   NEVER            an exec whose Start failed: it never ran, no exit ever (final) */
enum exit_stage {
        EXIT_RUNNING,
        EXIT_REAPED,
        EXIT_DRAINED,
        EXIT_AWAITING_EXECS,
        EXIT_REPORTED,
        EXIT_NEVER,
        _EXIT_STAGE_MAX,
};
const char *exit_stage_to_string(enum exit_stage s);
bool process_can_transition(enum process_state from, enum process_state to);

/* One process of a container: opaque outside the container module (its fields are in
 * container-internal.h). */
struct process;

/* What the task API shows of a process (State, events); the strings are the process's. */
enum process_status { PROCESS_STATUS_CREATED, PROCESS_STATUS_RUNNING, PROCESS_STATUS_PAUSING,
                      PROCESS_STATUS_PAUSED, PROCESS_STATUS_STOPPED };
struct process_info {
        const char *id; /* the exec id, or the container id for the init */
        bool is_init;
        pid_t pid;
        enum process_status status;
        const char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        bool exited;     /* its exit is reported: exit_status and exited_at are set */
        int exit_status;
        struct timespec exited_at;
};
void process_get_info(const struct process *p, struct process_info *ret);
pid_t process_pid(const struct process *p);

/* Move to a new state; -EINVAL (and no change) if the table forbids it. */
int process_transition(struct process *p, enum process_state to);
struct process *process_new(struct container *c, const char *id, bool is_init);
struct process *process_free(struct process *p);
