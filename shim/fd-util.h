/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

int fd_set_nonblock(int fd, bool nonblock);
int fd_set_cloexec(int fd, bool cloexec);
/* Close every fd >= 3 that is not in keep[] (close_range where the kernel has it). */
int close_all_fds_except(const int *keep, size_t n_keep);
/* Write all of buf to a blocking fd, retrying on EINTR. 0 or -errno. */
int loop_write(int fd, const void *buf, size_t len);
/* Count open fds of this process (from /proc/self/fd). */
int count_open_fds(void);
