/* SPDX-License-Identifier: Apache-2.0 */
/* Drives a runc-compatible OCI runtime binary (runc, crun) asynchronously.
 *
 * Every call spawns the runtime with a clean child (signal mask and dispositions reset,
 * only the fds meant for it, PDEATHSIG=SIGKILL) and completes from the event loop when
 * the shim's reaper hands over its exit status -- there is no waitpid() here. Global
 * options: --root <root> --log <log> --log-format json [--systemd-cgroup]. On failure
 * the runtime's own last error message (from the JSON log, else its stderr) is returned
 * word for word in result->error. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct reaper;

struct runtime_config {
        const char *binary;   /* path or name looked up in PATH ("runc", "/usr/bin/crun") */
        const char *root;     /* --root; NULL = runtime default */
        const char *log_path; /* --log (JSON); NULL = none */
        bool systemd_cgroup;
        const char *criu;     /* --criu <path> (runc 1.1; later runc looks criu up in PATH); NULL = none */
};

struct runtime;

int runtime_new(struct ev_loop *loop, struct reaper *reaper, const struct runtime_config *cfg,
                struct runtime **ret);
struct runtime *runtime_free(struct runtime *rt); /* running calls are detached: their callbacks never run */

struct runtime_result {
        int exit_status;   /* shell-style (code or 128+signal); -errno if it could not be spawned */
        const char *error; /* runtime's last error message, or NULL; valid during the callback */
        const char *out;   /* captured stdout (state, ps); NUL-terminated, may be "" */
        size_t out_len;
};
typedef void (*runtime_done_fn)(const struct runtime_result *res, void *userdata);

struct runtime_create_opts {
        const char *id;
        const char *bundle;
        const char *pid_file;
        const char *console_socket; /* NULL: none */
        bool no_pivot;
        bool no_new_keyring;
        int stdio[3];               /* the runtime's (and so the container's) fds 0,1,2; -1 = /dev/null */
};
int runtime_create(struct runtime *rt, const struct runtime_create_opts *o, runtime_done_fn done, void *ud);
/* `run --detach` with the same options: create and start in one runtime execution. */
int runtime_run(struct runtime *rt, const struct runtime_create_opts *o, runtime_done_fn done, void *ud);
int runtime_start(struct runtime *rt, const char *id, runtime_done_fn done, void *ud);
int runtime_kill(struct runtime *rt, const char *id, int signal, bool all, runtime_done_fn done, void *ud);
int runtime_delete(struct runtime *rt, const char *id, bool force, runtime_done_fn done, void *ud);
/* For a container whose init (init_pid) has exited and been reaped, in a PID namespace
 * of its own and without poststop hooks: remove what runc keeps for it, its cgroups and
 * its state directory, as `runc delete` would, but in place (no runc start-up: 5-10 ms
 * less on every teardown; runc-state.c). Only for the binary named "runc", with an
 * explicit root, the cgroupfs driver and a state directory it knows entirely; otherwise
 * -EOPNOTSUPP with nothing touched. Either way, on an error the caller runs
 * runtime_delete(), which finishes; *ret_reason (malloc'd) says why. 0 when done. */
int runtime_delete_stopped_in_place(struct runtime *rt, const char *id, pid_t init_pid, char **ret_reason);
/* Its first checks, which look at no file: 0 when runtime_delete_stopped_in_place() may
 * do the delete (it may still refuse, from what it finds). */
int runtime_delete_in_place_possible(struct runtime *rt, char **ret_reason);

/* `start <id>` of a created container, in place (no runc start-up: about 5 ms of Go on
 * every container start): returns the read end of runc's exec fifo, opened without
 * blocking, for the caller to watch; once readable (or once the init has exited),
 * runtime_start_in_place_finish() reads it, as `runc start` does, and the container's
 * process runs. The caller makes sure the container has no poststart hooks (runc 1.2
 * runs them at start). Only for the binary named "runc" with an explicit root and no
 * NOTIFY_SOCKET (runc start would wait for the container's READY=1); otherwise
 * -EOPNOTSUPP, *ret_reason (malloc'd) says why, and the caller runs runtime_start(). */
int runtime_start_in_place(struct runtime *rt, const char *id, char **ret_reason);
/* 0: started; -EAGAIN: nothing to read yet; else failed, *ret_error says why (runc's
 * words for an init that died first: "container process is already dead"). */
int runtime_start_in_place_finish(struct runtime *rt, const char *id, int fd, char **ret_error);

