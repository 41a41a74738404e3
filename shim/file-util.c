/* SPDX-License-Identifier: Apache-2.0 */
#include "file-util.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"

int read_file_at(int dirfd, const char *path, size_t max_size, char **ret_buf, size_t *ret_len) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL; /* "Is a directory" / "Invalid argument" */
        if ((size_t)st.st_size > max_size)
                return -EFBIG;
        /* proc and cgroup files say size 0: start with a page rather than one byte */
        size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : MIN((size_t)4096, max_size + 1), len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap > max_size)
                                return -EFBIG;
                        size_t ncap = MIN(cap * 2, max_size + 1);
                        char *nb = realloc(buf, ncap + 1);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max_size)
                return -EFBIG;
        buf[len] = 0;
        *ret_buf = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int write_file_replace_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, ".%s.tmp%d", name, (int)getpid()) >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        if (strchr(name, '/'))
                return -EINVAL;
        _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        int r = loop_write(fd, data, len);
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0)
                unlinkat(dirfd, tmp, 0);
        return r;
}


int parse_pid(const char *s, pid_t *ret_pid) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        char *end;
        long v = strtol(s, &end, 10);
        if (errno || v <= 0 || v > INT_MAX)
                return -ERANGE;
        while (*end == '\n' || *end == ' ')
                end++;
        if (*end)
                return -EINVAL;
        *ret_pid = (pid_t)v;
        return 0;
}

int scan_u64(const char **p, int base, uint64_t max, uint64_t *ret) {
        const char *s = *p;
        while (*s == ' ' || *s == '\t' || *s == '\n')
                s++;
        bool digit = *s >= '0' && *s <= '9';
        if (base == 16)
                digit = digit || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F');
        if (!digit)
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, base);
        if (errno || v > max)
                return -ERANGE;
        *p = end;
        *ret = v;
        return 0;
}

int read_pid_file_at(int dirfd, const char *path, pid_t *ret_pid) {
        _cleanup_free_ char *buf = NULL;
        int r = read_file_at(dirfd, path, 64, &buf, NULL);
        if (r < 0)
                return r;
        return parse_pid(buf, ret_pid);
}
