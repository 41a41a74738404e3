/* SPDX-License-Identifier: Apache-2.0 */
#include "process.h"
#include "container-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stdio-relay.h"
#include "status-code.h"

static const char *const state_names[_PROCESS_STATE_MAX] = {
        [PROCESS_CREATED] = "created", [PROCESS_RUNNING] = "running", [PROCESS_PAUSED] = "paused",
        [PROCESS_STOPPED] = "stopped", [PROCESS_DELETED] = "deleted",
};

/* The whole lifecycle in one table (containerd's init_state.go, as a table). A created
 * process may stop without running (it died during create, or was deleted). */
static const bool transitions[_PROCESS_STATE_MAX][_PROCESS_STATE_MAX] = {
        [PROCESS_CREATED] = {[PROCESS_RUNNING] = true, [PROCESS_STOPPED] = true, [PROCESS_DELETED] = true},
        [PROCESS_RUNNING] = {[PROCESS_PAUSED] = true, [PROCESS_STOPPED] = true},
        [PROCESS_PAUSED] = {[PROCESS_RUNNING] = true, [PROCESS_STOPPED] = true},
        [PROCESS_STOPPED] = {[PROCESS_DELETED] = true},
};

static const char *const exit_stage_names[_EXIT_STAGE_MAX] = {
        [EXIT_RUNNING] = "running", [EXIT_REAPED] = "reaped", [EXIT_DRAINED] = "drained",
        [EXIT_AWAITING_EXECS] = "awaiting-execs", [EXIT_REPORTED] = "reported", [EXIT_NEVER] = "never-started",
};

const char *exit_stage_to_string(enum exit_stage s) {
        return s < _EXIT_STAGE_MAX ? exit_stage_names[s] : "invalid";
}

const char *process_state_to_string(enum process_state s) {
        return s < _PROCESS_STATE_MAX ? state_names[s] : "invalid";
}

bool process_can_transition(enum process_state from, enum process_state to) {
        return from < _PROCESS_STATE_MAX && to < _PROCESS_STATE_MAX && transitions[from][to];
}

int process_transition(struct process *p, enum process_state to) {
        if (!process_can_transition(p->state, to))
                return log_debug_errno(-EINVAL, "%s: refusing %s -> %s", p->id, process_state_to_string(p->state),
                                       process_state_to_string(to));
        log_debug("%s: %s -> %s", p->id, process_state_to_string(p->state), process_state_to_string(to));
        p->state = to;
        return 0;
}

void answer_send(struct answer *a, int code, const char *message, const struct container_answer *ans) {
        container_answer_fn fn = a->fn;
        a->fn = NULL;
        if (fn)
                fn(a->ud, code, message, ans);
}

struct process *process_new(struct container *c, const char *id, bool is_init) {
        struct process *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        p->id = strdup(id);
        if (!p->id) {
                free(p);
                return NULL;
        }
        p->container = c;
        p->is_init = is_init;
        p->state = PROCESS_CREATED;
        return p;
}

struct process *process_free(struct process *p) {
        if (!p)
                return NULL;
        char msg[128];
        snprintf(msg, sizeof msg, "process %s was deleted", p->id);
        while (p->waiters) {
                struct waiter *w = p->waiters;
                p->waiters = w->next;
                answer_send(&w->answer, TTRPC_NOT_FOUND, msg, NULL);
                free(w);
        }
        answer_send(&p->delete_answer, TTRPC_NOT_FOUND, msg, NULL);
        stdio_free(p->io);
        free(p->id);
        free(p->stdin_path);
        free(p->stdout_path);
        free(p->stderr_path);
        free(p->spec_json);
        free(p);
        return NULL;
}
