/* SPDX-License-Identifier: Apache-2.0 */
#include "fd-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"

int fd_set_nonblock(int fd, bool nonblock) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        int nflags = nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (nflags != flags && fcntl(fd, F_SETFL, nflags) < 0)
                return -errno;
        return 0;
}

int fd_set_cloexec(int fd, bool cloexec) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return -errno;
        int nflags = cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (nflags != flags && fcntl(fd, F_SETFD, nflags) < 0)
                return -errno;
        return 0;
}

static bool in_list(int fd, const int *keep, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (keep[i] == fd)
                        return true;
        return false;
}

/* Async-signal-safe when /proc is not needed: used between fork and exec too. */
int close_all_fds_except(const int *keep, size_t n_keep) {
        /* Walk upward closing the gaps between kept fds with close_range(). */
        unsigned int from = 3;
        for (;;) {
                unsigned int next_keep = ~0U;
                for (size_t i = 0; i < n_keep; i++)
                        if (keep[i] >= (int)from && (unsigned)keep[i] < next_keep)
                                next_keep = (unsigned)keep[i];
                unsigned int to = next_keep == ~0U ? ~0U : next_keep - 1;
                if (to >= from && syscall(SYS_close_range, from, to, 0) < 0) {
                        /* Old kernel: close one by one up to a sane limit. */
                        long max = sysconf(_SC_OPEN_MAX);
                        if (max < 0 || max > 65536)
                                max = 65536;
                        for (int fd = 3; fd < max; fd++)
                                if (!in_list(fd, keep, n_keep))
                                        close(fd);
                        return 0;
                }
                if (next_keep == ~0U)
                        return 0;
                from = next_keep + 1;
        }
}

int fd_move_to_stdin(int fd) {
        if (fd == STDIN_FILENO)
                return fd_set_cloexec(fd, true);
        if (dup3(fd, STDIN_FILENO, O_CLOEXEC) < 0)
                return -errno;
        close(fd);
        return 0;
}

int close_keep_std(int fd) {
        if (fd < 0)
                return -1;
        if (fd > STDERR_FILENO) {
                close(fd);
                return -1;
        }
        int null = open("/dev/null", O_RDWR | O_CLOEXEC); /* (never fd: it is still open) */
        if (null < 0 || dup3(null, fd, O_CLOEXEC) < 0)
                close(fd); /* no /dev/null: closed is still better than a stale socket */
        if (null >= 0)
                close(null);
        return -1;
}

int loop_write(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int count_open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -errno;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own fd */
}
