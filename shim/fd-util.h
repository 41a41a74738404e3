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
/* Move fd onto stdin (0), close-on-exec, in place of whatever was there. 0 or -errno. */
int fd_move_to_stdin(int fd);
/* Close fd; one of 0-2 gets /dev/null instead, so that no later open can land there.
 * Returns -1 (to assign back). */
int close_keep_std(int fd);
/* Count open fds of this process (from /proc/self/fd). */
int count_open_fds(void);
