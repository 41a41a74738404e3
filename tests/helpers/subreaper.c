/* SPDX-License-Identifier: Apache-2.0 */
/* subreaper CMD [ARGS...]: run CMD with this process as its child subreaper, reap every
 * process that is handed to us until CMD exits, and exit with CMD's status (shell
 * style: 128 + signal when it was killed). SIGTERM, SIGINT and SIGHUP are passed on
 * to CMD so that a test runner's timeout still lets the script clean up.
 *
 * Integration tests run under it so that orphans of a shim under test come here and
 * process counts under the shim are exact (a test helper: the shim's own rule of one
 * reaper in shim/reaper.c is about the daemon). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"

static volatile sig_atomic_t child_pid;

static void on_forward_signal(int sig) {
        if (child_pid > 0)
                kill(child_pid, sig);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]);
                return 2;
        }
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                fprintf(stderr, "subreaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
                return 1;
        }
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGHUP);
        /* Handlers are installed before the fork with the signals blocked, so that a
         * signal arriving in between is not lost and the child starts with defaults. */
        sigprocmask(SIG_BLOCK, &block, &old);
        struct sigaction sa = {.sa_handler = on_forward_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);

        pid_t pid = fork();
        if (pid < 0) {
                fprintf(stderr, "subreaper: fork: %s\n", strerror(errno));
                return 1;
        }
        if (pid == 0) {
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                signal(SIGHUP, SIG_DFL);
                sigprocmask(SIG_SETMASK, &old, NULL);
                execvp(argv[1], argv + 1);
                fprintf(stderr, "subreaper: cannot run %s: %s\n", argv[1], strerror(errno));
                _exit(127);
        }
        child_pid = pid;
        sigprocmask(SIG_SETMASK, &old, NULL);

        for (;;) {
                int status;
                pid_t r = waitpid(-1, &status, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "subreaper: waitpid: %s\n", strerror(errno));
                        return 1;
                }
                if (r == pid)
                        return exit_status_from_wait(status);
                /* any other pid: an orphan handed to us, now reaped */
        }
}