/* `state <id>`: out = JSON; parse with runtime_parse_state(). */
int runtime_state(struct runtime *rt, const char *id, runtime_done_fn done, void *ud);
/* `ps --format json <id>`: out = JSON array of pids; parse with runtime_parse_ps(). */
int runtime_ps(struct runtime *rt, const char *id, runtime_done_fn done, void *ud);
struct runtime_exec_opts {
        const char *id;
        const char *process_file; /* OCI process JSON */
        const char *pid_file;
        const char *console_socket;
        bool detach;
        int stdio[3];
};
int runtime_exec(struct runtime *rt, const struct runtime_exec_opts *o, runtime_done_fn done, void *ud);
int runtime_pause(struct runtime *rt, const char *id, runtime_done_fn done, void *ud);
int runtime_resume(struct runtime *rt, const char *id, runtime_done_fn done, void *ud);
/* `update --resources - <id>` with resources_json on stdin. */
int runtime_update(struct runtime *rt, const char *id, const char *resources_json, runtime_done_fn done, void *ud);

/* `checkpoint`: CRIU dumps the container's processes into image_path. The result's
 * error is runc's, followed by CRIU's own error lines from its log (dump.log in
 * work_path, else in image_path) when there are any. */
struct runtime_checkpoint_opts {
        const char *id;
        const char *image_path;
        const char *work_path;   /* CRIU's log and work files; NULL: runc's default (the image path) */
        const char *parent_path; /* images of a previous pre-dump, relative to image_path or absolute */
        bool leave_running;      /* else the container is stopped once dumped */
        bool pre_dump;           /* memory only, the container keeps running (for a later dump with parent_path) */
        bool tcp_established;
        bool ext_unix_sk;
        bool shell_job;          /* a terminal (pty) */
        bool file_locks;
        const char *const *empty_ns; /* NULL-terminated namespace types ("network"), or NULL */
        const char *manage_cgroups_mode; /* "soft", "full", "strict", "ignore"; NULL: runc's default */
        const char *criu_config; /* a CRIU configuration file (CRIU_CONFIG_FILE in criu's environment); NULL: none */
};
int runtime_checkpoint(struct runtime *rt, const struct runtime_checkpoint_opts *o, runtime_done_fn done, void *ud);
/* `restore --detach --no-subreaper`: the container is recreated from image_path and runs;
 * its pid is in pid_file and its stdio is stdio[] (or the console socket), as for create. */
struct runtime_restore_opts {
        const char *id;
        const char *bundle;
        const char *pid_file;
        const char *console_socket; /* NULL: none */
        const char *image_path;
        const char *work_path;      /* NULL: runc's default (the image path) */
        bool no_pivot;
        bool tcp_established;
        bool ext_unix_sk;
        bool shell_job;
        bool file_locks;
        const char *const *empty_ns;
        const char *manage_cgroups_mode;
        const char *criu_config;
        int stdio[3];
};
int runtime_restore(struct runtime *rt, const struct runtime_restore_opts *o, runtime_done_fn done, void *ud);

/* ---- pure helpers, unit-tested on their own ---- */

/* Build the argv (NULL-terminated, malloc'd strings and array) for one call. The
 * `cmd_args` are the subcommand and its arguments (e.g. {"kill","--all","id","9",NULL}). */
int runtime_build_argv(const struct runtime_config *cfg, const char *const *cmd_args, char ***ret_argv);
void runtime_argv_free(char **argv);

/* The last "level":"error" message of a runtime JSON log (runc/crun --log-format json),
 * or NULL if none. Non-JSON lines are skipped. Caller frees. */
char *runtime_log_last_error(const char *log, size_t len);

/* Whether a runtime's error says the container does not exist (deleted, or never
 * created), in the words of runc ("container does not exist") or crun (its state
 * file or directory under the root is missing). The one place this is decided: the
 * error itself is passed on unchanged. */
bool runtime_error_not_exist(const char *error);

/* Whether a runtime's error for kill says the process is gone (exited, not running). */
bool runtime_error_not_running(const char *error);

/* CRIU's own explanation in its log: the last (at most two) "Error" lines before its
 * "... FAILED." summary, without their timestamps and source positions, joined by "; ".
 * NULL if there is none. Caller frees. */
char *runtime_criu_log_error(const char *log, size_t len);

struct runtime_state {
        char *id;
        pid_t pid;
        char *status; /* "created", "running", "paused", "stopped" */
        char *bundle;
};
int runtime_parse_state(const char *json, size_t len, struct runtime_state *ret);
void runtime_state_done(struct runtime_state *s);
/* ps --format json: [1234, 1240] (null = empty). */
int runtime_parse_ps(const char *json, size_t len, pid_t **ret_pids, size_t *ret_n);

/* The core of runtime_delete_stopped_in_place(): runc's state under root, cgroup paths
 * accepted only below cgroup_prefix ("/sys/fs/cgroup/"). */
int runc_state_remove(const char *root, const char *id, pid_t init_pid, const char *cgroup_prefix,
                      char **ret_reason);
/* The core of runtime_start_in_place() and _finish(). */
int runc_exec_fifo_open(const char *root, const char *id, char **ret_reason);
int runc_exec_fifo_read(int fd, const char *root, const char *id, char **ret_error);
