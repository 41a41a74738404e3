/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read a whole file (relative to dirfd, AT_FDCWD for cwd) into a NUL-terminated buffer.
 * Refuses files larger than max_size (-EFBIG) and symlinks in the last component
 * (-ELOOP). 0 or -errno; the outputs are written only on success. */
int read_file_at(int dirfd, const char *path, size_t max_size, char **ret_buf, size_t *ret_len);
/* Write a file atomically: temp file in the same dir, renameat. Readers never see a
 * partial file; not fsync'd: a host crash may lose it. Every file the shim writes only
 * matters while the host is up (and containerd keeps bundles in /run, a tmpfs). */
int write_file_replace_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Parse a decimal pid ("1234\n"): rejects junk, <= 0, overflow. */
int parse_pid(const char *s, pid_t *ret_pid);
/* The unsigned number in base 10 or 16 at *p (blanks before it skipped, no sign; hex may
 * start with 0x), moving *p past it: what sscanf's %u/%x would read, without pulling
 * scanf into the static binary. -EINVAL if no digit is there, -ERANGE above max. */
int scan_u64(const char **p, int base, uint64_t max, uint64_t *ret);
/* Read a pid file. */
int read_pid_file_at(int dirfd, const char *path, pid_t *ret_pid);
