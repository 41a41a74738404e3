/* The pod sandbox's init for the CRI tests: a tiny static program that reaps every
 * child re-parented to it and exits on SIGINT or SIGTERM (what the CRI plugin sends
 * at StopPodSandbox). Built by the tests and imported as the pause image, so that no
 * registry is needed. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
        sigset_t set;
        int sig;

        if (getpid() != 1)
                fprintf(stderr, "pause: warning: not pid 1\n");
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
                perror("pause: sigprocmask");
                return 1;
        }
        for (;;) {
                sig = sigwaitinfo(&set, NULL);
                if (sig < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("pause: sigwaitinfo");
                        return 1;
                }
                if (sig != SIGCHLD)
                        return 0;
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
        }
}
